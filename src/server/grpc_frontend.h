// The KServe v2 gRPC service (kserve_predict_v2.proto) on gRPC's asynchronous completion-queue API.
// A few threads each poll a completion queue of their own: a ModelInfer call is parsed, handed to the
// model's batcher (which runs it on this thread when an execution slot is idle) and answered from
// whichever thread executed its batch; no thread blocks waiting for inference.
//
// Latency: after handling an event a polling thread keeps polling without sleeping for `busy_poll_us`
// (one thread at a time), so the next request of a client in a closed loop is picked up without a
// thread wake-up (~90 us less per call on the 2-core VMs measured; bench/serve_load.py). An idle server
// sleeps in the completion queue as usual.
#pragma once

#include <memory>
#include <string>

#include "server/model_repository.h"

namespace switchyard::serve {

class GrpcFrontend {
 public:
  // Listens on address:port (port 0: any free port; see port()). max_message_bytes bounds a request.
  // threads: completion-queue threads (0: half the cores, at least 1).
  GrpcFrontend(ModelRepository& repository, const std::string& address, int port, size_t max_message_bytes,
               int threads = 0, int busy_poll_us = 100);
  ~GrpcFrontend();
  int port() const;
  // Stops accepting calls and waits for the calls in flight to finish.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchyard::serve
