// `switchyard serve`: a model repository behind the KServe v2 HTTP and gRPC front ends and a Prometheus
// metrics page, until SIGTERM or SIGINT, then a graceful stop: no new requests or connections, every
// request already accepted is answered, exit 0.
#pragma once

#include <cstdio>
#include <string>

namespace switchyard::serve {

struct ServeOptions {
  std::string model_repository;
  std::string address = "0.0.0.0";
  int http_port = 8000;     // 0: any free port; -1: no HTTP front end
  int grpc_port = 8001;     // idem
  int metrics_port = 8002;  // idem
  int http_threads = 128;
  int grpc_threads = 0;     // completion-queue threads (0: half the cores, at least 1)
  int busy_poll_us = 100;   // gRPC: poll this long after each event before sleeping (0: never)
  size_t max_request_bytes = 64u << 20;
  int threads = 0;          // per model version, unless its config says otherwise
  std::string isa;
};

// Blocks the termination signals in the calling thread (and so in every thread it starts): call first,
// before anything starts threads, so that serve() receives them with sigwait.
void block_termination_signals();

// Loads, serves until a termination signal, stops gracefully. Prints one "ready" line with the bound
// ports on `log` once listening. Throws switchyard::Error (nothing listening) if the start fails.
void serve(const ServeOptions& options, std::FILE* log);

}  // namespace switchyard::serve
