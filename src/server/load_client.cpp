#include "server/load_client.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "kserve_predict_v2.grpc.pb.h"
#include "server/datatype.h"
#include "switchyard/error.h"

namespace switchyard::serve {
namespace {

using Clock = std::chrono::steady_clock;

struct Endpoint {
  bool grpc = false;
  std::string host;
  int port = 0;
};

Endpoint parse_url(const std::string& url) {
  Endpoint e;
  std::string rest;
  if (url.rfind("grpc://", 0) == 0) {
    e.grpc = true;
    rest = url.substr(7);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    throw Error("server URL '" + url + "': expected grpc://HOST:PORT or http://HOST:PORT");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  SY_CHECK(colon != std::string::npos && colon > 0, "server URL '" + url + "' has no port");
  e.host = rest.substr(0, colon);
  try {
    e.port = std::stoi(rest.substr(colon + 1));
  } catch (const std::exception&) {
    throw Error("server URL '" + url + "': bad port");
  }
  return e;
}

std::string model_path(const std::string& model, const std::string& version) {
  return "/v2/models/" + model + (version.empty() ? "" : "/versions/" + version);
}

// Row `row` of every pool array, as batch-1 tensors' bytes.
struct RequestRows {
  std::vector<std::string> bytes;  // per input
};

std::vector<RequestRows> make_rows(const std::vector<std::pair<std::string, Tensor>>& pool, int64_t count) {
  const int64_t p = pool.front().second.dim(0);
  std::vector<RequestRows> rows(static_cast<size_t>(count));
  for (int64_t r = 0; r < count; ++r)
    for (const auto& [name, t] : pool) {
      const Tensor row = t.slice(r % p, 1);
      rows[static_cast<size_t>(r)].bytes.emplace_back(static_cast<const char*>(row.raw()), row.nbytes());
    }
  return rows;
}

Shape row_shape(const Tensor& t) {
  Shape s = t.shape();
  s[0] = 1;
  return s;
}

struct Recorder {
  std::mutex mutex;
  std::vector<float> latencies_us;
  uint64_t errors = 0;
  std::string first_error;
  void error(const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex);
    if (errors++ == 0) first_error = message;
  }
};

LoadResult summarise(Recorder& rec, double seconds) {
  LoadResult r;
  auto& lat = rec.latencies_us;
  std::sort(lat.begin(), lat.end());
  r.requests = lat.size();
  r.errors = rec.errors;
  r.first_error = rec.first_error;
  r.seconds = seconds;
  r.requests_per_second = seconds > 0 ? static_cast<double>(lat.size()) / seconds : 0;
  auto pct = [&](double q) { return lat.empty() ? 0.0 : double(lat[std::min(lat.size() - 1, size_t(q * double(lat.size())))]); };
  r.p50_us = pct(0.50);
  r.p90_us = pct(0.90);
  r.p99_us = pct(0.99);
  r.max_us = lat.empty() ? 0 : lat.back();
  return r;
}

LoadResult run_grpc(const Endpoint& e, const LoadOptions& o, const std::vector<std::pair<std::string, Tensor>>& pool) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);  // as the server does (grpc_frontend.cpp)
  const std::string target = e.host + ":" + std::to_string(e.port);
  const int clients = std::max(1, o.clients);
  // gRPC's generated client class is called Stub: one per client connection.
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> connections;
  for (int c = 0; c < clients; ++c) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own per client
    args.SetMaxReceiveMessageSize(INT32_MAX);
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);  // as the server (grpc_frontend.cpp)
    connections.push_back(inference::GRPCInferenceService::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
  }
  // Distinct prebuilt requests per client.
  const int64_t per_client = 64;
  const auto rows = make_rows(pool, per_client * clients);
  std::vector<inference::ModelInferRequest> requests(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    auto& req = requests[r];
    req.set_model_name(o.model);
    req.set_model_version(o.version);
    for (size_t i = 0; i < pool.size(); ++i) {
      auto* in = req.add_inputs();
      in->set_name(pool[i].first);
      in->set_datatype(protocol_datatype(pool[i].second.dtype()));
      for (int64_t d : row_shape(pool[i].second)) in->add_shape(d);
      req.add_raw_input_contents(rows[r].bytes[i]);
    }
  }
  struct Call {
    grpc::ClientContext context;
    inference::ModelInferResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<inference::ModelInferResponse>> reader;
    int client = 0;
    Clock::time_point start;
  };
  grpc::CompletionQueue cq;
  std::vector<uint64_t> sent(static_cast<size_t>(clients), 0);
  auto issue = [&](int c) {
    auto* call = new Call;
    call->client = c;
    const auto& req = requests[static_cast<size_t>(c * per_client + static_cast<int64_t>(sent[static_cast<size_t>(c)]++ % per_client))];
    call->start = Clock::now();
    call->reader = connections[static_cast<size_t>(c)]->AsyncModelInfer(&call->context, req, &cq);
    call->reader->Finish(&call->response, &call->status, call);
  };
  Recorder rec;
  rec.latencies_us.reserve(1 << 20);
  const auto t0 = Clock::now();
  const auto measure_from = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_seconds));
  const auto end = measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_seconds));
  for (int c = 0; c < clients; ++c) issue(c);
  int in_flight = clients;
  void* tag = nullptr;
  bool ok = false;
  // The load generator busy-polls its queue for up to 100 us after each answer, so that its own
  // wake-ups stay out of the latency of fast models; then it sleeps, leaving the cores to a server
  // whose requests take longer (both share this machine).
  const gpr_timespec zero = gpr_time_0(GPR_CLOCK_MONOTONIC);
  auto spin_until = Clock::now() + std::chrono::microseconds(100);
  while (in_flight > 0) {
    auto status = cq.AsyncNext(&tag, &ok, zero);
    if (status == grpc::CompletionQueue::TIMEOUT) {
      if (Clock::now() < spin_until) continue;
      status = cq.AsyncNext(&tag, &ok, gpr_inf_future(GPR_CLOCK_MONOTONIC));
    }
    if (status != grpc::CompletionQueue::GOT_EVENT) break;
    spin_until = Clock::now() + std::chrono::microseconds(100);
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    const auto now = Clock::now();
    --in_flight;
    if (call->start >= measure_from && now <= end) {
      if (ok && call->status.ok())
        rec.latencies_us.push_back(std::chrono::duration<float, std::micro>(now - call->start).count());
      else
        rec.error(call->status.error_message());
    }
    if (now < end) {
      issue(call->client);
      ++in_flight;
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) delete static_cast<Call*>(tag);
  return summarise(rec, o.duration_seconds);
}

LoadResult run_http(const Endpoint& e, const LoadOptions& o, const std::vector<std::pair<std::string, Tensor>>& pool) {
  const int clients = std::max(1, o.clients);
  const int64_t per_client = 64;
  const auto rows = make_rows(pool, per_client * clients);
  // Bodies as tritonclient sends them: a JSON header naming binary_data_size, then the bytes.
  std::vector<std::pair<std::string, size_t>> bodies;
  for (const auto& r : rows) {
    nlohmann::json header = {{"inputs", nlohmann::json::array()}};
    for (size_t i = 0; i < pool.size(); ++i)
      header["inputs"].push_back({{"name", pool[i].first},
                                  {"datatype", protocol_datatype(pool[i].second.dtype())},
                                  {"shape", row_shape(pool[i].second)},
                                  {"parameters", {{"binary_data_size", r.bytes[i].size()}}}});
    header["parameters"] = {{"binary_data_output", true}};
    std::string body = header.dump();
    const size_t json_bytes = body.size();
    for (const auto& b : r.bytes) body += b;
    bodies.emplace_back(std::move(body), json_bytes);
  }
  Recorder rec;
  const auto t0 = Clock::now();
  const auto measure_from = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_seconds));
  const auto end = measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_seconds));
  const std::string path = model_path(o.model, o.version) + "/infer";
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      httplib::Client client(e.host, e.port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      std::vector<float> local;
      local.reserve(1 << 16);
      for (uint64_t n = 0;; ++n) {
        const auto start = Clock::now();
        if (start >= end) break;
        const auto& [body, json_bytes] = bodies[static_cast<size_t>(c * per_client + static_cast<int64_t>(n % per_client))];
        httplib::Headers headers = {{"Inference-Header-Content-Length", std::to_string(json_bytes)}};
        auto res = client.Post(path, headers, body, "application/octet-stream");
        const auto now = Clock::now();
        if (start < measure_from || now > end) continue;
        if (res && res->status == 200)
          local.push_back(std::chrono::duration<float, std::micro>(now - start).count());
        else
          rec.error(res ? "HTTP " + std::to_string(res->status) + ": " + res->body : "HTTP request failed: " + httplib::to_string(res.error()));
      }
      std::lock_guard<std::mutex> lock(rec.mutex);
      rec.latencies_us.insert(rec.latencies_us.end(), local.begin(), local.end());
    });
  for (auto& t : threads) t.join();
  return summarise(rec, o.duration_seconds);
}

}  // namespace

std::vector<PortInfo> server_model_inputs(const std::string& url, const std::string& model, const std::string& version) {
  const Endpoint e = parse_url(url);
  std::vector<PortInfo> inputs;
  if (e.grpc) {
    auto service = inference::GRPCInferenceService::NewStub(
        grpc::CreateChannel(e.host + ":" + std::to_string(e.port), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    inference::ModelMetadataRequest request;
    request.set_name(model);
    request.set_version(version);
    inference::ModelMetadataResponse response;
    const grpc::Status status = service->ModelMetadata(&context, request, &response);
    SY_CHECK(status.ok(), "model metadata from " + url + ": " + status.error_message());
    for (const auto& t : response.inputs())
      inputs.push_back({t.name(), dtype_from_protocol(t.datatype()), Shape(t.shape().begin(), t.shape().end()), {}, true});
    return inputs;
  }
  httplib::Client client(e.host, e.port);
  client.set_connection_timeout(10);
  auto res = client.Get(model_path(model, version));
  SY_CHECK(res, "model metadata from " + url + ": " + httplib::to_string(res.error()));
  SY_CHECK(res->status == 200, "model metadata from " + url + ": HTTP " + std::to_string(res->status) + " " + res->body);
  const auto j = nlohmann::json::parse(res->body);
  for (const auto& t : j.at("inputs"))
    inputs.push_back({t.at("name").get<std::string>(), dtype_from_protocol(t.at("datatype").get<std::string>()),
                      t.at("shape").get<Shape>(), {}, true});
  return inputs;
}

LoadResult run_load(const LoadOptions& options, const std::vector<std::pair<std::string, Tensor>>& pool) {
  SY_CHECK(!pool.empty() && pool.front().second.rank() >= 1 && pool.front().second.dim(0) > 0, "empty input pool");
  const Endpoint e = parse_url(options.url);
  return e.grpc ? run_grpc(e, options, pool) : run_http(e, options, pool);
}

}  // namespace switchyard::serve
