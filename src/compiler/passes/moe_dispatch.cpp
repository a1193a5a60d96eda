// MoE fusion, part 2: dispatch. Which rows each expert reads and which expert it is. Exporters pick an
// expert's rows in many ways — Gather by the indices of NonZero(Equal(ids, e)) or of a one_hot row,
// GatherND after boolean-mask indexing, Compress, Slice of a copy sorted by expert, or not at all (dense
// exports run every expert on every token) — so any chain of row-picking ops from x counts as "rows of x",
// and every linear layer reading such rows starts a candidate expert body (moe_expert_body.cpp). The
// expert id is read from the constant the rows were selected with (Equal(ids, e), Gather(one_hot, e));
// where the graph does not say (sort-and-slice, dense), the fusion numbers experts in graph order and the
// proof in moe_combine.cpp decides.
#include <set>

#include "compiler/passes/moe_match.h"

namespace switchyard::moe_match {

namespace {

// Ops whose output holds whole rows of their first input (or the same rows reshaped).
bool picks_rows(const Node& n) {
  static const std::set<std::string> kOps = {"Gather", "GatherND", "Compress", "Slice",  "Identity",
                                             "Expand", "Unsqueeze", "Squeeze", "Reshape", "Flatten"};
  if (!n.domain.empty() || !kOps.count(n.op_type)) return false;
  if (n.op_type == "Gather" || n.op_type == "Compress") return n.attr_int("axis", 0) == 0 || n.attr_int("axis", 0) == 1;
  return true;
}

// The constant scalar e of Equal(ids, e) / Gather(one_hot(ids), e) above `rows`, -1 if none or several.
int64_t expert_index_above(const GraphView& view, int rows, int indices) {
  std::set<int64_t> found;
  std::set<int> seen;
  std::vector<int> stack{rows};
  while (!stack.empty() && seen.size() < 256) {
    const int cur = stack.back();
    stack.pop_back();
    if (!seen.insert(cur).second) continue;
    const Node* p = view.producer(cur);
    if (!p || p->op_type == "Shape" || p->op_type == "Size") continue;
    if ((p->op_type == "Equal" || p->op_type == "Gather") && p->inputs.size() == 2) {
      for (int side = 0; side < 2; ++side) {
        const Tensor* c = view.constant(p->inputs[static_cast<size_t>(1 - side)]);
        const int other = p->inputs[static_cast<size_t>(side)];
        if (c && c->numel() == 1 && c->rank() <= 1 && (p->op_type == "Equal" || side == 0) &&
            view.depends_on(other, indices)) {
          found.insert(c->as_int64(0));
          break;
        }
      }
    }
    for (int in : p->inputs)
      if (in >= 0) stack.push_back(in);
  }
  return found.size() == 1 ? *found.begin() : -1;
}

}  // namespace

Dispatch find_expert_bodies(const GraphView& view, const Router& router) {
  Dispatch d;
  // x, and what x was reshaped from ([B, S, H] before [B*S, H]): experts may read either.
  std::vector<int> rows{router.x};
  for (const Node* p = view.producer(router.x); p && rows.size() < 4 && !p->inputs.empty() && !view.constant(p->inputs[0]) &&
                                                (p->op_type == "Reshape" || p->op_type == "Flatten" || p->op_type == "Identity");
       p = view.producer(p->inputs[0]))
    rows.push_back(p->inputs[0]);
  const std::set<int> whole(rows.begin(), rows.end());
  std::set<int> seen(rows.begin(), rows.end());
  for (size_t i = 0; i < rows.size(); ++i)
    for (const Node* c : view.consumers(rows[i]))
      if (!c->inputs.empty() && c->inputs[0] == rows[i] && picks_rows(*c) && !c->outputs.empty() && c->outputs[0] >= 0 &&
          seen.insert(c->outputs[0]).second)
        rows.push_back(c->outputs[0]);
  std::set<int> used;  // first layers already in a body
  for (int r : rows) {
    std::vector<Linear> siblings;
    std::vector<const Node*> readers = view.consumers(r);
    for (const Node* c : view.consumers(r))  // a selected linear reads Unsqueeze(r)
      if (c->op_type == "Unsqueeze" || c->op_type == "Reshape" || c->op_type == "Expand")
        for (const Node* cc : view.consumers(c->outputs[0])) {
          readers.push_back(cc);
          if (cc->op_type == "Unsqueeze" || cc->op_type == "Reshape" || cc->op_type == "Expand")
            for (const Node* c3 : view.consumers(cc->outputs[0])) readers.push_back(c3);
        }
    for (const Node* c : readers) {
      Linear l;
      if (linear_from(view, *c, l) && l.in_value == r && l.in() == router.hidden() && l.node != router.gate.node)
        siblings.push_back(std::move(l));
    }
    for (const Linear& first : siblings) {
      if (used.count(first.node) || first.out() == 1) continue;  // 1 output: a gate (e.g. a shared expert's)
      ExpertBody body;
      std::string why = match_expert_body(view, first, siblings, router.hidden(), body);
      if (!why.empty()) {
        if (d.problem.empty()) d.problem = why;
        continue;
      }
      used.insert(body.fc1.node);
      if (body.gated) used.insert(body.fc3.node);
      if (whole.count(r) && !body.fc1.selected()) {
        d.direct.push_back(std::move(body));
      } else {
        body.index = expert_index_above(view, r, router.indices);
        d.routed.push_back(std::move(body));
      }
    }
  }
  // Experts inside If / Loop bodies (a scripted `if tok.numel() > 0:` around each expert).
  if (d.routed.empty() && d.direct.empty() && d.problem.empty())
    for (const Node& n : view.graph().nodes)
      for (const auto& [key, attr] : n.attrs)
        if (attr.g && d.problem.empty())
          for (const Value& v : attr.g->values)
            if (v.from_outer_scope && (v.name == view.value_name(router.x) || whole.count(view.graph().find(v.name)))) {
              d.problem = "the experts run inside the " + key + " of " + n.describe() +
                          " (per-expert control flow is not fused)";
              break;
            }
  if (d.routed.empty() && d.direct.empty() && d.problem.empty())
    for (int r : rows)
      for (const Node* c : view.consumers(r))
        if (c->op_type == "MatMul" && c->inputs.size() == 2)
          for (const Node* w = view.producer(c->inputs[1]); w; w = w->op_type == "Transpose" ? view.producer(w->inputs[0]) : nullptr)
            if (w->op_type == "Gather" && view.constant(w->inputs[0]) && view.constant(w->inputs[0])->rank() == 3 &&
                !view.constant(w->inputs[1]))
            d.problem = "'" + c->name + "' multiplies by a matrix picked from a stack of experts by a data-dependent "
                        "number (a traced loop over the experts the example input hit: such an export is valid only "
                        "while every expert is hit)";
  return d;
}

}  // namespace switchyard::moe_match
