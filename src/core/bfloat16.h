// bfloat16 <-> float, inline for the hot loops (BF16 panels); switchyard/tensor.h's bfloat16_to_float
// and float_to_bfloat16 are these out of line.
#pragma once

#include <cstdint>
#include <cstring>

namespace switchyard {

[[gnu::always_inline]] inline float bf16_to_float_inline(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays a quiet NaN.
[[gnu::always_inline]] inline uint16_t float_to_bf16_inline(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace switchyard
