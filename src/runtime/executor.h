// Compiles a graph into a static execution plan and runs it.
//
// Plan (shared, immutable): one kernel per node, built once; a buffer slot per computed value,
// assigned by liveness so that values whose lifetimes do not overlap share memory.
// ExecState (one per infer request): the slots themselves. A slot grows to the largest size it has
// seen and is then reused, so once input shapes repeat, inference allocates no tensor memory.
// Data-dependent shapes (NonZero, TopK over routing) simply settle at their high-water mark.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "ops/kernel.h"
#include "core/thread_pool.h"

namespace switchyard {

struct Plan {
  std::shared_ptr<const Graph> graph;
  std::vector<std::unique_ptr<Kernel>> kernels;        // per node
  std::vector<int> slot_of_value;                      // -1: input, constant, outer-scope value or view
  std::vector<bool> node_makes_views;                  // per node: outputs may alias input 0 (no copy)
  int num_slots = 0;
  std::vector<std::map<std::string, std::shared_ptr<const Plan>>> subplans;  // per node: attr -> plan
};

// Builds kernels for every node (recursively for subgraphs), each at the precision and weight group the
// node carries (Node::precision, decided by the assign_precision pass). Throws on unsupported ops.
std::shared_ptr<const Plan> compile_plan(std::shared_ptr<const Graph> graph);

// Names every node (recursively) that has no kernel: "domain::Op (opset N)". Empty if all run.
std::vector<std::string> unsupported_ops(const Graph& graph);

class NodeContext;

class ExecState {
 public:
  ExecState(std::shared_ptr<const Plan> plan, ThreadPool* pool, const ExecState* parent);
  ~ExecState();
  // Binds graph inputs (by position in graph->inputs) and runs every node.
  void run(const std::vector<const Tensor*>& inputs);
  // After run(): the tensor of a value (input, constant or computed).
  const Tensor* value(int id) const { return env_[static_cast<size_t>(id)]; }
  const Plan& plan() const { return *plan_; }
  // Looks a value up by name here or in an enclosing scope (for subgraph captures).
  const Tensor* lookup_outer(const std::string& name) const;
  ExecState& child(size_t node, const std::string& attr);
  // Buffer (re)allocations so far, including subgraph states: flat once shapes repeat.
  size_t allocations() const;
  // Gives the buffer holding value `id` away (its tensors keep it alive) so that the next run
  // allocates a new one: zero-copy hand-over of an output. False when the value has no buffer of
  // its own (a graph input, a constant or a view), the caller then copies.
  bool detach(int id);
  // Refuse to grow the request's buffers (all subgraph states included) past `bytes` (0: no limit).
  void set_memory_limit(size_t bytes) { memory_limit_ = bytes; }

 private:
  friend class NodeContext;
  struct Slot {
    std::shared_ptr<void> memory;
    size_t capacity = 0;
  };
  Tensor& allocate(int value_id, DType dtype, const Shape& shape);
  void* scratch(size_t node, size_t bytes);

  std::shared_ptr<const Plan> plan_;
  ThreadPool* pool_;
  const ExecState* parent_;
  std::vector<const Tensor*> env_;
  std::vector<Tensor> computed_;
  std::vector<Slot> slots_;
  std::vector<Slot> scratch_;  // per node
  std::map<std::pair<size_t, std::string>, std::unique_ptr<ExecState>> children_;
  size_t allocations_ = 0;
  size_t memory_limit_ = 0;
  size_t bytes_in_use_ = 0;  // meaningful in the outermost state
  ExecState* root() { return parent_ ? const_cast<ExecState*>(parent_)->root() : this; }
  std::unique_ptr<NodeContext> context_;  // reused for every node of every run
};

}  // namespace switchyard
