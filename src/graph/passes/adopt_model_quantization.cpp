// Pass: MoE nodes and dense MatMul / Gemm layers whose weights the model gives in INT8 run INT8.
//
// A quantized model states its weight precision with DequantizeLinear on INT8 initializers (QDQ from
// `switchyard quantize`, ONNX Runtime or NNCF, or weights-only QDQ feeding an ai.switchyard::MoE /
// com.microsoft.MoE node). Constant folding turns those into FP32 constants marked dequantized_int8;
// this pass gives every MoE node whose expert projections are all so marked (and every MatMul / Gemm
// whose B is) the attribute
// model_precision: "int8" when the model also quantizes the layer's input (static QDQ: an activation
// Q/DQ pair, see remove_fake_quantization.cpp), else "int8-weights" (weights-only compression: FP32
// activations, as written). The executor builds the node at that precision (ahead of
// CompileOptions::precision, behind a per-node override). Both INT8 formats re-derive exactly the
// model's codes (symmetric, one scale per output column, which is how per-channel QDQ weights are
// quantized; int8-weights stores the scale in FP16); int8 quantizes the activations per row at run time
// (finer than a QDQ model's calibrated per-tensor scale). Small MoE layers with
// dense layers folded in stay FP32 (the one-pass tiny-expert kernel is FP32 only, and faster).
#include <algorithm>
#include <iterator>

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

// True if the model rounds value v through INT8, directly or before ops that only reshape it.
bool quantized_input(const Graph& g, const std::vector<int>& producer, int v) {
  for (int depth = 0; v >= 0 && depth < 16; ++depth) {
    if (g.values[static_cast<size_t>(v)].quantized_activation) return true;
    const int p = producer[static_cast<size_t>(v)];
    if (p < 0) return false;
    const Node& node = g.nodes[static_cast<size_t>(p)];
    static const char* const kReshapes[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"};
    if (!node.domain.empty() || std::find(std::begin(kReshapes), std::end(kReshapes), node.op_type) == std::end(kReshapes))
      return false;
    v = node.inputs.empty() ? -1 : node.inputs[0];
  }
  return false;
}

}  // namespace

void adopt_model_quantization(Graph& g) {
  const std::vector<int> producer = g.producers();
  int dense_int8 = 0, dense_weights = 0;
  for (Node& n : g.nodes) {
    if (n.op_type == "QMoE" && n.domain == "com.microsoft") {
      // ONNX Runtime's quantized MoE: weight-only INT8 / INT4 (FP32 activations), one scale per row or
      // per block_size inputs, as stored.
      const bool int4 = n.attr_int("expert_weight_bits", 8) == 4;
      const int64_t block = n.attr_int("block_size", 0);
      const Attribute a = Attribute::string(int4 ? "int4-weights" : "int8-weights");
      n.attrs["model_precision"] = a;
      n.attrs["model_weight_group"] = Attribute::integer(block > 0 ? block : int64_t{1} << 30);
      g.notes.push_back("QMoE '" + n.name + "': the model's expert weights are " + (int4 ? "INT4" : "INT8") + "; runs at precision " + a.s);
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
    // INT8 activations too only where the model quantizes the layer's input (static QDQ); weights-only
    // compressed models keep FP32 activations, as written.
    const bool activations = n.attr_int("quantized_input", 0) != 0 || quantized_input(g, producer, n.inputs[0]);
    const Attribute a = Attribute::string(activations ? "int8" : "int8-weights");
    n.attrs["model_precision"] = a;
    // One scale per whole column, as the model's per-channel scales (re-derives the model's codes).
    n.attrs["model_weight_group"] = Attribute::integer(int64_t{1} << 30);
    if (dense)
      ++(activations ? dense_int8 : dense_weights);
    else
      g.notes.push_back("MoE '" + n.name + "': the model's expert weights are INT8" +
                        (activations ? std::string(" and its input is quantized") : std::string()) + "; runs at precision " + a.s);
  }
  if (dense_int8 + dense_weights > 0)
    g.notes.push_back("dense layers with the model's INT8 weights: " + std::to_string(dense_int8) + " run at precision int8, " +
                      std::to_string(dense_weights) + " at int8-weights");
}

}  // namespace switchyard
