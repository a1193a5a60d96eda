// The KServe v2 REST API (JSON tensors and the binary tensor data extension that tritonclient uses) on
// cpp-httplib, and the Prometheus /metrics page on its own port. httplib serves each connection on a
// thread of its pool; an infer handler waits there until the batcher has answered its request.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "server/model_repository.h"

namespace switchyard::serve {

struct HttpOptions {
  std::string address = "0.0.0.0";
  int port = 8000;              // 0: any free port (see HttpFrontend::port())
  size_t max_body_bytes = 64u << 20;
  int threads = 128;            // connections served at once (keep-alive clients each hold one)
};

class HttpFrontend {
 public:
  HttpFrontend(ModelRepository& repository, const HttpOptions& options);
  ~HttpFrontend();
  int port() const;
  void start();     // serves on a thread of its own
  void shutdown();  // stops accepting; requests in flight complete first

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// GET /metrics on address:port, rendering `page` at each scrape.
class MetricsFrontend {
 public:
  MetricsFrontend(const std::string& address, int port, std::function<std::string()> page);
  ~MetricsFrontend();
  int port() const;
  void start();
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchyard::serve
