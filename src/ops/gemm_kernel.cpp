#include "ops/gemm_kernel.h"

#include <algorithm>
#include <vector>

#include "runtime/thread_pool.h"

namespace switchyard {

namespace {

constexpr int64_t kRowBlock = 4;
constexpr int64_t kColBlock = 256;

// Computes rows [i0, i1) of C for one column block; A rows are contiguous (not transposed).
__attribute__((target_clones("avx512f", "avx2,fma", "default")))
void gemm_rows(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t nj = j1 - j0;
  float acc[kRowBlock][kColBlock];
  for (int64_t i = i0; i < i1; i += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, i1 - i);
    for (int64_t r = 0; r < kRowBlock; ++r)
      for (int64_t j = 0; j < nj; ++j) acc[r][j] = 0.f;
    if (rows == kRowBlock) {
      const float* a0 = A + (i + 0) * lda;
      const float* a1 = A + (i + 1) * lda;
      const float* a2 = A + (i + 2) * lda;
      const float* a3 = A + (i + 3) * lda;
      for (int64_t k = 0; k < K; ++k) {
        const float* b = B + k * ldb + j0;
        const float x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
        for (int64_t j = 0; j < nj; ++j) {
          const float bv = b[j];
          acc[0][j] += x0 * bv;
          acc[1][j] += x1 * bv;
          acc[2][j] += x2 * bv;
          acc[3][j] += x3 * bv;
        }
      }
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        const float* a = A + (i + r) * lda;
        for (int64_t k = 0; k < K; ++k) {
          const float* b = B + k * ldb + j0;
          const float x = a[k];
          for (int64_t j = 0; j < nj; ++j) acc[r][j] += x * b[j];
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      float* c = C + (i + r) * ldc + j0;
      if (beta == 0.f) {
        for (int64_t j = 0; j < nj; ++j) c[j] = alpha * acc[r][j];
      } else {
        for (int64_t j = 0; j < nj; ++j) c[j] = alpha * acc[r][j] + beta * c[j];
      }
    }
  }
}

}  // namespace

void transpose_matrix(const float* in, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
}

void sgemm(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
           int64_t ldb, float beta, float* C, int64_t ldc, ThreadPool* pool) {
  if (M <= 0 || N <= 0) return;
  std::vector<float> a_copy;
  if (trans_a) {  // rare in exported graphs: materialise A as [M,K]
    a_copy.resize(static_cast<size_t>(M * K));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t m = 0; m < M; ++m) a_copy[static_cast<size_t>(m * K + k)] = A[k * lda + m];
    A = a_copy.data();
    lda = K;
  }
  const int64_t col_blocks = (N + kColBlock - 1) / kColBlock;
  const int64_t row_blocks = (M + kRowBlock - 1) / kRowBlock;
  const int64_t tasks = row_blocks * col_blocks;
  auto body = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t rb = t / col_blocks, cb = t % col_blocks;
      int64_t i0 = rb * kRowBlock, i1 = std::min(M, i0 + kRowBlock);
      int64_t j0 = cb * kColBlock, j1 = std::min(N, j0 + kColBlock);
      gemm_rows(i0, i1, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
  };
  // Only spread work that outweighs a wake-up of the pool (~a few microseconds).
  const int64_t flops = M * N * K;
  if (pool && pool->size() > 1 && flops > 32768) {
    int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, kRowBlock * std::min(N, kColBlock) * K));
    pool->parallel_for(tasks, grain, body);
  } else {
    body(0, tasks);
  }
}

}  // namespace switchyard
