// Closed-loop load generator for a KServe v2 server (`switchyard bench --server URL`): N concurrent
// clients, each sending its next request as soon as the previous one is answered, for a fixed duration
// after a warm-up. gRPC clients each have their own channel (connection) and are driven by one
// completion-queue thread; HTTP clients are one keep-alive connection and thread each, sending the
// binary tensor data form that tritonclient sends.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "switchyard/engine.h"

namespace switchyard::serve {

struct LoadOptions {
  std::string url;         // grpc://host:port or http://host:port
  std::string model;
  std::string version;     // "": the server's choice
  int clients = 1;
  double warmup_seconds = 0.5;
  double duration_seconds = 3.0;
};

struct LoadResult {
  uint64_t requests = 0;   // answered OK within the measured window
  uint64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  double requests_per_second = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0;
};

// The model's inputs as the server describes them (metadata endpoint of the URL's protocol).
std::vector<PortInfo> server_model_inputs(const std::string& url, const std::string& model, const std::string& version);

// Runs the load. `pool` holds, per model input, rows [P, ...]; request r of client c sends row
// (c * 7919 + r) % P of each input, with batch 1 (distinct inputs across clients and calls).
LoadResult run_load(const LoadOptions& options, const std::vector<std::pair<std::string, Tensor>>& pool);

}  // namespace switchyard::serve
