// Turns the tensors of one inference request (from either protocol) into an InferJob for a served
// model, checking each against the model: name, datatype, shape, byte size, batch dimension. Every
// problem is a switchyard::Error with a one-line message the front end returns as a 400.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/batcher.h"
#include "server/model_repository.h"

namespace switchyard::serve {

class JobBuilder {
 public:
  explicit JobBuilder(const ServedModel& model);

  // An input whose bytes stay in the request (raw gRPC contents, HTTP binary data): viewed, not copied.
  void add_input_view(const std::string& name, const std::string& datatype, const Shape& shape, const void* data,
                      size_t bytes);
  // An input decoded from a typed form (JSON, gRPC typed contents) of `values` elements: checks that the
  // shape holds exactly that many (before allocating anything), returns the storage for the caller to fill.
  Tensor& add_input_owned(const std::string& name, const std::string& datatype, const Shape& shape, int64_t values);
  void request_output(const std::string& name);
  // Checks that every input came, sets the deadline (0: none), returns the job (done() still to set).
  std::unique_ptr<InferJob> finish(int64_t timeout_us);

 private:
  size_t begin_input(const std::string& name, const std::string& datatype, const Shape& shape, DType& dtype);

  const ServedModel& model_;
  std::unique_ptr<InferJob> job_;
  std::vector<bool> given_;
};

}  // namespace switchyard::serve
