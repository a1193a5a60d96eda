// com.microsoft::QMoE — ONNX Runtime's quantized MoE operator: com.microsoft::MoE with INT8 or INT4
// expert weights. Dequantized once at compile time and run by the same layer as MoE
// (moe/ms_moe_layer.h); the node runs at int8-weights / int4-weights by default (set by
// adopt_model_quantization), which re-derives the model's codes, so the weights stay those of the file.
//
// Inputs: 0 input; 1 router_probs (logits); 2 fc1 weights uint8 [E, f*I, H / pack]; 3 fc1 scales
// [E, f*I] (one per row) or [E, f*I, H / block_size]; 4 fc1 bias; 5 fc2 weights [E, H, I / pack];
// 6 fc2 scales; 7 fc2 bias; 8 fc3 weights; 9 fc3 scales; 10 fc3 bias; 11..13 zero points (not
// supported: symmetric weights only). pack = 8 / expert_weight_bits; 4-bit codes two per byte, the
// lower index in the low nibble. Codes are unsigned with the offset 2^(bits-1): w = (q - 2^(bits-1)) * scale.
// Attributes: those of MoE, plus expert_weight_bits (4 | 8) and block_size (0: one scale per row).
#include <string>

#include "moe/ms_moe_layer.h"

namespace switchyard {
namespace {

// FP32 [E, rows, K] from packed codes [E, rows, K / pack] and scales [E, rows] or [E, rows, blocks].
Tensor dequantize_experts(const Node& node, const Tensor& codes, const Tensor& scales, int bits, int64_t block,
                          const char* name) {
  const std::string what = node.describe() + ": " + name;
  SY_CHECK(codes.dtype() == DType::kUInt8 && codes.rank() == 3, what + " weights must be uint8 [experts, rows, packed]");
  const int64_t E = codes.dim(0), rows = codes.dim(1), K = codes.dim(2) * (8 / bits);
  const int64_t blocks = block > 0 ? (K + block - 1) / block : 1;
  const Shape want = block > 0 ? Shape{E, rows, blocks} : Shape{E, rows};
  SY_CHECK(scales.dtype() == DType::kFloat32 || scales.dtype() == DType::kFloat16, what + " scales must be float32 or float16");
  SY_CHECK(scales.shape() == want, what + " scales " + shape_str(scales.shape()) + " must be " + shape_str(want));
  Tensor out(DType::kFloat32, {E, rows, K});
  const uint8_t* q = codes.data<uint8_t>();
  float* w = out.data<float>();
  const int offset = 1 << (bits - 1);
  for (int64_t r = 0; r < E * rows; ++r)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t s_at = r * blocks + (block > 0 ? k / block : 0);
      const float scale = scales.dtype() == DType::kFloat32 ? scales.data<float>()[s_at] : half_to_float(scales.data<uint16_t>()[s_at]);
      const uint8_t byte = bits == 8 ? q[r * K + k] : q[r * (K / 2) + k / 2];
      const int code = bits == 8 ? byte : (k % 2 == 0 ? byte & 0x0f : byte >> 4);
      w[r * K + k] = static_cast<float>(code - offset) * scale;
    }
  return out;
}

std::unique_ptr<Kernel> make_qmoe(const KernelBuildInfo& info) {
  const Node& node = info.node;
  auto constant = [&](size_t i) -> const Tensor* {
    if (i >= node.inputs.size() || node.inputs[i] < 0) return nullptr;
    const Tensor* t = info.constant_inputs[i];
    SY_CHECK(t, node.describe() + ": input " + std::to_string(i) + " must be an initializer (expert weights are prepacked)");
    return t;
  };
  const int64_t bits = node.attr_int("expert_weight_bits", 0), block = node.attr_int("block_size", 0);
  SY_CHECK(bits == 4 || bits == 8, node.describe() + ": expert_weight_bits must be 4 or 8, got " + std::to_string(bits));
  SY_CHECK(block >= 0 && block <= (int64_t{1} << 20), node.describe() + ": block_size must be in 0..2^20");
  for (size_t zp = 11; zp <= 13; ++zp)
    SY_CHECK(!constant(zp), node.describe() + ": zero points (asymmetric weights) are not supported");
  auto weights = [&](size_t slot, const char* name) -> Tensor {
    const Tensor* codes = constant(slot);
    if (!codes) return Tensor();
    const Tensor* scales = constant(slot + 1);
    SY_CHECK(scales, node.describe() + ": " + name + " weights need their scales");
    return dequantize_experts(node, *codes, *scales, static_cast<int>(bits), block, name);
  };
  auto bias = [&](size_t slot) -> const Tensor* {
    const Tensor* b = constant(slot);
    SY_CHECK(!b || b->dtype() == DType::kFloat32, node.describe() + ": biases must be float32");
    return b;
  };
  const Tensor fc1 = weights(2, "fc1"), fc2 = weights(5, "fc2"), fc3 = weights(8, "fc3");
  SY_CHECK(fc1.defined() && fc2.defined(), node.describe() + ": fc1 and fc2 weights are required");
  OrtMoeWeights w;
  w.fc1 = &fc1;
  w.b1 = bias(4);
  w.fc2 = &fc2;
  w.b2 = bias(7);
  w.fc3 = fc3.defined() ? &fc3 : nullptr;
  w.b3 = bias(10);
  return std::make_unique<OrtMoeLayer>(info, w);  // packs (copies) the weights: the FP32 ones can go
}

SY_REGISTER_OP("com.microsoft", "QMoE", 1, make_qmoe);

}  // namespace
}  // namespace switchyard
