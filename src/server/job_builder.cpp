#include "server/job_builder.h"

#include "server/datatype.h"
#include "switchyard/error.h"

namespace switchyard::serve {

JobBuilder::JobBuilder(const ServedModel& model)
    : model_(model), job_(std::make_unique<InferJob>()), given_(model.model.inputs().size(), false) {
  job_->inputs.resize(given_.size());
}

size_t JobBuilder::begin_input(const std::string& name, const std::string& datatype, const Shape& shape, DType& dtype) {
  const size_t index = model_.input_index(name);
  SY_CHECK(!given_[index], "input '" + name + "' is given twice");
  dtype = dtype_from_protocol(datatype);
  SY_CHECK(dtype != DType::kUndefined, "input '" + name + "': unsupported datatype '" + datatype +
                                           "' (FP32, FP16, BF16, FP64, INT8..INT64, UINT8..UINT64, BOOL)");
  model_.check_input(index, dtype, shape);
  given_[index] = true;
  return index;
}

void JobBuilder::add_input_view(const std::string& name, const std::string& datatype, const Shape& shape,
                                const void* data, size_t bytes) {
  DType dtype;
  const size_t index = begin_input(name, datatype, shape, dtype);
  const int64_t numel = checked_numel(shape);
  SY_CHECK(static_cast<uint64_t>(numel) <= SIZE_MAX / dtype_size(dtype),
           "input '" + name + "': shape " + shape_str(shape) + " is too large");
  const size_t expected = static_cast<size_t>(numel) * dtype_size(dtype);
  SY_CHECK(bytes == expected, "input '" + name + "': " + std::to_string(bytes) + " bytes of data, expected " +
                                  std::to_string(expected) + " for " + datatype + " " + shape_str(shape));
  job_->inputs[index] = Tensor::wrap(dtype, shape, const_cast<void*>(data));
}

Tensor& JobBuilder::add_input_owned(const std::string& name, const std::string& datatype, const Shape& shape,
                                    int64_t values) {
  DType dtype;
  const size_t index = begin_input(name, datatype, shape, dtype);
  SY_CHECK(checked_numel(shape) == values, "input '" + name + "': " + std::to_string(values) + " values in data, expected " +
                                               std::to_string(checked_numel(shape)) + " for shape " + shape_str(shape));
  job_->inputs[index] = Tensor(dtype, shape);
  return job_->inputs[index];
}

void JobBuilder::request_output(const std::string& name) {
  const size_t index = model_.output_index(name);
  for (size_t o : job_->outputs) SY_CHECK(o != index, "output '" + name + "' is requested twice");
  job_->outputs.push_back(index);
}

std::unique_ptr<InferJob> JobBuilder::finish(int64_t timeout_us) {
  const auto& ports = model_.model.inputs();
  for (size_t i = 0; i < ports.size(); ++i)
    SY_CHECK(given_[i], "input '" + ports[i].name + "' is missing (model '" + model_.name + "' needs " +
                            std::to_string(ports.size()) + " input" + (ports.size() == 1 ? "" : "s") + ")");
  if (job_->outputs.empty())
    for (size_t o = 0; o < model_.model.outputs().size(); ++o) job_->outputs.push_back(o);
  if (model_.batching.enabled) {
    job_->rows = job_->inputs[0].dim(0);
    for (size_t i = 1; i < ports.size(); ++i)
      SY_CHECK(job_->inputs[i].dim(0) == job_->rows, "inputs '" + ports[0].name + "' and '" + ports[i].name +
                                                         "' have different batch sizes");
  }
  if (timeout_us <= 0) timeout_us = model_.default_timeout_us;
  if (timeout_us > 0) job_->deadline = job_->arrival + std::chrono::microseconds(timeout_us);
  return std::move(job_);
}

}  // namespace switchyard::serve
