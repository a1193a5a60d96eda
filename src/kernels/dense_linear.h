// The constant weight of a MatMul / Gemm, prepacked for a precision other than FP32 (BF16, FP16, INT8,
// INT4, weight-only INT8 / INT4; see kernels/packed_linear.h): what CompileOptions::precision does to the
// dense layers. FP32 stays with sgemm (oneDNN), which these panels do not beat.
#pragma once

#include <optional>

#include "kernels/packed_linear.h"

namespace switchyard {

class ThreadPool;

class DenseLinear {
 public:
  // B as the operator reads it: [K, N], or [N, K] when trans_b. nullopt for FP32, or when B is not a
  // constant 2-D float32 tensor.
  static std::optional<DenseLinear> make(const Tensor* b, bool trans_b, Precision precision, int64_t group);

  int64_t K() const { return w_.K; }
  int64_t N() const { return w_.N; }
  size_t scratch_bytes(int64_t M) const { return linear_rows_bytes(w_.format, M, w_.K, w_.group); }
  // C[M, N] = A[M, K] B (row-major, packed), with scratch_bytes(M) of scratch.
  void run(int64_t M, const float* A, float* C, void* scratch, ThreadPool& pool) const;

 private:
  PackedLinear w_;
};

}  // namespace switchyard
