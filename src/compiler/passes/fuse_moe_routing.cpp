// Pass: replace an exported MoE layer by one sparse ai.switchyard::MoE node.
//
// Users write MoE layers in many ways and exporters turn each into a different few hundred nodes, so the
// pass recognises the parts by what they compute (moe_match.h): the router (moe_router.cpp), the expert
// bodies and the rows they read (moe_dispatch.cpp, moe_expert_body.cpp), and the value holding the
// combined result, which is proved by running the exported region and the fused node side by side
// (moe_combine.cpp). Only a proved rewrite touches the graph; anything else stays unfused and the part
// that was not recognised, with the node that stopped it, is recorded for `switchyard inspect`.
#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "compiler/passes/moe_match.h"
#include "compiler/pass_pipeline.h"

namespace switchyard {

namespace {

using namespace moe_match;

Tensor stack(const std::vector<const Tensor*>& parts) {
  Shape s{static_cast<int64_t>(parts.size())};
  s.insert(s.end(), parts[0]->shape().begin(), parts[0]->shape().end());
  Tensor out(DType::kFloat32, s);
  for (size_t e = 0; e < parts.size(); ++e)
    std::memcpy(out.data<float>() + static_cast<int64_t>(e) * parts[0]->numel(), parts[e]->raw(), parts[0]->nbytes());
  return out;
}

Tensor stack_member(const std::vector<ExpertBody>& experts, const Linear ExpertBody::*member, bool bias) {
  std::vector<const Tensor*> parts;
  for (const ExpertBody& ex : experts) parts.push_back(bias ? &(ex.*member).bias : &(ex.*member).weight);
  return stack(parts);
}

bool same_form(const ExpertBody& a, const ExpertBody& b) {
  return a.gated == b.gated && a.activation == b.activation && a.swiglu_alpha == b.swiglu_alpha &&
         a.swiglu_beta == b.swiglu_beta && a.swiglu_limit == b.swiglu_limit && a.fc1.weight.shape() == b.fc1.weight.shape() &&
         a.fc2.weight.shape() == b.fc2.weight.shape() && a.fc1.bias.defined() == b.fc1.bias.defined() &&
         a.fc2.bias.defined() == b.fc2.bias.defined() && (!a.gated || a.fc3.bias.defined() == b.fc3.bias.defined());
}

std::string body_kind(const ExpertBody& e) { return e.gated ? "glu(" + e.activation + ")" : e.activation; }

// The sigmoid gate of a shared expert: a linear map of x to one value, through a Sigmoid.
bool find_shared_gate(const GraphView& view, const Router& r, int shared_rows, Tensor& gate) {
  std::vector<const Node*> readers = view.consumers(r.x);
  if (shared_rows != r.x)
    for (const Node* c : view.consumers(shared_rows)) readers.push_back(c);
  for (const Node* c : readers) {
    Linear l;
    if (!linear_from(view, *c, l) || l.per_expert_stack() || l.out() != 1 || l.bias.defined()) continue;
    for (const Node* s : view.consumers(l.out_value))
      if (s->op_type == "Sigmoid") {
        gate = Tensor(DType::kFloat32, {l.in()});
        std::memcpy(gate.raw(), l.weight.raw(), l.weight.nbytes());
        return true;
      }
  }
  return false;
}

// A body whose layers select one matrix per row from [E, ...] stacks is all E experts at once: split it.
std::vector<ExpertBody> split_selected(const ExpertBody& body) {
  // Views into the stacks, not copies: a Mixtral-sized layer would otherwise hold its weights once more.
  auto slice = [](const Linear& l, int64_t e) {
    Linear out = l;
    out.ids = -1;
    out.stacked = false;
    out.weight = l.weight.slice(e, 1).reshaped({l.out(), l.in()});
    if (l.bias.defined()) out.bias = l.bias.slice(e, 1).reshaped({l.out()});
    return out;
  };
  std::vector<ExpertBody> out;
  for (int64_t e = 0; e < body.fc1.weight.dim(0); ++e) {
    ExpertBody b = body;
    b.index = e;
    b.fc1 = slice(body.fc1, e);
    b.fc2 = slice(body.fc2, e);
    if (body.gated) b.fc3 = slice(body.fc3, e);
    out.push_back(std::move(b));
  }
  return out;
}

// Tries to fuse the MoE layer routed by node `index`; "" on success, else which part was not recognised.
std::string try_fuse(Graph& g, size_t index) {
  GraphView view(g);
  Router r;
  if (std::string why = match_router(view, index, r); !why.empty()) return "router: " + why;
  if (std::string why = find_capacity_limit(view, r.indices); !why.empty()) return "router (capacity): " + why;
  const int64_t E = r.experts(), H = r.hidden();
  // Experts: routed bodies reading selected rows, or (dense exports) E bodies reading x itself.
  Dispatch d = find_expert_bodies(view, r);
  // One body over [E, ...] weight stacks is all E experts: per row (gathered by id) or every expert on
  // every row (stacked, a dense export).
  const bool gathered_weights = d.routed.size() == 1 && d.routed[0].fc1.selected();
  const bool stacked_weights = d.direct.size() == 1 && d.direct[0].fc1.stacked;
  std::optional<ExpertBody> whole;  // that one body over [E, ...] stacks, before it was split
  for (std::vector<ExpertBody>* bodies : {&d.routed, &d.direct})
    if (bodies->size() == 1 && (*bodies)[0].fc1.per_expert_stack()) {
      if ((*bodies)[0].fc1.weight.dim(0) != E)
        return "expert bodies: stacks of " + std::to_string((*bodies)[0].fc1.weight.dim(0)) +
               " expert matrices for a router of " + std::to_string(E) + " experts";
      whole = (*bodies)[0];
      *bodies = split_selected(*whole);
    }
  std::vector<ExpertBody> experts;
  std::vector<ExpertBody> shared;
  bool dense = false;  // every expert ran on every token in the export
  if (static_cast<int64_t>(d.routed.size()) == E) {
    experts = std::move(d.routed);
    shared = std::move(d.direct);
  } else if (d.routed.empty() && static_cast<int64_t>(d.direct.size()) == E) {
    experts = std::move(d.direct);
    dense = true;
  } else {
    return "dispatch: found " + std::to_string(d.routed.size()) + " routed and " + std::to_string(d.direct.size()) +
           " dense expert bodies for a router of " + std::to_string(E) + " experts" +
           (d.problem.empty() ? "" : "; " + d.problem);
  }
  if (shared.size() > 1) return "dispatch: " + std::to_string(shared.size()) + " expert bodies read every token (one shared expert is supported)";
  // Expert ids from the graph where it gives all of them, else graph order (the proof checks either).
  std::set<int64_t> ids;
  for (const ExpertBody& ex : experts) ids.insert(ex.index);
  const bool ids_known = static_cast<int64_t>(ids.size()) == E && *ids.begin() == 0 && *ids.rbegin() == E - 1;
  std::sort(experts.begin(), experts.end(), [&](const ExpertBody& a, const ExpertBody& b) {
    return ids_known ? a.index < b.index : a.first_node < b.first_node;
  });
  for (size_t e = 0; e < experts.size(); ++e) {
    if (!same_form(experts[e], experts[0]))
      return "expert " + std::to_string(e) + "'s body: " + body_kind(experts[e]) + " " + shape_str(experts[e].fc1.weight.shape()) +
             " differs from expert 0's " + body_kind(experts[0]) + " " + shape_str(experts[0].fc1.weight.shape());
  }
  const ExpertBody& e0 = experts[0];
  if (!shared.empty() && (shared[0].gated != e0.gated || shared[0].activation != e0.activation ||
                          shared[0].fc1.bias.defined() || shared[0].fc2.bias.defined()))
    return "expert bodies: the shared expert (" + body_kind(shared[0]) + ") is not of the routed experts' form (" +
           body_kind(e0) + ", no biases)";
  Tensor shared_gate;
  if (!shared.empty()) find_shared_gate(view, r, shared[0].rows, shared_gate);
  // The fused node's constant inputs, by slot (see src/moe/moe.cpp).
  std::vector<std::pair<int, Tensor>> weights;
  weights.emplace_back(1, r.gate.weight);
  if (r.gate.bias.defined()) weights.emplace_back(2, r.gate.bias);
  // Split stacks still in expert order are the fused node's stacks as they are (no second copy).
  bool in_order = whole.has_value();
  for (size_t e = 0; e < experts.size(); ++e) in_order = in_order && experts[e].index == static_cast<int64_t>(e);
  auto member_stack = [&](const Linear ExpertBody::*member, bool bias) {
    if (in_order) return bias ? ((*whole).*member).bias : ((*whole).*member).weight;
    return stack_member(experts, member, bias);
  };
  weights.emplace_back(3, member_stack(&ExpertBody::fc1, false));
  if (e0.fc1.bias.defined()) weights.emplace_back(4, member_stack(&ExpertBody::fc1, true));
  weights.emplace_back(5, member_stack(&ExpertBody::fc2, false));
  if (e0.fc2.bias.defined()) weights.emplace_back(6, member_stack(&ExpertBody::fc2, true));
  if (e0.gated) {
    weights.emplace_back(7, member_stack(&ExpertBody::fc3, false));
    if (e0.fc3.bias.defined()) weights.emplace_back(8, member_stack(&ExpertBody::fc3, true));
  }
  if (r.selection_bias.defined()) weights.emplace_back(13, r.selection_bias);
  if (!shared.empty()) {
    weights.emplace_back(14, shared[0].fc1.weight);
    weights.emplace_back(15, shared[0].fc2.weight);
    if (shared[0].gated) weights.emplace_back(16, shared[0].fc3.weight);
    if (shared_gate.defined()) weights.emplace_back(17, shared_gate);
  }
  // Expert projections whose every weight the model gives as INT8 codes stay marked so.
  auto all_int8 = [&](const Linear ExpertBody::*member) {
    return std::all_of(experts.begin(), experts.end(), [&](const ExpertBody& ex) { return (ex.*member).int8; });
  };
  const std::set<int> int8_slots = {all_int8(&ExpertBody::fc1) ? 3 : -1, all_int8(&ExpertBody::fc2) ? 5 : -1,
                                    e0.gated && all_int8(&ExpertBody::fc3) ? 7 : -1};
  const int64_t inter = e0.fc1.out();
  // The stacks above are what the fused node reads: the per-expert copies go now (a Mixtral-sized layer
  // would otherwise hold its weights once more while the rewrite is being proved).
  for (ExpertBody& ex : experts) ex.fc1.weight = ex.fc2.weight = ex.fc3.weight = Tensor();
  whole.reset();
  const Node& router_node = g.nodes[index];
  Node fused;
  fused.name = "moe_fused_" + router_node.name;
  fused.op_type = "MoE";
  fused.domain = "ai.switchyard";
  fused.opset = 1;
  fused.attrs["k"] = Attribute::integer(r.k);
  fused.attrs["activation"] = Attribute::string(e0.activation);
  fused.attrs["scoring"] = Attribute::string(r.scoring);
  if (e0.swiglu_alpha != 1.f || e0.swiglu_beta != 0.f || e0.swiglu_limit != 0.f) {
    fused.attrs["swiglu_alpha"] = Attribute::real(e0.swiglu_alpha);
    fused.attrs["swiglu_beta"] = Attribute::real(e0.swiglu_beta);
    fused.attrs["swiglu_limit"] = Attribute::real(e0.swiglu_limit);
  }
  if (r.epsilon != 0.f) fused.attrs["normalize_epsilon"] = Attribute::real(r.epsilon);
  if (r.scoring == "sparsemixer") fused.attrs["sparsemixer_eps"] = Attribute::real(r.sparsemixer_eps);
  if (r.n_group > 1) {
    fused.attrs["n_group"] = Attribute::integer(r.n_group);
    fused.attrs["topk_group"] = Attribute::integer(r.topk_group);
    fused.attrs["group_score"] = Attribute::string(r.group_top2 ? "top2sum" : "max");
  }
  auto set_weighting = [&](Node& n, const Weighting& w) {
    n.attrs["normalize"] = Attribute::string(w.normalize);
    if (w.scaling != 1.f) n.attrs["routed_scaling_factor"] = Attribute::real(w.scaling);
    else n.attrs.erase("routed_scaling_factor");
  };
  auto bind_inputs = [&](Graph& target, int x_id, const std::string& prefix) {
    std::vector<int> ins(18, -1);
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
  auto build = [&](const Weighting& w) {
    auto check = std::make_shared<Graph>();
    Value xv = g.values[static_cast<size_t>(r.x)];
    xv.constant.reset();
    check->inputs.push_back(check->add_value(xv));
    Node n = fused;
    set_weighting(n, w);
    n.inputs = bind_inputs(*check, check->inputs[0], "w");
    add_probe_node(*check, std::move(n));
    return check;
  };
  std::vector<Weighting> weightings;
  for (const std::string& norm : r.normalize_guesses) weightings.push_back({norm, r.scaling});
  if (r.scaling != 1.f)
    for (const std::string& norm : r.normalize_guesses) weightings.push_back({norm, 1.f});
  std::vector<int> outputs;
  for (const ExpertBody& ex : experts) outputs.push_back(ex.output);
  for (const ExpertBody& ex : shared) outputs.push_back(ex.output);
  size_t chosen = 0;
  int output = -1, input = r.x;
  // The proof runs the exported region, which may copy every token's expert matrices (batched_mm
  // exports: k expert matrices per token, 69 MB for a Mixtral-sized layer): such regions run on a few
  // tokens at a time, within a budget (61 tokens of that layer would take 4 GB), at least one run with
  // two tokens so that rows cannot be mixed up unseen.
  int64_t expert_bytes = 0;
  for (const auto& [slot, t] : weights) expert_bytes += static_cast<int64_t>(t.nbytes());
  const int64_t per_token = gathered_weights ? r.k * expert_bytes / E : 0;
  const int64_t budget = std::max<int64_t>(int64_t{64} << 20, expert_bytes / 4);
  const int64_t per_run = per_token > 0 ? std::max<int64_t>(1, budget / per_token) : 61;
  std::vector<int64_t> token_counts{61, 1, 7};
  if (per_run < 61) {
    token_counts = {std::clamp<int64_t>(per_run, 2, 9), 1, std::min<int64_t>(per_run, 4)};
    for (int64_t total = token_counts[0] + 1 + token_counts[2]; total < 13; total += token_counts.back())
      token_counts.push_back(std::min<int64_t>(per_run, 3));
  }
  if (std::string why = prove_fusion(g, view, r.x, H, output_candidates(view, outputs), weightings, build, chosen, output,
                                     input, token_counts);
      !why.empty())
    return "combine: " + why;
  // Rewrite: the MoE node takes over `output` from its producer; dead-code elimination drops the rest.
  set_weighting(fused, weightings[chosen]);
  fused.inputs = bind_inputs(g, input, fused.name);
  Value counts;
  counts.name = fused.name + ".expert_counts";
  counts.dtype = DType::kInt64;
  counts.shape = std::vector<Dim>{Dim{E, ""}};
  const int counts_id = g.add_value(std::move(counts));
  g.telemetry.push_back(counts_id);
  fused.outputs = {output, counts_id};
  const int old = view.producer_index(output);
  for (int& out : g.nodes[static_cast<size_t>(old)].outputs)
    if (out == output) out = -1;
  const std::string note = "fused MoE layer '" + fused.name + "': experts=" + std::to_string(E) + " k=" +
                           std::to_string(r.k) + " hidden=" + std::to_string(H) + " inter=" +
                           std::to_string(inter) + " activation=" +
                           (e0.gated ? "glu(" + e0.activation + ")" : e0.activation) + " routing=" + r.scoring + "-" +
                           (router_node.op_type == "ArgMax" ? "argmax" : "topk") + "-" + weightings[chosen].normalize +
                           (weightings[chosen].scaling != 1.f ? " scaling=" + std::to_string(weightings[chosen].scaling) : "") +
                           (r.n_group > 1 ? " groups=" + std::to_string(r.n_group) + "/keep " + std::to_string(r.topk_group) : "") +
                           (r.selection_bias.defined() ? " +selection bias" : "") +
                           (e0.swiglu_limit != 0.f ? " clamped(limit " + std::to_string(e0.swiglu_limit) + ")" : "") +
                           (ids_known ? "" : " (experts in graph order)") + (shared.empty() ? "" : " +shared expert") +
                           (dense ? " (dense export made sparse)" : "") +
                           (gathered_weights ? " (per-token gathered expert weights made sparse)" : "") +
                           (stacked_weights ? " (3-D expert parameters)" : "");
  g.nodes.insert(g.nodes.begin() + old + 1, std::move(fused));
  g.notes.push_back(note);
  return "";
}

}  // namespace

void fuse_moe_routing(Graph& g) {
  // Each successful fusion rewrites the graph, so look for the next router afresh.
  std::set<std::string> tried;
  std::vector<std::pair<std::string, std::string>> failures;  // router node, note
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      if ((n.op_type != "TopK" && n.op_type != "ArgMax") || !n.domain.empty() || !tried.insert(n.name).second) continue;
      std::string why = try_fuse(g, i);
      if (why.empty()) {
        eliminate_dead_nodes(g);
        changed = true;
        break;
      }
      // An ArgMax that is no router (a classifier's prediction) is not worth a note.
      if (n.op_type == "ArgMax" && why.rfind("router:", 0) == 0) continue;
      failures.emplace_back(n.name, n.op_type + " '" + n.name + "' not fused as MoE: " + why);
    }
  }
  // A TopK that a later fusion swallowed (DeepSeek's group top-k, an argsort) is no MoE left unfused.
  std::set<std::string> remaining;
  for (const Node& n : g.nodes) remaining.insert(n.name);
  for (const auto& [name, note] : failures)
    if (remaining.count(name)) g.notes.push_back(note);
}

}  // namespace switchyard
