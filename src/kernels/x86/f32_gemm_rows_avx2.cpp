// f32 GEMM for small M and narrow N on unpacked B (decode GEMVs, tiny experts, the seed classifier's
// 784 -> 16 embedding) for AVX2 + FMA: C[M,N] = alpha A[M,K] B[K,N] + beta C, row-major. Register tiles
// for 16 ymm registers, accumulators held across the whole K loop:
//   - 3 rows or more: strips of 16 columns, rows in balanced groups of up to 6 (12 accumulators, 2
//     vectors of B, 1 broadcast): each row of B loaded serves 6 rows, 6 broadcasts + 2 loads per 12 FMAs;
//   - 1 or 2 rows: strips of 32 columns (16 when narrower), K split over 2-4 accumulator sets so the
//     FMA latency does not bound a lone row (the batch-1 embedding is 1 x 16 x 784).
// Column tails use vmaskmovps. Also the streaming product of split-K decode (f32_gemm_stream_avx2).
// Compiled with -mavx2 -mfma; reached only through the kernel table (kernels/dispatch.cpp).
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/x86/ymm_tail.h"

namespace switchyard::x86 {

namespace {

// R rows x V vectors (8 columns each; `width` of them valid), K split over U accumulator sets. FULL:
// every column valid (plain loads; the tail strip uses masked loads).
template <int R, int V, int U, bool FULL>
void tile_body(int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc, int64_t width) {
  __m256i mask[V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) mask[v] = ymm_lanes(width - 8 * v);
  __m256 acc[U][R][V];
#pragma GCC unroll 4
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[u][r][v] = _mm256_setzero_ps();
  auto step = [&](int64_t k, int u) __attribute__((always_inline)) {
    __m256 b[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v)
      b[v] = FULL ? _mm256_loadu_ps(B + k * ldb + 8 * v) : _mm256_maskload_ps(B + k * ldb + 8 * v, mask[v]);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[u][r][v] = _mm256_fmadd_ps(a, b[v], acc[u][r][v]);
    }
  };
  int64_t k = 0;
  for (; k + U <= K; k += U)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) step(k + u, u);
  for (; k < K; ++k) step(k, 0);
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      __m256 sum = acc[0][r][v];
#pragma GCC unroll 4
      for (int u = 1; u < U; ++u) sum = _mm256_add_ps(sum, acc[u][r][v]);
      float* c = C + r * ldc + 8 * v;
      const int64_t n = width - 8 * v;
      __m256 out = _mm256_mul_ps(va, sum);
      if (beta != 0.f) out = _mm256_fmadd_ps(vb, load_lanes(c, n), out);
      store_lanes(c, out, n);
    }
}

template <int R, int V, int U>
void tile(int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc, int64_t width) {
  if (width >= 8 * V) tile_body<R, V, U, true>(K, alpha, A, lda, B, ldb, beta, C, ldc, width);
  else tile_body<R, V, U, false>(K, alpha, A, lda, B, ldb, beta, C, ldc, width);
}

using Tile = void (*)(int64_t, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, int64_t);
constexpr Tile kStrip16[7] = {nullptr,          tile<1, 2, 4>, tile<2, 2, 2>, tile<3, 2, 1>,
                              tile<4, 2, 1>,    tile<5, 2, 1>, tile<6, 2, 1>};

}  // namespace

// Rows [i0, i1) x columns [j0, j1) of C.
void f32_gemm_rows_avx2(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, float alpha, const float* A, int64_t lda,
                        const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t rows = i1 - i0;
  A += i0 * lda;
  C += i0 * ldc;
  if (rows <= 2 && j1 - j0 > 16) {
    for (int64_t j = j0; j < j1; j += 32) {
      const int64_t width = std::min<int64_t>(32, j1 - j);
      if (rows == 1) tile<1, 4, 2>(K, alpha, A, lda, B + j, ldb, beta, C + j, ldc, width);
      else tile<2, 4, 1>(K, alpha, A, lda, B + j, ldb, beta, C + j, ldc, width);
    }
    return;
  }
  const int64_t groups = (rows + 5) / 6;
  for (int64_t j = j0; j < j1; j += 16) {
    const int64_t width = std::min<int64_t>(16, j1 - j);
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t r0 = rows * g / groups, r1 = rows * (g + 1) / groups;
      kStrip16[r1 - r0](K, alpha, A + r0 * lda, lda, B + j, ldb, beta, C + r0 * ldc + j, ldc, width);
    }
  }
}

// Streaming product for M <= 4 rows: C[M,N] = alpha A[:, k0:k1] B[k0:k1, :] + beta C, reading B's rows
// k0..k1 in order (one contiguous block) so memory-bound GEMVs stream at the DRAM's pace; the M x N
// rows of C stay in L1/L2 while they accumulate. Split-K callers give each thread its own k range.
void f32_gemm_stream_avx2(int64_t M, int64_t N, int64_t k0, int64_t k1, float alpha, const float* A, int64_t lda,
                          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t r = 0; r < M; ++r)
    for (int64_t j = 0; j < N; ++j) C[r * ldc + j] = beta == 0.f ? 0.f : beta * C[r * ldc + j];
  int64_t k = k0;
  for (; k + 4 <= k1; k += 4) {
    const float* b0 = B + k * ldb;
    const float* b1 = b0 + ldb;
    const float* b2 = b1 + ldb;
    const float* b3 = b2 + ldb;
    for (int64_t r = 0; r < M; ++r) {
      const __m256 a0 = _mm256_set1_ps(alpha * A[r * lda + k]), a1 = _mm256_set1_ps(alpha * A[r * lda + k + 1]);
      const __m256 a2 = _mm256_set1_ps(alpha * A[r * lda + k + 2]), a3 = _mm256_set1_ps(alpha * A[r * lda + k + 3]);
      float* o = C + r * ldc;
      int64_t j = 0;
      for (; j + 8 <= N; j += 8) {
        __m256 acc = _mm256_loadu_ps(o + j);
        acc = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b0 + j), acc);
        acc = _mm256_fmadd_ps(a1, _mm256_loadu_ps(b1 + j), acc);
        acc = _mm256_fmadd_ps(a2, _mm256_loadu_ps(b2 + j), acc);
        acc = _mm256_fmadd_ps(a3, _mm256_loadu_ps(b3 + j), acc);
        _mm256_storeu_ps(o + j, acc);
      }
      if (j < N) {
        const int64_t n = N - j;
        __m256 acc = load_lanes(o + j, n);
        acc = _mm256_fmadd_ps(a0, load_lanes(b0 + j, n), acc);
        acc = _mm256_fmadd_ps(a1, load_lanes(b1 + j, n), acc);
        acc = _mm256_fmadd_ps(a2, load_lanes(b2 + j, n), acc);
        acc = _mm256_fmadd_ps(a3, load_lanes(b3 + j, n), acc);
        store_lanes(o + j, acc, n);
      }
    }
  }
  for (; k < k1; ++k)
    for (int64_t r = 0; r < M; ++r) {
      const float a = alpha * A[r * lda + k];
      for (int64_t j = 0; j < N; ++j) C[r * ldc + j] += a * B[k * ldb + j];
    }
}

}  // namespace switchyard::x86
