#include "kernels/conv_nhwc.h"

#include "kernels/dispatch.h"
#include "kernels/isa_clones.h"
#include "kernels/kernel_entries.h"

namespace switchyard {
namespace {

// The portable kernel: the test oracle of the x86 ones.
SY_CLONE_BODY void f32_conv_nhwc16_body(int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w,
                                        const float* bias, int64_t cout, bool relu, float* out, int64_t ldo) {
  for (int64_t p = 0; p < P; ++p) {
    float acc[kConvNarrowWidth];
    for (int64_t o = 0; o < kConvNarrowWidth; ++o) acc[o] = bias[o];
    for (int64_t t = 0; t < taps; ++t) {
      const float* r = rows[t * P + p];
      const float* wt = w + t * cin * kConvNarrowWidth;
      for (int64_t c = 0; c < cin; ++c)
        for (int64_t o = 0; o < kConvNarrowWidth; ++o) acc[o] += r[c] * wt[c * kConvNarrowWidth + o];
    }
    for (int64_t o = 0; o < cout; ++o) out[p * ldo + o] = relu && !(acc[o] > 0.f) ? 0.f : acc[o];
  }
}

}  // namespace

SY_PORTABLE_KERNEL(void, f32_conv_nhwc16, (int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w,
                                           const float* bias, int64_t cout, bool relu, float* out, int64_t ldo),
                   (P, taps, cin, rows, w, bias, cout, relu, out, ldo))

void conv_nhwc16(int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w, const float* bias,
                 int64_t cout, bool relu, float* out, int64_t ldo) {
  if (P > 0) kernels().f32_conv_nhwc16(P, taps, cin, rows, w, bias, cout, relu, out, ldo);
}

}  // namespace switchyard
