// The KServe v2 gRPC service (kserve_predict_v2.proto) on gRPC's callback API: ModelInfer hands the
// request to the model's batcher and returns; the batcher's worker fills the response and finishes the
// call, so no gRPC thread waits for inference.
#pragma once

#include <memory>
#include <string>

#include "server/model_repository.h"

namespace switchyard::serve {

class GrpcFrontend {
 public:
  // Listens on address:port (port 0: any free port; see port()). max_message_bytes bounds a request.
  GrpcFrontend(ModelRepository& repository, const std::string& address, int port, size_t max_message_bytes);
  ~GrpcFrontend();
  int port() const;
  // Stops accepting calls and waits for the calls in flight to finish.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchyard::serve
