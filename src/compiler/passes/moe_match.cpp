// What the parts of MoE fusion share: the graph view, linear layers, running a piece of the graph.
#include "compiler/passes/moe_match.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "kernels/gemm_kernel.h"
#include "runtime/executor.h"

namespace switchyard::moe_match {

GraphView::GraphView(const Graph& g) : g_(g), producer_(g.values.size(), -1), consumers_(g.values.size()) {
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    for (int out : g.nodes[n].outputs)
      if (out >= 0) producer_[static_cast<size_t>(out)] = static_cast<int>(n);
    for (int in : g.nodes[n].inputs)
      if (in >= 0) consumers_[static_cast<size_t>(in)].push_back(static_cast<int>(n));
  }
}

const Node* GraphView::producer(int v) const {
  const int p = producer_index(v);
  return p >= 0 ? &g_.nodes[static_cast<size_t>(p)] : nullptr;
}

const Tensor* GraphView::constant(int v) const {
  return v >= 0 && g_.values[static_cast<size_t>(v)].constant ? &*g_.values[static_cast<size_t>(v)].constant : nullptr;
}

std::vector<const Node*> GraphView::consumers(int v) const {
  std::vector<const Node*> out;
  if (v < 0) return out;
  for (int n : consumers_[static_cast<size_t>(v)]) out.push_back(&g_.nodes[static_cast<size_t>(n)]);
  return out;
}

bool GraphView::depends_on(int v, int ancestor) const {
  // Nodes are in topological order: nothing produced before the ancestor's producer can depend on it,
  // which keeps this walk local to the layer instead of the whole model above it.
  const int floor = producer_index(ancestor);
  std::set<int> seen;
  std::vector<int> stack{v};
  while (!stack.empty()) {
    const int cur = stack.back();
    stack.pop_back();
    if (cur == ancestor) return true;
    if (producer_index(cur) < floor || !seen.insert(cur).second) continue;
    if (const Node* p = producer(cur))
      for (int in : p->inputs)
        if (in >= 0) stack.push_back(in);
  }
  return false;
}

namespace {

// A bias as a 1-D float copy, whatever its rank ([N] or [1, N]).
Tensor as_vector(const Tensor& b) {
  Tensor t(DType::kFloat32, {b.numel()});
  std::memcpy(t.raw(), b.raw(), b.nbytes());
  return t;
}

Tensor transposed(const Tensor& w) {
  Tensor t(DType::kFloat32, {w.dim(1), w.dim(0)});
  transpose_matrix(w.data<float>(), w.dim(0), w.dim(1), t.data<float>());
  return t;
}

}  // namespace

namespace {

// [E, a, b] -> [E, b, a]
Tensor transposed_stack(const Tensor& w) {
  const int64_t E = w.dim(0), a = w.dim(1), b = w.dim(2);
  Tensor t(DType::kFloat32, {E, b, a});
  for (int64_t e = 0; e < E; ++e) transpose_matrix(w.data<float>() + e * a * b, a, b, t.data<float>() + e * a * b);
  return t;
}

// The constant stack and the ids of Gather(W, ids) (axis 0) or GatherND(W, ids[..., 1]).
const Tensor* gathered_stack(const GraphView& view, int v, int rank, int& ids) {
  const Node* g = view.producer(v);
  if (!g || g->inputs.size() != 2 || !g->domain.empty()) return nullptr;
  const bool gather = g->op_type == "Gather" && g->attr_int("axis", 0) == 0;
  const bool gather_nd = g->op_type == "GatherND" && g->attr_int("batch_dims", 0) == 0;
  const Tensor* w = view.constant(g->inputs[0]);
  if ((!gather && !gather_nd) || !w || w->rank() != rank || w->dtype() != DType::kFloat32 || view.constant(g->inputs[1]))
    return nullptr;
  ids = g->inputs[1];
  return w;
}

// The rows under a few Unsqueeze / Expand steps (x[:, None, None, :], x.expand(E, T, H)), or one Reshape
// right before the product; a Reshape further up makes the rows (x itself is often a reshape).
int rows_under_reshapes(const GraphView& view, int v) {
  for (int step = 0; step < 3; ++step) {
    const Node* u = view.producer(v);
    if (!u || u->inputs.empty() || (u->op_type != "Unsqueeze" && u->op_type != "Expand" && (u->op_type != "Reshape" || step > 0)))
      break;
    v = u->inputs[0];
  }
  return v;
}

// + b [E, 1, out] after a stacked product (+ b [out] after a plain one): the bias joins the layer.
void absorb_stacked_bias(const GraphView& view, Linear& l) {
  const int64_t E = l.stacked ? l.weight.dim(0) : 1;
  auto cs = view.consumers(l.out_value);
  if (cs.size() == 1 && cs[0]->op_type == "Add")
    for (int in : cs[0]->inputs)
      if (const Tensor* b = view.constant(in); b && b->dtype() == DType::kFloat32 && b->numel() == E * l.out()) {
        l.bias = l.stacked ? Tensor(DType::kFloat32, {E, l.out()}) : Tensor(DType::kFloat32, {l.out()});
        std::memcpy(l.bias.raw(), b->raw(), b->nbytes());
        l.out_value = cs[0]->outputs[0];
        return;
      }
}

// Every expert on every row: MatMul(x [.., T, in], W [E, in, out]) -> [E, T, out] [+ b], experts as one
// 3-D parameter (torch.matmul(x, W) / bmm(x.expand(E, T, H), W)).
bool stacked_linear_from(const GraphView& view, const Node& n, Linear& out) {
  if (n.op_type != "MatMul" || !n.domain.empty() || n.inputs.size() != 2 || view.constant(n.inputs[0])) return false;
  const Tensor* w = view.constant(n.inputs[1]);
  if (!w || w->rank() != 3 || w->dtype() != DType::kFloat32) return false;
  out = Linear{};
  out.stacked = true;
  out.in_value = rows_under_reshapes(view, n.inputs[0]);
  out.node = view.node_index(&n);
  out.weight = transposed_stack(*w);  // [E, out, in]
  out.out_value = n.outputs[0];
  absorb_stacked_bias(view, out);
  return true;
}

// Einsum(x, W) with a constant W that is a linear map of x's last label: "th,hi->ti" / "...h,ih->...i"
// (plain), or with an expert label only W has, leading the output: "th,ehi->eti" (stacked: every expert
// on every row), or applied to per-expert rows: "eti,eih->eth".
bool einsum_linear_from(const GraphView& view, const Node& n, Linear& out) {
  if (n.op_type != "Einsum" || !n.domain.empty() || n.inputs.size() != 2 || view.constant(n.inputs[0])) return false;
  const Tensor* w = view.constant(n.inputs[1]);
  if (!w || w->dtype() != DType::kFloat32 || (w->rank() != 2 && w->rank() != 3)) return false;
  std::string eq = n.attr_string("equation", "");
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  const size_t comma = eq.find(','), arrow = eq.find("->");
  if (comma == std::string::npos || arrow == std::string::npos || arrow < comma) return false;
  const std::string xs = eq.substr(0, comma), ws = eq.substr(comma + 1, arrow - comma - 1), ys = eq.substr(arrow + 2);
  if (xs.empty() || ws.size() != static_cast<size_t>(w->rank())) return false;
  const char c = xs.back();  // the contracted label: x's last
  const size_t wc = ws.find(c);
  if (wc == std::string::npos || ys.find(c) != std::string::npos) return false;
  std::string rest = ws;  // W's other labels: the output label o and, stacked, the expert label e
  rest.erase(wc, 1);
  const char o = rest.back(), e = rest.size() == 2 ? rest[0] : 0;
  // The expert label leads x already ("eti,eih->eth": per-expert rows) or only W has it ("th,ehi->eti").
  const bool batched = e && xs[0] == e;
  if (xs.find(o) != std::string::npos || (e && !batched && xs.find(e) != std::string::npos)) return false;
  std::string want = xs;  // x's labels with c replaced by o, the expert label in front
  want.back() = o;
  if (e && !batched) want = std::string(1, e) + want;
  if (ys != want) return false;
  // W as [E, out, in]: its axes in the order (e, o, c).
  const int64_t E = e ? w->dim(static_cast<int64_t>(ws.find(e))) : 1;
  const int64_t O = w->dim(static_cast<int64_t>(ws.find(o))), C = w->dim(static_cast<int64_t>(wc));
  int64_t stride[3] = {0, 0, 0};
  for (int64_t d = w->rank() - 1, s = 1; d >= 0; --d) {
    const char l = ws[static_cast<size_t>(d)];
    stride[l == e ? 0 : (l == o ? 1 : 2)] = s;
    s *= w->dim(d);
  }
  out = Linear{};
  out.stacked = e != 0;
  out.in_value = n.inputs[0];
  out.node = view.node_index(&n);
  out.weight = Tensor(DType::kFloat32, e ? Shape{E, O, C} : Shape{O, C});
  float* dst = out.weight.data<float>();
  const float* src = w->data<float>();
  for (int64_t ei = 0; ei < E; ++ei)
    for (int64_t oi = 0; oi < O; ++oi)
      for (int64_t ci = 0; ci < C; ++ci) *dst++ = src[ei * stride[0] + oi * stride[1] + ci * stride[2]];
  out.out_value = n.outputs[0];
  absorb_stacked_bias(view, out);
  return true;
}

// MatMul(Gather(W, ids), Unsqueeze(x, -1)) -> Squeeze, or MatMul(Unsqueeze(x, 1), Gather(W, ids)) -> Squeeze.
bool selected_linear_from(const GraphView& view, const Node& n, Linear& out) {
  if (n.op_type != "MatMul" || !n.domain.empty() || n.inputs.size() != 2) return false;
  for (int side = 0; side < 2; ++side) {
    int ids = -1;
    const Tensor* w = gathered_stack(view, n.inputs[static_cast<size_t>(side)], 3, ids);
    const Node* u = view.producer(n.inputs[static_cast<size_t>(1 - side)]);
    if (!w || !u || (u->op_type != "Unsqueeze" && u->op_type != "Reshape")) continue;
    auto cs = view.consumers(n.outputs[0]);
    if (cs.size() != 1 || (cs[0]->op_type != "Squeeze" && cs[0]->op_type != "Reshape")) continue;
    out = Linear{};
    out.ids = ids;
    out.in_value = rows_under_reshapes(view, n.inputs[static_cast<size_t>(1 - side)]);
    out.node = view.node_index(&n);
    // Weight first is [E, out, in] already: shared with the initializer, not copied (passes never write
    // into a Linear's tensors; a Mixtral-sized stack is 185 MB).
    out.weight = side == 0 ? *w : transposed_stack(*w);
    out.out_value = cs[0]->outputs[0];
    for (const Node* a : view.consumers(out.out_value))  // + b[ids]
      if (a->op_type == "Add" && view.consumers(out.out_value).size() == 1)
        for (int in : a->inputs) {
          int bias_ids = -1;
          const Tensor* b = gathered_stack(view, in, 2, bias_ids);
          if (b && b->dim(0) == w->dim(0) && b->dim(1) == out.out()) {
            out.bias = *b;
            out.out_value = a->outputs[0];
          }
        }
    return true;
  }
  return false;
}

}  // namespace

bool linear_from(const GraphView& view, const Node& n, Linear& out) {
  if (selected_linear_from(view, n, out) || stacked_linear_from(view, n, out) || einsum_linear_from(view, n, out))
    return true;
  const bool gemm = n.op_type == "Gemm" && n.inputs.size() >= 2 && n.attr_int("transA", 0) == 0 &&
                    n.attr_float("alpha", 1.f) == 1.f;
  if (!gemm && n.op_type != "MatMul") return false;
  if (!n.domain.empty() || n.inputs.size() < 2 || view.constant(n.inputs[0])) return false;
  const Tensor* w = view.constant(n.inputs[1]);
  if (!w || w->rank() != 2 || w->dtype() != DType::kFloat32) return false;
  out = Linear{};
  out.in_value = n.inputs[0];
  out.node = view.node_index(&n);
  out.int8 = view.graph().values[static_cast<size_t>(n.inputs[1])].dequantized_int8;
  out.weight = gemm && n.attr_int("transB", 0) ? w->clone() : transposed(*w);
  out.out_value = n.outputs[0];
  if (gemm) {
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
      const Tensor* b = view.constant(n.inputs[2]);
      if (!b || b->numel() != out.out() || b->dtype() != DType::kFloat32 || n.attr_float("beta", 1.f) != 1.f) return false;
      out.bias = as_vector(*b);
    }
    return true;
  }
  auto cs = view.consumers(out.out_value);
  if (cs.size() == 1 && cs[0]->op_type == "Add") {  // MatMul + Add(bias)
    const int other = cs[0]->inputs[0] == out.out_value ? cs[0]->inputs[1] : cs[0]->inputs[0];
    const Tensor* b = view.constant(other);
    if (b && b->numel() == out.out() && b->dtype() == DType::kFloat32) {
      out.bias = as_vector(*b);
      out.out_value = cs[0]->outputs[0];
    }
  }
  return true;
}

std::shared_ptr<Graph> extract_subgraph(const Graph& g, const GraphView& view, const std::vector<int>& inputs,
                                        const std::vector<int>& outputs, std::string& why) {
  const std::set<int> input_set(inputs.begin(), inputs.end());
  std::set<int> nodes, seen;
  std::vector<int> stack(outputs.begin(), outputs.end());
  while (!stack.empty()) {
    const int v = stack.back();
    stack.pop_back();
    if (input_set.count(v) || !seen.insert(v).second) continue;
    const Value& val = g.values[static_cast<size_t>(v)];
    if (val.constant) continue;
    const Node* p = view.producer(v);
    if (!p) {
      why = "it also depends on '" + val.name + "'";
      return nullptr;
    }
    for (const auto& [key, a] : p->attrs)
      if (a.g) {
        why = "it contains control flow (" + p->describe() + ")";
        return nullptr;
      }
    nodes.insert(view.node_index(p));
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
    const int id = r->add_value(std::move(copy));
    remap[v] = id;
    return id;
  };
  for (int in : inputs) r->inputs.push_back(map_value(in));
  for (int n : nodes) {  // std::set keeps the original (topological) order
    Node copy = g.nodes[static_cast<size_t>(n)];
    for (int& in : copy.inputs)
      if (in >= 0) in = map_value(in);
    for (int& out : copy.outputs)
      if (out >= 0) out = map_value(out);
    r->nodes.push_back(std::move(copy));
  }
  for (int out : outputs) r->outputs.push_back(map_value(out));
  return r;
}

void add_probe_node(Graph& g, Node n) {
  Value yv;
  yv.name = "y";
  yv.dtype = DType::kFloat32;
  n.outputs = {g.add_value(std::move(yv))};
  g.outputs = n.outputs;
  g.nodes.push_back(std::move(n));
}

std::vector<Tensor> run_subgraph(const std::shared_ptr<Graph>& graph, const std::vector<Tensor>& inputs) {
  SY_CHECK(graph, "internal: no subgraph to run");
  ThreadPool pool(1);
  ExecState state(compile_plan(graph), &pool, nullptr);
  // A proof or a probe must not take the machine: a hostile model's region fails here instead.
  state.set_memory_limit(size_t{2} << 30);
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : inputs) ptrs.push_back(&t);
  state.run(ptrs);
  std::vector<Tensor> out;
  for (int v : graph->outputs) out.push_back(state.value(v)->clone());
  return out;
}

}  // namespace switchyard::moe_match
