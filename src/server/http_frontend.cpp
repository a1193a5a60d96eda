#include "server/http_frontend.h"

#include <httplib.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/datatype.h"
#include "server/http_codec.h"
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
  res.set_content(http_error_body(message), "application/json");
}

void reply_json(httplib::Response& res, const json& body) {
  res.status = 200;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

json tensor_metadata(const PortInfo& p) {
  return {{"name", p.name}, {"datatype", protocol_datatype(p.dtype)}, {"shape", p.shape}};
}

// An httplib server bound to its port, listening on a thread of its own until shutdown().
struct Listener {
  httplib::Server server;
  int port = 0;
  std::thread thread;
  bool stopped = false;

  void bind(const std::string& address, int wanted_port, const char* what) {
    port = wanted_port;
    bind_with_backlog(server, address, port);
    SY_CHECK(port > 0, std::string("cannot listen for ") + what + " on " + address + ":" + std::to_string(wanted_port) +
                           " (port in use?)");
  }
  void start() {
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  void shutdown() {
    if (stopped) return;
    stopped = true;
    server.stop();
    if (thread.joinable()) thread.join();
  }
};

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
  Listener listener;
  httplib::Server& server = listener.server;

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
    try {
      SY_CHECK(!req.has_header("Content-Encoding") || req.get_header_value("Content-Encoding") == "identity",
               "Content-Encoding '" + req.get_header_value("Content-Encoding") + "' is not supported");
      const bool has_length = req.has_header("Inference-Header-Content-Length");
      const std::string length = has_length ? req.get_header_value("Inference-Header-Content-Length") : "";
      HttpInferRequest decoded = decode_http_infer(*model, req.body, has_length ? &length : nullptr);
      job = std::move(decoded.job);
      job->done = [reply, model, binary = std::move(decoded.binary_outputs), id = std::move(decoded.id)](
                      InferJob& done_job, const JobResult& result) {
        HttpInferResponse answer = encode_http_infer(*model, done_job, result, binary, id);
        std::lock_guard<std::mutex> lock(reply->mutex);
        reply->status = answer.status;
        reply->body = std::move(answer.body);
        reply->json_bytes = answer.json_bytes;
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
  impl_->listener.bind(options.address, options.port, "HTTP");
}

HttpFrontend::~HttpFrontend() { shutdown(); }
int HttpFrontend::port() const { return impl_->listener.port; }
void HttpFrontend::start() { impl_->listener.start(); }
void HttpFrontend::shutdown() { impl_->listener.shutdown(); }

struct MetricsFrontend::Impl {
  Listener listener;
};

MetricsFrontend::MetricsFrontend(const std::string& address, int port, std::function<std::string()> page)
    : impl_(std::make_unique<Impl>()) {
  httplib::Server& s = impl_->listener.server;
  s.new_task_queue = [] { return new httplib::ThreadPool(2); };
  s.Get("/metrics", [page](const httplib::Request&, httplib::Response& res) {
    res.set_content(page(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl_->listener.bind(address, port, "metrics");
}

MetricsFrontend::~MetricsFrontend() { shutdown(); }
int MetricsFrontend::port() const { return impl_->listener.port; }
void MetricsFrontend::start() { impl_->listener.start(); }
void MetricsFrontend::shutdown() { impl_->listener.shutdown(); }

}  // namespace switchyard::serve
