// MoE fusion, part 3: an expert's body, the per-row function fc2(act(fc1 r)) or, gated,
// fc2(act(fc1 r) * fc3 r). The linear layers are found by their constant weights; what lies between them
// is taken out of the graph and run on probe values, then compared with each activation the fused
// operator has: so Relu, Gelu, Erf- or Tanh-decomposed GELU, x * Sigmoid(x), a packed gate-up split by
// Split or Slice (in either order) are all recognised by what they compute, not by how they are written.
#include <cmath>
#include <cstring>
#include <functional>
#include <set>

#include "graph/passes/moe_match.h"

namespace switchyard::moe_match {

namespace {

float activate(const std::string& act, float x) {
  if (act == "relu") return x > 0 ? x : 0.f;
  if (act == "gelu") return 0.5f * x * (1.f + std::erf(x * 0.70710678f));
  if (act == "gelu_tanh") return 0.5f * x * (1.f + std::tanh(0.7978845608f * (x + 0.044715f * x * x * x)));
  if (act == "silu") return x / (1.f + std::exp(-x));
  return x;  // identity
}
const char* const kActivations[] = {"relu", "gelu", "gelu_tanh", "silu", "identity"};

// Probe inputs: [rows, width] values spread over [-6, 6], a second set differently ordered.
Tensor probe(int64_t rows, int64_t width, int seed) {
  Tensor t(DType::kFloat32, {rows, width});
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double phase = static_cast<double>((i * (seed ? 7919 : 104729)) % 1000) / 1000.0;
    p[i] = static_cast<float>(12.0 * phase - 6.0);
  }
  return t;
}

bool close(const Tensor& got, const std::function<float(int64_t row, int64_t col)>& want, int64_t width) {
  if (got.dtype() != DType::kFloat32 || got.numel() % width != 0) return false;
  const float* g = got.data<float>();
  for (int64_t i = 0; i < got.numel(); ++i) {
    const float w = want(i / width, i % width);
    if (!(std::fabs(g[i] - w) <= 1e-4f * std::max(1.f, std::fabs(w)))) return false;
  }
  return true;
}

// Rows [begin, begin + n) of a linear layer (a half of a packed gate-up projection).
Linear rows_of(const Linear& l, int64_t begin, int64_t n) {
  Linear out = l;
  out.weight = Tensor(DType::kFloat32, {n, l.in()});
  std::memcpy(out.weight.raw(), l.weight.data<float>() + begin * l.in(), static_cast<size_t>(n * l.in()) * sizeof(float));
  if (l.bias.defined()) {
    out.bias = Tensor(DType::kFloat32, {n});
    std::memcpy(out.bias.raw(), l.bias.data<float>() + begin, static_cast<size_t>(n) * sizeof(float));
  }
  return out;
}

// The output projection: the first linear layer after `start` (breadth-first) mapping `inter` or
// `inter / 2` features to `hidden`.
bool find_output_projection(const GraphView& view, const Linear& first, int64_t hidden, Linear& fc2) {
  std::vector<int> queue{first.out_value};
  std::set<int> seen;
  for (size_t i = 0; i < queue.size() && i < 64; ++i) {
    for (const Node* c : view.consumers(queue[i])) {
      if (c->op_type == "Shape" || c->op_type == "Size") continue;
      Linear l;
      if (linear_from(view, *c, l) && l.node != first.node && l.out() == hidden &&
          (l.in() == first.out() || 2 * l.in() == first.out())) {
        fc2 = l;
        return true;
      }
      for (int out : c->outputs)
        if (out >= 0 && seen.insert(out).second) queue.push_back(out);
    }
  }
  return false;
}

}  // namespace

std::string match_expert_body(const GraphView& view, const Linear& first, const std::vector<Linear>& siblings,
                              int64_t hidden, ExpertBody& body) {
  body = ExpertBody{};
  body.rows = first.in_value;
  body.first_node = first.node;
  const std::string where = "after '" + view.graph().nodes[static_cast<size_t>(first.node)].name + "'";
  if (!find_output_projection(view, first, hidden, body.fc2)) return "no output projection to the hidden size " + where;
  const int64_t I = body.fc2.in();
  const int u = body.fc2.in_value;
  std::string why;
  // Plain or packed: the activation reads only this layer's result.
  if (auto sub = extract_subgraph(view.graph(), view, {first.out_value}, {u}, why)) {
    const Tensor a = probe(3, first.out(), 0);
    Tensor got;
    try {
      got = run_subgraph(sub, {a})[0];
    } catch (const std::exception& e) {
      return "the activation " + where + " does not run on its own: " + e.what();
    }
    const float* pa = a.data<float>();
    const int64_t W = first.out();
    if (W == I) {
      for (const char* act : kActivations)
        if (close(got, [&](int64_t r, int64_t c) { return activate(act, pa[r * W + c]); }, I)) {
          body.fc1 = first;
          body.activation = act;
          body.output = body.fc2.out_value;
          return "";
        }
      return "the activation " + where + " is not relu, gelu, gelu_tanh, silu or identity";
    }
    for (int gate_half = 0; gate_half < 2; ++gate_half)
      for (const char* act : kActivations)
        if (close(got, [&](int64_t r, int64_t c) {
              const float g = pa[r * W + gate_half * I + c], v = pa[r * W + (1 - gate_half) * I + c];
              return activate(act, g) * v;
            }, I)) {
          body.fc1 = rows_of(first, gate_half * I, I);
          body.fc3 = rows_of(first, (1 - gate_half) * I, I);
          body.gated = true;
          body.activation = act;
          body.output = body.fc2.out_value;
          return "";
        }
    return "the packed gate-up activation " + where + " is not act(gate) * up";
  }
  // Gated with two projections: the other one is a sibling reading the same rows.
  for (const Linear& other : siblings) {
    if (other.node == first.node || other.out() != I || first.out() != I) continue;
    auto sub = extract_subgraph(view.graph(), view, {first.out_value, other.out_value}, {u}, why);
    if (!sub) continue;
    const Tensor a = probe(3, I, 0), b = probe(3, I, 1);
    Tensor got;
    try {
      got = run_subgraph(sub, {a, b})[0];
    } catch (const std::exception& e) {
      return "the gated activation " + where + " does not run on its own: " + e.what();
    }
    const float *pa = a.data<float>(), *pb = b.data<float>();
    for (int swap = 0; swap < 2; ++swap)
      for (const char* act : kActivations)
        if (close(got, [&](int64_t r, int64_t c) {
              const float x = pa[r * I + c], y = pb[r * I + c];
              return swap ? activate(act, y) * x : activate(act, x) * y;
            }, I)) {
          body.fc1 = swap ? other : first;
          body.fc3 = swap ? first : other;
          body.gated = true;
          body.activation = act;
          body.output = body.fc2.out_value;
          return "";
        }
    return "the gated activation " + where + " is not act(gate) * up";
  }
  return "the expert body " + where + " reads more than its rows (" + why + ")";
}

}  // namespace switchyard::moe_match
