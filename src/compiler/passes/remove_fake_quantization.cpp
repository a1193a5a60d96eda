// Pass: drop the QuantizeLinear -> DequantizeLinear pairs that a QDQ model puts on its activations.
//
// A QDQ model (ONNX Runtime's quantize_static, `switchyard quantize`, NNCF) says "this activation may
// be computed in INT8" by rounding it through Q and DQ with the same scale and zero point. Run as
// written, each pair is two extra passes over the tensor, and the pairs hide the MoE routing subgraph
// from fuse_moe_routing. Runtimes treat the pairs as an annotation and pick the kernels: ONNX Runtime
// fuses them into its QLinear kernels, OpenVINO's low-precision transformations do likewise. Switchyard
// runs the layers that have INT8 weights (adopt_model_quantization.cpp) with INT8 activations
// quantized per row at run time, and everything else in FP32 on the dequantized weights, so the pairs
// are removed: consumers of the DQ read the Q's input. Results differ from the op-by-op QDQ graph by
// the activation rounding and the clamping to the calibrated range, except at zero: a pair whose range
// starts at 0 becomes a Relu, because quantizers drop a ReLU before such a pair as redundant (ONNX
// Runtime does), and the clamp is then the model's activation. CompileOptions::fuse_moe = false keeps
// the graph as exported, pairs included.
//
// Runs after constant folding, so the DequantizeLinear nodes of constant weights are already folded
// into FP32 constants (marked dequantized_int8) and every DQ left reads an activation.
#include <algorithm>
#include <functional>
#include <set>

#include "compiler/pass_pipeline.h"
#include "ops/kernel.h"

namespace switchyard {

namespace {

bool same_constant(const Graph& g, int a, int b) {
  if (a == b) return true;
  if (a < 0 || b < 0) return false;
  const auto& ta = g.values[static_cast<size_t>(a)].constant;
  const auto& tb = g.values[static_cast<size_t>(b)].constant;
  return ta && tb && ta->dtype() == tb->dtype() && ta->shape() == tb->shape() &&
         std::equal(static_cast<const uint8_t*>(ta->raw()), static_cast<const uint8_t*>(ta->raw()) + ta->nbytes(),
                    static_cast<const uint8_t*>(tb->raw()));
}

bool non_negative(const Graph& g, const std::vector<int>& producer, int v, int depth = 0) {
  const Value& value = g.values[static_cast<size_t>(v)];
  if (value.constant) {
    if (value.constant->dtype() != DType::kFloat32) return false;
    const float* p = value.constant->data<float>();
    return std::all_of(p, p + value.constant->numel(), [](float x) { return x >= 0.f; });
  }
  const int n = producer[static_cast<size_t>(v)];
  if (n < 0 || depth > 64) return false;
  const Node& node = g.nodes[static_cast<size_t>(n)];
  if (!node.domain.empty()) return false;
  if (op_has(node, kOpNonNegative)) return true;  // never negative
  // Selecting or moving the elements of a non-negative first input keeps them non-negative.
  return op_has(node, kOpSelectsInput0) && node.outputs[0] == v && !node.inputs.empty() && node.inputs[0] >= 0 &&
         non_negative(g, producer, node.inputs[0], depth + 1);
}

// True if QuantizeLinear q maps every negative input to its lowest code, i.e. its range is [0, max]:
// the zero point is the type's minimum (an omitted zero point means uint8 0).
bool clamps_at_zero(const Graph& g, const Node& q) {
  if (q.inputs.size() < 3 || q.inputs[2] < 0) return true;
  const auto& zp = g.values[static_cast<size_t>(q.inputs[2])].constant;
  if (!zp) return false;
  for (int64_t i = 0; i < zp->numel(); ++i) {
    int64_t z = 0, lowest = 0;
    switch (zp->dtype()) {
      case DType::kInt8: z = zp->data<int8_t>()[i]; lowest = -128; break;
      case DType::kUInt8: z = zp->data<uint8_t>()[i]; break;
      case DType::kInt16: z = zp->data<int16_t>()[i]; lowest = -32768; break;
      case DType::kUInt16: z = zp->data<uint16_t>()[i]; break;
      default: return false;
    }
    if (z != lowest) return false;
  }
  return true;
}

// Zero point operand, or -1 when omitted (both mean zero only if omitted on both sides).
int zero_point(const Node& n) { return n.inputs.size() > 2 ? n.inputs[2] : -1; }

}  // namespace

void remove_fake_quantization(Graph& g) {
  const std::vector<int> producer = g.producers();
  const std::set<std::string> captured = g.captured_by_subgraphs();  // read by name: keep their producer
  std::set<int> graph_outputs(g.outputs.begin(), g.outputs.end());
  std::vector<int> replacement(g.values.size(), -1);  // DQ output -> the activation before its Q
  int removed = 0, relus = 0;
  for (Node& dq : g.nodes) {
    if (dq.op_type != "DequantizeLinear" || !dq.domain.empty() || dq.inputs.size() < 2 || dq.outputs.size() != 1) continue;
    if (dq.inputs[0] < 0 || dq.inputs[1] < 0 || dq.outputs[0] < 0) continue;  // malformed: the kernel reports it
    const int q_index = producer[static_cast<size_t>(dq.inputs[0])];
    if (q_index < 0) continue;
    const Node& q = g.nodes[static_cast<size_t>(q_index)];
    if (q.op_type != "QuantizeLinear" || !q.domain.empty() || q.inputs.size() < 2 || q.attr_int("axis", 1) != dq.attr_int("axis", 1) ||
        !same_constant(g, q.inputs[1], dq.inputs[1]) || !same_constant(g, zero_point(q), zero_point(dq)))
      continue;
    int in = q.inputs[0];
    if (in < 0) continue;
    while (replacement[static_cast<size_t>(in)] >= 0) in = replacement[static_cast<size_t>(in)];
    const int out = dq.outputs[0];
    // Only FP32 round trips (an FP16 or INT32 input would change type without the pair).
    const DType in_type = g.values[static_cast<size_t>(in)].dtype;
    const auto& scale = g.values[static_cast<size_t>(dq.inputs[1])].constant;
    if ((in_type != DType::kFloat32 && in_type != DType::kUndefined) || !scale || scale->dtype() != DType::kFloat32) continue;
    if (clamps_at_zero(g, q) && !non_negative(g, producer, in)) {
      // The pair's range starts at 0: it clamps negatives, often standing for a ReLU that the quantizer
      // removed as redundant (ONNX Runtime does). A Relu keeps that meaning.
      dq.op_type = "Relu";
      dq.inputs = {in};
      dq.attrs.clear();
      ++relus;
    } else if (graph_outputs.count(out) || captured.count(g.values[static_cast<size_t>(out)].name)) {
      // The value's name must survive (graph output, read by a subgraph): an Identity keeps it.
      dq.op_type = "Identity";
      dq.inputs = {in};
      dq.attrs.clear();
    } else {
      replacement[static_cast<size_t>(out)] = in;
    }
    ++removed;
  }
  if (removed == 0) return;
  for (Node& n : g.nodes)
    for (int& in : n.inputs)
      if (in >= 0 && replacement[static_cast<size_t>(in)] >= 0) in = replacement[static_cast<size_t>(in)];
  eliminate_dead_nodes(g);
  g.notes.push_back("removed " + std::to_string(removed) + " activation QuantizeLinear/DequantizeLinear pairs (" +
                    std::to_string(relus) + " clamping at 0 kept as Relu); INT8 where the weights are INT8, FP32 elsewhere");
}

}  // namespace switchyard
