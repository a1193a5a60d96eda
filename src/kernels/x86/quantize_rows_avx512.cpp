// Per-row symmetric INT8 quantization of activations for the INT8 experts (see kernels/gemm_panel_s8.h):
// max |a| over the finite values, then code = round_even(clamp(a * 127 / max, -127, 127)), NaN -> 0,
// stored as code + 128. The same arithmetic as the portable loop, in explicit AVX-512: GCC left that
// loop scalar (FP max reduction and selects), which made quantization 16% of an INT8 SwiGLU prefill.
// Compiled with -mavx512f; called only when the CPU has it.
// GCC 12's unmasked AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// reports as a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <cfloat>
#include <cstdint>

namespace switchyard::x86 {

void quantize_rows_u8_avx512(const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo,
                             float* scales) {
  const __m512 lo = _mm512_set1_ps(-127.f), hi = _mm512_set1_ps(127.f), biggest = _mm512_set1_ps(FLT_MAX);
  const __m512i offset = _mm512_set1_epi32(128);
  for (int64_t r = 0; r < M; ++r) {
    const float* a = A + r * lda;
    __m512 m = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 valid = K - k >= 16 ? 0xffff : static_cast<__mmask16>((1u << (K - k)) - 1);
      const __m512 v = _mm512_abs_ps(_mm512_maskz_loadu_ps(valid, a + k));
      m = _mm512_mask_max_ps(m, _mm512_cmp_ps_mask(v, biggest, _CMP_LE_OQ), m, v);  // finite only
    }
    const float amax = _mm512_reduce_max_ps(m);
    const __m512 inv = _mm512_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
    scales[r] = amax / 127.f;
    uint8_t* o = out + r * ldo;
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 valid = K - k >= 16 ? 0xffff : static_cast<__mmask16>((1u << (K - k)) - 1);
      __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(valid, a + k), inv);
      v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);  // NaN -> 0
      v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
      const __m512i code = _mm512_add_epi32(_mm512_cvtps_epi32(v), offset);  // nearest even (MXCSR default)
      _mm512_mask_cvtepi32_storeu_epi8(o + k, valid, code);
    }
    for (int64_t k = K; k < ldo; ++k) o[k] = 128;
  }
}

}  // namespace switchyard::x86
