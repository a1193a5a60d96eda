// Per-row symmetric INT8 quantization of activations (kernels/gemm_panel_s8.h) for AVX2: max |a| over the
// finite values, then code = round_even(clamp(a * 127 / max, -127, 127)), NaN -> 0, stored as code + 128.
// The same arithmetic as the portable loop (equal bytes), 8 lanes at a time. Compiled with -mavx2.
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <cfloat>
#include <cstdint>

#include "kernels/x86/ymm_tail.h"

namespace switchyard::x86 {

void quantize_rows_u8_avx2(const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo, float* scales) {
  const __m256 lo = _mm256_set1_ps(-127.f), hi = _mm256_set1_ps(127.f), biggest = _mm256_set1_ps(FLT_MAX);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i offset = _mm256_set1_epi32(128);
  for (int64_t r = 0; r < M; ++r) {
    const float* a = A + r * lda;
    __m256 m = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k += 8) {
      const __m256 v = _mm256_and_ps(load_lanes(a + k, K - k), abs_mask);
      m = _mm256_max_ps(m, _mm256_and_ps(v, _mm256_cmp_ps(v, biggest, _CMP_LE_OQ)));  // finite only
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float amax = _mm_cvtss_f32(h);
    const __m256 inv = _mm256_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
    scales[r] = amax / 127.f;
    uint8_t* o = out + r * ldo;
    for (int64_t k = 0; k < K; k += 8) {
      __m256 v = _mm256_mul_ps(load_lanes(a + k, K - k), inv);
      v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));  // NaN -> 0
      v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
      const __m256i code = _mm256_add_epi32(_mm256_cvtps_epi32(v), offset);  // nearest even (MXCSR default)
      // 8 int32 in 0..255 -> 8 bytes.
      const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
      const __m128i bytes = _mm_packus_epi16(words, words);
      if (K - k >= 8) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(o + k), bytes);
      } else {
        alignas(16) uint8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
        for (int64_t i = 0; i < K - k; ++i) o[k + i] = tmp[i];
      }
    }
    for (int64_t k = K; k < ldo; ++k) o[k] = 128;
  }
}

}  // namespace switchyard::x86
