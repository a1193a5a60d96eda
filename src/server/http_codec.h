// The KServe v2 REST infer body, both ways, apart from any HTTP library (so that it is fuzzed and tested
// on its own): a JSON header with tensors given as "data" or, with the binary tensor data extension,
// as `binary_data_size` bytes that follow the header in the inputs' order.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "server/batcher.h"
#include "server/model_repository.h"

namespace switchyard::serve {

struct HttpInferRequest {
  std::unique_ptr<InferJob> job;  // its input views point into the body: keep the body alive
  std::vector<bool> binary_outputs;  // per job output: answer as binary data
  std::string id;
};

// Decodes an infer body for `model`. header_length: the Inference-Header-Content-Length header's value,
// or null when absent (the whole body is JSON). Throws switchyard::Error with the one-line 400 message.
HttpInferRequest decode_http_infer(const ServedModel& model, const std::string& body, const std::string* header_length);

// The answer's body; json_bytes < body.size() when binary outputs follow the JSON header.
struct HttpInferResponse {
  int status = 200;
  std::string body;
  size_t json_bytes = 0;
};
HttpInferResponse encode_http_infer(const ServedModel& model, const InferJob& job, const JobResult& result,
                                    const std::vector<bool>& binary_outputs, const std::string& id);

// {"error": "<message>"}
std::string http_error_body(const std::string& message);
int http_status(JobStatus status);

}  // namespace switchyard::serve
