// Pass: MoE routers that stayed in the graph (layers the fusion declined) keep FP32 at every precision.
//
// A router is a MatMul / Gemm whose result reaches a TopK (or com.microsoft.MoE's router_probs)
// through routing-score ops only (kOpRouterPath: Softmax, Sigmoid, Add of a bias, ...). Rounding its weights or input could change which experts a token goes
// to, which no precision setting should do; fused MoE nodes keep their router FP32 the same way. The
// node gets precision.from_model = fp32 (a per-node override still wins). Same rule as the router scope
// of `switchyard quantize` (tools/quantize.py).
#include <set>

#include "compiler/pass_pipeline.h"
#include "ops/kernel.h"

namespace switchyard {

void keep_routers_fp32(Graph& g) {
  const std::vector<int> producer = g.producers();
  std::set<int> routers;
  for (const Node& n : g.nodes) {
    // Routing scores end in a TopK, or in the router_probs input of ONNX Runtime's MoE operator.
    int scores = -1;
    if (n.op_type == "TopK" && n.domain.empty() && !n.inputs.empty()) scores = n.inputs[0];
    if (n.op_type == "MoE" && n.domain == "com.microsoft" && n.inputs.size() > 1) scores = n.inputs[1];
    if (scores < 0) continue;
    std::vector<int> stack = {scores};
    for (int steps = 0; !stack.empty() && steps < 64; ++steps) {
      const int v = stack.back();
      stack.pop_back();
      const int p = v >= 0 ? producer[static_cast<size_t>(v)] : -1;
      if (p < 0) continue;
      const Node& src = g.nodes[static_cast<size_t>(p)];
      if (!src.domain.empty()) continue;
      if (src.op_type == "MatMul" || src.op_type == "Gemm")
        routers.insert(p);
      else if (op_has(src, kOpRouterPath) && !src.inputs.empty())
        stack.push_back(src.inputs[0]);
    }
  }
  for (int r : routers) {
    g.nodes[static_cast<size_t>(r)].precision.from_model = Precision::kFp32;
    g.notes.push_back("router '" + g.nodes[static_cast<size_t>(r)].name + "' (not fused) stays FP32 at every precision");
  }
}

}  // namespace switchyard
