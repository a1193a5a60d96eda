#include "server/grpc_frontend.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "kserve_predict_v2.grpc.pb.h"
#include "server/datatype.h"
#include "server/job_builder.h"
#include "server/server_info.h"
#include "switchyard/error.h"

namespace switchyard::serve {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

grpc::Status status_of(JobStatus s, const std::string& message) {
  switch (s) {
    case JobStatus::kOk: return grpc::Status::OK;
    case JobStatus::kBadRequest: return {grpc::StatusCode::INVALID_ARGUMENT, message};
    case JobStatus::kUnavailable: return {grpc::StatusCode::UNAVAILABLE, message};
    case JobStatus::kTimeout: return {grpc::StatusCode::DEADLINE_EXCEEDED, message};
  }
  return {grpc::StatusCode::INTERNAL, message};
}

// Typed contents (the alternative to raw bytes) into the input's own storage.
template <typename Src>
void copy_typed(const google::protobuf::RepeatedField<Src>& src, Tensor& dst, const std::string& name) {
  SY_CHECK(src.size() == dst.numel(), "input '" + name + "': " + std::to_string(src.size()) + " values in contents, expected " +
                                          std::to_string(dst.numel()));
  for (int64_t i = 0; i < dst.numel(); ++i) {
    const Src v = src.Get(static_cast<int>(i));
    switch (dst.dtype()) {
      case DType::kFloat32: static_cast<float*>(dst.raw())[i] = static_cast<float>(v); break;
      case DType::kFloat64: static_cast<double*>(dst.raw())[i] = static_cast<double>(v); break;
      case DType::kInt64: static_cast<int64_t*>(dst.raw())[i] = static_cast<int64_t>(v); break;
      case DType::kInt32: static_cast<int32_t*>(dst.raw())[i] = static_cast<int32_t>(v); break;
      case DType::kInt16: static_cast<int16_t*>(dst.raw())[i] = static_cast<int16_t>(v); break;
      case DType::kInt8: static_cast<int8_t*>(dst.raw())[i] = static_cast<int8_t>(v); break;
      case DType::kUInt64: static_cast<uint64_t*>(dst.raw())[i] = static_cast<uint64_t>(v); break;
      case DType::kUInt32: static_cast<uint32_t*>(dst.raw())[i] = static_cast<uint32_t>(v); break;
      case DType::kUInt16: static_cast<uint16_t*>(dst.raw())[i] = static_cast<uint16_t>(v); break;
      case DType::kUInt8: static_cast<uint8_t*>(dst.raw())[i] = static_cast<uint8_t>(v); break;
      case DType::kBool: static_cast<bool*>(dst.raw())[i] = static_cast<bool>(v); break;
      default: throw Error("input '" + name + "': FP16 and BF16 data must come as raw_input_contents");
    }
  }
}

// How many values the typed contents of `datatype` hold (checked against the shape before allocating).
int64_t contents_size(const ModelInferRequest::InferInputTensor& in) {
  const auto& c = in.contents();
  switch (dtype_from_protocol(in.datatype())) {
    case DType::kFloat32: return c.fp32_contents_size();
    case DType::kFloat64: return c.fp64_contents_size();
    case DType::kInt64: return c.int64_contents_size();
    case DType::kInt32: case DType::kInt16: case DType::kInt8: return c.int_contents_size();
    case DType::kUInt64: return c.uint64_contents_size();
    case DType::kUInt32: case DType::kUInt16: case DType::kUInt8: return c.uint_contents_size();
    case DType::kBool: return c.bool_contents_size();
    case DType::kFloat16: case DType::kBFloat16:
      throw Error("input '" + in.name() + "': FP16 and BF16 data must come as raw_input_contents");
    default: return 0;  // an unknown datatype: the job builder says so
  }
}

void decode_contents(const ModelInferRequest::InferInputTensor& in, Tensor& dst) {
  const auto& c = in.contents();
  switch (dst.dtype()) {
    case DType::kFloat32: copy_typed(c.fp32_contents(), dst, in.name()); break;
    case DType::kFloat64: copy_typed(c.fp64_contents(), dst, in.name()); break;
    case DType::kInt64: copy_typed(c.int64_contents(), dst, in.name()); break;
    case DType::kInt32: case DType::kInt16: case DType::kInt8: copy_typed(c.int_contents(), dst, in.name()); break;
    case DType::kUInt64: copy_typed(c.uint64_contents(), dst, in.name()); break;
    case DType::kUInt32: case DType::kUInt16: case DType::kUInt8: copy_typed(c.uint_contents(), dst, in.name()); break;
    case DType::kBool: copy_typed(c.bool_contents(), dst, in.name()); break;
    default: throw Error("input '" + in.name() + "': FP16 and BF16 data must come as raw_input_contents");
  }
}

// The request's "timeout" parameter (Triton: microseconds), else the call's gRPC deadline.
int64_t timeout_us(const ModelInferRequest& request, const grpc::ServerContext& context) {
  const auto it = request.parameters().find("timeout");
  if (it != request.parameters().end() && it->second.parameter_choice_case() == inference::InferParameter::kInt64Param)
    return it->second.int64_param();
  const auto deadline = context.deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) return 0;
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::system_clock::now());
  return std::max<int64_t>(left.count(), 1);
}

using Service = inference::GRPCInferenceService::AsyncService;

// One call in flight: armed (waiting for a client), then answered, then deleted when the answer is sent.
class Call {
 public:
  virtual ~Call() = default;
  // A completion-queue event for this call; ok is false when the server is shutting down.
  virtual void on_event(bool ok) = 0;
};

struct Shared {
  ModelRepository& repository;
  Service& service;
};

// Batchers that received requests from this polling thread since it last ran them: the thread reads
// every request that is ready before executing any, so that they run as one batch.
thread_local std::vector<DynamicBatcher*> deferred_batchers;

// The five metadata / health RPCs: answered on the spot.
template <typename Request, typename Response>
class UnaryCall final : public Call {
 public:
  using Arm = void (Service::*)(grpc::ServerContext*, Request*, grpc::ServerAsyncResponseWriter<Response>*,
                               grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
  using Handle = grpc::Status (*)(const Shared&, const Request&, Response&);

  static void arm(const Shared& shared, grpc::ServerCompletionQueue* cq, Arm arm_fn, Handle handle) {
    auto* call = new UnaryCall(shared, cq, arm_fn, handle);
    (shared.service.*arm_fn)(&call->context_, &call->request_, &call->responder_, cq, cq, call);
  }

  void on_event(bool ok) override {
    if (!ok || answered_) {
      delete this;
      return;
    }
    arm(shared_, cq_, arm_fn_, handle_);  // the next call of this kind
    answered_ = true;
    const grpc::Status status = handle_(shared_, request_, response_);
    if (status.ok()) responder_.Finish(response_, status, this);
    else responder_.FinishWithError(status, this);
  }

 private:
  UnaryCall(const Shared& shared, grpc::ServerCompletionQueue* cq, Arm arm_fn, Handle handle)
      : shared_(shared), cq_(cq), arm_fn_(arm_fn), handle_(handle), responder_(&context_) {}
  Shared shared_;
  grpc::ServerCompletionQueue* cq_;
  Arm arm_fn_;
  Handle handle_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> responder_;
  bool answered_ = false;
};

void describe(const PortInfo& p, inference::ModelMetadataResponse::TensorMetadata* t) {
  t->set_name(p.name);
  t->set_datatype(protocol_datatype(p.dtype));
  for (int64_t d : p.shape) t->add_shape(d);
}

grpc::Status server_live(const Shared&, const inference::ServerLiveRequest&, inference::ServerLiveResponse& response) {
  response.set_live(true);
  return grpc::Status::OK;
}
grpc::Status server_ready(const Shared&, const inference::ServerReadyRequest&, inference::ServerReadyResponse& response) {
  response.set_ready(true);
  return grpc::Status::OK;
}
grpc::Status model_ready(const Shared& s, const inference::ModelReadyRequest& request, inference::ModelReadyResponse& response) {
  response.set_ready(s.repository.find(request.name(), request.version()) != nullptr);
  return grpc::Status::OK;
}
grpc::Status server_metadata(const Shared&, const inference::ServerMetadataRequest&,
                             inference::ServerMetadataResponse& response) {
  response.set_name(kServerName);
  response.set_version(kServerVersion);
  for (const char* e : kServerExtensions) response.add_extensions(e);
  return grpc::Status::OK;
}
grpc::Status model_metadata(const Shared& s, const inference::ModelMetadataRequest& request,
                            inference::ModelMetadataResponse& response) {
  const ServedModel* model = s.repository.find(request.name(), request.version());
  if (!model) return {grpc::StatusCode::NOT_FOUND, unknown_model_message(s.repository, request.name(), request.version())};
  response.set_name(model->name);
  for (const ServedModel* v : s.repository.versions(model->name)) response.add_versions(v->version_name);
  response.set_platform(kPlatform);
  for (const PortInfo& p : model->model.inputs()) describe(p, response.add_inputs());
  for (const PortInfo& p : model->model.outputs()) describe(p, response.add_outputs());
  return grpc::Status::OK;
}

// ModelInfer: parsed and submitted on arrival; answered by the thread that executes its batch.
class InferCall final : public Call {
 public:
  static void arm(const Shared& shared, grpc::ServerCompletionQueue* cq) {
    auto* call = new InferCall(shared, cq);
    shared.service.RequestModelInfer(&call->context_, &call->request_, &call->responder_, cq, cq, call);
  }

  void on_event(bool ok) override {
    if (!ok || answered_) {
      delete this;
      return;
    }
    arm(shared_, cq_);
    answered_ = true;
    ServedModel* model = shared_.repository.find(request_.model_name(), request_.model_version());
    if (!model) {
      finish({grpc::StatusCode::NOT_FOUND,
              unknown_model_message(shared_.repository, request_.model_name(), request_.model_version())});
      return;
    }
    std::unique_ptr<InferJob> job;
    try {
      job = build_job(*model);
    } catch (const std::exception& e) {
      model->metrics->record_failure();
      finish({grpc::StatusCode::INVALID_ARGUMENT, e.what()});
      return;
    }
    job->done = [this, model](InferJob& done_job, const JobResult& result) {
      if (result.status != JobStatus::kOk) {
        finish(status_of(result.status, result.error));
        return;
      }
      response_.set_model_name(model->name);
      response_.set_model_version(model->version_name);
      response_.set_id(request_.id());
      for (size_t k = 0; k < result.outputs.size(); ++k) {
        const Tensor& t = result.outputs[k];
        auto* out = response_.add_outputs();
        out->set_name(model->model.outputs()[done_job.outputs[k]].name);
        out->set_datatype(protocol_datatype(t.dtype()));
        for (int64_t d : t.shape()) out->add_shape(d);
        response_.add_raw_output_contents()->assign(static_cast<const char*>(t.raw()), t.nbytes());
      }
      finish(grpc::Status::OK);
    };
    if (model->batcher->submit(job, /*execute_now=*/false)) {
      if (std::find(deferred_batchers.begin(), deferred_batchers.end(), model->batcher.get()) == deferred_batchers.end())
        deferred_batchers.push_back(model->batcher.get());
    } else {
      model->metrics->record_failure();
      finish({grpc::StatusCode::UNAVAILABLE, "model '" + model->name + "' queue is full (max_queue_size " +
                                                 std::to_string(model->batcher->config().max_queue_size) +
                                                 ") or the server is stopping"});
    }
  }

 private:
  InferCall(const Shared& shared, grpc::ServerCompletionQueue* cq) : shared_(shared), cq_(cq), responder_(&context_) {}

  std::unique_ptr<InferJob> build_job(const ServedModel& model) {
    JobBuilder builder(model);
    const bool raw = request_.raw_input_contents_size() > 0;
    SY_CHECK(!raw || request_.raw_input_contents_size() == request_.inputs_size(),
             std::to_string(request_.raw_input_contents_size()) + " raw_input_contents for " +
                 std::to_string(request_.inputs_size()) + " inputs");
    for (int i = 0; i < request_.inputs_size(); ++i) {
      const auto& in = request_.inputs(i);
      const Shape shape(in.shape().begin(), in.shape().end());
      if (raw) {
        const std::string& bytes = request_.raw_input_contents(i);
        builder.add_input_view(in.name(), in.datatype(), shape, bytes.data(), bytes.size());
      } else {
        decode_contents(in, builder.add_input_owned(in.name(), in.datatype(), shape, contents_size(in)));
      }
    }
    for (const auto& out : request_.outputs()) builder.request_output(out.name());
    return builder.finish(timeout_us(request_, context_));
  }

  void finish(const grpc::Status& status) {
    if (status.ok()) responder_.Finish(response_, status, this);
    else responder_.FinishWithError(status, this);
  }

  Shared shared_;
  grpc::ServerCompletionQueue* cq_;
  grpc::ServerContext context_;
  ModelInferRequest request_;
  ModelInferResponse response_;
  grpc::ServerAsyncResponseWriter<ModelInferResponse> responder_;
  bool answered_ = false;
};

}  // namespace

// A stream of arrivals that never pauses (clients that do not wait for answers) must not postpone the
// run of what was read indefinitely: after this many events the queued requests run anyway.
constexpr int kMaxReadsBeforeRun = 256;

struct GrpcFrontend::Impl {
  explicit Impl(ModelRepository& r) : repository(r) {}
  ModelRepository& repository;
  Service service;
  std::unique_ptr<grpc::Server> server;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  std::vector<std::thread> threads;
  std::atomic<bool> spinning{false};  // one polling thread at a time busy-polls
  int busy_poll_us = 0;
  int port = 0;
  bool stopped = false;

  void poll(grpc::ServerCompletionQueue* cq) {
    void* tag = nullptr;
    bool ok = false;
    const gpr_timespec now = gpr_time_0(GPR_CLOCK_MONOTONIC);
    // Events read since the queued requests last ran: bounds how long reading can postpone running.
    int read_since_run = 0;
    for (;;) {
      // 1. Every event that is ready now (new requests are parsed and queued, not run yet).
      auto status = kMaxReadsBeforeRun > read_since_run ? cq->AsyncNext(&tag, &ok, now) : grpc::CompletionQueue::TIMEOUT;
      if (status == grpc::CompletionQueue::SHUTDOWN) return;
      if (status == grpc::CompletionQueue::GOT_EVENT) {
        static_cast<Call*>(tag)->on_event(ok);
        ++read_since_run;
        continue;
      }
      // 2. Nothing more is ready (or enough was read): run what arrived, as one batch per model.
      read_since_run = 0;
      if (!deferred_batchers.empty()) {
        std::vector<DynamicBatcher*> batchers;
        batchers.swap(deferred_batchers);
        for (DynamicBatcher* b : batchers) b->run_queued();
        continue;
      }
      // 3. Busy-poll briefly (one thread at a time), then sleep in the queue.
      bool got = false;
      if (busy_poll_us > 0 && !spinning.exchange(true, std::memory_order_acquire)) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(busy_poll_us);
        do {
          status = cq->AsyncNext(&tag, &ok, now);
        } while (status == grpc::CompletionQueue::TIMEOUT && std::chrono::steady_clock::now() < until);
        spinning.store(false, std::memory_order_release);
        if (status == grpc::CompletionQueue::SHUTDOWN) return;
        got = status == grpc::CompletionQueue::GOT_EVENT;
      }
      if (!got && !cq->Next(&tag, &ok)) return;  // shut down and drained
      static_cast<Call*>(tag)->on_event(ok);
    }
  }
};

GrpcFrontend::GrpcFrontend(ModelRepository& repository, const std::string& address, int port, size_t max_message_bytes,
                           int threads, int busy_poll_us)
    : impl_(std::make_unique<Impl>(repository)) {
  // Debian's Abseil checks every Mutex acquisition for lock-order cycles (a debug feature that stays on
  // in its build): ~6% of the server's CPU under load in gRPC's own mutexes. Switchyard's code uses none.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::ServerBuilder builder;
  const std::string target = (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" +
                             std::to_string(port);
  builder.AddListeningPort(target, grpc::InsecureServerCredentials(), &impl_->port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(max_message_bytes, INT32_MAX)));
  builder.SetMaxSendMessageSize(INT32_MAX);
  // No bandwidth-delay-product probing (HTTP/2 PINGs riding on data frames to size the flow-control
  // window): requests here are small and local; measured +15-20% requests/s with 64 clients (2 cores).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.RegisterService(&impl_->service);
  if (threads <= 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
  for (int i = 0; i < threads; ++i) impl_->queues.push_back(builder.AddCompletionQueue());
  impl_->server = builder.BuildAndStart();
  SY_CHECK(impl_->server && impl_->port > 0, "cannot listen for gRPC on " + target + " (port in use?)");
  impl_->busy_poll_us = busy_poll_us;
  const Shared shared{repository, impl_->service};
  for (auto& q : impl_->queues) {
    grpc::ServerCompletionQueue* cq = q.get();
    // Several armed calls per kind and queue, so that concurrent clients never wait for a re-arm.
    for (int k = 0; k < 4; ++k) {
      UnaryCall<inference::ServerLiveRequest, inference::ServerLiveResponse>::arm(shared, cq, &Service::RequestServerLive, server_live);
      UnaryCall<inference::ServerReadyRequest, inference::ServerReadyResponse>::arm(shared, cq, &Service::RequestServerReady, server_ready);
      UnaryCall<inference::ModelReadyRequest, inference::ModelReadyResponse>::arm(shared, cq, &Service::RequestModelReady, model_ready);
      UnaryCall<inference::ServerMetadataRequest, inference::ServerMetadataResponse>::arm(shared, cq, &Service::RequestServerMetadata,
                                                                                        server_metadata);
      UnaryCall<inference::ModelMetadataRequest, inference::ModelMetadataResponse>::arm(shared, cq, &Service::RequestModelMetadata,
                                                                                      model_metadata);
    }
    for (int k = 0; k < 64; ++k) InferCall::arm(shared, cq);
    impl_->threads.emplace_back([this, cq] { impl_->poll(cq); });
  }
}

GrpcFrontend::~GrpcFrontend() { shutdown(); }

int GrpcFrontend::port() const { return impl_->port; }

void GrpcFrontend::shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  // No new calls; returns once the calls in flight are answered (the polling threads keep running).
  impl_->server->Shutdown();
  for (auto& q : impl_->queues) q->Shutdown();
  for (auto& t : impl_->threads) t.join();
}

}  // namespace switchyard::serve
