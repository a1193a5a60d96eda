// Direct convolution over NHWC pixels for narrow layers (at most 16 output channels): the image experts'
// convolutions of the spatial MoE (src/moe/spatial_moe_layer.cpp). No im2col copy: each output pixel
// reads its taps straight from the activation buffer through a table of row pointers.
//
//   out[p * ldo + o] = act(bias[o] + sum_{t < taps} sum_{c < cin} rows[t * P + p][c] * w[(t * cin + c) * 16 + o])
//
// for p < P and o < cout <= 16. rows[t * P + p] points at the cin floats of tap t of pixel p (an NHWC
// pixel, or zeros where the tap falls outside the image). w is packed [taps * cin, 16] (columns past cout
// zero), bias [16]. act: ReLU when relu, else identity.
#pragma once

#include <cstdint>

namespace switchyard {

constexpr int64_t kConvNarrowWidth = 16;

// The row-pointer table of one run of P output pixels (row oy, columns ox0..ox0+P) of a stride-1 convolution
// over an NHWC image [H, W, cin]: tap (ky, kx) of pixel p reads input (oy - pad_top + ky, ox0 + p - pad_left + kx),
// or `zeros` where that falls outside the image (zero padding). rows[(ky * kw + kx) * P + p].
inline void conv_tap_rows(const float* in, int64_t H, int64_t W, int64_t cin, int64_t oy, int64_t ox0, int64_t P, int64_t kh,
                          int64_t kw, int64_t pad_top, int64_t pad_left, const float* zeros, const float** rows) {
  for (int64_t ky = 0; ky < kh; ++ky) {
    const int64_t iy = oy - pad_top + ky;
    const bool row_in = iy >= 0 && iy < H;
    for (int64_t kx = 0; kx < kw; ++kx) {
      const float** tap = rows + (ky * kw + kx) * P;
      const int64_t ix0 = ox0 - pad_left + kx;  // pixel p reads column ix0 + p
      const int64_t p0 = row_in ? (ix0 < 0 ? (-ix0 < P ? -ix0 : P) : 0) : P;
      const int64_t p1 = row_in ? (W - ix0 < p0 ? p0 : (W - ix0 < P ? W - ix0 : P)) : P;
      for (int64_t p = 0; p < p0; ++p) tap[p] = zeros;
      if (p0 < p1) {
        const float* at = in + (iy * W + ix0 + p0) * cin;
        for (int64_t p = p0; p < p1; ++p, at += cin) tap[p] = at;
      }
      for (int64_t p = p1; p < P; ++p) tap[p] = zeros;
    }
  }
}

// Through the kernel table (AVX-512: 16 pixels x one zmm; AVX2: 6 pixels x two ymm; portable loops).
void conv_nhwc16(int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w, const float* bias,
                 int64_t cout, bool relu, float* out, int64_t ldo);

}  // namespace switchyard
