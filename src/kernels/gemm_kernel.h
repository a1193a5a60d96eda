// Row-major FP32 matrix multiply used by Gemm, MatMul and Conv (im2col).
// oneDNN for large products, the kernel table's small-M and streaming entries (hand-written AVX-512
// and AVX2 kernels in src/kernels/x86/, portable C++ below AVX2) for the rest; see dispatch.h.
#pragma once

#include <cstdint>

namespace switchyard {

class ThreadPool;

// C[M,N] = alpha * A[M,K] * B[K,N] + beta * C, all row-major with leading dimensions lda/ldb/ldc.
// beta == 0 ignores C's previous contents (may be uninitialised). A may be transposed (A is [K,M]).
// Whether sgemm hands its large products (M >= 8) to oneDNN (built with libdnnl).
bool sgemm_uses_library();

void sgemm(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
           int64_t ldb, float beta, float* C, int64_t ldc, ThreadPool* pool);

// C[M,N] = A[M,K] B[K,N] on the calling thread with the register-tiled small-M kernel (never a
// library call, never the pool): for blocks that are one task of a larger parallel loop.
void sgemm_small(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                 int64_t ldc);

// out[N,K] = transpose(in[K,N]) (used to prepack a transposed B once at compile time).
void transpose_matrix(const float* in, int64_t rows, int64_t cols, float* out);

}  // namespace switchyard
