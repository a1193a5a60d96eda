// QuantizeLinear and DequantizeLinear (per-tensor, or per-axis with a 1-D scale; int8 / uint8 /
// int16 / uint16, and int32 for DequantizeLinear; not the float8, int4 and blocked forms of opset 19+): the QDQ format that ONNX Runtime's static
// quantization (`switchyard quantize`) writes.
//   QuantizeLinear:   y = saturate(round_half_even(x / scale) + zero_point)
//   DequantizeLinear: y = (x - zero_point) * scale
// DequantizeLinear of a constant weight is folded at compile time (constant folding), so a QDQ
// model's weights cost nothing per call; activation Q/DQ pairs run as written (fake quantization).
#include <cmath>
#include <limits>

#include "ops/op_utils.h"

namespace switchyard {

namespace {

// Scale / zero point for each element: one value, or one per index along `axis`.
struct Channels {
  int64_t count = 1, inner = 1;  // elements sharing one value are runs of `inner` repeated
  int64_t at(int64_t i) const { return count == 1 ? 0 : (i / inner) % count; }
};

Channels channels_of(const Node& node, const Tensor& x, const Tensor& scale, int64_t axis_attr) {
  Channels c;
  if (scale.numel() == 1 && scale.rank() <= 1) return c;
  SY_CHECK(scale.rank() == 1, node.describe() + ": scale must be a scalar or 1-D, got " + shape_str(scale.shape()));
  SY_CHECK(node.opset >= 13, node.describe() + ": per-axis scales need opset 13");
  const int64_t axis = normalize_axis(axis_attr, x.rank(), node);
  SY_CHECK(scale.numel() == x.dim(axis), node.describe() + ": " + std::to_string(scale.numel()) +
                                             " scales for axis " + std::to_string(axis) + " of " + shape_str(x.shape()));
  c.count = scale.numel();
  for (int64_t d = axis + 1; d < x.rank(); ++d) c.inner *= x.dim(d);
  return c;
}

// The three inputs both operators take (x, scale, optional zero point), checked, with the channel
// layout of the scale.
struct Operands {
  const Tensor& x;
  const Tensor& scale;
  const Tensor* zp;
  Channels channels;
};

Operands operands(KernelContext& ctx, const Node& node, int64_t axis) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  SY_CHECK(scale.dtype() == DType::kFloat32, node.describe() + ": scale must be float32");
  SY_CHECK(!zp || zp->numel() == scale.numel(), node.describe() + ": zero point " + shape_str(zp->shape()) +
                                                    " does not match scale " + shape_str(scale.shape()));
  return {x, scale, zp, channels_of(node, x, scale, axis)};
}

class QuantizeLinear final : public Kernel {
 public:
  explicit QuantizeLinear(const KernelBuildInfo& info) : node_(info.node), axis_(info.node.attr_int("axis", 1)) {}
  void compute(KernelContext& ctx) const override {
    const auto [x, scale, zp, c] = operands(ctx, node_, axis_);
    SY_CHECK(x.dtype() == DType::kFloat32, node_.describe() + ": input must be float32, got " + dtype_name(x.dtype()));
    const DType out = zp ? zp->dtype() : DType::kUInt8;
    SY_CHECK(out == DType::kUInt8 || out == DType::kInt8 || out == DType::kUInt16 || out == DType::kInt16,
             node_.describe() + ": output type " + dtype_name(out) + " is not supported (uint8, int8, uint16, int16)");
    Tensor& y = ctx.output(0, out, x.shape());
    const float* xp = x.data<float>();
    const float* sp = scale.data<float>();
    SY_DISPATCH_NUMERIC(out, node_.describe(), {
      const float lo = static_cast<float>(std::numeric_limits<T>::min());
      const float hi = static_cast<float>(std::numeric_limits<T>::max());
      const T* zpp = zp ? zp->data<T>() : nullptr;
      T* yp = y.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const int64_t ch = c.at(i);
        float v = std::nearbyint(xp[i] / sp[ch]) + (zpp ? static_cast<float>(zpp[ch]) : 0.f);
        v = v != v ? 0.f : std::min(hi, std::max(lo, v));  // NaN -> 0 (as ONNX Runtime), saturate
        yp[i] = static_cast<T>(v);
      }
    });
  }

 private:
  const Node& node_;
  int64_t axis_;
};

class DequantizeLinear final : public Kernel {
 public:
  explicit DequantizeLinear(const KernelBuildInfo& info) : node_(info.node), axis_(info.node.attr_int("axis", 1)) {}
  void compute(KernelContext& ctx) const override {
    const auto [x, scale, zp, c] = operands(ctx, node_, axis_);
    const DType t = x.dtype();
    SY_CHECK(t == DType::kUInt8 || t == DType::kInt8 || t == DType::kUInt16 || t == DType::kInt16 || t == DType::kInt32,
             node_.describe() + ": input type " + dtype_name(t) + " is not supported (uint8, int8, uint16, int16, int32)");
    SY_CHECK(!zp || zp->dtype() == x.dtype(), node_.describe() + ": zero point type must match the input");
    Tensor& y = ctx.output(0, DType::kFloat32, x.shape());
    float* yp = y.data<float>();
    const float* sp = scale.data<float>();
    SY_DISPATCH_NUMERIC(x.dtype(), node_.describe(), {
      const T* xp = x.data<T>();
      const T* zpp = zp ? zp->data<T>() : nullptr;
      for (int64_t i = 0; i < x.numel(); ++i) {
        const int64_t ch = c.at(i);
        yp[i] = static_cast<float>(static_cast<int64_t>(xp[i]) - (zpp ? static_cast<int64_t>(zpp[ch]) : 0)) * sp[ch];
      }
    });
  }

 private:
  const Node& node_;
  int64_t axis_;
};

SY_REGISTER_OP("", "QuantizeLinear", 10, make_factory<QuantizeLinear>());
SY_REGISTER_OP("", "DequantizeLinear", 10, make_factory<DequantizeLinear>());

}  // namespace

}  // namespace switchyard
