#include "switchyard/engine.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "runtime/stream_executor.h"
#include "switchyard/async_queue.h"

#include "graph/passes/pass_pipeline.h"
#include "onnx/onnx_import.h"
#include "runtime/executor.h"

namespace switchyard {

struct CompiledModelImpl {
  Model model;
  std::shared_ptr<const Plan> plan;
  std::vector<PortInfo> inputs, outputs;
  int threads = 1;             // per request (per stream)
  size_t memory_limit = 0;     // per request's buffers, after the weights (0: none)
  int streams = 1;
  // Started on the first start_async; shared by all requests of the model.
  mutable std::once_flag executor_once;
  mutable std::unique_ptr<StreamExecutor> executor;
  StreamExecutor& streams_executor() const {
    std::call_once(executor_once, [this] { executor = std::make_unique<StreamExecutor>(streams); });
    return *executor;
  }
};

struct InferRequestImpl {
  std::shared_ptr<const CompiledModelImpl> model;
  ThreadPool pool;
  ExecState state;
  std::vector<Tensor> bound;        // per model input
  std::vector<bool> is_bound;
  std::vector<Tensor> outputs;      // per model output, valid after infer()
  bool has_run = false;
  // Async state.
  std::mutex mutex;
  std::condition_variable done;
  bool busy = false;
  std::exception_ptr error;
  std::function<void(std::exception_ptr)> callback;

  std::vector<const Tensor*> input_ptrs;  // reused by every run

  void run();  // the body of infer()

  explicit InferRequestImpl(std::shared_ptr<const CompiledModelImpl> m)
      : model(m), pool(m->threads), state(m->plan, &pool, nullptr), bound(m->inputs.size()),
        is_bound(m->inputs.size(), false), outputs(m->outputs.size()) {
    state.set_memory_limit(m->memory_limit);
  }
};

namespace {

PortInfo port_of(const Value& v) {
  PortInfo p;
  p.name = v.name;
  p.dtype = v.dtype;
  if (v.shape) {
    p.rank_known = true;
    for (const Dim& d : *v.shape) {
      p.shape.push_back(d.known() ? d.value : -1);
      p.dim_names.push_back(d.known() ? "" : d.param);
    }
  }
  return p;
}

size_t index_of(const std::vector<PortInfo>& ports, const std::string& name, const char* kind) {
  for (size_t i = 0; i < ports.size(); ++i)
    if (ports[i].name == name) return i;
  std::string known;
  for (const auto& p : ports) known += (known.empty() ? "" : ", ") + p.name;
  throw Error(std::string("unknown ") + kind + " '" + name + "' (model " + kind + "s: " + known + ")");
}

std::shared_ptr<const CompiledModelImpl> finish_compile(Model model, const CompileOptions& options) {
  auto impl = std::make_shared<CompiledModelImpl>();
  PassOptions passes;
  passes.fuse_moe = options.fuse_moe;
  run_graph_passes(model, passes);
  auto missing = unsupported_ops(*model.graph);
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    throw Error("unsupported operator(s): " + list);
  }
  if (options.memory_limit_bytes) {
    size_t weights = 0;
    for (const Value& v : model.graph->values)
      if (v.constant) weights += v.constant->nbytes();
    SY_CHECK(weights < options.memory_limit_bytes, "memory ceiling of " + std::to_string(options.memory_limit_bytes) +
                                                       " bytes exceeded: the weights alone take " + std::to_string(weights));
    impl->memory_limit = options.memory_limit_bytes - weights;
  }
  impl->plan = compile_plan(model.graph);
  for (int id : model.graph->inputs) impl->inputs.push_back(port_of(model.graph->values[static_cast<size_t>(id)]));
  for (int id : model.graph->outputs) impl->outputs.push_back(port_of(model.graph->values[static_cast<size_t>(id)]));
  SY_CHECK(options.precision == "fp32" || options.precision.empty(),
           "precision '" + options.precision + "' is not supported yet (fp32)");
  int hw = static_cast<int>(std::thread::hardware_concurrency());
  const int total = options.threads > 0 ? options.threads : (hw > 0 ? hw : 1);
  int streams = options.streams > 0 ? options.streams : (options.hint == PerformanceHint::kThroughput ? total : 1);
  streams = std::max(1, std::min(streams, std::max(total, options.streams)));
  impl->streams = streams;
  impl->threads = std::max(1, total / streams);
  impl->model = std::move(model);
  return impl;
}

}  // namespace

CompiledModel Engine::compile(const std::string& model_path, const CompileOptions& options) const {
  CompiledModel cm;
  cm.impl_ = finish_compile(load_onnx_file(model_path), options);
  return cm;
}

CompiledModel Engine::compile_bytes(const std::string& model_bytes, const CompileOptions& options) const {
  CompiledModel cm;
  cm.impl_ = finish_compile(load_onnx_bytes(model_bytes, "", "model bytes"), options);
  return cm;
}

const std::vector<PortInfo>& CompiledModel::inputs() const { return impl_->inputs; }
const std::vector<PortInfo>& CompiledModel::outputs() const { return impl_->outputs; }
const std::map<std::string, std::string>& CompiledModel::metadata() const { return impl_->model.metadata; }
const std::vector<std::string>& CompiledModel::compile_notes() const { return impl_->model.graph->notes; }
int CompiledModel::streams() const { return impl_->streams; }
int CompiledModel::threads_per_stream() const { return impl_->threads; }

PerformanceHint parse_performance_hint(const std::string& name) {
  if (name == "latency" || name == "LATENCY") return PerformanceHint::kLatency;
  if (name == "throughput" || name == "THROUGHPUT") return PerformanceHint::kThroughput;
  throw Error("unknown performance hint '" + name + "' (latency, throughput)");
}

InferRequest CompiledModel::create_infer_request() const {
  return InferRequest(std::make_unique<InferRequestImpl>(impl_));
}

std::map<std::string, Tensor> CompiledModel::run(const std::map<std::string, Tensor>& inputs) const {
  InferRequest request = create_infer_request();
  for (const auto& [name, t] : inputs) request.set_input(name, t);
  request.infer();
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < impl_->outputs.size(); ++i) out[impl_->outputs[i].name] = request.output(i).clone();
  return out;
}

InferRequest::InferRequest(std::unique_ptr<InferRequestImpl> impl) : impl_(std::move(impl)) {}
InferRequest::InferRequest(InferRequest&&) noexcept = default;
InferRequest& InferRequest::operator=(InferRequest&&) noexcept = default;
InferRequest::~InferRequest() {
  if (!impl_) return;
  std::unique_lock<std::mutex> lock(impl_->mutex);  // never destroy a request a stream is running
  impl_->done.wait(lock, [this] { return !impl_->busy; });
}

void InferRequest::set_input(const std::string& name, const Tensor& tensor) {
  const auto& ports = impl_->model->inputs;
  size_t i = index_of(ports, name, "input");
  const PortInfo& p = ports[i];
  SY_CHECK(p.dtype == DType::kUndefined || tensor.dtype() == p.dtype,
           "input '" + name + "': expected dtype " + dtype_name(p.dtype) + ", got " + dtype_name(tensor.dtype()));
  if (p.rank_known) {
    SY_CHECK(tensor.rank() == static_cast<int64_t>(p.shape.size()),
             "input '" + name + "': expected rank " + std::to_string(p.shape.size()) + ", got shape " +
                 shape_str(tensor.shape()));
    for (size_t d = 0; d < p.shape.size(); ++d)
      SY_CHECK(p.shape[d] < 0 || p.shape[d] == tensor.shape()[d],
               "input '" + name + "': dimension " + std::to_string(d) + " must be " + std::to_string(p.shape[d]) +
                   ", got shape " + shape_str(tensor.shape()));
  }
  impl_->bound[i] = tensor;
  impl_->is_bound[i] = true;
}

void InferRequest::infer() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    SY_CHECK(!impl_->busy, "infer() on a request that is still running asynchronously");
  }
  impl_->run();
}

void InferRequest::start_async() {
  InferRequestImpl* impl = impl_.get();
  {
    std::lock_guard<std::mutex> lock(impl->mutex);
    SY_CHECK(!impl->busy, "start_async() on a request that is still running");
    impl->busy = true;
    impl->error = nullptr;
  }
  impl->model->streams_executor().submit([impl] {
    std::exception_ptr error;
    try {
      impl->run();
    } catch (...) {
      error = std::current_exception();
    }
    std::function<void(std::exception_ptr)> callback;
    {
      std::lock_guard<std::mutex> lock(impl->mutex);
      impl->error = error;
      callback = impl->callback;
    }
    if (callback) {
      try {
        callback(error);
      } catch (...) {
        // A throwing callback must not take the stream down; its error is the request's.
        std::lock_guard<std::mutex> lock(impl->mutex);
        if (!impl->error) impl->error = std::current_exception();
      }
    }
    // Notify under the lock: once a waiter sees busy == false it may destroy the request, so the
    // stream must not touch it after unlocking.
    std::lock_guard<std::mutex> lock(impl->mutex);
    impl->busy = false;
    impl->done.notify_all();
  });
}

void InferRequest::wait() {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  impl_->done.wait(lock, [this] { return !impl_->busy; });
  if (impl_->error) std::rethrow_exception(impl_->error);
}

bool InferRequest::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  return impl_->done.wait_for(lock, timeout, [this] { return !impl_->busy; });
}

void InferRequest::set_callback(std::function<void(std::exception_ptr)> callback) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->callback = std::move(callback);
}

void InferRequestImpl::run() {
  const auto& m = *model;
  input_ptrs.clear();
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    SY_CHECK(is_bound[i], "input '" + m.inputs[i].name + "' was not set");
    input_ptrs.push_back(&bound[i]);
  }
  has_run = false;
  state.run(input_ptrs);
  for (size_t i = 0; i < m.outputs.size(); ++i) {
    int id = m.model.graph->outputs[i];
    const Tensor* t = state.value(id);
    SY_CHECK(t, "output '" + m.outputs[i].name + "' was not computed");
    outputs[i] = *t;
  }
  has_run = true;
}

const Tensor& InferRequest::output(size_t index) const {
  SY_CHECK(impl_->has_run, "output requested before a successful infer()");
  SY_CHECK(index < impl_->outputs.size(), "output index " + std::to_string(index) + " is out of range");
  return impl_->outputs[index];
}

std::vector<std::pair<std::string, Tensor>> InferRequest::expert_counts() const {
  SY_CHECK(impl_->has_run, "expert counts requested before a successful infer()");
  std::vector<std::pair<std::string, Tensor>> out;
  const Graph& g = *impl_->model->model.graph;
  for (int id : g.telemetry) {
    const Tensor* t = impl_->state.value(id);
    std::string name = g.values[static_cast<size_t>(id)].name;
    const std::string suffix = ".expert_counts";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      name.resize(name.size() - suffix.size());
    if (t) out.emplace_back(name, *t);
  }
  return out;
}

const Tensor& InferRequest::output(const std::string& name) const {
  return output(index_of(impl_->model->outputs, name, "output"));
}

std::vector<std::string> supported_operators() { return OpRegistry::instance().list(); }

}  // namespace switchyard
