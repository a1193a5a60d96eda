// f32 GEMM on weights prepacked into 32-column panels (kernels/gemm_panel.h) for AVX2 + FMA: C[M, panels]
// = A[M,K] B. AVX2 has 16 ymm registers of 8 floats, so a panel row is 4 vectors and the register tile
// is smaller than AVX-512's 12 x 32:
//   - up to 3 rows: the whole panel (R x 4 accumulators), one pass over the weights; the streaming
//     decode shape, so each row of B loaded serves every row and memory stays the limit;
//   - 4 rows and more: the classic 6 x 16 tile, one 16-column half of the panel at a time (12
//     accumulators + 2 weight vectors + 1 broadcast = 15 registers; 6 broadcasts and 2 loads feed 12
//     FMAs, so the FMA pipes, not the loads, are the limit). The half re-reads from L1/L2.
// Each pass over a panel prefetches its share of the next panel, as the AVX-512 kernel does; a single
// pass (decode) prefetches a few KB ahead in its own stream. FP16-stored weights (precision "fp16")
// widen with F16C's vcvtph2ps in the same tiles. Compiled with -mavx2 -mfma -mf16c; reached only
// through the kernel table (kernels/dispatch.cpp).
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/x86/f32_panel_avx2.h"
#include "kernels/x86/ymm_tail.h"

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;

inline __m256 load_weights(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load_weights(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// R rows x V vectors of 8 columns of the panel starting at P (row stride kPanel), summed over all K.
// U > 1 splits k over U accumulator sets: one row of 4 vectors alone is an FMA latency chain.
// LINES: cache lines prefetched per k step (at prefetch + k * step bytes). accumulate: add to C (a
// later block of k) instead of overwriting it.
template <typename W, int R, int V, int U, int LINES>
void tile(int64_t K, const float* A, int64_t lda, const W* P, float* C, int64_t ldc, int64_t cols, const char* prefetch,
          int64_t step, bool accumulate) {
  __m256 acc[U][R][V];
#pragma GCC unroll 2
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v)
        acc[u][r][v] = u == 0 && accumulate ? load_lanes(C + r * ldc + 8 * v, cols - 8 * v) : _mm256_setzero_ps();
  int64_t k = 0;
#pragma GCC unroll 2
  for (; k + U <= K; k += U) {
#pragma GCC unroll 2
    for (int u = 0; u < U; ++u) {
      _mm_prefetch(prefetch + (k + u) * step, _MM_HINT_T0);
      if (LINES == 2) _mm_prefetch(prefetch + (k + u) * step + 64, _MM_HINT_T0);
      __m256 b[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) b[v] = load_weights(P + (k + u) * kPanel + 8 * v);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        const __m256 a = _mm256_broadcast_ss(A + r * lda + k + u);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[u][r][v] = _mm256_fmadd_ps(a, b[v], acc[u][r][v]);
      }
    }
  }
  for (; k < K; ++k) {
    __m256 b[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) b[v] = load_weights(P + k * kPanel + 8 * v);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[0][r][v] = _mm256_fmadd_ps(a, b[v], acc[0][r][v]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      __m256 sum = acc[0][r][v];
#pragma GCC unroll 2
      for (int u = 1; u < U; ++u) sum = _mm256_add_ps(sum, acc[u][r][v]);
      store_lanes(C + r * ldc + 8 * v, sum, cols - 8 * v);
    }
}

template <typename W>
using HalfRows = void (*)(int64_t, const float*, int64_t, const W*, float*, int64_t, int64_t, const char*, int64_t, bool);

// Depth of one k block of the many-row path: 6 rows x 256 floats of A (6 KB) and 256 x 16 weights
// (16 KB FP32) stay in L1 while every row group of the block runs over them.
constexpr int64_t kDepthBlock = 256;
template <typename W>
constexpr HalfRows<W> kHalfRows[7] = {nullptr,              tile<W, 1, 2, 1, 1>, tile<W, 2, 2, 1, 1>, tile<W, 3, 2, 1, 1>,
                                      tile<W, 4, 2, 1, 1>,  tile<W, 5, 2, 1, 1>, tile<W, 6, 2, 1, 1>};

// One panel P (K rows of 32) for M >= 4 rows: blocks of k, then the panel's halves, then row groups of
// balanced size (7 rows: 3 + 4, not 6 + 1). The passes share the prefetch of `next` (next_bytes; the
// next panel the caller will read, or null).
template <typename W>
void many_rows(int64_t M, int64_t K, const float* A, int64_t lda, const W* P, int64_t cols, float* C, int64_t ldc,
               const char* next, int64_t next_bytes) {
  const int64_t groups = (M + 5) / 6, blocks = (K + kDepthBlock - 1) / kDepthBlock, passes = blocks * 2 * groups;
  int64_t pass = 0;
  for (int64_t k0 = 0; k0 < K; k0 += kDepthBlock) {
    const int64_t depth = std::min(kDepthBlock, K - k0);
    for (int64_t half = 0; half < 2 && cols > 16 * half; ++half)
      for (int64_t g = 0; g < groups; ++g, ++pass) {
        const int64_t r0 = M * g / groups, r1 = M * (g + 1) / groups;
        const char* fetch = next ? next + pass * next_bytes / passes : reinterpret_cast<const char*>(P);
        kHalfRows<W>[r1 - r0](depth, A + r0 * lda + k0, lda, P + k0 * kPanel + 16 * half, C + r0 * ldc + 16 * half, ldc,
                              cols - 16 * half, fetch, next ? 64 : 0, k0 > 0);
      }
  }
}

template <typename W>
void gemm_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const W* packed, int64_t p0, int64_t p1,
                 float* C, int64_t ldc) {
  const int64_t panel = K * kPanel;
  for (int64_t p = p0; p < p1; ++p) {
    const W* P = packed + p * panel;
    const int64_t cols = std::min(kPanel, N - p * kPanel);
    float* c = C + p * kPanel;
    if (M <= 3) {
      // One pass: fetch ~8 KB ahead in the stream (the hardware prefetcher alone keeps too few lines
      // in flight for a single core to reach the DRAM's pace).
      const char* ahead = reinterpret_cast<const char*>(P) + 8192;
      constexpr int64_t row_bytes = kPanel * sizeof(W);  // one k step of the panel
      constexpr int lines = row_bytes / 64;
      if (M == 1) tile<W, 1, 4, 2, lines>(K, A, lda, P, c, ldc, cols, ahead, row_bytes, false);
      else if (M == 2) tile<W, 2, 4, 1, lines>(K, A, lda, P, c, ldc, cols, ahead, row_bytes, false);
      else tile<W, 3, 4, 1, lines>(K, A, lda, P, c, ldc, cols, ahead, row_bytes, false);
      continue;
    }
    const bool more = p + 1 < p1;
    many_rows(M, K, A, lda, P, cols, c, ldc, more ? reinterpret_cast<const char*>(P + panel) : nullptr,
              static_cast<int64_t>(panel * sizeof(W)));
  }
}

}  // namespace

void f32_panel_many_rows_avx2(int64_t M, int64_t K, const float* A, int64_t lda, const float* P, int64_t cols, float* C,
                              int64_t ldc, const char* next, int64_t next_bytes) {
  many_rows(M, K, A, lda, P, cols, C, ldc, next, next_bytes);
}

void f32_gemm_panel_avx2(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, int64_t p0,
                         int64_t p1, float* C, int64_t ldc) {
  gemm_panels(M, N, K, A, lda, packed, p0, p1, C, ldc);
}

// FP16-stored weights: half the bytes of FP32 for decode, FP32 arithmetic.
void f16_gemm_panel_avx2(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed, int64_t p0,
                         int64_t p1, float* C, int64_t ldc) {
  gemm_panels(M, N, K, A, lda, packed, p0, p1, C, ldc);
}

}  // namespace switchyard::x86
