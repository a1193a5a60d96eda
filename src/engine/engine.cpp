#include "switchyard/engine.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "runtime/stream_executor.h"
#include "switchyard/async_queue.h"

#include "kernels/dispatch.h"
#include "compiler/compile.h"
#include "onnx/onnx_import.h"
#include "runtime/executor.h"

namespace switchyard {


struct InferRequestImpl;

// A stream's own request state for stacked runs (auto-batching): the stacked inputs and the buffers
// of a run over all of them.
struct BatchContext {
  ThreadPool pool;
  ExecState state;
  std::vector<Tensor> inputs, storage;  // stacked inputs: views of storage that only ever grows
  std::vector<const Tensor*> input_ptrs;
  BatchContext(const std::shared_ptr<const Plan>& plan, int threads, size_t n_inputs)
      : pool(threads), state(plan, &pool, nullptr), inputs(n_inputs), storage(n_inputs) {}
};

// Points `view` at `storage` with this dtype and shape, growing storage (never shrinking) if needed:
// the stacked size changes from run to run, and a fresh buffer each time would cost page faults.
static void fit_view(Tensor& storage, Tensor& view, DType dtype, const Shape& shape) {
  size_t bytes = dtype_size(dtype);
  for (int64_t d : shape) bytes *= static_cast<size_t>(d);
  if (!storage.defined() || storage.nbytes() < bytes)
    storage = Tensor(DType::kUInt8, {static_cast<int64_t>(std::max<size_t>(bytes, storage.defined() ? 2 * storage.nbytes() : 0))});
  if (view.raw() != storage.raw() || view.dtype() != dtype || view.shape() != shape) view = Tensor::wrap(dtype, shape, storage.raw());
}

struct CompiledModelImpl {
  Model model;
  std::shared_ptr<const Plan> plan;
  std::vector<PortInfo> inputs, outputs;
  int threads = 1;             // per request (per stream)
  size_t memory_limit = 0;     // per request's buffers, after the weights (0: none)
  int streams = 1;
  int auto_batch = 1;          // most requests per stacked run (1: off)
  std::string auto_batch_note;
  mutable std::atomic<uint64_t> batched_runs{0}, batched_requests{0};
  // Started on the first start_async; shared by all requests of the model.
  mutable std::once_flag executor_once;
  mutable std::vector<std::unique_ptr<BatchContext>> batch_contexts;  // per stream
  mutable std::unique_ptr<StreamExecutor> executor;
  StreamExecutor& streams_executor() const;
  void run_jobs(int stream, const StreamExecutor::Job* jobs, size_t n) const;
  bool run_stacked(BatchContext& ctx, InferRequestImpl* const* requests, size_t n) const;
  // Non-zero key shared by requests that can be stacked (same dtypes and trailing dims).
  uint64_t batch_key(const InferRequestImpl& r) const;
};

struct InferRequestImpl {
  std::shared_ptr<const CompiledModelImpl> model;
  ThreadPool pool;
  ExecState state;
  std::vector<Tensor> bound;        // per model input
  std::vector<bool> is_bound;
  std::vector<Tensor> outputs;      // per model output, valid after infer()
  bool has_run = false;
  // After a stacked run: this request's rows of every output, and the batch's telemetry.
  bool ran_stacked = false;
  std::vector<Tensor> own_outputs, own_storage, stacked_telemetry;
  // Async state.
  std::mutex mutex;
  std::condition_variable done;
  bool busy = false;
  std::exception_ptr error;
  std::function<void(std::exception_ptr)> callback;

  std::vector<const Tensor*> input_ptrs;  // reused by every run

  void run();  // the body of infer()
  void finish_async(std::exception_ptr error);  // error, callback, then not busy (in that order)

  explicit InferRequestImpl(std::shared_ptr<const CompiledModelImpl> m)
      : model(m), pool(m->threads), state(m->plan, &pool, nullptr), bound(m->inputs.size()),
        is_bound(m->inputs.size(), false), outputs(m->outputs.size()), own_outputs(m->outputs.size()),
        own_storage(m->outputs.size()) {
    state.set_memory_limit(m->memory_limit);
  }
};

StreamExecutor& CompiledModelImpl::streams_executor() const {
  std::call_once(executor_once, [this] {
    if (auto_batch > 1)
      for (int s = 0; s < streams; ++s) batch_contexts.push_back(std::make_unique<BatchContext>(plan, threads, inputs.size()));
    executor = std::make_unique<StreamExecutor>(
        streams, static_cast<size_t>(auto_batch),
        [this](int stream, const StreamExecutor::Job* jobs, size_t n) { run_jobs(stream, jobs, n); });
  });
  return *executor;
}

uint64_t CompiledModelImpl::batch_key(const InferRequestImpl& r) const {
  if (auto_batch <= 1) return 0;
  uint64_t h = 1469598103934665603ull;  // FNV-1a over dtypes and trailing dims
  auto mix = [&](uint64_t v) {
    h ^= v;
    h *= 1099511628211ull;
  };
  for (size_t i = 0; i < r.bound.size(); ++i) {
    if (!r.is_bound[i] || r.bound[i].rank() < 1) return 0;  // runs alone and reports its own error
    mix(static_cast<uint64_t>(r.bound[i].dtype()));
    mix(static_cast<uint64_t>(r.bound[i].rank()));
    for (int64_t d = 1; d < r.bound[i].rank(); ++d) mix(static_cast<uint64_t>(r.bound[i].dim(d)));
  }
  return h == 0 ? 1 : h;
}

// Stacks the requests' inputs along dim 0, runs once, and gives each request its rows of every
// output. False (nothing handed out) if the inputs do not line up or the run fails: the caller then
// runs the requests one by one, so that each gets its own result or error.
bool CompiledModelImpl::run_stacked(BatchContext& ctx, InferRequestImpl* const* requests, size_t n) const {
  int64_t total = 0;
  for (size_t r = 0; r < n; ++r) total += requests[r]->bound[0].dim(0);
  ctx.input_ptrs.clear();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& first = requests[0]->bound[i];
    Shape shape = first.shape();
    shape[0] = total;
    for (size_t r = 1; r < n; ++r) {
      const Tensor& t = requests[r]->bound[i];
      if (t.dtype() != first.dtype() || t.rank() != first.rank() || t.dim(0) != requests[r]->bound[0].dim(0)) return false;
      for (int64_t d = 1; d < t.rank(); ++d)
        if (t.dim(d) != first.dim(d)) return false;
    }
    if (first.dim(0) != requests[0]->bound[0].dim(0)) return false;  // every input's dim 0 is the batch
    Tensor& stacked = ctx.inputs[i];
    fit_view(ctx.storage[i], stacked, first.dtype(), shape);
    auto* dst = static_cast<char*>(stacked.raw());
    for (size_t r = 0; r < n; ++r) {
      const Tensor& t = requests[r]->bound[i];
      std::memcpy(dst, t.raw(), t.nbytes());
      dst += t.nbytes();
    }
    ctx.input_ptrs.push_back(&stacked);
  }
  try {
    ctx.state.run(ctx.input_ptrs);
  } catch (...) {
    return false;
  }
  const Graph& g = *model.graph;
  for (size_t o = 0; o < outputs.size(); ++o) {
    const Tensor* t = ctx.state.value(g.outputs[o]);
    if (!t || t->rank() < 1 || t->dim(0) != total) return false;
  }
  for (size_t o = 0; o < outputs.size(); ++o) {
    const Tensor& t = *ctx.state.value(g.outputs[o]);
    const size_t row_bytes = t.nbytes() / static_cast<size_t>(total);
    const auto* src = static_cast<const char*>(t.raw());
    for (size_t r = 0; r < n; ++r) {
      InferRequestImpl& req = *requests[r];
      Shape shape = t.shape();
      shape[0] = req.bound[0].dim(0);
      Tensor& own = req.own_outputs[o];
      fit_view(req.own_storage[o], own, t.dtype(), shape);
      std::memcpy(own.raw(), src, own.nbytes());
      src += static_cast<size_t>(shape[0]) * row_bytes;
      req.outputs[o] = own;
    }
  }
  for (size_t r = 0; r < n; ++r) {
    InferRequestImpl& req = *requests[r];
    req.stacked_telemetry.resize(g.telemetry.size());
    for (size_t i = 0; i < g.telemetry.size(); ++i) {
      const Tensor* t = ctx.state.value(g.telemetry[i]);
      Tensor& own = req.stacked_telemetry[i];
      if (!t) {
        own = Tensor();
        continue;
      }
      if (!own.defined() || own.shape() != t->shape() || own.dtype() != t->dtype()) own = Tensor(t->dtype(), t->shape());
      std::memcpy(own.raw(), t->raw(), t->nbytes());
    }
    req.ran_stacked = true;
    req.has_run = true;
  }
  batched_runs.fetch_add(1, std::memory_order_relaxed);
  batched_requests.fetch_add(n, std::memory_order_relaxed);
  return true;
}

void CompiledModelImpl::run_jobs(int stream, const StreamExecutor::Job* jobs, size_t n) const {
  InferRequestImpl* requests[256];
  bool stacked = false;
  if (n > 1) {
    for (size_t r = 0; r < n; ++r) requests[r] = static_cast<InferRequestImpl*>(jobs[r].request);
    stacked = run_stacked(*batch_contexts[static_cast<size_t>(stream)], requests, n);
  }
  for (size_t r = 0; r < n; ++r) {
    auto* req = static_cast<InferRequestImpl*>(jobs[r].request);
    std::exception_ptr error;
    if (!stacked) {
      try {
        req->run();
      } catch (...) {
        error = std::current_exception();
      }
    }
    req->finish_async(error);
  }
}

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
  const int wanted = options.auto_batch >= 0 ? options.auto_batch : (options.hint == PerformanceHint::kThroughput ? 64 : 1);
  CompiledGraph compiled = compile_graph(std::move(model), options, /*analyse_batching=*/wanted > 1);
  model = std::move(compiled.model);
  impl->plan = std::move(compiled.plan);
  if (options.memory_limit_bytes) impl->memory_limit = options.memory_limit_bytes - compiled.weight_bytes;
  for (int id : model.graph->inputs) impl->inputs.push_back(port_of(model.graph->values[static_cast<size_t>(id)]));
  for (int id : model.graph->outputs) impl->outputs.push_back(port_of(model.graph->values[static_cast<size_t>(id)]));
  int hw = static_cast<int>(std::thread::hardware_concurrency());
  const int total = options.threads > 0 ? options.threads : (hw > 0 ? hw : 1);
  int streams = options.streams > 0 ? options.streams : (options.hint == PerformanceHint::kThroughput ? total : 1);
  streams = std::max(1, std::min(streams, std::max(total, options.streams)));
  impl->streams = streams;
  impl->threads = std::max(1, total / streams);
  if (wanted > 1) {
    impl->auto_batch_note = compiled.batch_note;
    impl->auto_batch = impl->auto_batch_note.empty() ? std::min(wanted, 256) : 1;
  } else {
    impl->auto_batch_note = "off (latency hint or auto_batch <= 1)";
  }
  // Throughput hint on a model that auto-batches, streams not given: one single-threaded stream per
  // core but one, leaving a core to the application thread that submits requests. Measured on the
  // seed classifier on 2 cores (bench, 4 requests in flight): with a stream on every core the streams
  // and the submitting thread oversubscribe the cores and batch-1 requests fall to ~150 k/s; with one
  // stream of two threads, its OpenMP team spins against the submitting thread at larger batches.
  if (options.hint == PerformanceHint::kThroughput && options.streams <= 0 && impl->auto_batch > 1) {
    impl->streams = std::max(1, total - 1);
    impl->threads = 1;
  }
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
int CompiledModel::auto_batch() const { return impl_->auto_batch; }
const std::string& CompiledModel::auto_batch_note() const { return impl_->auto_batch_note; }
AutoBatchStats CompiledModel::auto_batch_stats() const {
  return {impl_->batched_runs.load(std::memory_order_relaxed), impl_->batched_requests.load(std::memory_order_relaxed)};
}

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
  const CompiledModelImpl& model = *impl->model;
  model.streams_executor().submit({impl, model.batch_key(*impl)});
}

void InferRequestImpl::finish_async(std::exception_ptr err) {
  std::function<void(std::exception_ptr)> cb;
  {
    std::lock_guard<std::mutex> lock(mutex);
    error = err;
    cb = callback;
  }
  if (cb) {
    try {
      cb(err);
    } catch (...) {
      // A throwing callback must not take the stream down; its error is the request's.
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
    }
  }
  // Notify under the lock: once a waiter sees busy == false it may destroy the request, so the
  // stream must not touch it after unlocking.
  std::lock_guard<std::mutex> lock(mutex);
  busy = false;
  done.notify_all();
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
  ran_stacked = false;
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

namespace {
// The telemetry values of the last run whose names end in `suffix`, by layer name.
std::vector<std::pair<std::string, Tensor>> telemetry_named(const InferRequestImpl& r, const std::string& suffix) {
  SY_CHECK(r.has_run, "expert telemetry requested before a successful infer()");
  std::vector<std::pair<std::string, Tensor>> out;
  const Graph& g = *r.model->model.graph;
  for (size_t i = 0; i < g.telemetry.size(); ++i) {
    const int id = g.telemetry[i];
    std::string name = g.values[static_cast<size_t>(id)].name;
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    name.resize(name.size() - suffix.size());
    const Tensor* t = r.ran_stacked ? (r.stacked_telemetry[i].defined() ? &r.stacked_telemetry[i] : nullptr) : r.state.value(id);
    if (t) out.emplace_back(name, *t);
  }
  return out;
}
}  // namespace

std::vector<std::pair<std::string, Tensor>> InferRequest::expert_counts() const {
  return telemetry_named(*impl_, ".expert_counts");
}

std::vector<std::pair<std::string, Tensor>> InferRequest::block_experts() const {
  return telemetry_named(*impl_, ".block_experts");
}

Tensor InferRequest::take_output(size_t index) {
  const Tensor& out = output(index);
  if (impl_->ran_stacked) {  // the request's own copy of its rows: hand it over, copy next time
    Tensor t = out;
    impl_->own_outputs[index] = Tensor();
    impl_->own_storage[index] = Tensor();
    return t;
  }
  const int id = impl_->model->model.graph->outputs[index];
  // The same value may be several outputs: only hand the buffer over once.
  for (size_t j = 0; j < index; ++j)
    if (impl_->model->model.graph->outputs[j] == id) return out.clone();
  Tensor t = out;
  return impl_->state.detach(id) ? t : out.clone();
}

const Tensor& InferRequest::output(const std::string& name) const {
  return output(index_of(impl_->model->outputs, name, "output"));
}

std::vector<std::string> supported_operators() { return OpRegistry::instance().list(); }

std::string kernel_isa() { return isa_name(active_isa()); }

}  // namespace switchyard
