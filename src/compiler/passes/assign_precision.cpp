// Pass (last in the pipeline): the one place that decides each node's precision and weight group.
//
// Per node, in order of strength: a per-node override (CompileOptions::precision_overrides, by the
// node's name after fusion), what the model itself states (precision.from_model: INT8 / INT4 weights
// found by adopt_model_quantization, routers kept FP32 by keep_routers_fp32), the compile precision.
// The weight group is the model's where it quantized the weights, else the compile option. Subgraphs
// (If / Loop bodies) get the same rule. An override naming no node is an error.
//
// One exception: a fused MoE layer whose expert weights all fit in L1/L2 (<= 64 KB, the seed
// classifier's 16 KB) stays FP32. A lower precision pays by reading fewer weight bytes or by faster dot
// products; such experts gain neither and would lose the fused tiny-expert kernel, which is FP32
// (measured: bf16 / int8 ran at 0.70-0.85x of FP32 on the seed). A graph note says so.
#include <set>

#include "compiler/pass_pipeline.h"
#include "switchyard/error.h"

namespace switchyard {

namespace {

constexpr int64_t kSmallExpertBytes = 64 * 1024;

// Bytes of the expert weights of an ai.switchyard::MoE node (fc1, fc2, fc3: inputs 3, 5, 7), or -1 when
// the node is not one or a weight is not a constant.
int64_t expert_weight_bytes(const Graph& g, const Node& n) {
  if (n.domain != "ai.switchyard" || n.op_type != "MoE") return -1;
  int64_t bytes = 0;
  for (size_t i : {3u, 5u, 7u}) {
    if (i >= n.inputs.size() || n.inputs[i] < 0) continue;
    const Value& v = g.values[static_cast<size_t>(n.inputs[i])];
    if (!v.constant) return -1;
    bytes += static_cast<int64_t>(v.constant->nbytes());
  }
  return bytes;
}

void assign(Graph& g, const PassOptions& o, std::set<std::string>& matched) {
  for (Node& n : g.nodes) {
    const auto it = o.precision_overrides.find(n.name);
    if (it != o.precision_overrides.end()) matched.insert(n.name);
    n.precision.precision = it != o.precision_overrides.end() ? it->second : n.precision.from_model.value_or(o.precision);
    n.precision.weight_group = n.precision.model_weight_group > 0 ? n.precision.model_weight_group : o.weight_group;
    const int64_t expert_bytes = expert_weight_bytes(g, n);
    if (n.precision.precision != Precision::kFp32 && expert_bytes >= 0 && expert_bytes <= kSmallExpertBytes) {
      g.notes.push_back("experts of '" + n.name + "' kept FP32 at precision " + precision_name(n.precision.precision) +
                        ": " + std::to_string(expert_bytes / 1024) + " KB of expert weights, too small for it to pay");
      n.precision.precision = Precision::kFp32;
    }
    for (auto& [key, attr] : n.attrs)
      if (attr.g) assign(*attr.g, o, matched);
  }
}

}  // namespace

void assign_precision(Graph& g, const PassOptions& options) {
  SY_CHECK(options.weight_group >= 1 && options.weight_group <= 4096,
           "weight_group must be in 1..4096, got " + std::to_string(options.weight_group));
  std::set<std::string> matched;
  assign(g, options, matched);
  for (const auto& [name, precision] : options.precision_overrides)
    SY_CHECK(matched.count(name), "precision override: no node named '" + name + "' (switchyard inspect --nodes lists them)");
}

}  // namespace switchyard
