// Pass: MoE nodes and dense MatMul / Gemm layers whose weights the model gives in INT8 / INT4 run so.
//
// A quantized model states its weight precision with DequantizeLinear on INT8 initializers (static QDQ
// from `switchyard quantize`, ONNX Runtime or NNCF; weights-only files from `switchyard quantize
// --weights-only`) or with com.microsoft.QMoE (INT8 / INT4 experts). Constant folding turns the former
// into FP32 constants marked dequantized_int8. This pass gives every MoE node whose expert projections
// are all so marked, every MatMul / Gemm whose B is, and every QMoE node precision.from_model (int8, or
// int4 for 4-bit QMoE) and precision.model_weight_group (one scale per whole column, or QMoE's
// block_size). assign_precision then puts that ahead of CompileOptions::precision and behind a
// per-node override. Both formats re-derive the model's codes exactly: symmetric INT8 with one
// scale per output column is how per-channel QDQ weights are quantized, and the INT4 packer finds
// symmetric grids. Activations are quantized per row at run time (finer than a QDQ model's calibrated
// per-tensor scale) whether or not the file quantizes them: OpenVINO's CPU plugin does the same for
// compressed weights (dynamic quantization), and it is what makes the integer kernels pay; a per-node
// override to int8-weights / int4-weights keeps FP32 activations. Small MoE layers with dense layers
// folded in stay FP32 on the dequantized weights (the one-pass tiny-expert kernel is FP32 only, and faster).
#include "compiler/pass_pipeline.h"

namespace switchyard {

namespace {

// Expert weight inputs of the MoE operators Switchyard runs (the rest are routers, biases, dense layers).
std::vector<size_t> expert_weight_slots(const Node& n) {
  if (n.op_type != "MoE") return {};
  if (n.domain == "ai.switchyard") return {3, 5, 7};
  if (n.domain == "com.microsoft") return {2, 4, 6};
  return {};
}

}  // namespace

void adopt_model_quantization(Graph& g) {
  int dense_int8 = 0;
  for (Node& n : g.nodes) {
    if (n.op_type == "QMoE" && n.domain == "com.microsoft") {
      // ONNX Runtime's quantized MoE: INT8 / INT4 weights, one scale per row or per block_size inputs.
      const bool int4 = n.attr_int("expert_weight_bits", 8) == 4;
      const int64_t block = n.attr_int("block_size", 0);
      n.precision.from_model = int4 ? Precision::kInt4 : Precision::kInt8;
      n.precision.model_weight_group = block > 0 ? block : int64_t{1} << 30;
      g.notes.push_back("QMoE '" + n.name + "': the model's expert weights are " + (int4 ? "INT4" : "INT8") +
                        "; runs at precision " + precision_name(*n.precision.from_model));
      continue;
    }
    const bool dense = n.domain.empty() && (n.op_type == "MatMul" || (n.op_type == "Gemm" && n.attr_int("transA", 0) == 0));
    std::vector<size_t> slots = dense ? std::vector<size_t>{1} : expert_weight_slots(n);
    bool any = false, all = true;
    for (size_t slot : slots) {
      if (slot >= n.inputs.size() || n.inputs[slot] < 0) continue;
      const bool int8 = g.values[static_cast<size_t>(n.inputs[slot])].dequantized_int8;
      any = any || int8;
      all = all && int8;
    }
    if (!any) continue;
    if (!all) {
      g.notes.push_back("MoE '" + n.name + "': only some expert projections have INT8 weights; runs at the compile precision");
      continue;
    }
    auto present = [&](size_t slot) { return slot < n.inputs.size() && n.inputs[slot] >= 0; };
    if (n.domain == "ai.switchyard" && (present(9) || present(11))) {
      // Dense layers folded in (fuse_dense_around_moe.cpp): small experts, run by the FP32 one-pass
      // kernel, which beats INT8 there; the dequantized weights are the model's exactly.
      g.notes.push_back("MoE '" + n.name + "': the model's expert weights are INT8; small experts run FP32 on them (faster)");
      continue;
    }
    n.precision.from_model = Precision::kInt8;
    // One scale per whole column, as the model's per-channel scales (re-derives the model's codes).
    n.precision.model_weight_group = int64_t{1} << 30;
    if (dense)
      ++dense_int8;
    else
      g.notes.push_back("MoE '" + n.name + "': the model's expert weights are INT8; runs at precision int8");
  }
  if (dense_int8 > 0)
    g.notes.push_back(std::to_string(dense_int8) + " dense layer(s) with the model's INT8 weights run at precision int8");
}

}  // namespace switchyard
