// Few-row GEMM on weight-only quantized panels (kernels/gemm_panel_quant.h), dequantized in registers,
// for AVX2 + FMA + F16C: the decode path of precisions int8-weights / int4-weights, bound by the bytes
// of the codes. Per row k of a panel the 32 codes widen to four vectors of 8 int32 (INT8: vpmovsxbd;
// INT4: one 16-byte load, vpmovzxbd of each half, low nibbles by AND and high ones by shift), convert
// to float and feed FMAs into per-group sums; at the end of each group the sums are scaled by the FP16
// column scales (vcvtph2ps) into the output row, which stays in L1, and INT4's minimum enters there
// through the group's sum of a: sum a (min + s u) = s sum a u + min sum a. Also the one-panel
// dequantization of the many-row path. Compiled with -mavx2 -mfma -mf16c; reached only through the
// kernel table (kernels/dispatch.cpp).
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/x86/ymm_tail.h"

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;
constexpr int64_t kPrefetchAhead = 8192;

// Codes of row k as four vectors of 8 floats (columns 0..7, 8..15, 16..23, 24..31).
template <int BITS>
inline void unpack_row(const uint8_t* codes, int64_t k, __m256* w) {
  if constexpr (BITS == 8) {
    const uint8_t* row = codes + k * 32;
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v)
      w[v] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * v))));
  } else {
    // vpmovzxbd straight from memory (8 bytes each): bytes 0..7 and 8..15 of the row.
    const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + k * 16)));
    const __m256i hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + k * 16 + 8)));
    const __m256i nibble = _mm256_set1_epi32(15);
    w[0] = _mm256_cvtepi32_ps(_mm256_and_si256(lo, nibble));
    w[1] = _mm256_cvtepi32_ps(_mm256_and_si256(hi, nibble));
    w[2] = _mm256_cvtepi32_ps(_mm256_srli_epi32(lo, 4));
    w[3] = _mm256_cvtepi32_ps(_mm256_srli_epi32(hi, 4));
  }
}

// Sum of a[g0..g1).
inline float sum_range(const float* a, int64_t n) {
  __m256 s = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(a + j));
  s = _mm256_add_ps(s, load_lanes(a + j, n - j));
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// R <= 2 rows x one panel. One row keeps two sets of group sums (k split) so that the FMA latency does
// not bound it; the scaled results gather in out (L1) once per group.
template <int R, int BITS>
void panel_rows(const float* A, int64_t lda, const uint8_t* codes, const uint16_t* scales, const uint16_t* mins,
                int64_t group, int64_t K, float* C, int64_t ldc, int64_t cols) {
  constexpr int U = R == 1 ? 2 : 1;
  alignas(32) float out[R][kPanel] = {};
  for (int64_t g0 = 0, gi = 0; g0 < K; g0 += group, ++gi) {
    const int64_t g1 = std::min(K, g0 + group);
    __m256 s[U][R][4];
#pragma GCC unroll 2
    for (int u = 0; u < U; ++u)
#pragma GCC unroll 2
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) s[u][r][v] = _mm256_setzero_ps();
    int64_t k = g0;
    for (; k + U <= g1; k += U)
#pragma GCC unroll 2
      for (int u = 0; u < U; ++u) {
        // The codes stream in order: fetch ahead of them (INT4: one line every 4 k; the repeats are cheap).
        _mm_prefetch(reinterpret_cast<const char*>(codes) + (k + u) * (BITS == 8 ? 32 : 16) + kPrefetchAhead, _MM_HINT_T0);
        __m256 w[4];
        unpack_row<BITS>(codes, k + u, w);
#pragma GCC unroll 2
        for (int r = 0; r < R; ++r) {
          const __m256 a = _mm256_broadcast_ss(A + r * lda + k + u);
#pragma GCC unroll 4
          for (int v = 0; v < 4; ++v) s[u][r][v] = _mm256_fmadd_ps(a, w[v], s[u][r][v]);
        }
      }
    for (; k < g1; ++k) {
      __m256 w[4];
      unpack_row<BITS>(codes, k, w);
#pragma GCC unroll 2
      for (int r = 0; r < R; ++r) {
        const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) s[0][r][v] = _mm256_fmadd_ps(a, w[v], s[0][r][v]);
      }
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r) {
      const __m256 asum = BITS == 4 ? _mm256_set1_ps(sum_range(A + r * lda + g0, g1 - g0)) : _mm256_setzero_ps();
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        __m256 sum = s[0][r][v];
        if (U == 2) sum = _mm256_add_ps(sum, s[U - 1][r][v]);
        __m256 o = _mm256_fmadd_ps(sum, half8(scales + gi * kPanel + 8 * v), _mm256_load_ps(out[r] + 8 * v));
        if constexpr (BITS == 4) o = _mm256_fmadd_ps(asum, half8(mins + gi * kPanel + 8 * v), o);
        _mm256_store_ps(out[r] + 8 * v, o);
      }
    }
  }
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) store_lanes(C + r * ldc + 8 * v, _mm256_load_ps(out[r] + 8 * v), cols - 8 * v);
}

template <int BITS>
void run(int64_t M, const float* A, int64_t lda, const uint8_t* codes, const uint16_t* scales, const uint16_t* mins,
         int64_t group, int64_t K, int64_t N, int64_t p0, int64_t p1, float* C, int64_t ldc) {
  constexpr int64_t row_bytes = BITS == 8 ? 32 : 16;
  const int64_t groups = (K + group - 1) / group;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* pc = codes + p * K * row_bytes;
    const uint16_t* ps = scales + p * groups * kPanel;
    const uint16_t* pm = BITS == 4 ? mins + p * groups * kPanel : nullptr;
    const int64_t cols = std::min<int64_t>(kPanel, N - p * kPanel);
    // Pairs of rows (the second pass over a panel reads it from L1/L2), then a lone row.
    int64_t r = 0;
    for (; r + 2 <= M; r += 2)
      panel_rows<2, BITS>(A + r * lda, lda, pc, ps, pm, group, K, C + r * ldc + p * kPanel, ldc, cols);
    if (r < M) panel_rows<1, BITS>(A + r * lda, lda, pc, ps, pm, group, K, C + r * ldc + p * kPanel, ldc, cols);
  }
}

template <int BITS>
void dequantize(const uint8_t* codes, const uint16_t* scales, const uint16_t* mins, int64_t group, int64_t K, float* out) {
  for (int64_t k = 0; k < K; ++k) {
    const int64_t g = (k / group) * kPanel;
    __m256 w[4];
    unpack_row<BITS>(codes, k, w);
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      __m256 x = _mm256_mul_ps(w[v], half8(scales + g + 8 * v));
      if constexpr (BITS == 4) x = _mm256_add_ps(x, half8(mins + g + 8 * v));
      _mm256_storeu_ps(out + k * kPanel + 8 * v, x);
    }
  }
}

}  // namespace

void f32_dequantize_panel_avx2(const uint8_t* codes, const uint16_t* scales, const uint16_t* mins, int bits, int64_t group,
                               int64_t K, float* out) {
  if (bits == 8) dequantize<8>(codes, scales, mins, group, K, out);
  else dequantize<4>(codes, scales, mins, group, K, out);
}

void f32_gemm_quant_panel_avx2(int64_t M, const float* A, int64_t lda, const uint8_t* codes, const uint16_t* scales,
                               const uint16_t* mins, int bits, int64_t group, int64_t K, int64_t N, int64_t p0, int64_t p1,
                               float* C, int64_t ldc) {
  if (bits == 8) run<8>(M, A, lda, codes, scales, mins, group, K, N, p0, p1, C, ldc);
  else run<4>(M, A, lda, codes, scales, mins, group, K, N, p0, p1, C, ldc);
}

}  // namespace switchyard::x86
