// MoE fusion, part 3: an expert's body, the per-row function fc2(act(fc1 r)) or, gated,
// fc2(act(fc1 r) * fc3 r). The linear layers are found by their constant weights; what lies between them
// is taken out of the graph and run on probe values, then compared with each activation the fused
// operator has: so Relu, Gelu, Erf- or Tanh-decomposed GELU, x * Sigmoid(x), a packed gate-up split by
// Split or Slice (in either order) are all recognised by what they compute, not by how they are written.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>

#include "compiler/passes/moe_match.h"

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

// Probe inputs: [rows, width] values spread over [-range, range], a second set differently ordered.
Tensor probe(int64_t rows, int64_t width, int seed, float range) {
  Tensor t(DType::kFloat32, {rows, width});
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double phase = static_cast<double>((i * (seed ? 7919 : 104729)) % 1000) / 1000.0;
    p[i] = static_cast<float>(range * (2.0 * phase - 1.0));
  }
  return t;
}

// A gated activation: act(g) * (u + beta), with GPT-OSS's clamps (g <= limit, |u| <= limit) and silu's
// slope alpha (g * sigmoid(alpha g)) when given.
struct GluForm {
  std::string act;
  float alpha = 1.f, beta = 0.f, limit = 0.f;
  float operator()(float g, float u) const {
    if (limit > 0) {
      g = std::min(g, limit);
      u = std::clamp(u, -limit, limit);
    }
    const float a = act == "silu" ? g / (1.f + std::exp(-alpha * g)) : activate(act, g);
    return a * (u + beta);
  }
};

// Every plain activation, then silu with the slopes, offsets and limits the subgraph's constants offer.
std::vector<GluForm> glu_forms(const std::vector<float>& constants) {
  std::vector<GluForm> out;
  for (const char* act : kActivations) out.push_back({act});
  std::vector<float> positive{1.f}, any{0.f}, limits{0.f};
  for (float c : constants) {
    if (c > 0 && c != 1.f) positive.push_back(c), limits.push_back(c);
    if (c != 0.f) any.push_back(c);
  }
  for (float a : positive)
    for (float b : any)
      for (float l : limits)
        if (out.size() < 512 && (a != 1.f || b != 0.f || l != 0.f)) out.push_back({"silu", a, b, l});
  return out;
}

// The scalar constants a subgraph uses (candidate slopes, offsets and limits), and the probe range that
// goes past every one of them.
std::vector<float> scalar_constants(const Graph& sub, float& range) {
  std::vector<float> out;
  range = 6.f;
  for (const Value& v : sub.values)
    if (v.constant && v.constant->numel() == 1 &&
        (v.constant->dtype() == DType::kFloat32 || v.constant->dtype() == DType::kFloat64)) {
      const float c = static_cast<float>(v.constant->as_double(0));
      if (std::isfinite(c) && std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
      if (std::isfinite(c)) range = std::max(range, 1.5f * std::fabs(c));
    }
  return out;
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

// Rows begin, begin + step, ... (n of them) of a linear layer: a half of a packed gate-up projection, or
// every other row of an interleaved one; of every matrix of a selected one.
Linear rows_of(const Linear& l, int64_t begin, int64_t step, int64_t n) {
  Linear out = l;
  const int64_t stacks = l.per_expert_stack() ? l.weight.dim(0) : 1, K = l.in(), O = l.out();
  out.weight = Tensor(DType::kFloat32, l.per_expert_stack() ? Shape{stacks, n, K} : Shape{n, K});
  if (l.bias.defined()) out.bias = Tensor(DType::kFloat32, l.per_expert_stack() ? Shape{stacks, n} : Shape{n});
  for (int64_t e = 0; e < stacks; ++e)
    for (int64_t r = 0; r < n; ++r) {
      std::memcpy(out.weight.data<float>() + (e * n + r) * K, l.weight.data<float>() + (e * O + begin + r * step) * K,
                  static_cast<size_t>(K) * sizeof(float));
      if (l.bias.defined()) out.bias.data<float>()[e * n + r] = l.bias.data<float>()[e * O + begin + r * step];
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
      if (linear_from(view, *c, l) && l.node != first.node && l.out() == hidden && l.kind() == first.kind() &&
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
  auto gated = [&](const Linear& gate, const Linear& up, const GluForm& f) {
    body.fc1 = gate;
    body.fc3 = up;
    body.gated = true;
    body.activation = f.act;
    body.swiglu_alpha = f.alpha;
    body.swiglu_beta = f.beta;
    body.swiglu_limit = f.limit;
    body.output = body.fc2.out_value;
    return std::string();
  };
  // Plain or packed: the activation reads only this layer's result.
  if (auto sub = extract_subgraph(view.graph(), view, {first.out_value}, {u}, why)) {
    float range = 6.f;
    const std::vector<float> constants = scalar_constants(*sub, range);
    const int64_t W = first.out();
    const Tensor a = probe(3, W, 0, range);
    Tensor got;
    try {
      got = run_subgraph(sub, {a})[0];
    } catch (const std::exception& e) {
      return "the activation " + where + " does not run on its own: " + e.what();
    }
    const float* pa = a.data<float>();
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
    // [gate | up], [up | gate], or interleaved gate0 up0 gate1 up1 ... (either first).
    struct Layout { int64_t gate, up, step; };
    const Layout layouts[] = {{0, I, 1}, {I, 0, 1}, {0, 1, 2}, {1, 0, 2}};
    for (const Layout& lay : layouts)
      for (const GluForm& f : glu_forms(constants))
        if (close(got, [&](int64_t r, int64_t c) {
              return f(pa[r * W + lay.gate + c * lay.step], pa[r * W + lay.up + c * lay.step]);
            }, I))
          return gated(rows_of(first, lay.gate, lay.step, I), rows_of(first, lay.up, lay.step, I), f);
    return "the packed gate-up activation " + where + " is not act(gate) * up (nor a clamped SwiGLU)";
  }
  // Gated with two projections: the other one is a sibling reading the same rows.
  for (const Linear& other : siblings) {
    if (other.node == first.node || other.out() != I || first.out() != I) continue;
    auto sub = extract_subgraph(view.graph(), view, {first.out_value, other.out_value}, {u}, why);
    if (!sub) continue;
    float range = 6.f;
    const std::vector<float> constants = scalar_constants(*sub, range);
    const Tensor a = probe(3, I, 0, range), b = probe(3, I, 1, range);
    Tensor got;
    try {
      got = run_subgraph(sub, {a, b})[0];
    } catch (const std::exception& e) {
      return "the gated activation " + where + " does not run on its own: " + e.what();
    }
    const float *pa = a.data<float>(), *pb = b.data<float>();
    for (int swap = 0; swap < 2; ++swap)
      for (const GluForm& f : glu_forms(constants))
        if (close(got, [&](int64_t r, int64_t c) {
              const float x = pa[r * I + c], y = pb[r * I + c];
              return swap ? f(y, x) : f(x, y);
            }, I))
          return swap ? gated(other, first, f) : gated(first, other, f);
    return "the gated activation " + where + " is not act(gate) * up";
  }
  return "the expert body " + where + " reads more than its rows (" + why + ")";
}

}  // namespace switchyard::moe_match
