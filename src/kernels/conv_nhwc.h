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

// Through the kernel table (AVX-512: 16 pixels x one zmm; AVX2: 6 pixels x two ymm; portable loops).
void conv_nhwc16(int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w, const float* bias,
                 int64_t cout, bool relu, float* out, int64_t ldo);

}  // namespace switchyard
