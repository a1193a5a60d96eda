// The operator interface. Each op lives in one file under src/ops/ (MoE ops under src/moe/) and registers
// itself with SY_REGISTER_OP, declaring its OpProperty bits; the executor and the passes read those and
// never keep op-name lists. A kernel object is built once per node at compile
// time (attributes parsed, weights prepacked) and is then shared, read-only, by all infer requests.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/precision.h"
#include "graph/graph.h"
#include "switchyard/tensor.h"

namespace switchyard {

class ThreadPool;
class SubgraphRunner;

// Gives a kernel its inputs and hands out its outputs. Outputs live in buffers that the request
// reuses across calls; a kernel must not keep pointers to them.
class KernelContext {
 public:
  virtual ~KernelContext() = default;
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  bool has_input(int i) const { return i < num_inputs() && inputs_[static_cast<size_t>(i)] != nullptr; }
  const Tensor& input(int i) const;
  int num_outputs() const { return num_outputs_; }
  bool wants_output(int i) const;
  // Returns the (uninitialised) output tensor i with this shape and dtype.
  virtual Tensor& output(int i, DType dtype, const Shape& shape) = 0;
  // Output i holds exactly input `input`'s bytes under another shape (Reshape, Flatten, ...): a view
  // of the input when the memory plan allows it (no copy), else a copy. Read-only either way.
  virtual const Tensor& output_view(int i, int input, const Shape& shape);
  // Output i is `value` itself, no buffer of the request's (a sequence: src/ops/sequence.h).
  virtual void set_output(int i, const Tensor& value) = 0;
  ThreadPool& pool() const { return *pool_; }
  // Per-node scratch memory (64-byte aligned) that the request keeps between calls: it grows to the
  // largest size asked for and is then reused, so kernels need no allocation once shapes repeat.
  virtual void* scratch(size_t bytes) = 0;
  // For If / Loop / Scan: runs a compiled subgraph with these inputs in the current scope.
  virtual std::vector<Tensor> run_subgraph(const std::string& attr_name, const std::vector<const Tensor*>& inputs) = 0;
  const Node& node() const { return *node_; }

 protected:
  std::vector<const Tensor*> inputs_;
  std::vector<bool> output_wanted_;
  int num_outputs_ = 0;
  ThreadPool* pool_ = nullptr;
  const Node* node_ = nullptr;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void compute(KernelContext& ctx) const = 0;
  // True if the kernel copied (prepacked) every constant input it needs at build time and never reads
  // them again: the compiled model may then free the graph's copies (the MoE layer's weights).
  virtual bool prepacks_constant_inputs() const { return false; }
  // The GEMM implementation chosen at compile time, where the op measured alternatives (FP32 dense
  // layers: Switchyard's panels or oneDNN); "" otherwise. The compile notes report it.
  virtual std::string kernel_choice() const { return ""; }
};

// A factory sees the node (attributes, opset) and the constant inputs known at compile time.
struct KernelBuildInfo {
  const Node& node;
  std::vector<const Tensor*> constant_inputs;  // nullptr where the input is not constant
  Precision precision = Precision::kFp32;
  int64_t weight_group = 32;  // rows per scale of the weight-only formats (CompileOptions::weight_group)
};
using KernelFactory = std::function<std::unique_ptr<Kernel>(const KernelBuildInfo&)>;

// What an op declares about itself with its registration (last argument of SY_REGISTER_OP). The executor,
// constant folding, batch analysis and the router-precision pass read these instead of op-name lists,
// so adding an operator is one file.
enum OpProperty : uint32_t {
  kOpViewOfInput0 = 1u << 0,     // output 0 is input 0's bytes under another shape: the plan may alias it
  kOpLayoutOnly = 1u << 1,       // only moves elements: a folded result keeps INT8-code provenance
  kOpRowsElementwise = 1u << 2,  // per element of input 0 (other inputs constant): keeps rows independent
  kOpRowsBroadcast = 1u << 3,    // elementwise over broadcast inputs: rows independent if constants
                                 // broadcast along dim 0
  kOpRowsWithWeights = 1u << 4,  // input 0 carries the rows, the other inputs are weights (Conv, pools, norms)
  kOpRouterPath = 1u << 5,       // router scores may pass through on their way to TopK: stays FP32 with the router
  kOpNonDeterministic = 1u << 6, // not a pure function of its inputs: never constant-folded
  kOpNonNegative = 1u << 7,      // output 0 is never negative (Relu, Softmax, Exp, ...)
  kOpSelectsInput0 = 1u << 8,    // output 0's elements are elements of input 0 (gathers, slices, layout ops)
};

class OpRegistry {
 public:
  static OpRegistry& instance();
  void add(const std::string& domain, const std::string& op_type, int since_opset, KernelFactory factory,
           uint32_t properties = 0);
  // The OpProperty bits the op declared (0 for unknown ops).
  uint32_t properties(const std::string& domain, const std::string& op_type) const;
  // nullptr when no kernel exists for this domain/op/opset.
  const KernelFactory* find(const std::string& domain, const std::string& op_type, int opset) const;
  std::vector<std::string> list() const;  // "domain::Op" sorted

 private:
  struct Entry {
    int since;
    KernelFactory factory;
  };
  std::map<std::pair<std::string, std::string>, std::vector<Entry>> entries_;
  std::map<std::pair<std::string, std::string>, uint32_t> properties_;
};

// True if node n's op declared property p.
inline bool op_has(const Node& n, OpProperty p) { return (OpRegistry::instance().properties(n.domain, n.op_type) & p) != 0; }

struct OpRegistrar {
  OpRegistrar(const char* domain, const char* op_type, int since_opset, KernelFactory factory, uint32_t properties = 0) {
    OpRegistry::instance().add(domain, op_type, since_opset, std::move(factory), properties);
  }
};

#define SY_CONCAT_INNER(a, b) a##b
#define SY_CONCAT(a, b) SY_CONCAT_INNER(a, b)
// SY_REGISTER_OP("", "Relu", 6, make_factory<Relu>(), kOpRowsElementwise): domain, op, first opset, the
// factory and (optional) the op's OpProperty bits.
#define SY_REGISTER_OP(domain, op_type, since, factory, ...) \
  static ::switchyard::OpRegistrar SY_CONCAT(sy_registrar_, __COUNTER__)(domain, op_type, since, factory __VA_OPT__(, ) __VA_ARGS__)

// Builds kernel class K from its KernelBuildInfo constructor.
template <typename K>
KernelFactory make_factory() {
  return [](const KernelBuildInfo& info) -> std::unique_ptr<Kernel> { return std::make_unique<K>(info); };
}

}  // namespace switchyard
