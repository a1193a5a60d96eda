// Pass: MoE nodes whose expert weights the model gives in INT8 run at precision int8.
//
// A quantized model states its weight precision with DequantizeLinear on INT8 initializers (QDQ from
// `switchyard quantize`, ONNX Runtime or NNCF, or weights-only QDQ feeding an ai.switchyard::MoE /
// com.microsoft.MoE node). Constant folding turns those into FP32 constants marked dequantized_int8;
// this pass gives every MoE node whose expert projections are all so marked the attribute
// model_precision = "int8". The executor then builds it at int8 (ahead of CompileOptions::precision,
// behind a per-node override): the INT8 panels re-derive exactly the model's codes (symmetric, one scale
// per output column, which is how per-channel QDQ weights are quantized), the activations are quantized
// per row at run time (finer than a QDQ model's calibrated per-tensor scale). Small MoE layers with
// dense layers folded in stay FP32 (the one-pass tiny-expert kernel is FP32 only, and faster).
#include "graph/passes/pass_pipeline.h"

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
  for (Node& n : g.nodes) {
    bool any = false, all = true;
    for (size_t slot : expert_weight_slots(n)) {
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
    if (n.domain == "ai.switchyard" && n.inputs.size() > 9) {
      // Dense layers folded in (fuse_dense_around_moe.cpp): small experts, run by the FP32 one-pass
      // kernel, which beats INT8 there; the dequantized weights are the model's exactly.
      g.notes.push_back("MoE '" + n.name + "': the model's expert weights are INT8; small experts run FP32 on them (faster)");
      continue;
    }
    Attribute a;
    a.kind = Attribute::Kind::kString;
    a.s = "int8";
    n.attrs["model_precision"] = a;
    g.notes.push_back("MoE '" + n.name + "': the model's expert weights are INT8; runs at precision int8");
  }
}

}  // namespace switchyard
