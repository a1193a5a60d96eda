#include "kernels/gemm_kernel.h"

#include "kernels/dispatch.h"
#include "kernels/isa_clones.h"

#include <algorithm>
#include <vector>

#include "core/thread_pool.h"

#ifdef SWITCHYARD_WITH_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif

namespace switchyard {

namespace {

constexpr int64_t kColBlock = 256;

// Register-blocked micro-kernel: R rows x 16 columns of C held in registers across the whole K loop
// (R x 16 floats = R zmm registers with AVX-512, 2R ymm with AVX2); each row of B is loaded once for
// R rows of A. Meant for small M (decode GEMVs, tiny experts) and narrow N, where packing does not pay.
template <int R>
[[gnu::always_inline]] inline void micro_tile(int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                       float* C, int64_t ldc, int64_t width) {
  constexpr int W = 16;
  float acc[R][W] = {};
  for (int64_t k = 0; k < K; ++k) {
    const float* b = B + k * ldb;
    float bv[W];
    for (int w = 0; w < W; ++w) bv[w] = w < width ? b[w] : 0.f;
    for (int r = 0; r < R; ++r) {
      const float av = A[r * lda + k];
      for (int w = 0; w < W; ++w) acc[r][w] += av * bv[w];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < W && w < width; ++w)
      C[r * ldc + w] = alpha * acc[r][w] + (beta == 0.f ? 0.f : beta * C[r * ldc + w]);
}

SY_CLONE_BODY void f32_gemm_rows_body(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, float alpha,
                                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                                      int64_t ldc) {
  for (int64_t j = j0; j < j1; j += 16) {
    const int64_t width = std::min<int64_t>(16, j1 - j);
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4) micro_tile<4>(K, alpha, A + i * lda, lda, B + j, ldb, beta, C + i * ldc + j, ldc, width);
    for (; i < i1; ++i) micro_tile<1>(K, alpha, A + i * lda, lda, B + j, ldb, beta, C + i * ldc + j, ldc, width);
  }
}

}  // namespace

SY_PORTABLE_KERNEL(void, f32_gemm_rows, (int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, float alpha,
                                         const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                                         int64_t ldc),
                   (i0, i1, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc))

// Portable streaming product (see f32_gemm_stream_avx512).
SY_CLONE_BODY void f32_gemm_stream_body(int64_t M, int64_t N, int64_t k0, int64_t k1, float alpha, const float* A,
                                        int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t r = 0; r < M; ++r) {
    float* __restrict o = C + r * ldc;
    for (int64_t j = 0; j < N; ++j) o[j] = beta == 0.f ? 0.f : beta * o[j];
    for (int64_t k = k0; k < k1; ++k) {
      const float a = alpha * A[r * lda + k];
      const float* __restrict b = B + k * ldb;
      for (int64_t j = 0; j < N; ++j) o[j] += a * b[j];
    }
  }
}

SY_PORTABLE_KERNEL(void, f32_gemm_stream, (int64_t M, int64_t N, int64_t k0, int64_t k1, float alpha, const float* A,
                                           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc),
                   (M, N, k0, k1, alpha, A, lda, B, ldb, beta, C, ldc))

namespace {

// Memory-bound small-M products on several threads: each thread streams its own contiguous block of
// B's rows into an M x N partial sum; the partials (a few KB) are then added. Buffers grow once per thread.
void gemm_split_k(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                  float beta, float* C, int64_t ldc, ThreadPool& pool) {
  const int parts = pool.size();
  static thread_local std::vector<float> partial;
  const size_t per = static_cast<size_t>(M * N);
  if (partial.size() < per * static_cast<size_t>(parts)) partial.resize(per * static_cast<size_t>(parts));
  float* base = partial.data();
  pool.parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      kernels().f32_gemm_stream(M, N, K * p / parts, K * (p + 1) / parts, 1.f, A, lda, B, ldb, 0.f, base + static_cast<size_t>(p) * per, N);
  });
  for (int64_t r = 0; r < M; ++r)
    for (int64_t j = 0; j < N; ++j) {
      float s = 0.f;
      for (int p = 0; p < parts; ++p) s += base[static_cast<size_t>(p) * per + static_cast<size_t>(r * N + j)];
      C[r * ldc + j] = alpha * s + (beta == 0.f ? 0.f : beta * C[r * ldc + j]);
    }
}

constexpr int64_t kRowBlock = 4;

}  // namespace

void transpose_matrix(const float* in, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
}

void sgemm_small(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                 int64_t ldc) {
  if (M > 0 && N > 0) kernels().f32_gemm_rows(0, M, 0, N, K, 1.f, A, lda, B, ldb, 0.f, C, ldc);
}

bool sgemm_uses_library() {
#ifdef SWITCHYARD_WITH_DNNL
  return true;
#else
  return false;
#endif
}

void sgemm(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
           int64_t ldb, float beta, float* C, int64_t ldc, ThreadPool* pool) {
  if (M <= 0 || N <= 0) return;
#ifdef SWITCHYARD_WITH_DNNL
  // oneDNN's sgemm (its own ISA dispatch: AVX-512, AVX2, ...) is 10-30x faster than the portable
  // loops below on every shape measured (`make compare`, the MoE layer cases); tiny products stay here, where a library
  // call costs more than the arithmetic. oneDNN threads with OpenMP: as many threads as the pool
  // that would have run the portable kernel, one when called from inside a pool task.
  if (M >= 8 && M * N * K >= 32768) {
    (void)kernels();  // the first kernel-table use caps oneDNN's ISA (SWITCHYARD_ISA) before its first JIT
    omp_set_num_threads(pool ? pool->size() : 1);
    dnnl_sgemm(trans_a ? 'T' : 'N', 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#endif
  std::vector<float> a_copy;
  if (trans_a) {  // rare in exported graphs: materialise A as [M,K]
    a_copy.resize(static_cast<size_t>(M * K));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t m = 0; m < M; ++m) a_copy[static_cast<size_t>(m * K + k)] = A[k * lda + m];
    A = a_copy.data();
    lda = K;
  }
  // Small M over a large B is memory-bound: stream B's rows in order (split over the threads). Also
  // for the 5..7 rows below oneDNN's threshold when B is at least 1 MiB (the experts of a many-expert
  // layer get a few rows each): the tiled kernel walks B by 64-column strips, a pattern the
  // prefetchers follow poorly (E=128 prefill ran at a third of the read bandwidth). From 8 rows on,
  // oneDNN is faster (streaming 16 rows measured 20% slower on E=32).
  if ((M <= 4 && N >= 32 && N * K >= (int64_t{1} << 14)) || (M <= 16 && N >= 64 && N * K >= (int64_t{1} << 18))) {
    if (pool && pool->size() > 1 && N * K >= (int64_t{1} << 18)) gemm_split_k(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, *pool);
    else kernels().f32_gemm_stream(M, N, 0, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int64_t col_blocks = (N + kColBlock - 1) / kColBlock;
  const int64_t row_blocks = (M + kRowBlock - 1) / kRowBlock;
  const int64_t tasks = row_blocks * col_blocks;
  auto body = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t rb = t / col_blocks, cb = t % col_blocks;
      int64_t i0 = rb * kRowBlock, i1 = std::min(M, i0 + kRowBlock);
      int64_t j0 = cb * kColBlock, j1 = std::min(N, j0 + kColBlock);
      kernels().f32_gemm_rows(i0, i1, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
