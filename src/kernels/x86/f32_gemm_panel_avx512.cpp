// f32 GEMM on weights prepacked into 32-column panels (see kernels/gemm_panel.h): C[M, panels] = A[M,K] B.
// One panel is K x 32 contiguous floats, so the weights stream strictly in order and a task over a
// range of panels reads one contiguous block. Rows go in groups of up to 12: a group keeps 12 x 2 zmm
// accumulators across the whole K loop, and every 128-byte row of B loaded serves all of its rows.
// With several groups, the first reads the panel from DRAM and the others from L2; so that memory
// does not sit idle meanwhile, every group prefetches its share of the next panel (measured on Zen 5,
// 16 rows over 1 MiB experts: ~1.5x faster than without).
// Compiled with -mavx512f; called only when the CPU has AVX-512F (see gemm_panel.cpp).
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/x86/panel_masks.h"

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;

// 16 weights of a panel row as FP32: FP32 panels load, FP16 panels (precision "fp16") widen.
inline __m512 load_weights(const float* p) { return _mm512_load_ps(p); }
inline __m512 load_weights(const uint16_t* p) {
  return _mm512_maskz_cvtph_ps(0xffff, _mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
}

// R rows x one panel over K. `prefetch` advances by `prefetch_step` elements per step of k.
template <typename W, int R>
void panel_rows(int64_t K, const float* A, int64_t lda, const W* P, float* C, int64_t ldc, __mmask16 m0, __mmask16 m1,
                const W* prefetch, int64_t prefetch_step) {
  __m512 c0[R], c1[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(prefetch + k * prefetch_step), _MM_HINT_T0);
    const __m512 b0 = load_weights(P + k * kPanel), b1 = load_weights(P + k * kPanel + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * lda + k]);
      c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, c0[r]);
    _mm512_mask_storeu_ps(C + r * ldc + 16, m1, c1[r]);
  }
}

template <typename W>
using PanelRows = void (*)(int64_t, const float*, int64_t, const W*, float*, int64_t, __mmask16, __mmask16, const W*,
                           int64_t);
template <typename W>
constexpr PanelRows<W> kPanelRows[13] = {nullptr,           panel_rows<W, 1>,  panel_rows<W, 2>,  panel_rows<W, 3>,
                                         panel_rows<W, 4>,  panel_rows<W, 5>,  panel_rows<W, 6>,  panel_rows<W, 7>,
                                         panel_rows<W, 8>,  panel_rows<W, 9>,  panel_rows<W, 10>, panel_rows<W, 11>,
                                         panel_rows<W, 12>};

template <typename W>
void gemm_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const W* packed, int64_t p0, int64_t p1,
                 float* C, int64_t ldc) {
  const int64_t groups = (M + 11) / 12, line = 64 / static_cast<int64_t>(sizeof(W));  // elements per cache line
  for (int64_t p = p0; p < p1; ++p) {
    const W* P = packed + p * K * kPanel;
    const PanelMasks m = panel_masks(N - p * kPanel);
    // Groups of balanced size (16 rows: 8 + 8, not 12 + 4) so no group runs short of accumulators.
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t r0 = M * g / groups, r1 = M * (g + 1) / groups;
      // One group: the prefetchers keep up with a single in-order stream. Several: group g fetches
      // the g-th share of the next panel (a 64-byte line per step); the last panel re-touches itself.
      const bool several = groups > 1 && p + 1 < p1;
      const W* next = several ? P + K * kPanel + g * K * kPanel / groups : P;
      kPanelRows<W>[r1 - r0](K, A + r0 * lda, lda, P, C + r0 * ldc + p * kPanel, ldc, m.low, m.high, next,
                             several ? line : 0);
    }
  }
}

}  // namespace

void f32_gemm_panel_avx512(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, int64_t p0,
                           int64_t p1, float* C, int64_t ldc) {
  gemm_panels(M, N, K, A, lda, packed, p0, p1, C, ldc);
}

// FP16-stored weights (precision "fp16"): half the bytes of FP32 for decode, FP32 arithmetic.
void f16_gemm_panel_avx512(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed,
                           int64_t p0, int64_t p1, float* C, int64_t ldc) {
  gemm_panels(M, N, K, A, lda, packed, p0, p1, C, ldc);
}

}  // namespace switchyard::x86
