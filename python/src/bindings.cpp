// Python bindings: switchyard.InferenceSession (shaped like ONNX Runtime's) and
// switchyard.AsyncInferQueue (shaped like OpenVINO's). NumPy inputs that are C-contiguous and of the
// model's dtype are bound without a copy; the GIL is released while the engine computes.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <mutex>

#include "switchyard/async_queue.h"
#include "switchyard/engine.h"

namespace py = pybind11;
using namespace switchyard;

namespace {

DType dtype_of(const py::dtype& d) {
  const char kind = d.kind();
  const auto size = d.itemsize();
  if (kind == 'f') return size == 4 ? DType::kFloat32 : size == 8 ? DType::kFloat64 : size == 2 ? DType::kFloat16 : DType::kUndefined;
  if (kind == 'i') return size == 8 ? DType::kInt64 : size == 4 ? DType::kInt32 : size == 2 ? DType::kInt16 : DType::kInt8;
  if (kind == 'u') return size == 1 ? DType::kUInt8 : size == 2 ? DType::kUInt16 : size == 4 ? DType::kUInt32 : DType::kUInt64;
  if (kind == 'b') return DType::kBool;
  return DType::kUndefined;
}

py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::kFloat32: return py::dtype("float32");
    case DType::kFloat64: return py::dtype("float64");
    case DType::kFloat16: return py::dtype("float16");
    case DType::kInt64: return py::dtype("int64");
    case DType::kInt32: return py::dtype("int32");
    case DType::kInt16: return py::dtype("int16");
    case DType::kInt8: return py::dtype("int8");
    case DType::kUInt8: return py::dtype("uint8");
    case DType::kUInt16: return py::dtype("uint16");
    case DType::kUInt32: return py::dtype("uint32");
    case DType::kUInt64: return py::dtype("uint64");
    case DType::kBool: return py::dtype("bool");
    default: throw Error(std::string("dtype ") + dtype_name(t) + " has no NumPy equivalent");
  }
}

std::string onnx_type_name(DType t) {
  static const std::map<DType, std::string> names = {
      {DType::kFloat32, "tensor(float)"}, {DType::kFloat64, "tensor(double)"}, {DType::kFloat16, "tensor(float16)"},
      {DType::kBFloat16, "tensor(bfloat16)"}, {DType::kInt64, "tensor(int64)"}, {DType::kInt32, "tensor(int32)"},
      {DType::kInt8, "tensor(int8)"}, {DType::kUInt8, "tensor(uint8)"}, {DType::kBool, "tensor(bool)"}};
  auto it = names.find(t);
  return it == names.end() ? std::string("tensor(") + dtype_name(t) + ")" : it->second;
}

// Wraps a NumPy array as a tensor without copying when it is C-contiguous; otherwise makes a
// C-contiguous copy, kept alive in `keep`.
Tensor as_tensor(const std::string& name, const py::handle& obj, std::vector<py::object>& keep) {
  py::array arr = py::reinterpret_borrow<py::object>(obj);
  if (!py::isinstance<py::array>(obj)) arr = py::array::ensure(obj);
  if (!arr) throw Error("input '" + name + "' is not convertible to a NumPy array");
  if (!(arr.flags() & py::array::c_style)) arr = py::array::ensure(arr, py::array::c_style);
  DType dt = dtype_of(arr.dtype());
  if (dt == DType::kUndefined) throw Error("input '" + name + "': unsupported NumPy dtype " + std::string(py::str(arr.dtype())));
  Shape shape(arr.shape(), arr.shape() + arr.ndim());
  keep.push_back(arr);
  return Tensor::wrap(dt, shape, const_cast<void*>(arr.data()));
}

// Zero-copy: the array's base keeps the tensor (and so its buffer) alive.
py::array to_numpy_owned(Tensor t) {
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  auto* holder = new Tensor(std::move(t));
  py::capsule base(holder, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(numpy_dtype(holder->dtype()), shape, holder->raw(), base);
}

py::array to_numpy(const Tensor& t) {
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  py::array out(numpy_dtype(t.dtype()), shape);
  if (t.nbytes()) std::memcpy(out.mutable_data(), t.raw(), t.nbytes());
  return out;
}

struct NodeArg {
  std::string name, type;
  std::vector<py::object> shape;  // int or the symbolic dim's name
};

NodeArg node_arg(const PortInfo& p) {
  NodeArg a{p.name, onnx_type_name(p.dtype), {}};
  for (size_t i = 0; i < p.shape.size(); ++i)
    a.shape.push_back(p.shape[i] >= 0 ? py::object(py::int_(p.shape[i])) : py::object(py::str(p.dim_names[i])));
  return a;
}

constexpr size_t kHandOverBytes = 64 * 1024;

class Session {
 public:
  Session(const std::string& path, int threads, const std::string& hint, const std::string& precision, int streams,
          bool fuse_moe, size_t memory_limit_bytes, int auto_batch, int weight_group,
          const std::map<std::string, std::string>& precision_overrides) {
    CompileOptions o;
    o.weight_group = weight_group;
    o.precision_overrides = precision_overrides;
    o.threads = threads;
    o.hint = parse_performance_hint(hint);
    o.precision = precision;
    o.streams = streams;
    o.fuse_moe = fuse_moe;
    o.memory_limit_bytes = memory_limit_bytes;
    o.auto_batch = auto_batch;
    model_ = Engine().compile(path, o);
  }

  std::vector<py::array> run(const std::optional<std::vector<std::string>>& output_names, const py::dict& feeds) {
    std::vector<py::object> keep;
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& [k, v] : feeds) {
      std::string name = py::str(k);
      tensors.emplace_back(name, as_tensor(name, v, keep));
    }
    std::vector<size_t> wanted = output_indices(output_names);
    // One request per calling thread and session: sessions are safe to share between threads.
    InferRequest& request = thread_request();
    for (const auto& [name, t] : tensors) request.set_input(name, t);
    last_input_pointers_.clear();
    for (const auto& [name, t] : tensors) last_input_pointers_[name] = reinterpret_cast<uintptr_t>(t.raw());
    {
      py::gil_scoped_release release;
      request.infer();
    }
    // Large outputs are handed over without a copy (the request allocates a new buffer next call);
    // small ones are copied, which is cheaper than a fresh allocation.
    std::vector<py::array> out;
    for (size_t i : wanted) {
      const Tensor& t = request.output(i);
      out.push_back(t.nbytes() >= kHandOverBytes && t.dtype() != DType::kBool ? to_numpy_owned(request.take_output(i))
                                                                               : to_numpy(t));
    }
    return out;
  }

  std::vector<size_t> output_indices(const std::optional<std::vector<std::string>>& names) const {
    std::vector<size_t> idx;
    const auto& outs = model_.outputs();
    if (!names || names->empty()) {
      for (size_t i = 0; i < outs.size(); ++i) idx.push_back(i);
      return idx;
    }
    for (const auto& n : *names) {
      size_t i = 0;
      while (i < outs.size() && outs[i].name != n) ++i;
      if (i == outs.size()) throw Error("unknown output '" + n + "'");
      idx.push_back(i);
    }
    return idx;
  }

  InferRequest& thread_request() {
    std::lock_guard<std::mutex> lock(mutex_);
    auto id = std::this_thread::get_id();
    auto it = requests_.find(id);
    if (it == requests_.end()) it = requests_.emplace(id, std::make_unique<InferRequest>(model_.create_infer_request())).first;
    return *it->second;
  }

  CompiledModel model_;
  std::mutex mutex_;
  std::map<std::thread::id, std::unique_ptr<InferRequest>> requests_;
  std::map<std::string, uintptr_t> last_input_pointers_;
};

// The request handed to AsyncInferQueue callbacks.
struct RequestView {
  InferRequest* request;
  const CompiledModel* model;
  py::object error;
  std::vector<py::array> outputs() const {
    std::vector<py::array> out;
    for (size_t i = 0; i < model->outputs().size(); ++i) out.push_back(to_numpy(request->output(i)));
    return out;
  }
  py::array get_output(const py::object& key) const {
    if (py::isinstance<py::int_>(key)) return to_numpy(request->output(key.cast<size_t>()));
    return to_numpy(request->output(key.cast<std::string>()));
  }
};

class PyAsyncQueue {
 public:
  PyAsyncQueue(Session& session, size_t jobs) : session_(session), queue_(session.model_, jobs), keep_(queue_.size()) {
    queue_.set_callback([this](InferRequest& request, void* slot_ptr, std::exception_ptr error) {
      py::gil_scoped_acquire gil;
      auto* slot = static_cast<Slot*>(slot_ptr);
      py::object err = py::none();
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          err = py::str(e.what());
        }
      }
      RequestView view{&request, &session_.model_, err};
      if (callback_) {
        try {
          callback_(py::cast(view), slot->userdata);
        } catch (py::error_already_set& e) {
          e.discard_as_unraisable("switchyard.AsyncInferQueue callback");
        }
      }
      slot->userdata = py::none();
      slot->arrays.clear();
      slot->in_use = false;
    });
  }

  void set_callback(py::function f) { callback_ = std::move(f); }

  void start_async(const py::dict& feeds, py::object userdata) {
    Slot* slot = free_slot();
    slot->in_use = true;
    slot->userdata = std::move(userdata);
    std::map<std::string, Tensor> inputs;
    for (const auto& [k, v] : feeds) {
      std::string name = py::str(k);
      inputs.emplace(name, as_tensor(name, v, slot->arrays));
    }
    try {
      py::gil_scoped_release release;  // may block until a job is free; callbacks need the GIL
      queue_.start_async(inputs, slot);
    } catch (...) {
      slot->arrays.clear();
      slot->userdata = py::none();
      slot->in_use = false;
      throw;
    }
  }

  void wait_all() {
    py::gil_scoped_release release;
    queue_.wait_all();
  }

  bool is_ready() const { return queue_.is_ready(); }
  size_t size() const { return queue_.size(); }

 private:
  struct Slot {
    py::object userdata = py::none();
    std::vector<py::object> arrays;  // inputs kept alive until the job's callback
    bool in_use = false;
  };
  // Slots are touched only under the GIL; there are as many as jobs, plus slack for the moment a
  // job's callback has run but its request is not yet back in the queue.
  Slot* free_slot() {
    for (auto& s : keep_)
      if (!s.in_use) return &s;
    keep_.emplace_back();
    return &keep_.back();
  }

  Session& session_;
  AsyncInferQueue queue_;
  std::deque<Slot> keep_;
  py::function callback_;
};

}  // namespace

PYBIND11_MODULE(_switchyard, m) {
  m.doc() = "Switchyard: a sparse Mixture-of-Experts inference engine for ONNX models";
  py::register_exception<Error>(m, "SwitchyardError", PyExc_RuntimeError);

  py::class_<NodeArg>(m, "NodeArg")
      .def_readonly("name", &NodeArg::name)
      .def_readonly("type", &NodeArg::type)
      .def_readonly("shape", &NodeArg::shape)
      .def("__repr__", [](const NodeArg& a) { return "NodeArg(name='" + a.name + "', type='" + a.type + "')"; });

  m.def("kernel_isa", &switchyard::kernel_isa, "The ISA the CPU kernels run with: avx512, avx2 or portable (SWITCHYARD_ISA caps it).");

  py::class_<Session>(m, "InferenceSession")
      .def(py::init<const std::string&, int, const std::string&, const std::string&, int, bool, size_t, int, int,
                    const std::map<std::string, std::string>&>(),
           py::arg("path"), py::arg("threads") = 0, py::arg("hint") = "latency", py::arg("precision") = "fp32",
           py::arg("streams") = 0, py::arg("fuse_moe") = true, py::arg("memory_limit_bytes") = 0, py::arg("auto_batch") = -1,
           py::arg("weight_group") = 32, py::arg("precision_overrides") = std::map<std::string, std::string>{})
      .def("run", &Session::run, py::arg("output_names"), py::arg("input_feed"))
      .def("get_inputs", [](const Session& s) {
        std::vector<NodeArg> v;
        for (const auto& p : s.model_.inputs()) v.push_back(node_arg(p));
        return v;
      })
      .def("get_outputs", [](const Session& s) {
        std::vector<NodeArg> v;
        for (const auto& p : s.model_.outputs()) v.push_back(node_arg(p));
        return v;
      })
      .def_property_readonly("compile_notes", [](const Session& s) { return s.model_.compile_notes(); })
      .def_property_readonly("streams", [](const Session& s) { return s.model_.streams(); })
      .def_property_readonly("auto_batch", [](const Session& s) { return s.model_.auto_batch(); })
      .def("_last_input_pointers", [](const Session& s) { return s.last_input_pointers_; });

  py::class_<RequestView>(m, "InferRequest")
      .def_property_readonly("outputs", &RequestView::outputs)
      .def("get_output", &RequestView::get_output)
      .def_readonly("error", &RequestView::error);

  py::class_<PyAsyncQueue>(m, "AsyncInferQueue")
      .def(py::init<Session&, size_t>(), py::arg("session"), py::arg("jobs") = 0, py::keep_alive<1, 2>())
      .def("set_callback", &PyAsyncQueue::set_callback)
      .def("start_async", &PyAsyncQueue::start_async, py::arg("inputs"), py::arg("userdata") = py::none())
      .def("wait_all", &PyAsyncQueue::wait_all)
      .def("is_ready", &PyAsyncQueue::is_ready)
      .def("__len__", &PyAsyncQueue::size);
}
