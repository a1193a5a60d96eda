// Pass: per-block image MoE. The export that is easiest to write runs every expert CNN over the whole
// image and keeps, per block, the experts a per-block weight map selects:
//
//   out = sum_e  M_e * expert_e(x),   M_e = nearest-upsample(G[:, e]) by the block size (x the head's upscale)
//
// The pass recognises that sum by meaning — an Add tree whose terms multiply a stack of stride-1 "same"
// convolutions of one image x (activations between, optional DepthToSpace head) by one channel of an
// upsampled per-block tensor G — and replaces it by one ai.switchyard::SpatialMoE node with k = 0 (the
// gate input is G itself): each expert then runs only where its weight is non-zero, with the halo its
// convolutions need. The rewrite is proved by running the exported region and the fused node on a
// random image and weight map; anything not recognised is left as it is, with a one-line note.
//
// SpatialMoE nodes (fused here or given by the model) also get their telemetry outputs: tiles per
// expert and the expert map.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include "compiler/passes/moe_match.h"
#include "compiler/pass_pipeline.h"
#include "ops/resize.h"

namespace switchyard {
namespace {

using namespace moe_match;

struct ConvLayer {
  const Node* node = nullptr;
  const Tensor* weight = nullptr;  // [Cout, Cin, kh, kw]
  const Tensor* bias = nullptr;    // [Cout] or null
};

struct ExpertStack {
  int x = -1;                     // the image every layer chain starts from
  std::vector<ConvLayer> layers;  // first to last
  std::string activation;         // between the layers: relu | identity
  int64_t upscale = 1;
  std::string mode = "CRD";
};

struct MaskSource {
  int gate = -1;         // the per-block tensor [N, E, Hb, Wb]
  int64_t expert = -1;   // the channel of G this mask is
  int64_t factor = 1;    // output pixels per block along each spatial axis
};

bool all_equal(const std::vector<int64_t>& v, int64_t value) {
  return std::all_of(v.begin(), v.end(), [&](int64_t a) { return a == value; });
}

// A stride-1, dilation-1, ungrouped 2-D Conv with constant weights and "same" zero padding.
std::string as_same_conv(const GraphView& view, const Node& n, ConvLayer& out) {
  if (n.op_type != "Conv" || !n.domain.empty() || n.inputs.size() < 2) return "not a Conv";
  const Tensor* w = view.constant(n.inputs[1]);
  if (!w || w->dtype() != DType::kFloat32 || w->rank() != 4) return n.describe() + " has no constant 2-D float weight";
  const Tensor* b = n.inputs.size() > 2 && n.inputs[2] >= 0 ? view.constant(n.inputs[2]) : nullptr;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0 && (!b || b->numel() != w->dim(0))) return n.describe() + " has a non-constant bias";
  const int64_t kh = w->dim(2), kw = w->dim(3);
  if (kh % 2 == 0 || kw % 2 == 0) return n.describe() + " has an even kernel";
  if (n.attr_int("group", 1) != 1) return n.describe() + " is grouped";
  if (!all_equal(n.attr_ints("strides", {1, 1}), 1) || !all_equal(n.attr_ints("dilations", {1, 1}), 1))
    return n.describe() + " is strided or dilated";
  const std::string pad = n.attr_string("auto_pad", "NOTSET");
  if (pad == "NOTSET") {
    const std::vector<int64_t> pads = n.attr_ints("pads", {0, 0, 0, 0});
    if (pads != std::vector<int64_t>{kh / 2, kw / 2, kh / 2, kw / 2}) return n.describe() + " is not padded to keep the size";
  } else if (pad != "SAME_UPPER" && pad != "SAME_LOWER") {
    return n.describe() + " is not padded to keep the size";
  }
  out = {&n, w, b};
  return "";
}

// value v = [DepthToSpace] Conv (act Conv)* (x), each intermediate read only by the next step.
std::string match_expert_stack(const GraphView& view, int v, ExpertStack& s) {
  const Node* p = view.producer(v);
  if (p && p->op_type == "DepthToSpace" && p->domain.empty()) {
    s.upscale = p->attr_int("blocksize", 1);
    s.mode = p->attr_string("mode", "DCR");
    if (view.consumers(p->inputs[0]).size() != 1) return "the expert's convolution output is read elsewhere";
    p = view.producer(p->inputs[0]);
  }
  std::string act;
  while (true) {
    ConvLayer layer;
    if (!p) return "the expert output does not come from a convolution";
    if (std::string why = as_same_conv(view, *p, layer); !why.empty()) return why;
    s.layers.insert(s.layers.begin(), layer);
    const int in = p->inputs[0];
    const Node* q = view.producer(in);
    if (q && q->op_type == "Relu" && q->domain.empty()) {
      if (!act.empty() && act != "relu") return "the expert's activations differ";
      act = "relu";
    } else if (q && q->op_type == "Conv" && q->domain.empty()) {
      if (!act.empty() && act != "identity") return "the expert's activations differ";
      act = "identity";
    } else {
      s.x = in;
      break;
    }
    if (view.consumers(in).size() != 1) return "an expert's intermediate result is read elsewhere";
    if (q->op_type == "Relu") {
      if (view.consumers(q->inputs[0]).size() != 1) return "an expert's intermediate result is read elsewhere";
      p = view.producer(q->inputs[0]);
    } else {
      p = q;
    }
  }
  s.activation = act.empty() ? "relu" : act;  // one layer: no activation in between
  for (size_t i = 1; i < s.layers.size(); ++i)
    if (s.layers[i].weight->dim(1) != s.layers[i - 1].weight->dim(0)) return "the expert's layer channels do not chain";
  return "";
}

// Proves that Resize node n repeats each input element factor x factor times over the last two axes.
std::string nearest_block_factor(const GraphView& view, const Node& n, int64_t& factor) {
  if (n.attr_string("mode", "nearest") != "nearest") return n.describe() + " is not a nearest-neighbour resize";
  const bool legacy = n.op_type == "Upsample" || n.opset < 11;
  const int scales_input = legacy ? 1 : 2;
  if (!legacy && n.inputs.size() > 3 && n.inputs[3] >= 0) return n.describe() + " resizes to sizes, not by scales";
  const Tensor* sc = static_cast<int>(n.inputs.size()) > scales_input ? view.constant(n.inputs[static_cast<size_t>(scales_input)]) : nullptr;
  if (!sc || sc->dtype() != DType::kFloat32 || sc->numel() != 4) return n.describe() + " has no constant 4-D scales";
  const float* s = sc->data<float>();
  const float f = s[2];
  if (s[0] != 1.f || s[1] != 1.f || s[3] != f || f < 1.f || f != std::floor(f)) return n.describe() + " does not scale H and W by one integer";
  factor = static_cast<int64_t>(f);
  const std::string coord = legacy ? "asymmetric" : n.attr_string("coordinate_transformation_mode", "half_pixel");
  const std::string nearest = legacy ? "floor" : n.attr_string("nearest_mode", "round_prefer_floor");
  if (!resize_mode_known(coord)) return n.describe() + " uses coordinate mode " + coord;
  for (int64_t x = 0; x < 3 * factor; ++x)
    if (resize_nearest(nearest, resize_source(coord, x, f, 3, 3 * factor), 3) != x / factor)
      return n.describe() + " (" + coord + ", " + nearest + ") does not repeat each element over its block";
  return "";
}

// m = channel e of a nearest upsampling of G, in either order (Slice then Resize, or Resize then Slice).
std::string match_mask(const GraphView& view, int m, MaskSource& out) {
  int v = m;
  for (int steps = 0; steps < 4; ++steps) {
    const Node* p = view.producer(v);
    if (!p || !p->domain.empty()) break;
    if (p->op_type == "Resize" || p->op_type == "Upsample") {
      int64_t f = 1;
      if (std::string why = nearest_block_factor(view, *p, f); !why.empty()) return why;
      out.factor *= f;
      v = p->inputs[0];
    } else if (p->op_type == "Slice" && p->inputs.size() >= 4 && out.expert < 0) {
      const Tensor* starts = view.constant(p->inputs[1]);
      const Tensor* ends = view.constant(p->inputs[2]);
      const Tensor* axes = view.constant(p->inputs[3]);
      const Tensor* step = p->inputs.size() > 4 && p->inputs[4] >= 0 ? view.constant(p->inputs[4]) : nullptr;
      if (!starts || !ends || !axes || starts->numel() != 1 || ends->numel() != 1 || axes->numel() != 1 ||
          (p->inputs.size() > 4 && p->inputs[4] >= 0 && (!step || step->numel() != 1)))
        return p->describe() + " is not a constant one-axis slice";
      auto scalar = [](const Tensor* t) { return t->dtype() == DType::kInt64 ? t->data<int64_t>()[0] : int64_t{t->data<int32_t>()[0]}; };
      if (scalar(axes) != 1 || (step && scalar(step) != 1) || scalar(starts) < 0 || scalar(ends) != scalar(starts) + 1)
        return p->describe() + " does not pick one channel";
      out.expert = scalar(starts);
      v = p->inputs[0];
    } else {
      break;
    }
  }
  if (out.expert < 0) return "the mask is not one channel (Slice) of a per-block weight map";
  if (out.factor == 1) {
    const Node* q = view.producer(v);
    return "the mask is not a nearest-neighbour Resize of a per-block weight map (it comes from " +
           (q ? q->describe() : std::string("an input")) + ")";
  }
  out.gate = v;
  return "";
}

// The terms of the Add tree rooted at v (Adds read only inside the tree).
void add_terms(const GraphView& view, int v, bool root, std::vector<int>& terms, std::set<const Node*>& adds) {
  const Node* p = view.producer(v);
  if (p && p->op_type == "Add" && p->domain.empty() && (root || view.consumers(v).size() == 1)) {
    adds.insert(p);
    add_terms(view, p->inputs[0], false, terms, adds);
    add_terms(view, p->inputs[1], false, terms, adds);
    return;
  }
  terms.push_back(v);
}

Tensor stack_tensors(const std::vector<const Tensor*>& parts, const Shape& each) {
  Shape s{static_cast<int64_t>(parts.size())};
  s.insert(s.end(), each.begin(), each.end());
  Tensor out(DType::kFloat32, s);
  int64_t n = 1;
  for (int64_t d : each) n *= d;
  for (size_t e = 0; e < parts.size(); ++e) {
    float* dst = out.data<float>() + static_cast<int64_t>(e) * n;
    if (parts[e]) std::memcpy(dst, parts[e]->raw(), static_cast<size_t>(n) * 4);
    else std::memset(dst, 0, static_cast<size_t>(n) * 4);
  }
  return out;
}

int add_telemetry(Graph& g, const std::string& name, std::vector<Dim> shape) {
  Value v;
  v.name = name;
  v.dtype = DType::kInt64;
  v.shape = std::move(shape);
  const int id = g.add_value(std::move(v));
  g.telemetry.push_back(id);
  return id;
}

// "" after rewriting the Add tree rooted at `root`, or why not ("-" when it is no spatial MoE candidate).
bool same_structure(const ExpertStack& a, const ExpertStack& b) {
  if (a.layers.size() != b.layers.size() || a.activation != b.activation || a.upscale != b.upscale || a.mode != b.mode)
    return false;
  for (size_t l = 0; l < a.layers.size(); ++l)
    if (a.layers[l].weight->shape() != b.layers[l].weight->shape()) return false;
  return true;
}

struct Term {
  ExpertStack stack;
  MaskSource mask;
};

// Form 1: an Add tree of Mul(mask_e, expert_e(x)) terms (either operand order).
std::string sum_terms(const GraphView& view, int root, std::vector<Term>& found, int& conv_terms, size_t& wanted) {
  std::vector<int> terms;
  std::set<const Node*> adds;
  add_terms(view, root, true, terms, adds);
  if (terms.size() < 2) return "-";
  wanted = terms.size();
  std::string problem;
  for (int t : terms) {
    const Node* mul = view.producer(t);
    if (!mul || mul->op_type != "Mul" || !mul->domain.empty() || mul->inputs.size() != 2) return "-";
    Term term;
    std::string why_stack, why_mask;
    bool ok = false;
    for (int side = 0; side < 2 && !ok; ++side) {
      term = Term{};
      why_stack = match_expert_stack(view, mul->inputs[static_cast<size_t>(side)], term.stack);
      if (why_stack.empty()) {
        ++conv_terms;
        why_mask = match_mask(view, mul->inputs[static_cast<size_t>(1 - side)], term.mask);
        ok = why_mask.empty();
      }
    }
    if (!ok && problem.empty()) problem = !why_mask.empty() ? why_mask : why_stack;
    if (ok) found.push_back(term);
  }
  return problem;
}

int64_t single_axis(const GraphView& view, const Node& n) {
  std::vector<int64_t> axes = n.attr_ints("axes");
  if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
    const Tensor* a = view.constant(n.inputs[1]);
    if (!a || a->dtype() != DType::kInt64) return -99;
    axes.assign(a->data<int64_t>(), a->data<int64_t>() + a->numel());
  }
  return axes.size() == 1 ? axes[0] : -99;
}

// Form 2: ReduceSum over axis 1 of Mul(Concat_e(Unsqueeze(expert_e(x), 1)), Unsqueeze(M, 2)), M the upsampled
// weight map with the experts along axis 1 in Concat order (torch.stack(...) * mask.unsqueeze(2)).sum(1).
std::string stacked_terms(const GraphView& view, int root, std::vector<Term>& found, int& conv_terms, size_t& wanted) {
  const Node* sum = view.producer(root);
  if (!sum || sum->op_type != "ReduceSum" || !sum->domain.empty() || single_axis(view, *sum) != 1) return "-";
  if (sum->attr_int("keepdims", 1) != 0) return "-";
  const Node* mul = view.producer(sum->inputs[0]);
  if (!mul || mul->op_type != "Mul" || mul->inputs.size() != 2) return "-";
  for (int side = 0; side < 2; ++side) {
    const Node* cat = view.producer(mul->inputs[static_cast<size_t>(side)]);
    const Node* unsq = view.producer(mul->inputs[static_cast<size_t>(1 - side)]);
    if (!cat || cat->op_type != "Concat" || cat->attr_int("axis", 0) != 1 || !unsq || unsq->op_type != "Unsqueeze" ||
        single_axis(view, *unsq) != 2)
      continue;
    wanted = cat->inputs.size();
    MaskSource mask;
    const Node* up = view.producer(unsq->inputs[0]);
    if (!up || (up->op_type != "Resize" && up->op_type != "Upsample")) return "the stacked mask is not a nearest-neighbour Resize";
    if (std::string why = nearest_block_factor(view, *up, mask.factor); !why.empty()) return why;
    mask.gate = up->inputs[0];
    for (size_t e = 0; e < cat->inputs.size(); ++e) {
      const Node* u = view.producer(cat->inputs[e]);
      if (!u || u->op_type != "Unsqueeze" || single_axis(view, *u) != 1) return "the stacked experts are not unsqueezed on axis 1";
      Term t;
      if (std::string why = match_expert_stack(view, u->inputs[0], t.stack); !why.empty()) return conv_terms ? why : "-";
      ++conv_terms;
      t.mask = mask;
      t.mask.expert = static_cast<int64_t>(e);
      found.push_back(t);
    }
    return "";
  }
  return "-";
}

std::vector<const ExpertStack*> by_expert_stacks(const std::vector<const Term*>& terms) {
  std::vector<const ExpertStack*> out;
  for (const Term* t : terms) out.push_back(&t->stack);
  return out;
}

// Builds the SpatialMoE node for `experts` (in expert order) reading image x and gate (k = 0: combine
// weights, else logits routed top-k), proves it against the exported region (x, gate) -> root on a random
// 2 x 3-block image, and on success lets it take over `root`. "" or why not.
std::string fuse_proved(Graph& g, const GraphView& view, const std::vector<const ExpertStack*>& experts, int gate_value,
                        int x_value, int root, int64_t block, int64_t k, const std::string& how) {
  const ExpertStack& s0 = *experts[0];
  const int64_t E = static_cast<int64_t>(experts.size()), cin = s0.layers.front().weight->dim(1);
  Node fused;
  fused.name = g.values[static_cast<size_t>(root)].name + "/SpatialMoE";
  fused.op_type = "SpatialMoE";
  fused.domain = "ai.switchyard";
  fused.opset = 1;
  fused.attrs["k"] = Attribute::integer(k);
  fused.attrs["block_size"] = Attribute::integer(block);
  fused.attrs["upscale"] = Attribute::integer(s0.upscale);
  fused.attrs["mode"] = Attribute::string(s0.mode);
  fused.attrs["activation"] = Attribute::string(s0.activation);
  std::vector<Tensor> stacked;
  for (size_t l = 0; l < s0.layers.size(); ++l) {
    std::vector<const Tensor*> ws, bs;
    bool any_bias = false;
    for (const ExpertStack* e : experts) {
      ws.push_back(e->layers[l].weight);
      bs.push_back(e->layers[l].bias);
      any_bias |= e->layers[l].bias != nullptr;
    }
    stacked.push_back(stack_tensors(ws, s0.layers[l].weight->shape()));
    stacked.push_back(any_bias ? stack_tensors(bs, {s0.layers[l].weight->dim(0)}) : Tensor());
  }
  auto bind = [&](Graph& target, int x, int gate, const std::string& prefix) {
    std::vector<int> ins{x, gate};
    for (size_t i = 0; i < stacked.size(); ++i) {
      if (!stacked[i].defined()) {
        ins.push_back(-1);
        continue;
      }
      Value v;
      v.name = prefix + "." + std::to_string(i);
      v.dtype = DType::kFloat32;
      v.constant = stacked[i];
      ins.push_back(target.add_value(std::move(v)));
    }
    return ins;
  };

  // Proof: the exported region and the fused node on a random image and gate. Combine weights are
  // non-negative with zeros (top-1 and top-2 tiles, tiles no expert takes), as routers produce them.
  std::string why;
  auto region = extract_subgraph(g, view, {x_value, gate_value}, {root}, why);
  if (!region) return "cannot isolate the layer: " + why;
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  Tensor x(DType::kFloat32, {1, cin, 2 * block, 3 * block});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = uni(rng);
  Tensor gate(DType::kFloat32, {1, E, 2, 3});
  for (int64_t i = 0; i < gate.numel(); ++i)
    gate.data<float>()[i] = k > 0 ? 3.f * uni(rng) : (uni(rng) > 0.3f ? 0.f : uni(rng) + 1.5f);
  auto check = std::make_shared<Graph>();
  Value xv = g.values[static_cast<size_t>(x_value)], gv = g.values[static_cast<size_t>(gate_value)];
  xv.constant.reset();
  gv.constant.reset();
  xv.shape.reset();
  gv.shape.reset();
  check->inputs = {check->add_value(xv), check->add_value(gv)};
  Node probe = fused;
  probe.inputs = bind(*check, check->inputs[0], check->inputs[1], "w");
  add_probe_node(*check, std::move(probe));
  try {
    const Tensor want = run_subgraph(region, {x, gate})[0];
    const Tensor got = run_subgraph(check, {x, gate})[0];
    if (want.shape() != got.shape()) return "the fused node's output shape " + shape_str(got.shape()) + " differs from " + shape_str(want.shape());
    double err = 0, scale = 1e-6;
    for (int64_t i = 0; i < want.numel(); ++i) {
      err = std::max(err, static_cast<double>(std::fabs(want.data<float>()[i] - got.data<float>()[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(want.data<float>()[i])));
    }
    if (!(err <= 1e-4 * scale)) return "the fused node differs from the exported region (max error " + std::to_string(err) + ")";
  } catch (const Error& e) {
    return std::string("the proof run failed: ") + e.what();
  }

  // The router's TopK / ArgMax now feeds a fused layer: drop the token-MoE pass's notes about it.
  std::set<std::string> router_notes;
  for (std::vector<int> upstream{gate_value}; !upstream.empty();) {
    const Node* q = view.producer(upstream.back());
    upstream.pop_back();
    if (!q || !router_notes.insert(q->op_type + " '" + q->name + "' not fused as MoE").second) continue;
    for (int in : q->inputs)
      if (in >= 0) upstream.push_back(in);
  }
  g.notes.erase(std::remove_if(g.notes.begin(), g.notes.end(),
                               [&](const std::string& note) {
                                 for (const std::string& prefix : router_notes)
                                   if (note.rfind(prefix, 0) == 0) return true;
                                 return false;
                               }),
                g.notes.end());
  // Rewrite: the fused node takes over the root's value; dead-code elimination drops the experts.
  fused.inputs = bind(g, x_value, gate_value, fused.name);
  fused.outputs = {root};
  const int old = view.producer_index(root);
  for (int& out : g.nodes[static_cast<size_t>(old)].outputs)
    if (out == root) out = -1;
  g.nodes.insert(g.nodes.begin() + old + 1, std::move(fused));
  g.notes.push_back("fused spatial MoE layer '" + g.nodes[static_cast<size_t>(old + 1)].name + "': experts=" + std::to_string(E) +
                    " layers=" + std::to_string(s0.layers.size()) + " block=" + std::to_string(block) + " upscale=" +
                    std::to_string(s0.upscale) + " activation=" + s0.activation + " routing=" +
                    (k == 0 ? std::string("weights") : "top-" + std::to_string(k)) + " from " + how);
  return "";
}

// "" after rewriting the sum at `root`, or why not ("-" when it is no spatial MoE candidate).
std::string try_fuse(Graph& g, int root) {
  const GraphView view(g);
  std::vector<Term> found;
  int conv_terms = 0;
  size_t wanted = 0;
  const Node* p = view.producer(root);
  const std::string problem = p && p->op_type == "ReduceSum" ? stacked_terms(view, root, found, conv_terms, wanted)
                                                             : sum_terms(view, root, found, conv_terms, wanted);
  if (problem == "-") return problem;
  if (conv_terms < 2) return "-";
  if (found.size() != wanted) return problem;
  const ExpertStack& s0 = found[0].stack;
  const MaskSource& m0 = found[0].mask;
  const int64_t E = static_cast<int64_t>(found.size());
  std::vector<const Term*> by_expert(static_cast<size_t>(E), nullptr);
  for (const Term& t : found) {
    const ExpertStack& s = t.stack;
    if (s.x != s0.x) return "the experts read different images";
    if (t.mask.gate != m0.gate || t.mask.factor != m0.factor) return "the masks come from different weight maps";
    if (!same_structure(s, s0)) return "the experts have different structures";
    if (t.mask.expert >= E || by_expert[static_cast<size_t>(t.mask.expert)])
      return "the masks do not pick each of the " + std::to_string(E) + " weight-map channels once";
    by_expert[static_cast<size_t>(t.mask.expert)] = &t;
  }
  const int64_t clast = s0.layers.back().weight->dim(0);
  if (m0.factor % s0.upscale != 0) return "the mask's block is not a whole number of input pixels";
  const int64_t block = m0.factor / s0.upscale;
  if (clast % (s0.upscale * s0.upscale) != 0) return "the head's channels do not divide by upscale^2";

  return fuse_proved(g, view, by_expert_stacks(by_expert), m0.gate, s0.x, root, block, 0,
                     "per-block weight map (dense 'every expert, then mask' export made sparse)");
}

// ---- Blocks as a batch: patches cut out with their halo, rows of each expert gathered, each expert's conv
// stack (activations optionally zeroed outside the image by a multiply), centre crop, DepthToSpace,
// weighted, scattered back and reassembled. Recognised by its experts; the image, the gate and the
// assembled result are found by proving candidates.

// Forward from the expert's first Conv: Conv ([Relu] [Mul by a non-constant mask] Conv)* Slice* [DepthToSpace].
std::string match_forward_stack(const GraphView& view, const Node& first, ExpertStack& s, int& out) {
  const Node* conv = &first;
  std::string act;
  while (true) {
    ConvLayer layer;
    if (std::string why = as_same_conv(view, *conv, layer); !why.empty()) return why;
    s.layers.push_back(layer);
    int v = conv->outputs[0];
    auto next = [&](int value) -> const Node* {
      auto cs = view.consumers(value);
      return cs.size() == 1 ? cs[0] : nullptr;
    };
    const Node* n = next(v);
    if (n && n->op_type == "Relu") {
      if (!act.empty() && act != "relu") return "the expert's activations differ";
      act = "relu";
      v = n->outputs[0];
      n = next(v);
      if (n && n->op_type == "Mul") {  // zeroing outside the image (proved below with the rest)
        const int other = n->inputs[0] == v ? n->inputs[1] : n->inputs[0];
        if (view.constant(other)) return n->describe() + " scales the expert's activations by a constant";
        v = n->outputs[0];
        n = next(v);
      }
      if (!n || n->op_type != "Conv") return "the expert's activation is not followed by a convolution";
      conv = n;
      continue;
    }
    if (n && n->op_type == "Conv") {
      if (!act.empty() && act != "identity") return "the expert's activations differ";
      act = "identity";
      conv = n;
      continue;
    }
    while (n && n->op_type == "Slice") {  // the centre crop
      v = n->outputs[0];
      n = next(v);
    }
    if (n && n->op_type == "DepthToSpace") {
      s.upscale = n->attr_int("blocksize", 1);
      s.mode = n->attr_string("mode", "DCR");
      v = n->outputs[0];
    }
    out = v;
    break;
  }
  s.activation = act.empty() ? "relu" : act;
  for (size_t i = 1; i < s.layers.size(); ++i)
    if (s.layers[i].weight->dim(1) != s.layers[i - 1].weight->dim(0)) return "the expert's layer channels do not chain";
  return "";
}

// "" after fusing the block-batch layer whose experts read rows of `patches`, or why not.
std::string try_fuse_block_batch(Graph& g, int patches) {
  const GraphView view(g);
  std::vector<ExpertStack> experts;
  std::vector<int> outputs, row_ids;
  for (const Node* gather : view.consumers(patches)) {
    if (gather->op_type != "Gather" || gather->attr_int("axis", 0) != 0 || gather->inputs[0] != patches) continue;
    for (const Node* c : view.consumers(gather->outputs[0])) {
      if (c->op_type != "Conv") continue;
      ExpertStack s;
      int out = -1;
      if (std::string why = match_forward_stack(view, *c, s, out); !why.empty()) return why;
      experts.push_back(s);
      outputs.push_back(out);
      row_ids.push_back(gather->inputs[1]);
    }
  }
  if (experts.size() < 2) return "-";
  for (const ExpertStack& s : experts)
    if (!same_structure(s, experts[0])) return "the experts have different structures";
  // The image: back from the patches through the ops that cut them out (padding, gathers, layout).
  static const std::set<std::string> cutting{"Pad", "Gather", "Transpose", "Reshape", "Slice", "Squeeze", "Unsqueeze",
                                             "Flatten", "Identity", "Expand", "Col2Im", "Im2Col"};
  int x = patches;
  for (const Node* p = view.producer(x); p && cutting.count(p->op_type); p = view.producer(x)) x = p->inputs[0];
  if (x == patches) return "the expert rows are not cut out of an image";
  // Gate candidates: what the expert rows were chosen by, nearest first.
  std::vector<int> gates;
  std::set<int> seen;
  std::vector<int> frontier(row_ids.begin(), row_ids.end());  // breadth-first, back from the row ids
  for (size_t at = 0; at < frontier.size() && at < 512 && gates.size() < 12; ++at) {
    const int v = frontier[at];
    if (v < 0 || v == x || view.constant(v) || !seen.insert(v).second) continue;
    const Node* p = view.producer(v);
    if (!p || p->op_type == "Shape" || p->op_type == "Size") continue;
    // weights or logits are float; ids, masks and counts on the way are walked through
    if (g.values[static_cast<size_t>(v)].dtype == DType::kFloat32) gates.push_back(v);
    for (int in : p->inputs) frontier.push_back(in);
  }
  std::vector<int> roots = output_candidates(view, outputs);
  std::reverse(roots.begin(), roots.end());  // the assembled image is the last of the chain
  std::vector<const ExpertStack*> stacks;
  for (const ExpertStack& s : experts) stacks.push_back(&s);
  const int64_t block_candidates[] = {8, 16, 4, 32, 2, 1};
  for (int root : roots)
    for (int gate : gates)
      for (int64_t k : {0, 1, 2}) {
        // The block size is what makes the gate's grid match the image: try the usual ones.
        for (int64_t block : block_candidates) {
          std::string why = fuse_proved(g, view, stacks, gate, x, root, block, k, "blocks cut out as a batch");
          if (why.empty()) return "";
          if (why.rfind("cannot isolate", 0) == 0) break;
        }
      }
  return "no image, weight map and result found that the fused node reproduces (" + std::to_string(experts.size()) +
         " experts, " + std::to_string(gates.size()) + " gate and " + std::to_string(roots.size()) + " result candidates)";
}

}  // namespace

void fuse_spatial_moe(Graph& g) {
  std::set<std::string> tried;
  for (bool changed = true; changed;) {
    changed = false;
    for (int i = static_cast<int>(g.nodes.size()) - 1; i >= 0; --i) {
      const Node& n = g.nodes[static_cast<size_t>(i)];
      if ((n.op_type != "Add" && n.op_type != "ReduceSum") || !n.domain.empty() || n.outputs.empty() || n.outputs[0] < 0) continue;
      if (!tried.insert(n.name).second) continue;
      {  // the Adds inside this tree are not roots of their own
        const GraphView view(g);
        std::vector<int> terms;
        std::set<const Node*> adds;
        add_terms(view, n.outputs[0], true, terms, adds);
        for (const Node* a : adds) tried.insert(a->name);
      }
      const std::string name = n.name;
      const std::string why = try_fuse(g, n.outputs[0]);
      if (why.empty()) {
        eliminate_dead_nodes(g);
        changed = true;
        break;
      }
      if (why != "-") g.notes.push_back(g.nodes[static_cast<size_t>(i)].op_type + " '" + name + "' not fused as spatial MoE: " + why);
    }
  }
  // Blocks cut out as a batch: one attempt per patch batch that experts' convolutions read rows of.
  std::set<int> batches;
  for (bool changed = true; changed;) {
    changed = false;
    const GraphView view(g);
    for (const Node& n : g.nodes) {
      if (n.op_type != "Conv" || !n.domain.empty()) continue;
      const Node* gather = view.producer(n.inputs[0]);
      if (!gather || gather->op_type != "Gather" || gather->attr_int("axis", 0) != 0) continue;
      const int patches = gather->inputs[0];
      if (!batches.insert(patches).second) continue;
      const std::string why = try_fuse_block_batch(g, patches);
      if (why.empty()) {
        eliminate_dead_nodes(g);
        changed = true;
        break;
      }
      if (why != "-") g.notes.push_back("experts reading rows of '" + view.value_name(patches) + "' not fused as spatial MoE: " + why);
    }
  }
  // Telemetry of every SpatialMoE node: tiles per expert, and each tile's expert.
  for (Node& n : g.nodes) {
    if (n.op_type != "SpatialMoE" || n.domain != "ai.switchyard") continue;
    n.outputs.resize(3, -1);
    const Value* w0 = n.inputs.size() > 2 && n.inputs[2] >= 0 ? &g.values[static_cast<size_t>(n.inputs[2])] : nullptr;
    const int64_t E = w0 && w0->constant && w0->constant->rank() > 0 ? w0->constant->dim(0) : -1;
    if (n.outputs[1] < 0) n.outputs[1] = add_telemetry(g, n.name + ".expert_counts", {Dim{E, ""}});
    if (n.outputs[2] < 0) n.outputs[2] = add_telemetry(g, n.name + ".block_experts", {Dim{}, Dim{}, Dim{}});
  }
}

}  // namespace switchyard
