// Pass (last in the pipeline): the one place that decides each node's precision and weight group.
//
// Per node, in order of strength: a per-node override (CompileOptions::precision_overrides, by the
// node's name after fusion), what the model itself states (precision.from_model: INT8 / INT4 weights
// found by adopt_model_quantization, routers kept FP32 by keep_routers_fp32), the compile precision.
// The weight group is the model's where it quantized the weights, else the compile option. Subgraphs
// (If / Loop bodies) get the same rule. An override naming no node is an error.
#include <set>

#include "compiler/pass_pipeline.h"
#include "switchyard/error.h"

namespace switchyard {

namespace {

void assign(Graph& g, const PassOptions& o, std::set<std::string>& matched) {
  for (Node& n : g.nodes) {
    const auto it = o.precision_overrides.find(n.name);
    if (it != o.precision_overrides.end()) matched.insert(n.name);
    n.precision.precision = it != o.precision_overrides.end() ? it->second : n.precision.from_model.value_or(o.precision);
    n.precision.weight_group = n.precision.model_weight_group > 0 ? n.precision.model_weight_group : o.weight_group;
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
