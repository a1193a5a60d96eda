#include "server/grpc_frontend.h"

#include <grpcpp/grpcpp.h>

#include <cstring>

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
int64_t timeout_us(const ModelInferRequest& request, const grpc::CallbackServerContext& context) {
  const auto it = request.parameters().find("timeout");
  if (it != request.parameters().end() && it->second.parameter_choice_case() == inference::InferParameter::kInt64Param)
    return it->second.int64_param();
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return 0;
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::system_clock::now());
  return std::max<int64_t>(left.count(), 1);
}

class Service final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit Service(ModelRepository& repository) : repository_(repository) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return finish(context, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(true);
    return finish(context, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context, const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    response->set_ready(repository_.find(request->name(), request->version()) != nullptr);
    return finish(context, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context, const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) override {
    response->set_name(kServerName);
    response->set_version(kServerVersion);
    for (const char* e : kServerExtensions) response->add_extensions(e);
    return finish(context, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    const ServedModel* model = repository_.find(request->name(), request->version());
    if (!model) return finish(context, {grpc::StatusCode::NOT_FOUND, unknown_model_message(repository_, request->name(),
                                                                                          request->version())});
    response->set_name(model->name);
    for (const ServedModel* v : repository_.versions(model->name)) response->add_versions(v->version_name);
    response->set_platform(kPlatform);
    for (const PortInfo& p : model->model.inputs()) describe(p, response->add_inputs());
    for (const PortInfo& p : model->model.outputs()) describe(p, response->add_outputs());
    return finish(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context, const ModelInferRequest* request,
                                       ModelInferResponse* response) override {
    ServedModel* model = repository_.find(request->model_name(), request->model_version());
    if (!model)
      return finish(context, {grpc::StatusCode::NOT_FOUND,
                              unknown_model_message(repository_, request->model_name(), request->model_version())});
    std::unique_ptr<InferJob> job;
    try {
      JobBuilder builder(*model);
      const bool raw = request->raw_input_contents_size() > 0;
      SY_CHECK(!raw || request->raw_input_contents_size() == request->inputs_size(),
               std::to_string(request->raw_input_contents_size()) + " raw_input_contents for " +
                   std::to_string(request->inputs_size()) + " inputs");
      for (int i = 0; i < request->inputs_size(); ++i) {
        const auto& in = request->inputs(i);
        const Shape shape(in.shape().begin(), in.shape().end());
        if (raw) {
          const std::string& bytes = request->raw_input_contents(i);
          builder.add_input_view(in.name(), in.datatype(), shape, bytes.data(), bytes.size());
        } else {
          decode_contents(in, builder.add_input_owned(in.name(), in.datatype(), shape));
        }
      }
      for (const auto& out : request->outputs()) builder.request_output(out.name());
      job = builder.finish(timeout_us(*request, *context));
    } catch (const std::exception& e) {
      model->metrics->record_failure();
      return finish(context, {grpc::StatusCode::INVALID_ARGUMENT, e.what()});
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    job->done = [reactor, request, response, model](InferJob& done_job, const JobResult& result) {
      if (result.status != JobStatus::kOk) {
        reactor->Finish(status_of(result.status, result.error));
        return;
      }
      response->set_model_name(model->name);
      response->set_model_version(model->version_name);
      response->set_id(request->id());
      for (size_t k = 0; k < result.outputs.size(); ++k) {
        const Tensor& t = result.outputs[k];
        auto* out = response->add_outputs();
        out->set_name(model->model.outputs()[done_job.outputs[k]].name);
        out->set_datatype(protocol_datatype(t.dtype()));
        for (int64_t d : t.shape()) out->add_shape(d);
        response->add_raw_output_contents()->assign(static_cast<const char*>(t.raw()), t.nbytes());
      }
      reactor->Finish(grpc::Status::OK);
    };
    if (!model->batcher->submit(job)) {
      model->metrics->record_failure();
      reactor->Finish({grpc::StatusCode::UNAVAILABLE, "model '" + model->name + "' queue is full (max_queue_size " +
                                                          std::to_string(model->batcher->config().max_queue_size) +
                                                          ") or the server is stopping"});
    }
    return reactor;
  }

 private:
  static grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* context, const grpc::Status& status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }
  static void describe(const PortInfo& p, inference::ModelMetadataResponse::TensorMetadata* t) {
    t->set_name(p.name);
    t->set_datatype(protocol_datatype(p.dtype));
    for (int64_t d : p.shape) t->add_shape(d);
  }
  ModelRepository& repository_;
};

}  // namespace

struct GrpcFrontend::Impl {
  explicit Impl(ModelRepository& repository) : service(repository) {}
  Service service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool stopped = false;
};

GrpcFrontend::GrpcFrontend(ModelRepository& repository, const std::string& address, int port, size_t max_message_bytes)
    : impl_(std::make_unique<Impl>(repository)) {
  grpc::ServerBuilder builder;
  const std::string target = (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" +
                             std::to_string(port);
  builder.AddListeningPort(target, grpc::InsecureServerCredentials(), &impl_->port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(max_message_bytes, INT32_MAX)));
  builder.SetMaxSendMessageSize(INT32_MAX);
  builder.RegisterService(&impl_->service);
  impl_->server = builder.BuildAndStart();
  SY_CHECK(impl_->server && impl_->port > 0, "cannot listen for gRPC on " + target + " (port in use?)");
}

GrpcFrontend::~GrpcFrontend() { shutdown(); }

int GrpcFrontend::port() const { return impl_->port; }

void GrpcFrontend::shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server->Shutdown();  // no new calls; returns once every call in flight has finished
  impl_->server->Wait();
}

}  // namespace switchyard::serve
