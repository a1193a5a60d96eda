// BF16 GEMM on weights prepacked into 32-column BF16 panels (see kernels/gemm_panel.h), FP32 accumulation:
// C[M, panels] = A[M,K] B with A already rounded to BF16 pairs. Same structure as
// f32_gemm_panel_avx512 (groups of up to 12 rows, 12 x 2 zmm accumulators, next-panel prefetch), but
// each vdpbf16ps does two k steps (a pair of BF16 products per lane): twice the FP32 FMA rate, and
// half the bytes of weights per k. Compiled with -mavx512bf16; called only when the CPU has it.
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/x86/panel_masks.h"
#include <cstring>

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;

template <int R>
void panel_rows(int64_t pairs, const uint16_t* A, int64_t lda, const uint16_t* P, float* C, int64_t ldc, __mmask16 m0,
                __mmask16 m1, const uint16_t* prefetch, int64_t prefetch_step) {
  __m512 c0[R], c1[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
  for (int64_t q = 0; q < pairs; ++q) {
    _mm_prefetch(reinterpret_cast<const char*>(prefetch + q * prefetch_step), _MM_HINT_T0);
    const __m512bh b0 = (__m512bh)_mm512_load_si512(P + q * 2 * kPanel);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(P + q * 2 * kPanel + kPanel);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      int32_t pair;
      std::memcpy(&pair, A + r * lda + 2 * q, 4);
      const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
      c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
      c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, c0[r]);
    _mm512_mask_storeu_ps(C + r * ldc + 16, m1, c1[r]);
  }
}

using PanelRows = void (*)(int64_t, const uint16_t*, int64_t, const uint16_t*, float*, int64_t, __mmask16, __mmask16,
                           const uint16_t*, int64_t);
constexpr PanelRows kPanelRows[13] = {nullptr,         panel_rows<1>,  panel_rows<2>, panel_rows<3>, panel_rows<4>,
                                      panel_rows<5>,   panel_rows<6>,  panel_rows<7>, panel_rows<8>, panel_rows<9>,
                                      panel_rows<10>,  panel_rows<11>, panel_rows<12>};

}  // namespace

void bf16_gemm_panel_avx512bf16(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* packed,
                            int64_t p0, int64_t p1, float* C, int64_t ldc) {
  const int64_t groups = (M + 11) / 12, pairs = (K + 1) / 2, panel = pairs * 2 * kPanel;
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t* P = packed + p * panel;
    const auto [m0, m1] = panel_masks(N - p * kPanel);
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t r0 = M * g / groups, r1 = M * (g + 1) / groups;
      const uint16_t* next = groups > 1 && p + 1 < p1 ? P + panel + g * panel / groups : P;
      const int64_t step = groups > 1 && p + 1 < p1 ? 32 : 0;  // one 64-byte line per pair step
      kPanelRows[r1 - r0](pairs, A + r0 * lda, lda, P, C + r0 * ldc + p * kPanel, ldc, m0, m1, next, step);
    }
  }
}

}  // namespace switchyard::x86
