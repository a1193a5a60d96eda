// MoE fusion, part 1: the router. A TopK (or, for top-1 / Switch routing, an ArgMax) over scores that are
// a constant linear map of the tokens, seen through Cast / Identity, optionally through Softmax or Sigmoid,
// optionally shifted by a constant that only chooses (DeepSeek-V3's correction bias). How the chosen
// scores become routing weights (softmax over them, divided by their sum with or without an epsilon,
// left alone, scaled) is only guessed here from the ops that read them: moe_combine.cpp proves the guess.
#include <cmath>
#include <set>

#include "compiler/passes/moe_match.h"

namespace switchyard::moe_match {

namespace {

// k' if every reader of `v` (past Cast) is Slice(v, 0, k') on the last axis with constant bounds, else 0.
int64_t leading_slice(const GraphView& view, int v) {
  int64_t cut = 0;
  auto readers = view.consumers(v);
  if (readers.empty()) return 0;
  for (const Node* s : readers) {
    if (s->op_type != "Slice" || s->inputs.size() < 3) return 0;
    const Tensor *starts = view.constant(s->inputs[1]), *ends = view.constant(s->inputs[2]);
    const Tensor* axes = s->inputs.size() > 3 && s->inputs[3] >= 0 ? view.constant(s->inputs[3]) : nullptr;
    const Tensor* steps = s->inputs.size() > 4 && s->inputs[4] >= 0 ? view.constant(s->inputs[4]) : nullptr;
    if (!starts || !ends || starts->numel() != 1 || starts->as_int64(0) != 0 || (steps && steps->as_int64(0) != 1)) return 0;
    if (!axes || (axes->as_int64(0) != -1 && axes->as_int64(0) != 1)) return 0;
    const int64_t end = ends->as_int64(0);
    if (end <= 0 || (cut && cut != end)) return 0;
    cut = end;
  }
  return cut;
}

bool is_pass_through(const Node& n) { return n.op_type == "Cast" || n.op_type == "Identity"; }

// The single element of a constant, or NaN.
float scalar_of(const GraphView& view, int v) {
  const Tensor* t = view.constant(v);
  return t && t->numel() == 1 ? static_cast<float>(t->as_double(0)) : NAN;
}

bool last_axis(const GraphView& view, const Node& n, int data) {
  const int64_t axis = n.attr_int("axis", -1);
  if (axis == -1) return true;
  const auto& shape = view.graph().values[static_cast<size_t>(data)].shape;
  return shape ? axis == static_cast<int64_t>(shape->size()) - 1 : axis == 1;  // rank unknown: [T, E]
}

// Guesses the normalisation, scaling and epsilon from the ops within a few steps of the weights.
void guess_weighting(const GraphView& view, const std::vector<int>& weights, Router& r) {
  bool softmax = false, sum = false;
  std::set<int> seen;
  std::vector<std::pair<int, int>> frontier;  // value, depth
  for (int w : weights) frontier.emplace_back(w, 0);
  while (!frontier.empty()) {
    auto [v, depth] = frontier.back();
    frontier.pop_back();
    if (depth > 5 || !seen.insert(v).second) continue;
    for (const Node* c : view.consumers(v)) {
      if (c->op_type == "Softmax") softmax = true;
      if (c->op_type == "ReduceSum") {
        sum = true;
        // sum + epsilon: an Add of a constant right after the sum.
        for (const Node* a : view.consumers(c->outputs[0]))
          if (a->op_type == "Add")
            for (int in : a->inputs)
              if (float eps = scalar_of(view, in); !std::isnan(eps)) r.epsilon = eps;
      }
      if (c->op_type == "Mul")
        for (int in : c->inputs)
          if (float s = scalar_of(view, in); !std::isnan(s) && s != 0.f) r.scaling = s;
      if (c->op_type == "Shape" || c->op_type == "Size") continue;
      for (int out : c->outputs)
        if (out >= 0) frontier.emplace_back(out, depth + 1);
    }
  }
  if (softmax) r.normalize_guesses = {"softmax", "sum", "none"};
  else if (sum) r.normalize_guesses = {"sum", "none", "softmax"};
  else r.normalize_guesses = {"none", "sum", "softmax"};
}

// Phi-MoE's sparsemixer: k ArgMax rounds over the raw logits, each weighted by a softmax over the experts
// whose relative gap to the round's best is within 2 eps (a Greater against the constant 2 eps).
bool match_sparsemixer(const GraphView& view, Router& r) {
  int argmaxes = 0;
  float threshold = NAN;
  std::set<int> seen;
  std::vector<std::pair<int, int>> frontier{{r.gate.out_value, 0}};
  while (!frontier.empty()) {
    auto [v, depth] = frontier.back();
    frontier.pop_back();
    if (depth > 24 || !seen.insert(v).second) continue;
    for (const Node* c : view.consumers(v)) {
      if (c->op_type == "MatMul" || c->op_type == "Gemm") continue;  // the experts
      if (c->op_type == "ArgMax") ++argmaxes;
      if (c->op_type == "Greater" && c->inputs.size() == 2) threshold = scalar_of(view, c->inputs[1]);
      for (int out : c->outputs)
        if (out >= 0) frontier.emplace_back(out, depth + 1);
    }
  }
  if (argmaxes < 2 || std::isnan(threshold)) return false;
  r.scoring = "sparsemixer";
  r.k = argmaxes;
  r.sparsemixer_eps = threshold / 2;
  r.normalize_guesses = {"none"};
  return true;
}

// Capacity-limited routing (Switch Transformer, GShard): a running count of each expert's tokens (CumSum
// over the routing) compared with a capacity, so tokens past it are dropped. The fused operator has no
// capacity, and a proof on a few random tokens would not reach it: refuse by structure. "" if none.
// Grouped top-k (DeepSeek-V3): the final TopK reads the scores with every expert outside the best
// `topk_group` groups masked (Where(mask, -inf, scores)). The mask's ancestry holds the grouping: a Reshape
// to [.., n_group, E / n_group], a TopK(k = 2) + ReduceSum (or a ReduceMax) scoring each group, and the
// TopK over the group scores whose k is topk_group.
std::string match_groups(const GraphView& view, int mask, Router& r) {
  const int64_t E = r.experts();
  std::set<int> seen;
  std::vector<int> stack{mask};
  const Node* group_topk = nullptr;
  while (!stack.empty() && seen.size() < 128) {
    const int v = stack.back();
    stack.pop_back();
    if (!seen.insert(v).second) continue;
    const Node* p = view.producer(v);
    if (!p) continue;
    if (p->op_type == "Reshape" && p->inputs.size() == 2)
      if (const Tensor* s = view.constant(p->inputs[1]); s && s->numel() >= 2) {
        const int64_t g = s->as_int64(s->numel() - 2), per = s->as_int64(s->numel() - 1);
        if (g > 1 && per > 0 && g * per == E) r.n_group = g;
      }
    if (p->op_type == "TopK" && p->outputs.size() == 2) {
      if (v == p->outputs[1] && !group_topk) group_topk = p;  // picks the groups
      if (v == p->outputs[0]) r.group_top2 = scalar_of(view, p->inputs[1]) == 2.f;  // scores a group
    }
    for (int in : p->inputs)
      if (in >= 0) stack.push_back(in);
  }
  if (r.n_group <= 1 || !group_topk) return "the experts are masked before the top-k, but not by expert groups";
  const float k = scalar_of(view, group_topk->inputs[1]);
  if (!(k >= 1.f && k <= static_cast<float>(r.n_group))) return "the number of expert groups kept is not a constant";
  r.topk_group = static_cast<int64_t>(k);
  return "";
}

}  // namespace

std::string find_capacity_limit(const GraphView& view, int indices) {
  std::set<int> seen;
  std::vector<std::pair<int, int>> frontier{{indices, 0}};
  while (!frontier.empty()) {
    auto [v, depth] = frontier.back();
    frontier.pop_back();
    if (depth > 16 || !seen.insert(v).second) continue;
    for (const Node* c : view.consumers(v)) {
      if (c->op_type == "MatMul" || c->op_type == "Gemm" || c->op_type == "Shape" || c->op_type == "Size") continue;
      if (c->op_type == "CumSum") {  // a comparison within a few elementwise steps of the running count
        std::vector<std::pair<int, int>> after{{c->outputs[0], 0}};
        while (!after.empty()) {
          auto [u, d] = after.back();
          after.pop_back();
          for (const Node* cmp : view.consumers(u)) {
            if (cmp->op_type == "Less" || cmp->op_type == "LessOrEqual" || cmp->op_type == "Greater" ||
                cmp->op_type == "GreaterOrEqual")
              return "capacity-limited routing ('" + c->name + "' counts each expert's tokens, '" + cmp->name +
                     "' drops those past a capacity): not fused, the sparse operator has no capacity";
            if (d < 3 && (cmp->op_type == "Mul" || cmp->op_type == "Sub" || cmp->op_type == "Cast" || cmp->op_type == "Add"))
              after.emplace_back(cmp->outputs[0], d + 1);
          }
        }
      }
      for (int out : c->outputs)
        if (out >= 0) frontier.emplace_back(out, depth + 1);
    }
  }
  return "";
}

std::string match_router(const GraphView& view, size_t index, Router& r) {
  const Node& n = view.graph().nodes[index];
  r = Router{};
  r.node = index;
  int scores = -1;
  if (n.op_type == "TopK" && n.domain.empty()) {
    if (n.outputs.size() != 2 || n.inputs.size() < 2) return "TopK without its indices output";
    const Tensor* kt = view.constant(n.inputs[1]);
    if (n.attr_int("largest", 1) != 1) return "TopK selects the smallest scores";
    // A full sort (torch.sort: k from the scores' shape) whose indices are cut to the first k' chooses k'.
    const int64_t cut = leading_slice(view, n.outputs[1]);
    if (cut > 0) r.k = cut;
    else if (!kt || kt->numel() != 1) return "TopK's k is not a constant";
    else r.k = kt->as_int64(0);
    r.indices = n.outputs[1];
    scores = n.inputs[0];
  } else if (n.op_type == "ArgMax" && n.domain.empty()) {
    if (n.attr_int("select_last_index", 0) != 0) return "ArgMax picks the last of equal scores";
    r.k = 1;
    r.indices = n.outputs[0];
    scores = n.inputs[0];
  } else {
    return "not a TopK or ArgMax";
  }
  if (!last_axis(view, n, scores)) return "the experts are not chosen along the last axis";
  // Walk up from the scores to the linear map of the tokens.
  r.scoring = "none";
  int probs = -1;  // the scores after Softmax / Sigmoid (what an ArgMax router's weight is read from)
  int group_mask = -1;
  int v = scores;
  for (int steps = 0; steps < 12; ++steps) {
    const Node* p = view.producer(v);
    if (!p) return "the router scores are not computed from the tokens";
    if (is_pass_through(*p) || (p->op_type == "Reshape" && steps == 0)) {
      v = p->inputs[0];
      continue;
    }
    if (p->op_type == "Where" && p->inputs.size() == 3 && group_mask < 0 && r.scoring == "none") {
      // masked_fill(~mask, -inf): the scores go on through the branch that is not a constant.
      const int data = view.constant(p->inputs[2]) ? p->inputs[1] : p->inputs[2];
      if (!view.constant(data)) {
        group_mask = p->inputs[0];
        v = data;
        continue;
      }
    }
    if (r.scoring == "none" && (p->op_type == "Softmax" || p->op_type == "Sigmoid")) {
      if (p->op_type == "Softmax" && !last_axis(view, *p, p->inputs[0])) return "the router Softmax is not over the experts";
      r.scoring = p->op_type == "Softmax" ? "softmax" : "sigmoid";
      probs = p->outputs[0];
      v = p->inputs[0];
      continue;
    }
    if (p->op_type == "Add" && r.scoring == "none" && !r.selection_bias.defined()) {
      // scores + bias that only chooses: the other side goes on to a Softmax / Sigmoid.
      for (int side = 0; side < 2; ++side) {
        const Tensor* b = view.constant(p->inputs[static_cast<size_t>(side)]);
        const Node* above = view.producer(p->inputs[static_cast<size_t>(1 - side)]);
        while (above && is_pass_through(*above)) above = view.producer(above->inputs[0]);
        if (b && above && (above->op_type == "Sigmoid" || above->op_type == "Softmax")) {
          r.selection_bias = b->clone();
          v = p->inputs[static_cast<size_t>(1 - side)];
        }
      }
      if (r.selection_bias.defined()) continue;
    }
    // The linear map: MatMul / Gemm, or the Add of a bias after a MatMul.
    const Node* mm = p;
    if (p->op_type == "Add")
      for (int in : p->inputs)
        if (const Node* q = view.producer(in); q && q->op_type == "MatMul") mm = q;
    Linear lin;
    if (linear_from(view, *mm, lin) && !lin.per_expert_stack() && lin.out_value == v) {
      r.gate = lin;
      r.x = lin.in_value;
      break;
    }
    return "the router scores are not a constant linear map of the tokens (stopped at " + p->describe() + ")";
  }
  if (r.x < 0) return "the router scores are not a constant linear map of the tokens";
  if (group_mask >= 0)
    if (std::string why = match_groups(view, group_mask, r); !why.empty()) return why;
  if (r.k < 1 || r.k > r.experts()) return "k = " + std::to_string(r.k) + " for " + std::to_string(r.experts()) + " experts";
  if (r.selection_bias.defined() && r.selection_bias.numel() != r.experts()) return "the selection bias is not one per expert";
  // Where the weights come from: TopK's values, or (ArgMax) the ReduceMax over the same scores.
  std::vector<int> weights;
  if (n.op_type == "TopK") weights.push_back(n.outputs[0]);
  for (int s : {scores, probs})
    for (const Node* c : view.consumers(s))
      if (c->op_type == "ReduceMax") weights.push_back(c->outputs[0]);
  for (const Node* c : view.consumers(r.indices))
    if (c->op_type == "GatherElements") weights.push_back(c->outputs[0]);
  guess_weighting(view, weights, r);
  if (n.op_type == "ArgMax" && r.scoring == "none") match_sparsemixer(view, r);
  return "";
}

}  // namespace switchyard::moe_match
