// The parts of MoE fusion (pass fuse_moe_routing.cpp), each recognised by what it computes rather than
// by the node sequence one exporter writes:
//   moe_router.cpp       TopK / ArgMax over scores of a constant linear map of x: scoring, k, hints on how
//                        the chosen scores become weights
//   moe_dispatch.cpp     the rows each expert reads (x itself, or rows of x picked by Gather, GatherND,
//                        Compress, Slice of a sorted copy, ...) and which expert they belong to
//   moe_expert_body.cpp  the per-row function of an expert: linear layer(s), an elementwise activation
//                        (identified numerically, so any decomposition of GELU or SiLU is found), linear
//   moe_combine.cpp      the value that holds the layer's result, found by running the exported region
//                        and the candidate fused node side by side: the proof of every rewrite
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace switchyard::moe_match {

// Read-only view of a graph for matching: who produces and who reads each value.
class GraphView {
 public:
  explicit GraphView(const Graph& g);
  const Graph& graph() const { return g_; }
  const Node* producer(int v) const;
  int producer_index(int v) const { return v >= 0 ? producer_[static_cast<size_t>(v)] : -1; }
  const Tensor* constant(int v) const;
  std::vector<const Node*> consumers(int v) const;
  int node_index(const Node* n) const { return static_cast<int>(n - g_.nodes.data()); }
  bool depends_on(int v, int ancestor) const;  // through values (any path)
  const std::string& value_name(int v) const { return g_.values[static_cast<size_t>(v)].name; }

 private:
  const Graph& g_;
  std::vector<int> producer_;
  std::vector<std::vector<int>> consumers_;
};

// A linear layer with constant weights: MatMul(in, W) [+ Add(b)] or Gemm(in, W, b); or, "selected", one
// matrix per row picked from a constant stack by expert id: MatMul(Gather(W[E], ids), Unsqueeze(in)) [+
// Gather(b[E], ids)] (experts as 3-D parameters, W[idx] per token, as transformers 5's batched_mm); or
// "stacked", every expert on every row: MatMul(x, W [E, in, out]).
struct Linear {
  Tensor weight;  // [out, in] (nn.Linear layout); selected: [E, out, in]
  Tensor bias;    // [out] or undefined; selected: [E, out]
  int in_value = -1, out_value = -1;
  int node = -1;      // the MatMul / Gemm
  bool int8 = false;  // the model gives the weight as INT8 codes (Value::dequantized_int8)
  int ids = -1;         // selected: the expert id of each row
  bool stacked = false; // every expert on every row: MatMul(x, W [E, in, out]) -> [E, T, out]
  bool selected() const { return ids >= 0; }
  bool per_expert_stack() const { return selected() || stacked; }  // weight [E, out, in]
  int kind() const { return selected() ? 1 : (stacked ? 2 : 0); }
  int64_t in() const { return weight.dim(-1); }
  int64_t out() const { return weight.dim(-2); }
};
// True if `n` is a linear layer reading a non-constant input; fills `out`.
bool linear_from(const GraphView& view, const Node& n, Linear& out);

struct Router {
  size_t node = 0;  // TopK or ArgMax
  int x = -1;       // the tokens the router and the experts read, [T, H]
  Linear gate;      // [E, H]
  int64_t k = 0;
  int indices = -1;             // chosen expert ids
  std::string scoring;          // softmax | sigmoid | none (raw logits)
  Tensor selection_bias;        // [E] added to the scores only to choose (or undefined)
  std::vector<std::string> normalize_guesses;  // most likely first (none | softmax | sum)
  float scaling = 1.f;          // constant factor on the weights
  float epsilon = 0.f;          // sum normalisation divides by (sum + epsilon)
  float sparsemixer_eps = 0.f;  // scoring "sparsemixer" (Phi-MoE): its jitter epsilon
  int64_t n_group = 1, topk_group = 1;  // grouped top-k (DeepSeek): experts compete within the best groups
  bool group_top2 = false;              // a group scores the sum of its best two (else its best)
  int64_t experts() const { return gate.out(); }
  int64_t hidden() const { return gate.in(); }
};
// "" and `router` filled, or why node `index` is not a router.
std::string match_router(const GraphView& view, size_t index, Router& router);
// Why the routing chosen by `indices` is capacity-limited (tokens past an expert's capacity dropped), or "".
std::string find_capacity_limit(const GraphView& view, int indices);

struct ExpertBody {
  int64_t index = -1;       // expert id, -1 if the graph does not say
  int rows = -1;            // the value the body reads (x or rows of x)
  Linear fc1, fc3, fc2;     // fc3 only when gated: fc2(act(fc1 r) * fc3 r)
  bool gated = false;
  std::string activation;   // relu | gelu | gelu_tanh | silu | identity
  float swiglu_alpha = 1.f, swiglu_beta = 0.f, swiglu_limit = 0.f;  // gated silu: GPT-OSS's clamped form
  int output = -1;          // fc2's result (with its bias)
  int first_node = -1;      // position of the body's first layer in the graph (appearance order)
};
// The body that starts with linear layer `first` (reading `rows`): "" and `body`, or why not.
// `siblings`: every linear layer reading `rows` (a gated body's other first layer is one of them).
std::string match_expert_body(const GraphView& view, const Linear& first, const std::vector<Linear>& siblings,
                              int64_t hidden, ExpertBody& body);

// Every expert body that reads x or rows picked from x, with the expert id where the graph gives it.
// Bodies reading x itself come last in `direct` (dense experts, or a shared expert).
struct Dispatch {
  std::vector<ExpertBody> routed;  // read rows selected from x
  std::vector<ExpertBody> direct;  // read x itself
  std::string problem;             // the first body that could not be read, for the reason
};
Dispatch find_expert_bodies(const GraphView& view, const Router& router);

// A standalone graph computing `outputs` from `inputs` with the nodes of `g` (constants kept), or nullptr
// (and `why`) if the outputs need any other non-constant value.
std::shared_ptr<Graph> extract_subgraph(const Graph& g, const GraphView& view, const std::vector<int>& inputs,
                                        const std::vector<int>& outputs, std::string& why);
// Appends node n to the standalone graph g with one new float output "y", the graph's only output (the
// fused candidate of a proof).
void add_probe_node(Graph& g, Node n);
// Runs a standalone graph on `inputs`; returns its outputs.
std::vector<Tensor> run_subgraph(const std::shared_ptr<Graph>& graph, const std::vector<Tensor>& inputs);

}  // namespace switchyard::moe_match

namespace switchyard::moe_match {

// Where the layer's result may be: the first value that depends (through values, not shapes) on every
// expert output, then the values after it along single-consumer chains (weights applied after the
// combine, a final Reshape or ReduceSum over the k slots).
std::vector<int> output_candidates(const GraphView& view, const std::vector<int>& expert_outputs);

// One way of turning the chosen scores into weights.
struct Weighting {
  std::string normalize;  // none | softmax | sum
  float scaling = 1.f;
};
// Runs the exported region (x -> candidates) and the fused graph `build(w)` (input x, one output) side by
// side on random tokens, for each weighting in order; "" and the first weighting and candidate that agree
// (relative 1e-4), or why none does. `chosen_input`: the value the fused node reads (x, or the tensor x
// was reshaped from when the result keeps that shape). `token_counts`: the random batches tried.
std::string prove_fusion(const Graph& g, const GraphView& view, int x, int64_t hidden, const std::vector<int>& candidates,
                         const std::vector<Weighting>& weightings,
                         const std::function<std::shared_ptr<Graph>(const Weighting&)>& build, size_t& chosen_weighting,
                         int& chosen_output, int& chosen_input, const std::vector<int64_t>& token_counts);

}  // namespace switchyard::moe_match
