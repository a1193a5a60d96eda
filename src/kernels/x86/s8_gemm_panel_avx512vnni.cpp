// INT8 GEMM on VNNI panels (see kernels/gemm_panel_s8.h): C[M, panels] = A W with A unsigned (code + 128)
// and W signed, int32 sums started at the +128 compensation, then scaled per column and per row.
// Same structure as f32_gemm_panel_avx512 (groups of up to 12 rows, 12 x 2 zmm accumulators,
// next-panel prefetch), but each vpdpbusd does four k steps. Compiled with -mavx512vnni; called only
// when the CPU has it.
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/x86/panel_masks.h"
#include <cstring>

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;
using Quad __attribute__((may_alias, aligned(1))) = int32_t;  // four activation bytes, read as one

// acc += u8 quads of a . s8 quads of b. In asm because GCC 12, given _mm512_dpbusd_epi32, copies
// and spills every accumulator on each step (the instruction overwrites its accumulator operand):
// 3x slower than this.
inline void dpbusd(__m512i& acc, __m512i a, __m512i b) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b)); }

template <int R>
void panel_rows(int64_t quads, const uint8_t* A, int64_t lda, const float* row_scales, const uint8_t* P,
                const float* scales, const int32_t* comp, float* C, int64_t ldc, __mmask16 m0, __mmask16 m1,
                const uint8_t* prefetch, int64_t prefetch_step) {
  const __m512i start0 = _mm512_loadu_si512(comp), start1 = _mm512_loadu_si512(comp + 16);
  __m512i c0[R], c1[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {  // (every r loop fully unrolled, or the accumulators live on the stack)
    c0[r] = start0;
    c1[r] = start1;
  }
  for (int64_t q = 0; q < quads; ++q) {
    _mm_prefetch(reinterpret_cast<const char*>(prefetch + q * prefetch_step), _MM_HINT_T0);
    const __m512i b0 = _mm512_load_si512(P + q * 128);
    const __m512i b1 = _mm512_load_si512(P + q * 128 + 64);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512i a = _mm512_set1_epi32(*reinterpret_cast<const Quad*>(A + r * lda + 4 * q));
      dpbusd(c0[r], a, b0);
      dpbusd(c1[r], a, b1);
    }
  }
  // (maskz_cvtepi32_ps: the unmasked form trips a false -Wuninitialized in GCC 12's header.)
  const __m512 s0 = _mm512_loadu_ps(scales), s1 = _mm512_loadu_ps(scales + 16);
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    const __m512 rs = _mm512_set1_ps(row_scales[r]);
    _mm512_mask_storeu_ps(C + r * ldc, m0, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xffff, c0[r]), s0), rs));
    _mm512_mask_storeu_ps(C + r * ldc + 16, m1, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xffff, c1[r]), s1), rs));
  }
}

using PanelRows = void (*)(int64_t, const uint8_t*, int64_t, const float*, const uint8_t*, const float*, const int32_t*,
                           float*, int64_t, __mmask16, __mmask16, const uint8_t*, int64_t);
constexpr PanelRows kPanelRows[13] = {nullptr,         panel_rows<1>,  panel_rows<2>, panel_rows<3>, panel_rows<4>,
                                      panel_rows<5>,   panel_rows<6>,  panel_rows<7>, panel_rows<8>, panel_rows<9>,
                                      panel_rows<10>,  panel_rows<11>, panel_rows<12>};

}  // namespace

void s8_gemm_panel_avx512vnni(int64_t M, int64_t K, const uint8_t* A, int64_t lda, const float* row_scales,
                              const uint8_t* packed, const float* scales, const int32_t* comp, int64_t N, int64_t p0,
                              int64_t p1, float* C, int64_t ldc) {
  const int64_t groups = (M + 11) / 12, quads = (K + 3) / 4, panel = quads * 128;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* P = packed + p * panel;
    const auto [m0, m1] = panel_masks(N - p * kPanel);
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t r0 = M * g / groups, r1 = M * (g + 1) / groups;
      // While the first group runs, fetch the next panel (one 64-byte line per half quad step). With
      // a single group (decode), fetch ahead in the stream instead: the hardware prefetcher alone
      // keeps too few lines in flight.
      const bool several = groups > 1 && p + 1 < p1;
      const uint8_t* next = several ? P + panel + g * panel / groups : P + 4096;
      const int64_t step = several ? 64 : 128;
      kPanelRows[r1 - r0](quads, A + r0 * lda, lda, row_scales + r0, P, scales + p * kPanel, comp + p * kPanel,
                          C + r0 * ldc + p * kPanel, ldc, m0, m1, next, step);
    }
  }
}

}  // namespace switchyard::x86
