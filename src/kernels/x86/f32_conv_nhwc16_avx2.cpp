// Direct NHWC convolution, at most 16 output channels (kernels/conv_nhwc.h), AVX2 + FMA: two ymm
// accumulators per pixel, 6 pixels per block (12 accumulators, 2 weight vectors, 1 broadcast).
// Compiled with -mavx2 -mfma.
#include <immintrin.h>

#include "kernels/conv_nhwc.h"
#include "kernels/kernel_entries.h"
#include "kernels/x86/ymm_tail.h"

namespace switchyard::x86 {
namespace {

// Every loop over the block's pixels is unrolled (pragmas), so the accumulator arrays live in registers:
// one loop left rolled keeps them in memory and stores them on every step.
template <int NP>
inline void pixels(int64_t taps, int64_t cin, const float* const* rows, int64_t P, const float* w, __m256 b0, __m256 b1,
                   int64_t cout, bool relu, float* out, int64_t ldo) {
  __m256 lo[NP], hi[NP];
  #pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) {
    lo[p] = b0;
    hi[p] = b1;
  }
  for (int64_t t = 0; t < taps; ++t) {
    const float* const* r = rows + t * P;
    const float* wt = w + t * cin * kConvNarrowWidth;
    for (int64_t c = 0; c < cin; ++c) {
      const __m256 w0 = _mm256_loadu_ps(wt + c * kConvNarrowWidth), w1 = _mm256_loadu_ps(wt + c * kConvNarrowWidth + 8);
      #pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        const __m256 a = _mm256_broadcast_ss(r[p] + c);
        lo[p] = _mm256_fmadd_ps(a, w0, lo[p]);
        hi[p] = _mm256_fmadd_ps(a, w1, hi[p]);
      }
    }
  }
  const __m256 zero = _mm256_setzero_ps();
  #pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) {
    const __m256 v0 = relu ? _mm256_max_ps(lo[p], zero) : lo[p], v1 = relu ? _mm256_max_ps(hi[p], zero) : hi[p];
    if (cout == 16) {
      _mm256_storeu_ps(out + p * ldo, v0);
      _mm256_storeu_ps(out + p * ldo + 8, v1);
    } else {
      store_lanes(out + p * ldo, v0, cout);
      if (cout > 8) store_lanes(out + p * ldo + 8, v1, cout - 8);
    }
  }
}

}  // namespace

void f32_conv_nhwc16_avx2(int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w, const float* bias,
                          int64_t cout, bool relu, float* out, int64_t ldo) {
  const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
  int64_t p = 0;
  for (; p + 6 <= P; p += 6) pixels<6>(taps, cin, rows + p, P, w, b0, b1, cout, relu, out + p * ldo, ldo);
  switch (P - p) {
    case 0: break;
    case 1: pixels<1>(taps, cin, rows + p, P, w, b0, b1, cout, relu, out + p * ldo, ldo); break;
    case 2: pixels<2>(taps, cin, rows + p, P, w, b0, b1, cout, relu, out + p * ldo, ldo); break;
    case 3: pixels<3>(taps, cin, rows + p, P, w, b0, b1, cout, relu, out + p * ldo, ldo); break;
    case 4: pixels<4>(taps, cin, rows + p, P, w, b0, b1, cout, relu, out + p * ldo, ldo); break;
    default: pixels<5>(taps, cin, rows + p, P, w, b0, b1, cout, relu, out + p * ldo, ldo); break;
  }
}

}  // namespace switchyard::x86
