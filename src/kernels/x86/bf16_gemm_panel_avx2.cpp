// BF16 GEMM on BF16 panels (kernels/gemm_panel.h: pairs of rows interleaved, element (k, j) at
// [(k/2) * 64 + 2j + k % 2]) for CPUs without AVX512-BF16. BF16 is the top half of an FP32, so a 32-bit
// lane holding the pair (k even, k odd) of one column widens with one shift (k even) and one AND
// (k odd): 16 weights of 8 columns in one load, no shuffles. The products of two BF16 values are exact
// in FP32 and the sums are FP32, as in the portable kernel.
//   - up to 3 rows: the panel straight from memory (decode: half the bytes of FP32 to stream);
//   - more rows: each panel widened once into an FP32 scratch panel and the rows widened once per
//     call, then the FP32 AVX2 kernel, so prefill runs at the FP32 pace plus a widening pass that
//     is small next to M x K x 32 FMAs.
// Compiled with -mavx2 -mfma; reached only through the kernel table (kernels/dispatch.cpp).
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/x86/f32_panel_avx2.h"
#include "kernels/x86/ymm_tail.h"

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;

inline __m256 widen_even(__m256i pairs) { return _mm256_castsi256_ps(_mm256_slli_epi32(pairs, 16)); }
inline __m256 widen_odd(__m256i pairs) {
  return _mm256_castsi256_ps(_mm256_and_si256(pairs, _mm256_set1_epi32(static_cast<int32_t>(0xffff0000u))));
}

// R rows x the whole panel, straight from the BF16 pairs; even and odd k in separate accumulators
// for one row (two latency chains per column vector), the same accumulator for more rows.
template <int R>
void rows_direct(int64_t pairs, const uint16_t* A, int64_t lda, const uint16_t* P, float* C, int64_t ldc, int64_t cols) {
  constexpr int S = R == 1 ? 2 : 1;
  __m256 acc[S][R][4];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s)
#pragma GCC unroll 3
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[s][r][v] = _mm256_setzero_ps();
  const char* ahead = reinterpret_cast<const char*>(P) + 8192;
  for (int64_t q = 0; q < pairs; ++q) {
    _mm_prefetch(ahead + q * 128, _MM_HINT_T0);
    _mm_prefetch(ahead + q * 128 + 64, _MM_HINT_T0);
    __m256i a[R];
#pragma GCC unroll 3
    for (int r = 0; r < R; ++r) {
      int32_t pair;
      std::memcpy(&pair, A + r * lda + 2 * q, 4);
      a[r] = _mm256_set1_epi32(pair);
    }
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(P + q * 2 * kPanel + 16 * v));
      const __m256 be = widen_even(b), bo = widen_odd(b);
#pragma GCC unroll 3
      for (int r = 0; r < R; ++r) {
        acc[0][r][v] = _mm256_fmadd_ps(widen_even(a[r]), be, acc[0][r][v]);
        acc[S - 1][r][v] = _mm256_fmadd_ps(widen_odd(a[r]), bo, acc[S - 1][r][v]);
      }
    }
  }
#pragma GCC unroll 3
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v)
      store_lanes(C + r * ldc + 8 * v, S == 2 ? _mm256_add_ps(acc[0][r][v], acc[S - 1][r][v]) : acc[0][r][v], cols - 8 * v);
}

// One BF16 panel as the FP32 panel layout (K rows of 32 floats; the zero pad row of an odd K dropped).
void widen_panel(int64_t K, const uint16_t* P, float* out) {
  for (int64_t q = 0; q < (K + 1) / 2; ++q)
    for (int v = 0; v < 4; ++v) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(P + q * 2 * kPanel + 16 * v));
      _mm256_storeu_ps(out + 2 * q * kPanel + 8 * v, widen_even(b));
      if (2 * q + 1 < K) _mm256_storeu_ps(out + (2 * q + 1) * kPanel + 8 * v, widen_odd(b));
    }
}

}  // namespace

void bf16_gemm_panel_avx2(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* packed,
                          int64_t p0, int64_t p1, float* C, int64_t ldc) {
  const int64_t pairs = (K + 1) / 2, panel = pairs * 2 * kPanel;
  if (M <= 3) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t cols = std::min(kPanel, N - p * kPanel);
      float* c = C + p * kPanel;
      if (M == 1) rows_direct<1>(pairs, A, lda, packed + p * panel, c, ldc, cols);
      else if (M == 2) rows_direct<2>(pairs, A, lda, packed + p * panel, c, ldc, cols);
      else rows_direct<3>(pairs, A, lda, packed + p * panel, c, ldc, cols);
    }
    return;
  }
  // Per-thread scratch that grows once per shape (no allocation afterwards).
  float* rows = kernel_thread_buffer(0, static_cast<size_t>(M * K));
  float* wide = kernel_thread_buffer(1, static_cast<size_t>(K * kPanel));
  for (int64_t r = 0; r < M; ++r) {
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(A + r * lda + k)));
      _mm256_storeu_ps(rows + r * K + k, _mm256_castsi256_ps(_mm256_slli_epi32(h, 16)));
    }
    for (; k < K; ++k) {
      const uint32_t bits = static_cast<uint32_t>(A[r * lda + k]) << 16;
      std::memcpy(rows + r * K + k, &bits, 4);
    }
  }
  for (int64_t p = p0; p < p1; ++p) {
    widen_panel(K, packed + p * panel, wide);
    // While the FP32 tiles run, the next BF16 panel comes in (the widening pass would otherwise wait
    // on memory).
    const bool more = p + 1 < p1;
    f32_panel_many_rows_avx2(M, K, rows, K, wide, std::min(kPanel, N - p * kPanel), C + p * kPanel, ldc,
                             more ? reinterpret_cast<const char*>(packed + (p + 1) * panel) : nullptr,
                             panel * static_cast<int64_t>(sizeof(uint16_t)));
  }
}

}  // namespace switchyard::x86
