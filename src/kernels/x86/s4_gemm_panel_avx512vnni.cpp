// W4A8 GEMM on INT4 VNNI panels (see kernels/gemm_panel_s8.h, S4Panels): per quad of k, 64 bytes of codes
// split into two registers of unsigned bytes (low nibbles: columns 0..15, high: 16..31), multiplied by
// the signed activation codes with vpdpbusd; per group the INT32 sums are scaled into FP32 accumulators
// (scale x sum + min x activation sum). Rows in groups of up to 4: 4 x 2 INT32 and 4 x 2 FP32
// accumulators (6 rows spill). Decode reads 0.625 bytes per weight (codes + FP16 scale and min per 32 rows) with a
// few instructions per 64 bytes, so it runs at the memory's speed.
// Compiled with -mavx512vnni; called only when the CPU has it.
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/x86/panel_masks.h"

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;
using Quad __attribute__((may_alias, aligned(1))) = int32_t;
// Codes are read strictly in order (a task's panels are one block); fetching this far ahead keeps
// more lines in flight than the hardware prefetcher alone does at decode.
constexpr int64_t kPrefetchAhead = 4096;

template <int R>
void panel_rows(int64_t K, int64_t group, const uint8_t* A, int64_t lda, const float* row_scales,
                const int32_t* group_sums, int64_t G, const uint8_t* P, const uint16_t* scales, const uint16_t* mins,
                float* C, int64_t ldc, __mmask16 m0, __mmask16 m1) {
  const int64_t quads = (K + 3) / 4;
  const __m512i low = _mm512_set1_epi8(15), flip = _mm512_set1_epi32(static_cast<int32_t>(0x80808080u));
  __m512 f0[R], f1[R];
  __m512i i0[R], i1[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    f0[r] = _mm512_setzero_ps();
    f1[r] = _mm512_setzero_ps();
  }
  for (int64_t g = 0; g < G; ++g) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      i0[r] = _mm512_setzero_si512();
      i1[r] = _mm512_setzero_si512();
    }
    const int64_t q1 = std::min(quads, (g + 1) * group / 4);
    for (int64_t q = g * group / 4; q < q1; ++q) {
      _mm_prefetch(reinterpret_cast<const char*>(P + q * 64 + kPrefetchAhead), _MM_HINT_T0);
      const __m512i v = _mm512_load_si512(P + q * 64);
      const __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        // Activations are stored code + 128: flipping the top bits gives the signed codes.
        const __m512i a = _mm512_xor_si512(_mm512_set1_epi32(*reinterpret_cast<const Quad*>(A + r * lda + 4 * q)), flip);
        i0[r] = _mm512_dpbusd_epi32(i0[r], lo, a);
        i1[r] = _mm512_dpbusd_epi32(i1[r], hi, a);
      }
    }
    const __m512 s0 = _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + g * kPanel)));
    const __m512 s1 = _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + g * kPanel + 16)));
    const __m512 n0 = _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mins + g * kPanel)));
    const __m512 n1 = _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mins + g * kPanel + 16)));
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512 gs = _mm512_set1_ps(static_cast<float>(group_sums[r * G + g]));
      f0[r] = _mm512_fmadd_ps(gs, n0, _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, i0[r]), s0, f0[r]));
      f1[r] = _mm512_fmadd_ps(gs, n1, _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, i1[r]), s1, f1[r]));
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const __m512 rs = _mm512_set1_ps(row_scales[r]);
    _mm512_mask_storeu_ps(C + r * ldc, m0, _mm512_mul_ps(f0[r], rs));
    _mm512_mask_storeu_ps(C + r * ldc + 16, m1, _mm512_mul_ps(f1[r], rs));
  }
}

using PanelRows = void (*)(int64_t, int64_t, const uint8_t*, int64_t, const float*, const int32_t*, int64_t,
                           const uint8_t*, const uint16_t*, const uint16_t*, float*, int64_t, __mmask16, __mmask16);
constexpr PanelRows kPanelRows[5] = {nullptr, panel_rows<1>, panel_rows<2>, panel_rows<3>, panel_rows<4>};

}  // namespace

void s4_gemm_panel_avx512vnni(int64_t M, int64_t K, int64_t group, const uint8_t* A, int64_t lda, const float* row_scales,
                              const int32_t* group_sums, const uint8_t* packed, const uint16_t* scales,
                              const uint16_t* mins, int64_t N, int64_t p0, int64_t p1, float* C, int64_t ldc) {
  const int64_t quads = (K + 3) / 4, G = (K + group - 1) / group, row_groups = (M + 3) / 4;
  for (int64_t p = p0; p < p1; ++p) {
    const auto [m0, m1] = panel_masks(N - p * kPanel);
    for (int64_t rg = 0; rg < row_groups; ++rg) {
      const int64_t r0 = M * rg / row_groups, r1 = M * (rg + 1) / row_groups;
      kPanelRows[r1 - r0](K, group, A + r0 * lda, lda, row_scales + r0, group_sums + r0 * G, G, packed + p * quads * 64,
                          scales + p * G * kPanel, mins + p * G * kPanel, C + r0 * ldc + p * kPanel, ldc, m0, m1);
    }
  }
}

}  // namespace switchyard::x86
