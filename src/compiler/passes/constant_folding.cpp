#include <algorithm>
#include <set>

#include "compiler/pass_pipeline.h"
#include "ops/kernel.h"
#include "core/thread_pool.h"

namespace switchyard {

namespace {

// Folding must not turn a small graph into a huge constant (e.g. ConstantOfShape of a big shape).
constexpr int64_t kMaxFoldedBytes = int64_t{64} << 20;

// True if folding `node` yields weights that are exactly INT8 codes times scales: DequantizeLinear of an
// INT8 tensor without zero points (symmetric), or a layout op over such a constant.
bool yields_int8_codes(const Node& node, const Graph& g, const std::vector<const Tensor*>& inputs) {
  if (node.op_type == "DequantizeLinear" && node.domain.empty())
    return inputs[0]->dtype() == DType::kInt8 && inputs[1]->dtype() == DType::kFloat32 &&
           (inputs.size() < 3 || !inputs[2] || std::all_of(inputs[2]->data<int8_t>(), inputs[2]->data<int8_t>() + inputs[2]->numel(),
                                                           [](int8_t z) { return z == 0; }));
  // An op that only moves elements keeps its input's "dequantized INT8" provenance.
  return op_has(node, kOpLayoutOnly) && g.values[static_cast<size_t>(node.inputs[0])].dequantized_int8;
}

class FoldContext final : public KernelContext {
 public:
  FoldContext(const Node& node, const std::vector<const Tensor*>& inputs, ThreadPool* pool) {
    node_ = &node;
    inputs_ = inputs;
    pool_ = pool;
    num_outputs_ = static_cast<int>(node.outputs.size());
    for (int out : node.outputs) output_wanted_.push_back(out >= 0);
    outputs.resize(node.outputs.size());
  }
  Tensor& output(int i, DType dtype, const Shape& shape) override {
    SY_CHECK(checked_numel(shape) * static_cast<int64_t>(dtype_size(dtype)) <= kMaxFoldedBytes,
             node_->describe() + ": constant result too large to fold");
    outputs[static_cast<size_t>(i)] = Tensor(dtype, shape);
    return outputs[static_cast<size_t>(i)];
  }
  void* scratch(size_t bytes) override {
    scratch_.emplace_back(DType::kUInt8, Shape{static_cast<int64_t>(bytes)});
    return scratch_.back().raw();
  }
  std::vector<Tensor> scratch_;
  std::vector<Tensor> run_subgraph(const std::string&, const std::vector<const Tensor*>&) override {
    throw Error("subgraphs are not folded");
  }
  void set_output(int, const Tensor&) override { throw Error("sequences are not folded"); }
  std::vector<Tensor> outputs;
};

}  // namespace

void fold_constants(Graph& g) {
  ThreadPool pool(1);
  std::vector<Node> kept;
  for (Node& node : g.nodes) {
    bool foldable = !op_has(node, kOpNonDeterministic);
    for (const auto& [key, attr] : node.attrs)
      if (attr.g) foldable = false;
    std::vector<const Tensor*> inputs;
    for (int in : node.inputs) {
      if (in < 0) {
        inputs.push_back(nullptr);
        continue;
      }
      const Value& v = g.values[static_cast<size_t>(in)];
      if (!v.constant) foldable = false;
      inputs.push_back(v.constant ? &*v.constant : nullptr);
    }
    const KernelFactory* factory = OpRegistry::instance().find(node.domain, node.op_type, node.opset);
    if (foldable && factory) {
      try {
        KernelBuildInfo info{node, inputs};
        auto kernel = (*factory)(info);
        FoldContext ctx(node, inputs, &pool);
        kernel->compute(ctx);
        const bool int8_codes = yields_int8_codes(node, g, inputs);
        for (size_t i = 0; i < node.outputs.size(); ++i) {
          if (node.outputs[i] < 0) continue;
          Value& v = g.values[static_cast<size_t>(node.outputs[i])];
          v.constant = ctx.outputs[i];
          v.dtype = ctx.outputs[i].dtype();
          v.dequantized_int8 = int8_codes;
          std::vector<Dim> dims;
          for (int64_t d : ctx.outputs[i].shape()) dims.push_back(Dim{d, ""});
          v.shape = dims;
        }
        continue;  // folded: the node is gone
      } catch (const Error&) {
        // Not foldable after all (e.g. a too-large result): keep the node; errors surface at run time.
      }
    }
    for (const auto& [key, attr] : node.attrs)
      if (attr.g) fold_constants(*attr.g);
    kept.push_back(std::move(node));
  }
  g.nodes = std::move(kept);
}

}  // namespace switchyard
