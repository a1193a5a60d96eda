// Store masks of a 32-column panel's two 16-lane halves when only `cols` columns exist (the last
// panel of a matrix whose width is not a multiple of 32). Shared by the AVX-512 panel kernels.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace switchyard::x86 {

struct PanelMasks {
  __mmask16 low, high;
};

inline PanelMasks panel_masks(int64_t cols) {
  const __mmask16 low = cols >= 16 ? 0xffff : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 high = cols >= 32 ? 0xffff : (cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1));
  return {low, high};
}

}  // namespace switchyard::x86
