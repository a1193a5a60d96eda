// Pass: replace an exported MoE routing subgraph by one ai.switchyard::MoE node.
//
// Exporters unroll `for e in experts: rows = where(idx == e); out.index_add_(rows, expert(x[rows]) * w)`
// into hundreds of nodes (NonZero / Gather / ScatterElements / Expand / one Gemm chain per expert), in
// shapes that differ between torch.jit.script, tracing and the Mixtral one_hot/where style. Rather
// than match each exporter's exact node sequence, the pass recognises the parts by their meaning:
//   router   TopK(Softmax|Sigmoid(MatMul|Gemm(x, Wr) [+ b])), weights = TopK values [-> Softmax | / Sum]
//   experts  Gather(x, rows_e) -> Linear -> act -> Linear [gated: * Linear] -> Mul(., routing weight)
//            with e read from Equal(topk_indices, e) or a one_hot row Gather(., e) above rows_e
//   output   the first value that depends (through values, not shapes) on every expert's result
// and then proves the replacement on the spot: the region between x and that output is extracted as
// its own graph and run side by side with the fused node on random tokens; only if they agree is the
// graph rewritten. Anything else stays unfused and the reason is recorded for `switchyard inspect`.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <set>

#include "graph/passes/pass_pipeline.h"
#include "moe/moe_layer.h"
#include "runtime/executor.h"

namespace switchyard {

namespace {

struct Linear {
  Tensor weight;  // [out, in] (nn.Linear layout)
  Tensor bias;    // [out] or undefined
  int out_value = -1;
  bool int8 = false;  // the model gives the weight as INT8 codes (Value::dequantized_int8)
};

struct Expert {
  int64_t index = -1;
  Linear fc1, fc2, fc3;
  bool gated = false;
  std::string activation;
  int scaled_value = -1;  // expert output times its routing weight
};

class MoeMatcher {
 public:
  explicit MoeMatcher(Graph& g) : g_(g) {
    producer_.assign(g.values.size(), -1);
    consumers_.assign(g.values.size(), {});
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      for (int out : g.nodes[n].outputs)
        if (out >= 0) producer_[static_cast<size_t>(out)] = static_cast<int>(n);
      for (int in : g.nodes[n].inputs)
        if (in >= 0) consumers_[static_cast<size_t>(in)].push_back(static_cast<int>(n));
    }
  }

  const Node* producer(int v) const { return v >= 0 && producer_[static_cast<size_t>(v)] >= 0 ? &g_.nodes[static_cast<size_t>(producer_[static_cast<size_t>(v)])] : nullptr; }
  const Tensor* constant(int v) const { return v >= 0 && g_.values[static_cast<size_t>(v)].constant ? &*g_.values[static_cast<size_t>(v)].constant : nullptr; }
  std::vector<const Node*> consumers(int v) const {
    std::vector<const Node*> out;
    for (int n : consumers_[static_cast<size_t>(v)]) out.push_back(&g_.nodes[static_cast<size_t>(n)]);
    return out;
  }
  int node_index(const Node* n) const { return static_cast<int>(n - g_.nodes.data()); }

  // Linear layer reading `in`: Gemm(in, W, b) or MatMul(in, W) [+ Add(b)], constant weights.
  bool linear_from(const Node& n, int in, Linear& out) const {
    if (n.op_type == "Gemm" && n.inputs.size() >= 2 && n.inputs[0] == in && n.attr_int("transA", 0) == 0 &&
        n.attr_float("alpha", 1.f) == 1.f) {
      const Tensor* w = constant(n.inputs[1]);
      if (!w || w->rank() != 2 || w->dtype() != DType::kFloat32) return false;
      out.weight = n.attr_int("transB", 0) ? w->clone() : transposed(*w);
      out.int8 = g_.values[static_cast<size_t>(n.inputs[1])].dequantized_int8;
      if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
        const Tensor* b = constant(n.inputs[2]);
        if (!b || b->numel() != out.weight.dim(0) || n.attr_float("beta", 1.f) != 1.f) return false;
        out.bias = b->clone();
      }
      out.out_value = n.outputs[0];
      return true;
    }
    if (n.op_type == "MatMul" && n.inputs[0] == in) {
      const Tensor* w = constant(n.inputs[1]);
      if (!w || w->rank() != 2 || w->dtype() != DType::kFloat32) return false;
      out.weight = transposed(*w);
      out.int8 = g_.values[static_cast<size_t>(n.inputs[1])].dequantized_int8;
      out.out_value = n.outputs[0];
      auto cs = consumers(out.out_value);
      if (cs.size() == 1 && cs[0]->op_type == "Add") {  // MatMul + Add(bias)
        int other = cs[0]->inputs[0] == out.out_value ? cs[0]->inputs[1] : cs[0]->inputs[0];
        const Tensor* b = constant(other);
        if (b && b->numel() == out.weight.dim(0)) {
          out.bias = b->clone();
          out.out_value = cs[0]->outputs[0];
        }
      }
      return true;
    }
    return false;
  }

  static Tensor transposed(const Tensor& w) {
    Tensor t(DType::kFloat32, {w.dim(1), w.dim(0)});
    for (int64_t r = 0; r < w.dim(0); ++r)
      for (int64_t c = 0; c < w.dim(1); ++c) t.data<float>()[c * w.dim(0) + r] = w.data<float>()[r * w.dim(1) + c];
    return t;
  }

  // The single consumer of v that is a linear layer, as out.
  bool only_linear_consumer(int v, Linear& out) const {
    auto cs = consumers(v);
    return cs.size() == 1 && linear_from(*cs[0], v, out);
  }

  // Activation applied to v: Relu(v), or silu as Mul(v, Sigmoid(v)). Returns its output or -1.
  int activation_of(int v, std::string& name) const {
    auto cs = consumers(v);
    for (const Node* c : cs) {
      if (c->op_type == "Relu" && cs.size() == 1) {
        name = "relu";
        return c->outputs[0];
      }
      if (c->op_type == "Sigmoid" && cs.size() == 2) {
        for (const Node* m : consumers(c->outputs[0]))
          if (m->op_type == "Mul" && ((m->inputs[0] == v && m->inputs[1] == c->outputs[0]) ||
                                      (m->inputs[1] == v && m->inputs[0] == c->outputs[0]))) {
            name = "silu";
            return m->outputs[0];
          }
      }
      if (c->op_type == "Gelu" && cs.size() == 1 && c->attr_string("approximate", "none") == "none") {
        name = "gelu";
        return c->outputs[0];
      }
    }
    return -1;
  }

  // Finds the expert index above the Gather's row indices: Equal(topk_idx, e) or Gather(onehot-derived, e).
  int64_t expert_index_above(int v, int topk_indices) const {
    std::set<int> seen;
    std::vector<int> stack{v};
    while (!stack.empty() && seen.size() < 64) {
      int cur = stack.back();
      stack.pop_back();
      if (!seen.insert(cur).second) continue;
      const Node* p = producer(cur);
      if (!p) continue;
      if (p->op_type == "Equal" && p->inputs.size() == 2) {
        for (int side = 0; side < 2; ++side) {
          const Tensor* c = constant(p->inputs[static_cast<size_t>(1 - side)]);
          if (p->inputs[static_cast<size_t>(side)] == topk_indices && c && c->numel() == 1) return c->as_int64(0);
        }
      }
      if (p->op_type == "Gather" && p->attr_int("axis", 0) == 0) {
        const Tensor* c = constant(p->inputs[1]);
        if (c && c->numel() == 1 && c->rank() == 0 && depends_on(p->inputs[0], topk_indices)) return c->as_int64(0);
      }
      if (p->op_type == "Shape" || p->op_type == "Size") continue;
      for (int in : p->inputs)
        if (in >= 0) stack.push_back(in);
    }
    return -1;
  }

  bool depends_on(int v, int ancestor) const {
    std::set<int> seen;
    std::vector<int> stack{v};
    while (!stack.empty()) {
      int cur = stack.back();
      stack.pop_back();
      if (cur == ancestor) return true;
      if (!seen.insert(cur).second) continue;
      if (const Node* p = producer(cur))
        for (int in : p->inputs)
          if (in >= 0) stack.push_back(in);
    }
    return false;
  }

  Graph& g_;
  std::vector<int> producer_;
  std::vector<std::vector<int>> consumers_;
};

// Builds a standalone graph computing `output` from `input` with the nodes of `g` (constants kept).
// Returns nullptr if the region reads anything else that is not constant.
std::shared_ptr<Graph> extract_region(const Graph& g, const MoeMatcher& m, int input, int output, std::string& why) {
  std::set<int> nodes;
  std::vector<int> stack{output};
  std::set<int> seen;
  while (!stack.empty()) {
    int v = stack.back();
    stack.pop_back();
    if (v == input || !seen.insert(v).second) continue;
    const Value& val = g.values[static_cast<size_t>(v)];
    if (val.constant) continue;
    const Node* p = m.producer(v);
    if (!p) {
      why = "the routed output also depends on '" + val.name + "', not only on the MoE input";
      return nullptr;
    }
    for (const auto& [k, a] : p->attrs)
      if (a.g) {
        why = "the routing region contains control flow (" + p->op_type + ")";
        return nullptr;
      }
    nodes.insert(m.node_index(p));
    for (int in : p->inputs)
      if (in >= 0) stack.push_back(in);
  }
  auto r = std::make_shared<Graph>();
  r->name = "moe_region";
  std::map<int, int> remap;
  auto map_value = [&](int v) {
    auto it = remap.find(v);
    if (it != remap.end()) return it->second;
    Value copy = g.values[static_cast<size_t>(v)];
    copy.from_outer_scope = false;
    int id = r->add_value(std::move(copy));
    remap[v] = id;
    return id;
  };
  r->inputs.push_back(map_value(input));
  for (int n : nodes) {  // std::set keeps the original (topological) order
    Node copy = g.nodes[static_cast<size_t>(n)];
    for (int& in : copy.inputs)
      if (in >= 0) in = map_value(in);
    for (int& out : copy.outputs)
      if (out >= 0) out = map_value(out);
    r->nodes.push_back(std::move(copy));
  }
  r->outputs.push_back(map_value(output));
  return r;
}

// Runs both graphs on random tokens; true if they agree (relative 1e-4 of the output's scale).
bool same_results(const std::shared_ptr<Graph>& region, const std::shared_ptr<Graph>& fused, int64_t hidden, std::string& why) {
  try {
    ThreadPool pool(1);
    auto plan_a = compile_plan(region), plan_b = compile_plan(fused);
    ExecState a(plan_a, &pool, nullptr), b(plan_b, &pool, nullptr);
    std::mt19937 rng(12345);
    std::normal_distribution<float> normal(0.f, 1.f);
    for (int64_t tokens : {int64_t{61}, int64_t{1}, int64_t{7}}) {
      Tensor x(DType::kFloat32, {tokens, hidden});
      for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = normal(rng);
      a.run({&x});
      b.run({&x});
      const Tensor& ya = *a.value(region->outputs[0]);
      const Tensor& yb = *b.value(fused->outputs[0]);
      if (ya.shape() != yb.shape()) {
        why = "fused output shape " + shape_str(yb.shape()) + " differs from the exported graph's " + shape_str(ya.shape());
        return false;
      }
      double scale = 1e-6, err = 0;
      for (int64_t i = 0; i < ya.numel(); ++i) scale = std::max(scale, std::fabs(ya.as_double(i)));
      for (int64_t i = 0; i < ya.numel(); ++i) err = std::max(err, std::fabs(ya.as_double(i) - yb.as_double(i)));
      if (!(err <= 1e-4 * scale)) {
        why = "the fused operator does not reproduce the exported graph (max difference " + std::to_string(err) + ")";
        return false;
      }
    }
    return true;
  } catch (const std::exception& e) {
    why = std::string("verification failed: ") + e.what();
    return false;
  }
}

Tensor stack_weights(const std::vector<Expert>& experts, const Linear Expert::*member, bool bias) {
  const Linear& first = experts[0].*member;
  const Tensor& t0 = bias ? first.bias : first.weight;
  Shape s{static_cast<int64_t>(experts.size())};
  s.insert(s.end(), t0.shape().begin(), t0.shape().end());
  Tensor out(DType::kFloat32, s);
  for (size_t e = 0; e < experts.size(); ++e) {
    const Tensor& t = bias ? (experts[e].*member).bias : (experts[e].*member).weight;
    std::memcpy(out.data<float>() + static_cast<int64_t>(e) * t0.numel(), t.raw(), t0.nbytes());
  }
  return out;
}

// Tries to fuse the MoE layer routed by TopK node `topk`; returns "" on success or the reason.
std::string try_fuse(Graph& g, size_t topk_index) {
  MoeMatcher m(g);
  const Node& topk = g.nodes[topk_index];
  const int values = topk.outputs[0], indices = topk.outputs[1];
  const Tensor* kt = topk.inputs.size() > 1 ? m.constant(topk.inputs[1]) : nullptr;
  if (!kt || kt->numel() != 1) return "TopK's k is not a constant";
  if (topk.attr_int("largest", 1) != 1) return "TopK selects the smallest scores";
  const int64_t k = kt->as_int64(0);
  // Router: scores = Softmax|Sigmoid(Linear(x)).
  const Node* score = m.producer(topk.inputs[0]);
  if (!score || (score->op_type != "Softmax" && score->op_type != "Sigmoid")) return "TopK does not read Softmax or Sigmoid router scores";
  const std::string scoring = score->op_type == "Softmax" ? "softmax" : "sigmoid";
  if (score->op_type == "Softmax" && score->opset < 13) return "router Softmax of opset < 13 (2-D coercion) is not fused";
  const Node* lin = m.producer(score->inputs[0]);
  int x = -1;
  Linear router;
  if (lin && lin->op_type == "Add") {  // MatMul + bias
    const Node* mm = m.producer(lin->inputs[0]);
    if (mm && mm->op_type == "MatMul") lin = mm;
  }
  if (lin && (lin->op_type == "Gemm" || lin->op_type == "MatMul") && m.linear_from(*lin, lin->inputs[0], router) &&
      router.out_value == score->inputs[0])
    x = lin->inputs[0];
  if (x < 0) return "router scores are not a linear layer of constant weights";
  const int64_t E = router.weight.dim(0), H = router.weight.dim(1);
  if (score->op_type == "Softmax" && score->attr_int("axis", -1) != -1 && score->attr_int("axis", -1) != 1)
    return "router Softmax is not over the expert axis";
  // Normalisation of the selected scores.
  std::string normalize = "none";
  for (const Node* c : m.consumers(values)) {
    if (c->op_type == "Softmax") normalize = "softmax";
    if (c->op_type == "ReduceSum" || c->op_type == "Div") normalize = "sum";
  }
  // Experts: Gather(x, rows) -> Linear -> act -> Linear [gated] -> Mul(routing weight).
  std::vector<Expert> experts;
  for (const Node* gather : m.consumers(x)) {
    if (gather->op_type != "Gather" || gather->attr_int("axis", 0) != 0) continue;
    Expert ex;
    const int a = gather->outputs[0];
    auto cs = m.consumers(a);
    int h = -1;
    if (cs.size() == 1 && m.linear_from(*cs[0], a, ex.fc1)) {
      h = m.activation_of(ex.fc1.out_value, ex.activation);
      if (h < 0) return "expert activation after '" + cs[0]->name + "' is not relu, silu or gelu";
    } else if (cs.size() == 2 && m.linear_from(*cs[0], a, ex.fc1) && m.linear_from(*cs[1], a, ex.fc3)) {
      // Gated: one branch goes through the activation, the other multiplies it.
      for (int attempt = 0; attempt < 2 && h < 0; ++attempt) {
        int act = m.activation_of(ex.fc1.out_value, ex.activation);
        if (act >= 0)
          for (const Node* mul : m.consumers(act))
            if (mul->op_type == "Mul" && (mul->inputs[0] == ex.fc3.out_value || mul->inputs[1] == ex.fc3.out_value))
              h = mul->outputs[0];
        if (h < 0) std::swap(ex.fc1, ex.fc3);
      }
      if (h < 0) return "gated expert after '" + gather->name + "' is not act(fc1 x) * fc3 x";
      ex.gated = true;
    } else {
      continue;  // a Gather of x that is not an expert input
    }
    if (!m.only_linear_consumer(h, ex.fc2)) return "expert output projection after '" + gather->name + "' not found";
    auto mul = m.consumers(ex.fc2.out_value);
    if (mul.size() != 1 || mul[0]->op_type != "Mul") return "expert output after '" + gather->name + "' is not scaled by its routing weight";
    ex.scaled_value = mul[0]->outputs[0];
    ex.index = m.expert_index_above(gather->inputs[1], indices);
    if (ex.index < 0) return "cannot tell which expert the rows of '" + gather->name + "' are routed to";
    experts.push_back(std::move(ex));
  }
  if (static_cast<int64_t>(experts.size()) != E)
    return "found " + std::to_string(experts.size()) + " expert blocks for a router of " + std::to_string(E) + " experts";
  std::sort(experts.begin(), experts.end(), [](const Expert& a, const Expert& b) { return a.index < b.index; });
  for (int64_t e = 0; e < E; ++e)
    if (experts[static_cast<size_t>(e)].index != e) return "expert indices are not 0.." + std::to_string(E - 1);
  const Expert& e0 = experts[0];
  for (const Expert& ex : experts) {
    if (ex.gated != e0.gated || ex.activation != e0.activation || ex.fc1.weight.shape() != e0.fc1.weight.shape() ||
        ex.fc2.weight.shape() != e0.fc2.weight.shape() || ex.fc1.bias.defined() != e0.fc1.bias.defined() ||
        ex.fc2.bias.defined() != e0.fc2.bias.defined() || (ex.gated && ex.fc3.bias.defined() != e0.fc3.bias.defined()))
      return "experts differ in shape, activation or biases";
  }
  if (e0.fc1.weight.dim(1) != H || e0.fc2.weight.dim(0) != H) return "expert widths do not match the router's hidden size";
  // Output: the first value that depends (through values, not shapes) on every expert's result.
  std::vector<std::vector<bool>> mask(g.values.size(), std::vector<bool>(static_cast<size_t>(E), false));
  for (const Expert& ex : experts) mask[static_cast<size_t>(ex.scaled_value)][static_cast<size_t>(ex.index)] = true;
  int output = -1;
  for (const Node& n : g.nodes) {
    if (n.op_type == "Shape" || n.op_type == "Size") continue;
    std::vector<bool> acc(static_cast<size_t>(E), false);
    for (int in : n.inputs)
      if (in >= 0)
        for (size_t e = 0; e < acc.size(); ++e) acc[e] = acc[e] || mask[static_cast<size_t>(in)][e];
    for (int out : n.outputs)
      if (out >= 0)
        for (size_t e = 0; e < acc.size(); ++e) mask[static_cast<size_t>(out)][e] = mask[static_cast<size_t>(out)][e] || acc[e];
    bool all = true;
    for (bool b : acc) all = all && b;
    if (all && n.outputs.size() == 1 && !n.outputs.empty()) {
      output = n.outputs[0];
      break;
    }
  }
  if (output < 0) return "no value combines the results of all experts";
  // Fused node, proved against the extracted region before the graph is touched.
  std::string why;
  auto region = extract_region(g, m, x, output, why);
  if (!region) return why;
  Node fused;
  fused.name = "moe_fused_" + topk.name;
  fused.op_type = "MoE";
  fused.domain = "ai.switchyard";
  fused.opset = 1;
  fused.attrs["k"] = Attribute::integer(k);
  fused.attrs["activation"] = Attribute::string(e0.activation);
  fused.attrs["scoring"] = Attribute::string(scoring);
  fused.attrs["normalize"] = Attribute::string(normalize);
  std::vector<std::pair<int, Tensor>> weights;  // input slot -> constant
  // Stacked expert projections whose every expert weight the model gives as INT8 codes stay marked so.
  auto all_int8 = [&](const Linear Expert::*member) {
    return std::all_of(experts.begin(), experts.end(), [&](const Expert& ex) { return (ex.*member).int8; });
  };
  const std::set<int> int8_slots = {all_int8(&Expert::fc1) ? 3 : -1, all_int8(&Expert::fc2) ? 5 : -1,
                                    e0.gated && all_int8(&Expert::fc3) ? 7 : -1};
  weights.emplace_back(1, router.weight);
  if (router.bias.defined()) weights.emplace_back(2, router.bias);
  weights.emplace_back(3, stack_weights(experts, &Expert::fc1, false));
  if (e0.fc1.bias.defined()) weights.emplace_back(4, stack_weights(experts, &Expert::fc1, true));
  weights.emplace_back(5, stack_weights(experts, &Expert::fc2, false));
  if (e0.fc2.bias.defined()) weights.emplace_back(6, stack_weights(experts, &Expert::fc2, true));
  if (e0.gated) {
    weights.emplace_back(7, stack_weights(experts, &Expert::fc3, false));
    if (e0.fc3.bias.defined()) weights.emplace_back(8, stack_weights(experts, &Expert::fc3, true));
  }
  auto build_inputs = [&](Graph& target, int x_id, const std::string& prefix) {
    std::vector<int> ins(9, -1);
    ins[0] = x_id;
    for (const auto& [slot, t] : weights) {
      Value v;
      v.name = prefix + "." + std::to_string(slot);
      v.dtype = DType::kFloat32;
      v.constant = t;
      v.dequantized_int8 = int8_slots.count(slot) != 0;
      ins[static_cast<size_t>(slot)] = target.add_value(std::move(v));
    }
    while (!ins.empty() && ins.back() < 0) ins.pop_back();
    return ins;
  };
  auto check = std::make_shared<Graph>();
  {
    Value xv = g.values[static_cast<size_t>(x)];
    xv.constant.reset();
    check->inputs.push_back(check->add_value(xv));
    Node n = fused;
    n.inputs = build_inputs(*check, check->inputs[0], "w");
    Value yv;
    yv.name = "y";
    yv.dtype = DType::kFloat32;
    n.outputs = {check->add_value(yv)};
    check->outputs = n.outputs;
    check->nodes.push_back(n);
  }
  if (!same_results(region, check, H, why)) return why;
  // Rewrite: the MoE node takes over `output` from its producer; dead-code elimination drops the rest.
  fused.inputs = build_inputs(g, x, fused.name);
  Value counts;
  counts.name = fused.name + ".expert_counts";
  counts.dtype = DType::kInt64;
  counts.shape = std::vector<Dim>{Dim{E, ""}};
  const int counts_id = g.add_value(std::move(counts));
  g.telemetry.push_back(counts_id);
  fused.outputs = {output, counts_id};
  int old = m.producer_[static_cast<size_t>(output)];
  for (int& out : g.nodes[static_cast<size_t>(old)].outputs)
    if (out == output) out = -1;
  g.nodes.insert(g.nodes.begin() + old + 1, std::move(fused));
  g.notes.push_back("fused MoE layer '" + g.nodes[static_cast<size_t>(old) + 1].name + "': experts=" + std::to_string(E) +
                    " k=" + std::to_string(k) + " hidden=" + std::to_string(H) + " inter=" +
                    std::to_string(e0.fc1.weight.dim(0)) + " activation=" + (e0.gated ? "swiglu(" + e0.activation + ")" : e0.activation) +
                    " routing=" + scoring + "-topk-" + normalize);
  return "";
}

}  // namespace

void fuse_moe_routing(Graph& g) {
  // Each successful fusion rewrites the graph, so look for the next TopK afresh.
  std::set<std::string> tried;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      if (n.op_type != "TopK" || !n.domain.empty() || n.outputs.size() != 2 || !tried.insert(n.name).second) continue;
      std::string why = try_fuse(g, i);
      if (why.empty()) {
        eliminate_dead_nodes(g);
        changed = true;
        break;
      }
      g.notes.push_back("TopK '" + n.name + "' not fused as MoE: " + why);
    }
  }
}

}  // namespace switchyard
