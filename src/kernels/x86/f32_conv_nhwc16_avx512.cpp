// Direct NHWC convolution, at most 16 output channels (kernels/conv_nhwc.h), AVX-512: one zmm accumulator
// per pixel, up to 8 pixels per block, each weight row loaded once per block and each input value broadcast
// from memory into its FMA. Compiled with -mavx512f.
#include <immintrin.h>

#include "kernels/conv_nhwc.h"
#include "kernels/kernel_entries.h"

namespace switchyard::x86 {
namespace {

// Every loop over the block's pixels is unrolled (pragmas), so the accumulator arrays live in registers:
// one loop left rolled keeps them in memory and stores them on every step.
template <int NP>
inline void pixels(int64_t taps, int64_t cin, const float* const* rows, int64_t P, const float* w, __m512 bias, __mmask16 keep,
                   bool relu, float* out, int64_t ldo) {
  __m512 acc[NP];
  #pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) acc[p] = bias;
  for (int64_t t = 0; t < taps; ++t) {
    const float* const* r = rows + t * P;
    const float* wt = w + t * cin * kConvNarrowWidth;
    for (int64_t c = 0; c < cin; ++c) {
      const __m512 b = _mm512_loadu_ps(wt + c * kConvNarrowWidth);
      #pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) acc[p] = _mm512_fmadd_ps(_mm512_set1_ps(r[p][c]), b, acc[p]);
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  #pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) _mm512_mask_storeu_ps(out + p * ldo, keep, relu ? _mm512_max_ps(acc[p], zero) : acc[p]);
}

}  // namespace

void f32_conv_nhwc16_avx512(int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w, const float* bias,
                            int64_t cout, bool relu, float* out, int64_t ldo) {
  const __m512 b = _mm512_loadu_ps(bias);
  const __mmask16 keep = static_cast<__mmask16>((1u << cout) - 1);
  int64_t p = 0;
  // Pixel blocks index `rows` from the block's first pixel with the whole run's stride P.
  auto at = [&](int64_t first) { return rows + first; };
  // Balanced blocks of at most 8 pixels: their row pointers stay in general registers next to the
  // accumulators, so each FMA needs one load (the broadcast input); 16-pixel blocks spill the pointers and
  // load twice (measured: all experts on a 256x256 image 31-33 ms against 36-37 ms).
  constexpr int64_t kMaxBlock = 8;
  const int64_t blocks = (P + kMaxBlock - 1) / kMaxBlock;
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t end = (P * (i + 1)) / blocks, n = end - p;
    float* o = out + p * ldo;
    switch (n) {
      case 1: pixels<1>(taps, cin, at(p), P, w, b, keep, relu, o, ldo); break;
      case 2: pixels<2>(taps, cin, at(p), P, w, b, keep, relu, o, ldo); break;
      case 3: pixels<3>(taps, cin, at(p), P, w, b, keep, relu, o, ldo); break;
      case 4: pixels<4>(taps, cin, at(p), P, w, b, keep, relu, o, ldo); break;
      case 5: pixels<5>(taps, cin, at(p), P, w, b, keep, relu, o, ldo); break;
      case 6: pixels<6>(taps, cin, at(p), P, w, b, keep, relu, o, ldo); break;
      case 7: pixels<7>(taps, cin, at(p), P, w, b, keep, relu, o, ldo); break;
      default: pixels<8>(taps, cin, at(p), P, w, b, keep, relu, o, ldo); break;
    }
    p = end;
  }
}

}  // namespace switchyard::x86
