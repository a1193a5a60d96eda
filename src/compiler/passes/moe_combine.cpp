// MoE fusion, part 4: combine, and the proof. However the k contributions return (ScatterElements,
// ScatterND with or without add, index_put, Concat then unsort, a dense weighted sum of every expert) and
// wherever the routing weight is applied (before the scatter or after it), the layer's result is a value
// that depends on every expert: the first such value or one a few single-consumer steps after it. Rather
// than read the scatter pattern, the candidates are checked by running the exported region and the fused
// node side by side on random tokens; the rewrite happens only if one agrees.
#include <cmath>
#include <random>

#include "compiler/passes/moe_match.h"

namespace switchyard::moe_match {

std::vector<int> output_candidates(const GraphView& view, const std::vector<int>& expert_outputs) {
  const Graph& g = view.graph();
  const size_t E = expert_outputs.size();
  std::vector<std::vector<bool>> mask(g.values.size());
  for (size_t e = 0; e < E; ++e) {
    auto& m = mask[static_cast<size_t>(expert_outputs[e])];
    m.resize(E, false);
    m[e] = true;
  }
  int first = -1;
  for (const Node& n : g.nodes) {
    if (n.op_type == "Shape" || n.op_type == "Size") continue;
    std::vector<bool> acc(E, false);
    bool any = false;
    for (int in : n.inputs)
      if (in >= 0 && !mask[static_cast<size_t>(in)].empty()) {
        any = true;
        for (size_t e = 0; e < E; ++e) acc[e] = acc[e] || mask[static_cast<size_t>(in)][e];
      }
    if (!any) continue;
    for (int out : n.outputs)
      if (out >= 0) {
        auto& m = mask[static_cast<size_t>(out)];
        if (m.empty()) m.assign(E, false);
        for (size_t e = 0; e < E; ++e) m[e] = m[e] || acc[e];
      }
    bool all = true;
    for (bool b : acc) all = all && b;
    if (all && n.outputs.size() == 1 && n.outputs[0] >= 0) {
      first = n.outputs[0];
      break;
    }
  }
  std::vector<int> out;
  for (int v = first; v >= 0 && out.size() < 10;) {
    out.push_back(v);
    std::vector<const Node*> readers;
    for (const Node* c : view.consumers(v))
      if (c->op_type != "Shape" && c->op_type != "Size") readers.push_back(c);
    v = readers.size() == 1 && readers[0]->outputs.size() == 1 ? readers[0]->outputs[0] : -1;
  }
  return out;
}

namespace {

bool agree(const Tensor& want, const Tensor& got) {
  if (want.shape() != got.shape() || want.dtype() != got.dtype()) return false;
  double scale = 1e-6, err = 0;
  for (int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(want.as_double(i)));
  for (int64_t i = 0; i < want.numel(); ++i) err = std::max(err, std::fabs(want.as_double(i) - got.as_double(i)));
  return err <= 1e-4 * scale;
}

}  // namespace

std::string prove_fusion(const Graph& g, const GraphView& view, int x, int64_t hidden, const std::vector<int>& candidates,
                         const std::vector<Weighting>& weightings,
                         const std::function<std::shared_ptr<Graph>(const Weighting&)>& build, size_t& chosen_weighting,
                         int& chosen_output, int& chosen_input, const std::vector<int64_t>& token_counts) {
  if (candidates.empty()) return "no value combines the results of all experts";
  // The region from x to as many candidates as depend on x alone. Exporters often size the combine
  // buffer from the shape of the tensor x was reshaped from ([B, S, H] -> [B*S, H]): then the region
  // starts there (`root`), and the fused node is fed by the same reshaping (`prefix`).
  std::string why;
  std::shared_ptr<Graph> region, prefix;
  int root = x;
  size_t count = 0;
  std::shared_ptr<Graph> try_prefix;
  for (int try_root = x, step = 0; step < 4; ++step) {
    for (size_t n = candidates.size(); n > count; --n) {  // the root that reaches the most candidates wins
      auto r = extract_subgraph(g, view, {try_root}, std::vector<int>(candidates.begin(), candidates.begin() + static_cast<long>(n)), why);
      if (!r) continue;
      region = r;
      prefix = try_prefix;
      root = try_root;
      count = n;
      break;
    }
    const Node* p = count == candidates.size() ? nullptr : view.producer(try_root);
    if (!p || p->inputs.empty() || view.constant(p->inputs[0])) break;
    std::string unused;
    try_root = p->inputs[0];
    try_prefix = extract_subgraph(g, view, {try_root}, {x}, unused);
    if (!try_prefix) break;
  }
  if (!region) return "no value combining the experts depends on the tokens alone" + (why.empty() ? "" : ": " + why);
  // Random tokens of the rank the region's input has: [T, H] or [1, T, H]. Where shape inference did
  // not give that rank, a tensor that was reshaped into x is tried as [1, T, H] first.
  const auto& xs = g.values[static_cast<size_t>(root)].shape;
  std::vector<size_t> ranks;
  if (xs && xs->size() >= 2) ranks = {xs->size()};
  else ranks = prefix ? std::vector<size_t>{3, 2} : std::vector<size_t>{2, 3};
  std::vector<Tensor> tokens;  // x as the fused node sees it
  std::vector<Tensor> roots;   // the region's input, when it is not x (the fused node may read it directly)
  std::vector<std::vector<Tensor>> expected;
  for (size_t attempt = 0; attempt < ranks.size(); ++attempt) {
    const size_t rank = ranks[attempt];
    std::mt19937 rng(12345);
    std::normal_distribution<float> normal(0.f, 1.f);
    tokens.clear();
    roots.clear();
    expected.clear();
    try {
      for (int64_t t : token_counts) {
        Shape s(rank, 1);
        s[rank - 2] = t;
        s[rank - 1] = hidden;
        Tensor in(DType::kFloat32, s);
        for (int64_t i = 0; i < in.numel(); ++i) in.data<float>()[i] = normal(rng);
        expected.push_back(run_subgraph(region, {in}));
        tokens.push_back(prefix ? run_subgraph(prefix, {in})[0] : in);
        if (prefix) roots.push_back(std::move(in));
      }
      break;
    } catch (const std::exception& e) {
      if (attempt + 1 == ranks.size()) return std::string("the exported region does not run on its own: ") + e.what();
    }
  }
  std::string last = "the fused operator does not reproduce the exported graph";
  for (size_t w = 0; w < weightings.size(); ++w) {
    // Fed x, or fed the region's input ([B, S, H] when x is its [B*S, H] reshape and the result keeps
    // the 3-D shape): the fused operator maps [..., H] to [..., H] either way.
    std::vector<bool> alive(count, true), alive_root(count, !roots.empty());
    try {
      auto fused = build(weightings[w]);
      for (size_t run = 0; run < tokens.size(); ++run) {
        const Tensor y = run_subgraph(fused, {tokens[run]})[0];
        for (size_t c = 0; c < count; ++c) alive[c] = alive[c] && agree(expected[run][c], y);
        if (roots.empty()) continue;
        const Tensor y_root = run_subgraph(fused, {roots[run]})[0];
        for (size_t c = 0; c < count; ++c) alive_root[c] = alive_root[c] && agree(expected[run][c], y_root);
      }
    } catch (const std::exception& e) {
      last = std::string("the fused operator fails: ") + e.what();
      continue;
    }
    for (size_t c = 0; c < count; ++c)
      if (alive[c] || alive_root[c]) {
        chosen_weighting = w;
        chosen_output = candidates[c];
        chosen_input = alive[c] ? x : root;
        return "";
      }
  }
  return last + " (checked at '" + view.value_name(candidates[0]) + "' and " + std::to_string(count - 1) +
         " value(s) after it)";
}

}  // namespace switchyard::moe_match
