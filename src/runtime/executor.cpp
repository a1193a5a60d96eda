#include "runtime/executor.h"

#include <algorithm>
#include <functional>
#include <set>

namespace switchyard {

std::vector<std::string> unsupported_ops(const Graph& graph) {
  std::set<std::string> missing;
  std::function<void(const Graph&)> visit = [&](const Graph& g) {
    for (const Node& n : g.nodes) {
      if (!OpRegistry::instance().find(n.domain, n.op_type, n.opset))
        missing.insert((n.domain.empty() ? "ai.onnx" : n.domain) + "::" + n.op_type + " (opset " +
                       std::to_string(n.opset) + ")");
      for (const auto& [key, attr] : n.attrs)
        if (attr.g) visit(*attr.g);
    }
  };
  visit(graph);
  return {missing.begin(), missing.end()};
}

std::shared_ptr<const Plan> compile_plan(std::shared_ptr<const Graph> graph) {
  auto plan = std::make_shared<Plan>();
  plan->graph = graph;
  const Graph& g = *graph;
  const size_t num_nodes = g.nodes.size();
  plan->subplans.resize(num_nodes);

  for (size_t i = 0; i < num_nodes; ++i) {
    const Node& node = g.nodes[i];
    const KernelFactory* factory = OpRegistry::instance().find(node.domain, node.op_type, node.opset);
    SY_CHECK(factory, node.describe() + ": unsupported operator " + (node.domain.empty() ? "ai.onnx" : node.domain) +
                          "::" + node.op_type + " at opset " + std::to_string(node.opset));
    KernelBuildInfo info{node, {}, node.precision.precision, node.precision.weight_group};
    for (int in : node.inputs) {
      const Value* v = in >= 0 ? &g.values[static_cast<size_t>(in)] : nullptr;
      info.constant_inputs.push_back(v && v->constant ? &*v->constant : nullptr);
    }
    for (const auto& [key, attr] : node.attrs)
      if (attr.g) plan->subplans[i][key] = compile_plan(attr.g);
    plan->kernels.push_back((*factory)(info));
  }

  // Views: the outputs of shape-only ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity) alias
  // their input instead of copying it, unless the output leaves the graph. `root` maps a value to
  // the value whose memory it uses, so liveness below keeps that memory alive for all its views.
  std::vector<int> root(g.values.size());
  for (size_t v = 0; v < root.size(); ++v) root[v] = static_cast<int>(v);
  std::set<int> graph_outputs(g.outputs.begin(), g.outputs.end());
  for (int t : g.telemetry) graph_outputs.insert(t);
  plan->node_makes_views.assign(num_nodes, false);
  for (size_t i = 0; i < num_nodes; ++i) {
    const Node& node = g.nodes[i];
    if (!op_has(node, kOpViewOfInput0) || node.inputs.empty() || node.inputs[0] < 0 ||
        node.outputs.size() != 1 || node.outputs[0] < 0 || graph_outputs.count(node.outputs[0]))
      continue;
    plan->node_makes_views[i] = true;
    root[static_cast<size_t>(node.outputs[0])] = root[static_cast<size_t>(node.inputs[0])];
  }

  // Liveness: the last node that reads each value's memory (graph outputs live to the end).
  const int kForever = static_cast<int>(num_nodes);
  std::vector<int> last_use(g.values.size(), -1);
  for (size_t i = 0; i < num_nodes; ++i) {
    const Node& node = g.nodes[i];
    for (int in : node.inputs)
      if (in >= 0) last_use[static_cast<size_t>(root[static_cast<size_t>(in)])] = static_cast<int>(i);
    for (const auto& name : captured_by(node)) {
      int id = g.find(name);
      if (id >= 0) last_use[static_cast<size_t>(root[static_cast<size_t>(id)])] = static_cast<int>(i);
    }
  }
  for (int out : g.outputs) last_use[static_cast<size_t>(root[static_cast<size_t>(out)])] = kForever;
  for (int t : g.telemetry) last_use[static_cast<size_t>(t)] = kForever;

  plan->slot_of_value.assign(g.values.size(), -1);
  std::vector<int> free_slots;
  // Values by the node that reads them last (linear in the graph, not nodes x values).
  std::vector<std::vector<int>> dies_at(num_nodes);
  for (size_t v = 0; v < g.values.size(); ++v)
    if (last_use[v] >= 0 && last_use[v] < kForever) dies_at[static_cast<size_t>(last_use[v])].push_back(static_cast<int>(v));
  for (size_t i = 0; i < num_nodes; ++i) {
    const Node& node = g.nodes[i];
    for (int out : node.outputs) {
      if (out < 0 || plan->node_makes_views[i]) continue;
      int slot;
      if (!free_slots.empty()) {
        slot = free_slots.back();
        free_slots.pop_back();
      } else {
        slot = plan->num_slots++;
      }
      plan->slot_of_value[static_cast<size_t>(out)] = slot;
    }
    // Slots free after this node: values last read here, and outputs nobody reads.
    std::set<int> done;
    for (int v : dies_at[i])
      if (plan->slot_of_value[static_cast<size_t>(v)] >= 0) done.insert(plan->slot_of_value[static_cast<size_t>(v)]);
    for (int out : node.outputs)
      if (out >= 0 && last_use[static_cast<size_t>(out)] < 0 && plan->slot_of_value[static_cast<size_t>(out)] >= 0)
        done.insert(plan->slot_of_value[static_cast<size_t>(out)]);
    free_slots.insert(free_slots.end(), done.begin(), done.end());
  }
  return plan;
}

class NodeContext final : public KernelContext {
 public:
  explicit NodeContext(ExecState& state) : state_(state) { pool_ = state.pool_; }

  // Points the context at node `node_index`; the vectors keep their capacity between nodes and calls.
  void bind(size_t node_index) {
    node_index_ = node_index;
    const Node& node = state_.plan_->graph->nodes[node_index];
    node_ = &node;
    inputs_.clear();
    for (int in : node.inputs) inputs_.push_back(in >= 0 ? state_.env_[static_cast<size_t>(in)] : nullptr);
    num_outputs_ = static_cast<int>(node.outputs.size());
    output_wanted_.clear();
    for (int out : node.outputs) output_wanted_.push_back(out >= 0);
    scratch_.clear();
  }

  const Tensor& output_view(int i, int input, const Shape& shape) override {
    const Tensor& x = this->input(input);
    if (!state_.plan_->node_makes_views[node_index_] || x.dtype() == DType::kSequence)
      return KernelContext::output_view(i, input, shape);
    const int id = node_->outputs[static_cast<size_t>(i)];
    Tensor& t = state_.computed_[static_cast<size_t>(id)];
    t = Tensor::wrap(x.dtype(), shape, const_cast<void*>(x.raw()));
    SY_CHECK(t.nbytes() == x.nbytes(), node_->describe() + ": view changes the size");
    state_.env_[static_cast<size_t>(id)] = &t;
    return t;
  }

  void set_output(int i, const Tensor& value) override {
    SY_CHECK(i < num_outputs_, node_->describe() + ": output " + std::to_string(i) + " does not exist");
    const int id = node_->outputs[static_cast<size_t>(i)];
    if (id < 0) return;
    Tensor& t = state_.computed_[static_cast<size_t>(id)];
    t = value;
    state_.env_[static_cast<size_t>(id)] = &t;
  }

  Tensor& output(int i, DType dtype, const Shape& shape) override {
    SY_CHECK(i < num_outputs_, node_->describe() + ": output " + std::to_string(i) + " does not exist");
    SY_CHECK(dtype != DType::kSequence, node_->describe() + ": a sequence cannot be written into a tensor buffer");
    int id = node_->outputs[static_cast<size_t>(i)];
    if (id < 0) {  // an output the graph does not use: give the kernel scratch space
      scratch_.push_back(Tensor(dtype, shape));
      return scratch_.back();
    }
    return state_.allocate(id, dtype, shape);
  }

  void* scratch(size_t bytes) override { return state_.scratch(node_index_, bytes); }

  std::vector<Tensor> run_subgraph(const std::string& attr, const std::vector<const Tensor*>& inputs) override {
    ExecState& child = state_.child(node_index_, attr);
    child.run(inputs);
    std::vector<Tensor> outs;
    for (int id : child.plan().graph->outputs) outs.push_back(*child.value(id));
    return outs;
  }

 private:
  ExecState& state_;
  size_t node_index_ = 0;
  std::vector<Tensor> scratch_;
};

ExecState::~ExecState() = default;

ExecState::ExecState(std::shared_ptr<const Plan> plan, ThreadPool* pool, const ExecState* parent)
    : plan_(std::move(plan)), pool_(pool), parent_(parent) {
  const Graph& g = *plan_->graph;
  env_.assign(g.values.size(), nullptr);
  computed_.resize(g.values.size());
  slots_.resize(static_cast<size_t>(plan_->num_slots));
  for (size_t v = 0; v < g.values.size(); ++v)
    if (g.values[v].constant) env_[v] = &*g.values[v].constant;
}

const Tensor* ExecState::lookup_outer(const std::string& name) const {
  int id = plan_->graph->find(name);
  if (id >= 0 && env_[static_cast<size_t>(id)]) return env_[static_cast<size_t>(id)];
  return parent_ ? parent_->lookup_outer(name) : nullptr;
}

ExecState& ExecState::child(size_t node, const std::string& attr) {
  auto key = std::make_pair(node, attr);
  auto it = children_.find(key);
  if (it != children_.end()) return *it->second;
  auto sub = plan_->subplans[node].find(attr);
  SY_CHECK(sub != plan_->subplans[node].end(),
           plan_->graph->nodes[node].describe() + ": no subgraph attribute '" + attr + "'");
  auto state = std::make_unique<ExecState>(sub->second, pool_, this);
  state->memory_limit_ = memory_limit_;
  ExecState& ref = *state;
  children_[key] = std::move(state);
  return ref;
}

namespace {

// Grows a buffer to hold `bytes`; returns true if it had to allocate. `what` names it in errors
// (a callable, so that the common no-allocation path builds no string). `in_use` is the request's
// total buffer bytes, checked against `limit` (0: none) before anything is allocated.
template <typename What>
bool reserve(std::shared_ptr<void>& memory, size_t& capacity, size_t bytes, What what, size_t& in_use, size_t limit) {
  if (bytes <= capacity && memory) return false;
  size_t cap = std::max<size_t>(64, ((bytes + 63) / 64) * 64);
  if (limit && in_use - capacity + cap > limit)
    throw Error("memory ceiling exceeded: " + what() + " needs " + std::to_string(cap) + " bytes; the request's buffers " +
                "already use " + std::to_string(in_use - capacity) + " of the " + std::to_string(limit) +
                " bytes the ceiling leaves after the weights");
  void* p = std::aligned_alloc(64, cap);
  SY_CHECK(p, "out of memory allocating " + std::to_string(cap) + " bytes for " + what());
  memory = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  in_use = in_use - capacity + cap;
  capacity = cap;
  return true;
}

}  // namespace

void* ExecState::scratch(size_t node, size_t bytes) {
  if (scratch_.size() < plan_->graph->nodes.size()) scratch_.resize(plan_->graph->nodes.size());
  Slot& slot = scratch_[node];
  if (reserve(slot.memory, slot.capacity, bytes, [&] { return "scratch of " + plan_->graph->nodes[node].describe(); },
              root()->bytes_in_use_, memory_limit_))
    ++allocations_;
  return slot.memory.get();
}

Tensor& ExecState::allocate(int value_id, DType dtype, const Shape& shape) {
  int s = plan_->slot_of_value[static_cast<size_t>(value_id)];
  Slot& slot = slots_[static_cast<size_t>(s)];
  size_t bytes = static_cast<size_t>(checked_numel(shape)) * dtype_size(dtype);
  if (reserve(slot.memory, slot.capacity, bytes,
              [&] { return "value '" + plan_->graph->values[static_cast<size_t>(value_id)].name + "'"; },
              root()->bytes_in_use_, memory_limit_))
    ++allocations_;
  Tensor& t = computed_[static_cast<size_t>(value_id)];
  t = Tensor::view(dtype, shape, slot.memory.get(), slot.memory);
  env_[static_cast<size_t>(value_id)] = &t;
  return t;
}

bool ExecState::detach(int id) {
  const int s = plan_->slot_of_value[static_cast<size_t>(id)];
  if (s < 0 || env_[static_cast<size_t>(id)] != &computed_[static_cast<size_t>(id)]) return false;
  Slot& slot = slots_[static_cast<size_t>(s)];
  if (!slot.memory || slot.memory.get() != computed_[static_cast<size_t>(id)].raw()) return false;
  root()->bytes_in_use_ -= slot.capacity;
  slot.memory.reset();
  slot.capacity = 0;
  return true;
}

size_t ExecState::allocations() const {
  size_t n = allocations_;
  for (const auto& [key, child] : children_) n += child->allocations();
  return n;
}

void ExecState::run(const std::vector<const Tensor*>& inputs) {
  const Graph& g = *plan_->graph;
  SY_CHECK(inputs.size() == g.inputs.size(), "graph '" + g.name + "' expects " + std::to_string(g.inputs.size()) +
                                                  " inputs, got " + std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) env_[static_cast<size_t>(g.inputs[i])] = inputs[i];
  for (size_t v = 0; v < g.values.size(); ++v)
    if (g.values[v].from_outer_scope) {
      const Tensor* t = parent_ ? parent_->lookup_outer(g.values[v].name) : nullptr;
      SY_CHECK(t, "graph '" + g.name + "': outer-scope value '" + g.values[v].name + "' is not available");
      env_[v] = t;
    }
  if (!context_) context_ = std::make_unique<NodeContext>(*this);
  NodeContext& ctx = *context_;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ctx.bind(i);
    try {
      plan_->kernels[i]->compute(ctx);
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg.find("node '") == std::string::npos) throw Error(g.nodes[i].describe() + ": " + msg);
      throw;
    }
    for (int out : g.nodes[i].outputs)
      SY_CHECK(out < 0 || env_[static_cast<size_t>(out)], g.nodes[i].describe() + ": kernel did not produce output '" +
                                                              g.values[static_cast<size_t>(out)].name + "'");
  }
}

}  // namespace switchyard
