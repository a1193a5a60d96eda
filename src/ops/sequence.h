// ONNX sequences inside a graph: a Tensor of dtype kSequence and shape [n] whose storage is a shared,
// immutable std::vector<Tensor> (the items own their memory: inserting clones the tensor, which lives
// in a buffer the request reuses). Kernels hand one out with KernelContext::set_output.
#pragma once

#include <memory>
#include <vector>

#include "ops/op_utils.h"

namespace switchyard {

inline Tensor make_sequence(std::vector<Tensor> items) {
  auto owned = std::make_shared<std::vector<Tensor>>(std::move(items));
  Tensor* data = owned->data();
  const auto n = static_cast<int64_t>(owned->size());
  return Tensor::view(DType::kSequence, {n}, data, std::shared_ptr<void>(owned, owned.get()));
}

// The items of a sequence input; `where` names the node for the error.
inline std::vector<Tensor> sequence_items(const Tensor& s, const std::string& where) {
  SY_CHECK(s.dtype() == DType::kSequence, where + ": expected a sequence, got a " + dtype_name(s.dtype()) + " tensor");
  const Tensor* items = static_cast<const Tensor*>(s.raw());
  return std::vector<Tensor>(items, items + s.numel());
}

}  // namespace switchyard
