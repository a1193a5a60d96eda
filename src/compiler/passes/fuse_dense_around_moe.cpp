// Pass: fold the dense layers that feed and read a small MoE layer into its ai.switchyard::MoE node
// (inputs 9..12, see src/moe/moe.cpp), so that the chain runs as one pass per row tile
// (src/moe/moe_block.cpp). The seed classifier becomes a single node: 784->16 embedding, router,
// eight 16x16 experts and the 16->10 head.
//
// Folded: a Gemm (transA = 0, constant B and C) whose output only the MoE node reads, and a Gemm of
// the same kind that is the only reader of the MoE output. Only when it pays: small experts (the row
// tiles re-read the expert weights, which must stay in L2) and projections of at most 1 MiB.
#include <functional>
#include <set>

#include "compiler/pass_pipeline.h"

namespace switchyard {

namespace {

constexpr size_t kMaxExpertBytes = 512 * 1024;
constexpr size_t kMaxProjectionBytes = 1024 * 1024;

struct Folded {
  Tensor weight, bias;  // nn.Linear layout [out, in], [out] (undefined when C is absent)
};

// A Gemm y = alpha * A B' + beta * C with constant B and C (C broadcast over rows): as nn.Linear.
bool as_linear(const Graph& g, const Node& n, Folded& out) {
  if (n.op_type != "Gemm" || !n.domain.empty() || n.attr_int("transA", 0) != 0 || n.inputs.size() < 2 || n.inputs[0] < 0 ||
      n.inputs[1] < 0)
    return false;
  const Value& b = g.values[static_cast<size_t>(n.inputs[1])];
  if (!b.constant || b.constant->dtype() != DType::kFloat32 || b.constant->rank() != 2) return false;
  if (b.constant->numel() * 4 > static_cast<int64_t>(kMaxProjectionBytes)) return false;
  const bool trans_b = n.attr_int("transB", 0) != 0;
  const float alpha = n.attr_float("alpha", 1.f), beta = n.attr_float("beta", 1.f);
  const Tensor& w = *b.constant;
  const int64_t rows_out = trans_b ? w.dim(0) : w.dim(1), cols_in = trans_b ? w.dim(1) : w.dim(0);
  out.weight = Tensor(DType::kFloat32, {rows_out, cols_in});
  float* dst = out.weight.data<float>();
  const float* src = w.data<float>();
  for (int64_t o = 0; o < rows_out; ++o)
    for (int64_t i = 0; i < cols_in; ++i) dst[o * cols_in + i] = alpha * (trans_b ? src[o * cols_in + i] : src[i * rows_out + o]);
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Value& c = g.values[static_cast<size_t>(n.inputs[2])];
    if (!c.constant || c.constant->dtype() != DType::kFloat32 || c.constant->numel() != rows_out) return false;
    if (c.constant->rank() == 2 && c.constant->dim(0) != 1) return false;  // [N, out] would not broadcast per row
    out.bias = Tensor(DType::kFloat32, {rows_out});
    for (int64_t o = 0; o < rows_out; ++o) out.bias.data<float>()[o] = beta * c.constant->data<float>()[o];
  }
  return true;
}

}  // namespace

void fuse_dense_around_moe(Graph& g) {
  const std::set<std::string> captured = g.captured_by_subgraphs();
  std::vector<int> producer(g.values.size(), -1);
  std::vector<std::vector<int>> consumers(g.values.size());
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    for (int out : g.nodes[n].outputs)
      if (out >= 0) producer[static_cast<size_t>(out)] = static_cast<int>(n);
    for (int in : g.nodes[n].inputs)
      if (in >= 0) consumers[static_cast<size_t>(in)].push_back(static_cast<int>(n));
  }
  std::set<int> graph_outputs(g.outputs.begin(), g.outputs.end());
  // A value only `reader` reads: not a graph output, not captured by a subgraph.
  auto only_read_by = [&](int v, int reader) {
    return v >= 0 && !graph_outputs.count(v) && !captured.count(g.values[static_cast<size_t>(v)].name) &&
           consumers[static_cast<size_t>(v)].size() == 1 && consumers[static_cast<size_t>(v)][0] == reader;
  };
  auto add_constant = [&](const std::string& name, const Tensor& t) {
    Value v;
    v.name = name;
    v.dtype = DType::kFloat32;
    v.constant = t;
    return g.add_value(std::move(v));
  };

  std::set<int> removed;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& moe = g.nodes[i];
    if (moe.op_type != "MoE" || moe.domain != "ai.switchyard" || moe.inputs.size() < 6 || moe.inputs.size() > 9 ||
        moe.outputs.empty() || moe.inputs[0] < 0)
      continue;
    size_t expert_bytes = 0;
    for (int slot : {3, 5, 7})
      if (static_cast<size_t>(slot) < moe.inputs.size() && moe.inputs[static_cast<size_t>(slot)] >= 0) {
        const Value& w = g.values[static_cast<size_t>(moe.inputs[static_cast<size_t>(slot)])];
        if (!w.constant) goto next;
        expert_bytes += static_cast<size_t>(w.constant->numel()) * 4;
      }
    if (expert_bytes > kMaxExpertBytes) {
      g.notes.push_back("dense layers not folded into '" + moe.name + "': experts hold " + std::to_string(expert_bytes) +
                        " bytes (more than the " + std::to_string(kMaxExpertBytes) + " a row tile keeps in cache)");
      continue;
    }
    {
      const int x = moe.inputs[0];
      const int pre_id = x >= 0 ? producer[static_cast<size_t>(x)] : -1;
      Folded pre, post;
      const bool fold_pre = pre_id >= 0 && !removed.count(pre_id) && only_read_by(x, static_cast<int>(i)) &&
                            as_linear(g, g.nodes[static_cast<size_t>(pre_id)], pre);
      const int y = moe.outputs[0];
      const int post_id = y >= 0 && consumers[static_cast<size_t>(y)].size() == 1 ? consumers[static_cast<size_t>(y)][0] : -1;
      const bool fold_post = post_id >= 0 && only_read_by(y, post_id) && g.nodes[static_cast<size_t>(post_id)].inputs[0] == y &&
                             as_linear(g, g.nodes[static_cast<size_t>(post_id)], post);
      if (!fold_pre && !fold_post) continue;
      std::vector<int> ins = moe.inputs;
      ins.resize(13, -1);
      std::string what;
      if (fold_pre) {
        Node& gemm = g.nodes[static_cast<size_t>(pre_id)];
        ins[0] = gemm.inputs[0];
        ins[9] = add_constant(moe.name + ".in_weight", pre.weight);
        if (pre.bias.defined()) ins[10] = add_constant(moe.name + ".in_bias", pre.bias);
        what += " input " + gemm.name + " (" + std::to_string(pre.weight.dim(1)) + "->" + std::to_string(pre.weight.dim(0)) + ")";
        removed.insert(pre_id);
      }
      if (fold_post) {
        Node& gemm = g.nodes[static_cast<size_t>(post_id)];
        ins[11] = add_constant(moe.name + ".out_weight", post.weight);
        if (post.bias.defined()) ins[12] = add_constant(moe.name + ".out_bias", post.bias);
        moe.outputs[0] = gemm.outputs[0];  // the MoE node now produces what the Gemm produced
        what += " output " + gemm.name + " (" + std::to_string(post.weight.dim(1)) + "->" + std::to_string(post.weight.dim(0)) + ")";
        removed.insert(post_id);
      }
      while (!ins.empty() && ins.back() < 0) ins.pop_back();
      moe.inputs = ins;
      g.notes.push_back("folded dense layers into MoE '" + moe.name + "':" + what);
    }
  next:;
  }
  if (removed.empty()) return;
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!removed.count(static_cast<int>(i))) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  eliminate_dead_nodes(g);
}

}  // namespace switchyard
