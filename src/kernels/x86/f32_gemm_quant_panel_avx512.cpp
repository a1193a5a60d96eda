// Few-row GEMM on weight-only quantized panels (kernels/gemm_panel_quant.h), dequantized in registers:
// the decode path of precisions int8-weights / int4-weights, bound by the bytes of the codes. Per
// row k of a panel: the 32 codes widen to two vectors of 16 int32 (INT4: one 16-byte load, low and
// high nibbles), convert to float and feed R x 2 FMAs into per-group sums; each group's sums are
// scaled by its FP16 column scales once at its end, and INT4's minimum enters there too through the
// group's sum of a: sum a (min + s u) = s sum a u + min sum a. Compiled with -mavx512f; called only
// when the CPU has AVX-512F (see gemm_panel_quant.cpp).
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;

inline __m512 half16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }

// Codes of row k as two vectors of 16 floats (columns 0..15, 16..31).
template <int BITS>
inline void unpack_row(const uint8_t* codes, int64_t k, __m512& w0, __m512& w1) {
  if constexpr (BITS == 8) {
    w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + k * 32))));
    w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + k * 32 + 16))));
  } else {
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + k * 16)));
    w0 = _mm512_cvtepi32_ps(_mm512_and_si512(b, _mm512_set1_epi32(15)));
    w1 = _mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4));
  }
}

// R rows x one panel. Each row keeps U pairs of group sums (U = 4 / R) so that the FMA latency does
// not bound few-row products: one row with one pair ran at ~14 GB/s per core.
template <int R, int BITS>
void panel_rows(const float* A, int64_t lda, const uint8_t* codes, const uint16_t* scales, const uint16_t* mins,
                int64_t group, int64_t K, float* C, int64_t ldc, __mmask16 m0, __mmask16 m1) {
  constexpr int U = R >= 4 ? 1 : 4 / R;
  __m512 c0[R], c1[R];
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
  for (int64_t g0 = 0, gi = 0; g0 < K; g0 += group, ++gi) {
    const int64_t g1 = std::min(K, g0 + group);
    __m512 s0[R][U], s1[R][U];
    for (int r = 0; r < R; ++r)
      for (int u = 0; u < U; ++u) s0[r][u] = s1[r][u] = _mm512_setzero_ps();
    int64_t k = g0;
    for (; k + U <= g1; k += U)
      for (int u = 0; u < U; ++u) {
        __m512 w0, w1;
        unpack_row<BITS>(codes, k + u, w0, w1);
        for (int r = 0; r < R; ++r) {
          const __m512 a = _mm512_set1_ps(A[r * lda + k + u]);
          s0[r][u] = _mm512_fmadd_ps(a, w0, s0[r][u]);
          s1[r][u] = _mm512_fmadd_ps(a, w1, s1[r][u]);
        }
      }
    for (; k < g1; ++k) {
      __m512 w0, w1;
      unpack_row<BITS>(codes, k, w0, w1);
      for (int r = 0; r < R; ++r) {
        const __m512 a = _mm512_set1_ps(A[r * lda + k]);
        s0[r][0] = _mm512_fmadd_ps(a, w0, s0[r][0]);
        s1[r][0] = _mm512_fmadd_ps(a, w1, s1[r][0]);
      }
    }
    const __m512 sc0 = half16(scales + gi * kPanel), sc1 = half16(scales + gi * kPanel + 16);
    for (int r = 0; r < R; ++r) {
      for (int u = 1; u < U; ++u) {
        s0[r][0] = _mm512_add_ps(s0[r][0], s0[r][u]);
        s1[r][0] = _mm512_add_ps(s1[r][0], s1[r][u]);
      }
      c0[r] = _mm512_fmadd_ps(s0[r][0], sc0, c0[r]);
      c1[r] = _mm512_fmadd_ps(s1[r][0], sc1, c1[r]);
    }
    if constexpr (BITS == 4) {
      const __m512 mn0 = half16(mins + gi * kPanel), mn1 = half16(mins + gi * kPanel + 16);
      for (int r = 0; r < R; ++r) {
        // The group's sum of a, vectorised (a scalar running sum was a latency chain per k).
        __m512 sum = _mm512_setzero_ps();
        int64_t j = g0;
        for (; j + 16 <= g1; j += 16) sum = _mm512_add_ps(sum, _mm512_loadu_ps(A + r * lda + j));
        if (j < g1) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (g1 - j)) - 1), A + r * lda + j));
        const __m512 asum = _mm512_set1_ps(_mm512_reduce_add_ps(sum));
        c0[r] = _mm512_fmadd_ps(asum, mn0, c0[r]);
        c1[r] = _mm512_fmadd_ps(asum, mn1, c1[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, c0[r]);
    _mm512_mask_storeu_ps(C + r * ldc + 16, m1, c1[r]);
  }
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
    const __mmask16 m0 = cols >= 16 ? 0xffff : static_cast<__mmask16>((1u << cols) - 1);
    const __mmask16 m1 = cols >= 32 ? 0xffff : (cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1));
    float* c = C + p * kPanel;
    switch (M) {
      case 1: panel_rows<1, BITS>(A, lda, pc, ps, pm, group, K, c, ldc, m0, m1); break;
      case 2: panel_rows<2, BITS>(A, lda, pc, ps, pm, group, K, c, ldc, m0, m1); break;
      case 3: panel_rows<3, BITS>(A, lda, pc, ps, pm, group, K, c, ldc, m0, m1); break;
      default: panel_rows<4, BITS>(A, lda, pc, ps, pm, group, K, c, ldc, m0, m1); break;
    }
  }
}

template <int BITS>
void dequantize(const uint8_t* codes, const uint16_t* scales, const uint16_t* mins, int64_t group, int64_t K, float* out) {
  for (int64_t k = 0; k < K; ++k) {
    const int64_t g = (k / group) * kPanel;
    __m512 w0, w1;
    unpack_row<BITS>(codes, k, w0, w1);
    w0 = _mm512_mul_ps(w0, half16(scales + g));
    w1 = _mm512_mul_ps(w1, half16(scales + g + 16));
    if constexpr (BITS == 4) {
      w0 = _mm512_add_ps(w0, half16(mins + g));
      w1 = _mm512_add_ps(w1, half16(mins + g + 16));
    }
    _mm512_store_ps(out + k * kPanel, w0);
    _mm512_store_ps(out + k * kPanel + 16, w1);
  }
}

}  // namespace

// One panel (its codes, scales, mins) into out [K, 32], 64-byte aligned.
void f32_dequantize_panel_avx512(const uint8_t* codes, const uint16_t* scales, const uint16_t* mins, int bits, int64_t group,
                                 int64_t K, float* out) {
  if (bits == 8) dequantize<8>(codes, scales, mins, group, K, out);
  else dequantize<4>(codes, scales, mins, group, K, out);
}

// M <= 4 rows; codes and scales point at the matrix (its panel 0).
void f32_gemm_quant_panel_avx512(int64_t M, const float* A, int64_t lda, const uint8_t* codes, const uint16_t* scales,
                                 const uint16_t* mins, int bits, int64_t group, int64_t K, int64_t N, int64_t p0, int64_t p1,
                                 float* C, int64_t ldc) {
  if (bits == 8) run<8>(M, A, lda, codes, scales, mins, group, K, N, p0, p1, C, ldc);
  else run<4>(M, A, lda, codes, scales, mins, group, K, N, p0, p1, C, ldc);
}

}  // namespace switchyard::x86
