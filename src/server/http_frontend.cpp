#include "server/http_frontend.h"

#include <httplib.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/datatype.h"
#include "server/job_builder.h"
#include "server/server_info.h"
#include "switchyard/error.h"

namespace switchyard::serve {
namespace {

// httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed in Debian's compiled library):
// 64 clients connecting at once would overflow it and wait a second for SYN retries. Its socket-options
// hook sees the socket before bind, so the listening socket is noted there and listen() is called again
// with the system's limit once bound (Linux takes a second listen() as a new backlog).
void bind_with_backlog(httplib::Server& server, const std::string& address, int& port) {
  auto fd = std::make_shared<int>(-1);
  server.set_socket_options([fd](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    *fd = sock;
  });
  if (port == 0) {
    port = server.bind_to_any_port(address);
  } else if (!server.bind_to_port(address, port)) {
    port = -1;
  }
  if (port > 0 && *fd >= 0) ::listen(*fd, SOMAXCONN);
}

using nlohmann::json;

// KServe v2 error shape: {"error": "<message>"}.
void reply_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void reply_json(httplib::Response& res, const json& body) {
  res.status = 200;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

int http_status(JobStatus s) {
  switch (s) {
    case JobStatus::kOk: return 200;
    case JobStatus::kBadRequest: return 400;
    case JobStatus::kUnavailable: return 503;
    case JobStatus::kTimeout: return 504;
  }
  return 500;
}

json tensor_metadata(const PortInfo& p) {
  return {{"name", p.name}, {"datatype", protocol_datatype(p.dtype)}, {"shape", p.shape}};
}

// JSON "data" (flat or nested row-major arrays) into the input's storage.
void flatten(const json& value, std::vector<const json*>& out) {
  if (value.is_array()) {
    for (const json& v : value) flatten(v, out);
  } else {
    out.push_back(&value);
  }
}

void decode_json_data(const json& data, Tensor& dst, const std::string& name) {
  std::vector<const json*> values;
  flatten(data, values);
  SY_CHECK(static_cast<int64_t>(values.size()) == dst.numel(),
           "input '" + name + "': " + std::to_string(values.size()) + " values in data, expected " + std::to_string(dst.numel()));
  for (size_t i = 0; i < values.size(); ++i) {
    const json& v = *values[i];
    if (dst.dtype() == DType::kBool) {
      SY_CHECK(v.is_boolean(), "input '" + name + "': BOOL data must be true or false");
      static_cast<bool*>(dst.raw())[i] = v.get<bool>();
      continue;
    }
    SY_CHECK(v.is_number(), "input '" + name + "': data value " + std::to_string(i) + " is not a number");
    const double d = v.get<double>();
    switch (dst.dtype()) {
      case DType::kFloat32: static_cast<float*>(dst.raw())[i] = static_cast<float>(d); break;
      case DType::kFloat64: static_cast<double*>(dst.raw())[i] = d; break;
      case DType::kFloat16: static_cast<uint16_t*>(dst.raw())[i] = float_to_half(static_cast<float>(d)); break;
      case DType::kBFloat16: static_cast<uint16_t*>(dst.raw())[i] = float_to_bfloat16(static_cast<float>(d)); break;
      case DType::kInt64: static_cast<int64_t*>(dst.raw())[i] = v.get<int64_t>(); break;
      case DType::kUInt64: static_cast<uint64_t*>(dst.raw())[i] = v.get<uint64_t>(); break;
      case DType::kInt32: static_cast<int32_t*>(dst.raw())[i] = static_cast<int32_t>(v.get<int64_t>()); break;
      case DType::kInt16: static_cast<int16_t*>(dst.raw())[i] = static_cast<int16_t>(v.get<int64_t>()); break;
      case DType::kInt8: static_cast<int8_t*>(dst.raw())[i] = static_cast<int8_t>(v.get<int64_t>()); break;
      case DType::kUInt32: static_cast<uint32_t*>(dst.raw())[i] = static_cast<uint32_t>(v.get<int64_t>()); break;
      case DType::kUInt16: static_cast<uint16_t*>(dst.raw())[i] = static_cast<uint16_t>(v.get<int64_t>()); break;
      case DType::kUInt8: static_cast<uint8_t*>(dst.raw())[i] = static_cast<uint8_t>(v.get<int64_t>()); break;
      default: throw Error("input '" + name + "': datatype not readable from JSON");
    }
  }
}

json encode_json_data(const Tensor& t) {
  json data = json::array();
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype()) {
      case DType::kBool: data.push_back(static_cast<const bool*>(t.raw())[i]); break;
      case DType::kFloat32: data.push_back(static_cast<const float*>(t.raw())[i]); break;
      case DType::kFloat16: data.push_back(half_to_float(static_cast<const uint16_t*>(t.raw())[i])); break;
      case DType::kBFloat16: data.push_back(bfloat16_to_float(static_cast<const uint16_t*>(t.raw())[i])); break;
      case DType::kFloat64: data.push_back(static_cast<const double*>(t.raw())[i]); break;
      case DType::kUInt64: data.push_back(static_cast<const uint64_t*>(t.raw())[i]); break;
      default: data.push_back(t.as_int64(i)); break;
    }
  }
  return data;
}

bool bool_parameter(const json& owner, const char* key, bool fallback) {
  const auto p = owner.find("parameters");
  if (p == owner.end() || !p->is_object()) return fallback;
  const auto v = p->find(key);
  return v != p->end() && v->is_boolean() ? v->get<bool>() : fallback;
}

int64_t int_parameter(const json& owner, const char* key, int64_t fallback) {
  const auto p = owner.find("parameters");
  if (p == owner.end() || !p->is_object()) return fallback;
  const auto v = p->find(key);
  return v != p->end() && v->is_number_integer() ? v->get<int64_t>() : fallback;
}

const std::string& string_field(const json& owner, const char* key, const std::string& where) {
  const auto v = owner.find(key);
  SY_CHECK(v != owner.end() && v->is_string(), where + ": \"" + key + "\" must be a string");
  return v->get_ref<const std::string&>();
}

// A request's answer, handed from the batcher's worker to the waiting connection thread.
struct PendingReply {
  std::mutex mutex;
  std::condition_variable ready;
  bool done = false;
  int status = 200;
  std::string body;
  size_t json_bytes = 0;  // < body.size(): binary outputs follow the JSON header
};

std::string version_of(const httplib::Request& req) { return req.matches.size() > 2 ? req.matches[2].str() : ""; }

}  // namespace

struct HttpFrontend::Impl {
  ModelRepository& repository;
  HttpOptions options;
  httplib::Server server;
  int port = 0;
  std::thread thread;
  bool stopped = false;

  Impl(ModelRepository& r, const HttpOptions& o) : repository(r), options(o) {}

  ServedModel* model_or_404(const httplib::Request& req, httplib::Response& res) {
    ServedModel* m = repository.find(req.matches[1].str(), version_of(req));
    if (!m) reply_error(res, 404, unknown_model_message(repository, req.matches[1].str(), version_of(req)));
    return m;
  }

  void infer(const httplib::Request& req, httplib::Response& res) {
    ServedModel* model = model_or_404(req, res);
    if (!model) return;
    auto reply = std::make_shared<PendingReply>();
    std::unique_ptr<InferJob> job;
    // The JSON header, then (binary tensor data extension) the inputs' bytes in the order of the inputs.
    json request;
    try {
      SY_CHECK(!req.has_header("Content-Encoding") || req.get_header_value("Content-Encoding") == "identity",
               "Content-Encoding '" + req.get_header_value("Content-Encoding") + "' is not supported");
      size_t header_bytes = req.body.size();
      if (req.has_header("Inference-Header-Content-Length")) {
        const std::string v = req.get_header_value("Inference-Header-Content-Length");
        char* end = nullptr;
        const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
        SY_CHECK(!v.empty() && *end == '\0' && n <= req.body.size(),
                 "Inference-Header-Content-Length " + v + " is not a length within the body of " +
                     std::to_string(req.body.size()) + " bytes");
        header_bytes = static_cast<size_t>(n);
      }
      try {
        request = json::parse(req.body.begin(), req.body.begin() + static_cast<std::ptrdiff_t>(header_bytes));
      } catch (const json::exception& e) {
        throw Error(std::string("malformed JSON request: ") + e.what());
      }
      SY_CHECK(request.is_object(), "the request must be a JSON object");
      const auto inputs = request.find("inputs");
      SY_CHECK(inputs != request.end() && inputs->is_array(), "the request has no \"inputs\" array");
      JobBuilder builder(*model);
      size_t binary_offset = header_bytes;
      for (const json& in : *inputs) {
        SY_CHECK(in.is_object(), "each input must be a JSON object");
        const std::string& name = string_field(in, "name", "input");
        const std::string& datatype = string_field(in, "datatype", "input '" + name + "'");
        const auto shape_it = in.find("shape");
        SY_CHECK(shape_it != in.end() && shape_it->is_array(), "input '" + name + "': \"shape\" must be an array");
        Shape shape;
        for (const json& d : *shape_it) {
          SY_CHECK(d.is_number_integer(), "input '" + name + "': shape entries must be integers");
          shape.push_back(d.get<int64_t>());
        }
        const int64_t binary = int_parameter(in, "binary_data_size", -1);
        if (binary >= 0) {
          SY_CHECK(static_cast<uint64_t>(binary) <= req.body.size() - binary_offset,
                   "input '" + name + "': binary_data_size " + std::to_string(binary) + " runs past the end of the body (" +
                       std::to_string(req.body.size() - binary_offset) + " bytes left)");
          builder.add_input_view(name, datatype, shape, req.body.data() + binary_offset, static_cast<size_t>(binary));
          binary_offset += static_cast<size_t>(binary);
        } else {
          const auto data = in.find("data");
          SY_CHECK(data != in.end(), "input '" + name + "' has neither \"data\" nor binary_data_size");
          decode_json_data(*data, builder.add_input_owned(name, datatype, shape), name);
        }
      }
      SY_CHECK(binary_offset == req.body.size(), std::to_string(req.body.size() - binary_offset) +
                                                      " bytes of the body belong to no input");
      const bool all_binary = bool_parameter(request, "binary_data_output", false);
      std::vector<bool> binary_outputs;
      if (const auto outputs = request.find("outputs"); outputs != request.end()) {
        SY_CHECK(outputs->is_array(), "\"outputs\" must be an array");
        for (const json& out : *outputs) {
          SY_CHECK(out.is_object(), "each requested output must be a JSON object");
          builder.request_output(string_field(out, "name", "output"));
          binary_outputs.push_back(bool_parameter(out, "binary_data", all_binary));
        }
      }
      job = builder.finish(int_parameter(request, "timeout", 0));
      binary_outputs.resize(job->outputs.size(), all_binary);
      std::string id = request.contains("id") && request["id"].is_string() ? request["id"].get<std::string>() : "";
      job->done = [reply, model, binary_outputs, id](InferJob& done_job, const JobResult& result) {
        std::string body;
        size_t json_bytes = 0;
        int status = http_status(result.status);
        if (result.status != JobStatus::kOk) {
          body = json{{"error", result.error}}.dump(-1, ' ', false, json::error_handler_t::replace);
          json_bytes = body.size();
        } else {
          json response = {{"model_name", model->name}, {"model_version", model->version_name}};
          if (!id.empty()) response["id"] = id;
          json outputs = json::array();
          std::string binary;
          for (size_t k = 0; k < result.outputs.size(); ++k) {
            const Tensor& t = result.outputs[k];
            json out = {{"name", model->model.outputs()[done_job.outputs[k]].name},
                        {"datatype", protocol_datatype(t.dtype())},
                        {"shape", t.shape()}};
            if (binary_outputs[k]) {
              out["parameters"] = {{"binary_data_size", t.nbytes()}};
              binary.append(static_cast<const char*>(t.raw()), t.nbytes());
            } else {
              out["data"] = encode_json_data(t);
            }
            outputs.push_back(std::move(out));
          }
          response["outputs"] = std::move(outputs);
          body = response.dump(-1, ' ', false, json::error_handler_t::replace);
          json_bytes = body.size();
          body += binary;
        }
        std::lock_guard<std::mutex> lock(reply->mutex);
        reply->status = status;
        reply->body = std::move(body);
        reply->json_bytes = json_bytes;
        reply->done = true;
        reply->ready.notify_one();
      };
    } catch (const std::exception& e) {
      model->metrics->record_failure();
      reply_error(res, 400, e.what());
      return;
    }
    if (!model->batcher->submit(job)) {
      model->metrics->record_failure();
      reply_error(res, 503, "model '" + model->name + "' queue is full (max_queue_size " +
                                std::to_string(model->batcher->config().max_queue_size) + ") or the server is stopping");
      return;
    }
    std::unique_lock<std::mutex> lock(reply->mutex);
    reply->ready.wait(lock, [&] { return reply->done; });
    res.status = reply->status;
    if (reply->json_bytes < reply->body.size()) {
      res.set_header("Inference-Header-Content-Length", std::to_string(reply->json_bytes));
      res.set_content(std::move(reply->body), "application/octet-stream");
    } else {
      res.set_content(std::move(reply->body), "application/json");
    }
  }

  void routes() {
    server.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    server.Get("/v2/health/ready", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    server.Get("/v2", [](const httplib::Request&, httplib::Response& res) {
      json extensions = json::array();
      for (const char* e : kServerExtensions) extensions.push_back(e);
      reply_json(res, {{"name", kServerName}, {"version", kServerVersion}, {"extensions", extensions}});
    });
    const std::string model = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";
    server.Get(model, [this](const httplib::Request& req, httplib::Response& res) {
      const ServedModel* m = model_or_404(req, res);
      if (!m) return;
      json versions = json::array(), inputs = json::array(), outputs = json::array();
      for (const ServedModel* v : repository.versions(m->name)) versions.push_back(v->version_name);
      for (const PortInfo& p : m->model.inputs()) inputs.push_back(tensor_metadata(p));
      for (const PortInfo& p : m->model.outputs()) outputs.push_back(tensor_metadata(p));
      reply_json(res, {{"name", m->name}, {"versions", versions}, {"platform", kPlatform}, {"inputs", inputs},
                       {"outputs", outputs}});
    });
    server.Get(model + "/ready", [this](const httplib::Request& req, httplib::Response& res) {
      if (model_or_404(req, res)) res.status = 200;
    });
    server.Get(model + "/config", [this](const httplib::Request& req, httplib::Response& res) {
      const ServedModel* m = model_or_404(req, res);
      if (!m) return;
      json config = {{"name", m->name}, {"platform", kPlatform}, {"max_batch_size", m->max_batch_size}};
      if (m->batching.enabled)
        config["dynamic_batching"] = {{"preferred_batch_size", m->batching.preferred_batch_sizes},
                                      {"max_queue_delay_microseconds", m->batching.max_queue_delay_us}};
      config["parameters"] = {{"batching_note", m->batching_note},
                              {"streams", m->model.streams()},
                              {"threads_per_stream", m->model.threads_per_stream()}};
      reply_json(res, config);
    });
    server.Post(model + "/infer", [this](const httplib::Request& req, httplib::Response& res) { infer(req, res); });
    // httplib's own refusals (unknown path, body over the limit, unreadable request) in the error shape.
    const size_t limit = options.max_body_bytes;
    server.set_error_handler([limit](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string message = "HTTP " + std::to_string(res.status);
      if (res.status == 404) message = "no such endpoint: " + req.method + " " + req.path;
      if (res.status == 413) message = "request body larger than the limit of " + std::to_string(limit) + " bytes";
      if (res.status == 400) message = "malformed HTTP request";
      reply_error(res, res.status, message);
    });
  }
};

HttpFrontend::HttpFrontend(ModelRepository& repository, const HttpOptions& options)
    : impl_(std::make_unique<Impl>(repository, options)) {
  httplib::Server& s = impl_->server;
  const int threads = std::max(2, options.threads);
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.set_keep_alive_max_count(1u << 30);
  s.set_keep_alive_timeout(30);
  s.set_payload_max_length(options.max_body_bytes);
  s.set_tcp_nodelay(true);
  impl_->routes();
  impl_->port = options.port;
  bind_with_backlog(s, options.address, impl_->port);
  SY_CHECK(impl_->port > 0, "cannot listen for HTTP on " + options.address + ":" + std::to_string(options.port) +
                                " (port in use?)");
}

HttpFrontend::~HttpFrontend() { shutdown(); }
int HttpFrontend::port() const { return impl_->port; }

void HttpFrontend::start() {
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

void HttpFrontend::shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

struct MetricsFrontend::Impl {
  httplib::Server server;
  int port = 0;
  std::thread thread;
  bool stopped = false;
};

MetricsFrontend::MetricsFrontend(const std::string& address, int port, std::function<std::string()> page)
    : impl_(std::make_unique<Impl>()) {
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  impl_->server.Get("/metrics", [page](const httplib::Request&, httplib::Response& res) {
    res.set_content(page(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl_->port = port;
  bind_with_backlog(impl_->server, address, impl_->port);
  SY_CHECK(impl_->port > 0, "cannot listen for metrics on " + address + ":" + std::to_string(port) + " (port in use?)");
}

MetricsFrontend::~MetricsFrontend() { shutdown(); }
int MetricsFrontend::port() const { return impl_->port; }

void MetricsFrontend::start() {
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

void MetricsFrontend::shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace switchyard::serve
