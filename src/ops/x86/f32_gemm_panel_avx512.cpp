// f32 GEMM on weights prepacked into 32-column panels (see ops/gemm_panel.h): C[M, panels] = A[M,K] B.
// One panel is K x 32 contiguous floats, so the weights stream strictly in order and a task over a
// range of panels reads one contiguous block. Rows go in groups of up to 12: a group keeps 12 x 2 zmm
// accumulators across the whole K loop, and every 128-byte row of B loaded serves all of its rows.
// With several groups, the first reads the panel from DRAM and the others from L2; so that memory
// does not sit idle meanwhile, every group prefetches its share of the next panel (measured on Zen 5,
// 16 rows over 1 MiB experts: ~1.5x faster than without).
// Compiled with -mavx512f; called only when the CPU has AVX-512F (see gemm_panel.cpp).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;

// R rows x one panel over K. `prefetch` advances by `prefetch_step` floats per step of k.
template <int R>
void panel_rows(int64_t K, const float* A, int64_t lda, const float* P, float* C, int64_t ldc, __mmask16 m0,
                __mmask16 m1, const float* prefetch, int64_t prefetch_step) {
  __m512 c0[R], c1[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(prefetch + k * prefetch_step), _MM_HINT_T0);
    const __m512 b0 = _mm512_load_ps(P + k * kPanel), b1 = _mm512_load_ps(P + k * kPanel + 16);
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

using PanelRows = void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, __mmask16, __mmask16,
                           const float*, int64_t);
constexpr PanelRows kPanelRows[13] = {nullptr,         panel_rows<1>,  panel_rows<2>, panel_rows<3>, panel_rows<4>,
                                      panel_rows<5>,   panel_rows<6>,  panel_rows<7>, panel_rows<8>, panel_rows<9>,
                                      panel_rows<10>,  panel_rows<11>, panel_rows<12>};

}  // namespace

void f32_gemm_panel_avx512(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, int64_t p0,
                           int64_t p1, float* C, int64_t ldc) {
  const int64_t groups = (M + 11) / 12;
  for (int64_t p = p0; p < p1; ++p) {
    const float* P = packed + p * K * kPanel;
    const int64_t cols = std::min<int64_t>(kPanel, N - p * kPanel);
    const __mmask16 m0 = cols >= 16 ? 0xffff : static_cast<__mmask16>((1u << cols) - 1);
    const __mmask16 m1 = cols >= 32 ? 0xffff : (cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1));
    // Groups of balanced size (16 rows: 8 + 8, not 12 + 4) so no group runs short of accumulators.
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t r0 = M * g / groups, r1 = M * (g + 1) / groups;
      // One group: the prefetchers keep up with a single in-order stream. Several: group g fetches
      // the g-th share of the next panel (a 64-byte line per step); the last panel re-touches itself.
      const float* next = groups > 1 && p + 1 < p1 ? P + K * kPanel + g * K * kPanel / groups : P;
      const int64_t step = groups > 1 && p + 1 < p1 ? 16 : 0;
      kPanelRows[r1 - r0](K, A + r0 * lda, lda, P, C + r0 * ldc + p * kPanel, ldc, m0, m1, next, step);
    }
  }
}

}  // namespace switchyard::x86
