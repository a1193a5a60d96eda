// The constant weight of a MatMul / Gemm prepacked into the panel kernels' layout (kernels/packed_linear.h):
//   - at a precision other than FP32 (BF16, FP16, INT8, INT4, weight-only INT8 / INT4): what
//     CompileOptions::precision does to the dense layers, used for every call;
//   - at FP32, only where the panels beat oneDNN's sgemm on this layer's shape: both run at compile
//     time on few rows (16) and on many (64 to 256), on the machine's cores, and the panels are kept for
//     the row counts where they were at least 10% faster (oneDNN re-packs B on every call, which costs
//     most when the rows are few). Otherwise make() returns nullopt and the layer calls sgemm. One
//     measurement per shape and ISA per process; SWITCHYARD_DENSE_GEMM=library|panels|panels-few-rows
//     forces it.
#pragma once

#include <optional>
#include <string>

#include "kernels/packed_linear.h"

namespace switchyard {

class ThreadPool;

class DenseLinear {
 public:
  // B as the operator reads it: [K, N], or [N, K] when trans_b. nullopt when B is not a constant 2-D
  // float32 tensor, or at FP32 when oneDNN was as fast for every row count.
  static std::optional<DenseLinear> make(const Tensor* b, bool trans_b, Precision precision, int64_t group);

  // Whether a call on `rows` rows runs here (else the caller runs sgemm): always at the lower precisions.
  bool use_for(int64_t rows) const { return rows < kManyRows ? panels_few_ : panels_many_; }
  bool always() const { return panels_few_ && panels_many_; }
  // "panels" / "oneDNN" for few and many rows, as measured at compile time (FP32 only).
  std::string choice() const;

  int64_t K() const { return w_.K; }
  int64_t N() const { return w_.N; }
  size_t scratch_bytes(int64_t M) const { return linear_rows_bytes(w_.format, M, w_.K, w_.group); }
  // C[M, N] = A[M, K] B (row-major, packed), with scratch_bytes(M) of scratch.
  void run(int64_t M, const float* A, float* C, void* scratch, ThreadPool& pool) const;

 private:
  static constexpr int64_t kManyRows = 64;  // from here on, the "many rows" measurement decides
  PackedLinear w_;
  bool panels_few_ = true, panels_many_ = true;
};

}  // namespace switchyard
