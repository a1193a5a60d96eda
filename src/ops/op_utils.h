// Helpers shared by the portable kernels: dtype dispatch, axes, broadcasting.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "ops/kernel.h"

namespace switchyard {

#define SY_CASE(DT, TYPE, ...) \
  case DT: {                   \
    using T = TYPE;            \
    __VA_ARGS__;               \
    break;                     \
  }

// Runs the body with `T` bound to the C++ type of `dtype` (float32/float64/ints).
#define SY_DISPATCH_NUMERIC(dtype, where, ...)                                                    \
  switch (dtype) {                                                                                \
    SY_CASE(::switchyard::DType::kFloat32, float, __VA_ARGS__)                                    \
    SY_CASE(::switchyard::DType::kFloat64, double, __VA_ARGS__)                                   \
    SY_CASE(::switchyard::DType::kInt64, int64_t, __VA_ARGS__)                                    \
    SY_CASE(::switchyard::DType::kInt32, int32_t, __VA_ARGS__)                                    \
    SY_CASE(::switchyard::DType::kInt16, int16_t, __VA_ARGS__)                                    \
    SY_CASE(::switchyard::DType::kInt8, int8_t, __VA_ARGS__)                                      \
    SY_CASE(::switchyard::DType::kUInt8, uint8_t, __VA_ARGS__)                                    \
    SY_CASE(::switchyard::DType::kUInt16, uint16_t, __VA_ARGS__)                                  \
    SY_CASE(::switchyard::DType::kUInt32, uint32_t, __VA_ARGS__)                                  \
    SY_CASE(::switchyard::DType::kUInt64, uint64_t, __VA_ARGS__)                                  \
    default:                                                                                      \
      throw ::switchyard::Error(std::string(where) + ": unsupported dtype " + dtype_name(dtype)); \
  }

#define SY_DISPATCH_FLOAT(dtype, where, ...)                                                      \
  switch (dtype) {                                                                                \
    SY_CASE(::switchyard::DType::kFloat32, float, __VA_ARGS__)                                    \
    SY_CASE(::switchyard::DType::kFloat64, double, __VA_ARGS__)                                   \
    default:                                                                                      \
      throw ::switchyard::Error(std::string(where) + ": unsupported dtype " + dtype_name(dtype)); \
  }

// Dispatches on element size only: for ops that move data without looking at it.
#define SY_DISPATCH_BYTES(dtype, where, ...)                                                    \
  switch (dtype_size(dtype)) {                                                                  \
    SY_CASE(1, uint8_t, __VA_ARGS__)                                                            \
    SY_CASE(2, uint16_t, __VA_ARGS__)                                                           \
    SY_CASE(4, uint32_t, __VA_ARGS__)                                                           \
    SY_CASE(8, uint64_t, __VA_ARGS__)                                                           \
    default:                                                                                    \
      throw ::switchyard::Error(std::string(where) + ": unsupported dtype " + dtype_name(dtype)); \
  }

// Normalises a possibly negative axis into [0, rank); throws with the node's name if out of range.
int64_t normalize_axis(int64_t axis, int64_t rank, const Node& node);

// NumPy broadcasting of two shapes; throws if incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& node);

// Row-major strides of `in` aligned to `out` (rank-extended with 0 strides where in broadcasts).
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// Reads an int64 (or int32) 1-D tensor into a vector.
std::vector<int64_t> read_int_list(const Tensor& t);

// A shape seen around one axis: outer (product of the dims before it) x dim x inner (after it).
struct AxisSplit {
  int64_t outer = 1, dim = 1, inner = 1;
};
inline AxisSplit split_at_axis(const Shape& s, int64_t axis) {
  AxisSplit a;
  for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d)
    (d < axis ? a.outer : d == axis ? a.dim : a.inner) *= s[static_cast<size_t>(d)];
  return a;
}

// GatherElements / ScatterElements: for each element i of `indices` (row-major), the offset into `data`
// of the element it addresses (indices[i] along `axis`, i's own coordinates elsewhere): fn(i, offset).
// Negative indices count from the end; an index outside the axis is an error naming `node`.
template <typename F>
void for_each_element_index(const Shape& data, const Tensor& indices, int64_t axis, const Node& node, F&& fn) {
  const size_t r = data.size();
  SY_CHECK(indices.rank() == static_cast<int64_t>(r), node.describe() + ": data and indices ranks differ");
  for (size_t d = 0; d < r; ++d)
    SY_CHECK(d == static_cast<size_t>(axis) || indices.shape()[d] <= data[d], node.describe() + ": indices larger than data");
  std::vector<int64_t> strides(r, 1), pos(r, 0);
  for (size_t d = r; d-- > 1;) strides[d - 1] = strides[d] * data[d];
  const int64_t n = indices.numel(), dim = data[static_cast<size_t>(axis)];
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = indices.as_int64(i);
    if (k < 0) k += dim;
    SY_CHECK(k >= 0 && k < dim, node.describe() + ": index " + std::to_string(indices.as_int64(i)) + " out of range");
    int64_t off = 0;
    for (size_t d = 0; d < r; ++d) off += (d == static_cast<size_t>(axis) ? k : pos[d]) * strides[d];
    fn(i, off);
    for (size_t d = r; d-- > 0;) {
      if (++pos[d] < indices.shape()[d]) break;
      pos[d] = 0;
    }
  }
}

inline int64_t rows_of(const Shape& s, size_t until) {
  int64_t n = 1;
  for (size_t i = 0; i < until && i < s.size(); ++i) n *= s[i];
  return n;
}

// Visits the elements of `shape` in row-major order: fn(i, offset) with offset = base + sum idx[d] * strides[d]
// (the input offset of output element i for strided copies: Slice, Transpose; or an output slot: reductions).
template <typename F>
void for_each_strided(const Shape& shape, const std::vector<int64_t>& strides, int64_t base, F&& fn) {
  const int64_t n = checked_numel(shape);
  const size_t r = shape.size();
  std::vector<int64_t> idx(r, 0);
  int64_t off = base;
  for (int64_t i = 0; i < n; ++i) {
    fn(i, off);
    for (size_t d = r; d-- > 0;) {
      ++idx[d];
      off += strides[d];
      if (idx[d] < shape[d]) break;
      off -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

// Calls fn(out_index, a_offset, b_offset, inner_count, a_inner_stride, b_inner_stride) for each
// contiguous inner run of a broadcast binary op: the innermost output dim is walked by the caller.
template <typename F>
void for_each_broadcast_run(const Shape& out, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb, F&& fn) {
  const size_t r = out.size();
  if (r == 0) {
    fn(int64_t{0}, int64_t{0}, int64_t{0}, int64_t{1}, int64_t{0}, int64_t{0});
    return;
  }
  const int64_t inner = out[r - 1];
  int64_t outer = 1;
  for (size_t i = 0; i + 1 < r; ++i) outer *= out[i];
  if (inner == 0 || outer == 0) return;
  std::vector<int64_t> idx(r, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t o = 0; o < outer; ++o) {
    fn(o * inner, oa, ob, inner, sa[r - 1], sb[r - 1]);
    for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; --d) {
      size_t du = static_cast<size_t>(d);
      ++idx[du];
      oa += sa[du];
      ob += sb[du];
      if (idx[du] < out[du]) break;
      oa -= sa[du] * out[du];
      ob -= sb[du] * out[du];
      idx[du] = 0;
    }
  }
}

}  // namespace switchyard
