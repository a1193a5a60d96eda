// Tensors: a dtype, a shape and a pointer to row-major data that the tensor may or may not own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "switchyard/error.h"

namespace switchyard {

enum class DType : int {
  kUndefined = 0,
  kFloat32,
  kFloat16,
  kBFloat16,
  kFloat64,
  kInt64,
  kInt32,
  kInt16,
  kInt8,
  kUInt8,
  kUInt16,
  kUInt32,
  kUInt64,
  kBool,
  // An ONNX sequence of tensors (SequenceInsert, ConcatFromSequence, ...), only inside a graph: shape
  // [n], the items shared and immutable (src/ops/sequence.h). Never a model input or output.
  kSequence,
};

using Shape = std::vector<int64_t>;

size_t dtype_size(DType t);
const char* dtype_name(DType t);            // "float32", "int64", ...
DType dtype_from_name(const std::string& name);  // inverse of dtype_name; kUndefined if unknown
std::string shape_str(const Shape& s);       // "[1,3,224,224]"

// Product of dims; throws on negative dims or overflow past 2^62 (hostile shapes).
int64_t checked_numel(const Shape& shape);

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kFloat32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::kFloat64; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kInt64; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kInt32; };
template <> struct DTypeOf<int16_t> { static constexpr DType value = DType::kInt16; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::kInt8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::kUInt8; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::kUInt16; };
template <> struct DTypeOf<uint32_t> { static constexpr DType value = DType::kUInt32; };
template <> struct DTypeOf<uint64_t> { static constexpr DType value = DType::kUInt64; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::kBool; };

class Tensor {
 public:
  Tensor() = default;
  // Allocates zero-initialised, 64-byte aligned storage owned by the tensor.
  Tensor(DType dtype, Shape shape);
  // Wraps caller memory without copying; the caller keeps it alive while the tensor is used.
  static Tensor wrap(DType dtype, Shape shape, void* data);
  // Shares storage owned elsewhere (keeps `owner` alive).
  static Tensor view(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t i) const { return shape_[static_cast<size_t>(i < 0 ? i + rank() : i)]; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool defined() const { return dtype_ != DType::kUndefined; }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T> T* data() {
    check_type(DTypeOf<T>::value);
    return static_cast<T*>(data_);
  }
  template <typename T> const T* data() const {
    check_type(DTypeOf<T>::value);
    return static_cast<const T*>(data_);
  }
  // Deep copy with owned storage.
  Tensor clone() const;
  // Rows [first, first + count) along dim 0, sharing this tensor's storage (no copy).
  Tensor slice(int64_t first, int64_t count) const;
  // The same elements under another shape of the same size, sharing storage (no copy).
  Tensor reshaped(Shape shape) const;
  // Reads element i as double / int64 whatever the dtype (for shape inputs, printing, tests).
  double as_double(int64_t i) const;
  int64_t as_int64(int64_t i) const;

 private:
  void check_type(DType expected) const;
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  int64_t numel_ = 0;
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;
};

// float16 / bfloat16 <-> float conversions (IEEE round-to-nearest-even).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bfloat16_to_float(uint16_t b);
uint16_t float_to_bfloat16(float f);

}  // namespace switchyard
