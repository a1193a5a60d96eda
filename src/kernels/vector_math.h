// Elementwise math without library calls, so that loops over them vectorise (a std::exp call per
// element kept the router's softmax and the experts' SwiGLU scalar; see moe/routing.cpp, moe/moe_layer.cpp).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace switchyard {

// e^x for x <= 0: Cephes-style range reduction and degree-6 polynomial, ~1 ulp. NaN stays NaN; below
// -87 the result is 0.
[[gnu::always_inline]] inline float exp_nonpositive(float x) {
  constexpr float kMagic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer held in the low bits
  const float v = x < -87.f ? -87.f : x;  // NaN compares false and passes through
  const float shifted = v * 1.44269504088896341f + kMagic;
  const float fn = shifted - kMagic;
  const int32_t k = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kMagic);
  const float r = (v - fn * 0.693359375f) - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = (p * r * r + r + 1.f) * std::bit_cast<float>((k + 127) << 23);
  return x < -87.f ? 0.f : e;
}

// 1 / (1 + e^-z), through e^-|z| so the exponential never overflows.
[[gnu::always_inline]] inline float sigmoid(float z) {
  const float t = exp_nonpositive(-std::fabs(z));
  return (z >= 0.f ? 1.f : t) / (1.f + t);
}

// erf(x) by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7; 5e-7 with float rounding), odd in x. std::erf per element kept the
// experts' GELU scalar: ~15 ns a value, more than the GEMM of a small expert.
[[gnu::always_inline]] inline float erf_approx(float x) {
  const float a = std::fabs(x);
  const float t = 1.f / (1.f + 0.3275911f * a);
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float r = 1.f - poly * exp_nonpositive(-a * a);
  return x < 0.f ? -r : r;
}

// tanh(z) = (1 - e^-2|z|) / (1 + e^-2|z|), odd in z.
[[gnu::always_inline]] inline float tanh_approx(float z) {
  const float t = exp_nonpositive(-2.f * std::fabs(z));
  const float r = (1.f - t) / (1.f + t);
  return z < 0.f ? -r : r;
}

[[gnu::always_inline]] inline float gelu_erf(float v) { return 0.5f * v * (1.f + erf_approx(v * 0.70710678118654752f)); }
[[gnu::always_inline]] inline float gelu_tanh(float v) { return 0.5f * v * (1.f + tanh_approx(0.7978845608028654f * (v + 0.044715f * v * v * v))); }

}  // namespace switchyard
