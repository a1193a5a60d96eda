// Helpers of the AVX2 kernels: partial 8-lane loads and stores for the last vector of a row or panel
// whose width is not a multiple of 8 (AVX2 has no mask registers; vmaskmovps takes a lane mask in a
// vector), and 8 FP16 values widened (F16C). Included only by files compiled for AVX2.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace switchyard::x86 {

// Lanes [0, n) set, n clamped to 0..8.
inline __m256i ymm_lanes(int64_t n) {
  alignas(32) static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - std::clamp<int64_t>(n, 0, 8)));
}

// Stores the first n (0..8) lanes of v.
inline void store_lanes(float* p, __m256 v, int64_t n) {
  if (n >= 8) _mm256_storeu_ps(p, v);
  else if (n > 0) _mm256_maskstore_ps(p, ymm_lanes(n), v);
}

// Loads the first n (0..8) lanes, zeros elsewhere.
inline __m256 load_lanes(const float* p, int64_t n) {
  if (n >= 8) return _mm256_loadu_ps(p);
  return n > 0 ? _mm256_maskload_ps(p, ymm_lanes(n)) : _mm256_setzero_ps();
}

// 8 FP16 values (scales, minimums) as floats.
inline __m256 half8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

}  // namespace switchyard::x86
