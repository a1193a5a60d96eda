// PNG pictures in and out through libpng's simplified API (no hand-written decoder): images become
// float32 NCHW tensors in [0, 1] and back.
#pragma once

#include <string>

#include "switchyard/tensor.h"

namespace switchyard {

// [1, channels, H, W] float32 in [0, 1]; channels 1 (gray) or 3 (RGB): libpng converts whatever the
// file holds (palette, 16-bit, alpha composed on black).
Tensor read_png(const std::string& path, int64_t channels);

// Writes image `index` of x [N, C, H, W] (C = 1 or 3), clamped to [0, 1] and rounded to 8 bits.
// Atomic: a temporary file next to `path` is renamed over it only on success.
void write_png(const std::string& path, const Tensor& x, int64_t index = 0);

// A picture of which expert each block went to: block_experts [N, Hb, Wb] (int64, -1: none) of image
// `index`, each block filled with its expert's colour and blended with the grey input image (x as for
// write_png, at the input resolution, or empty for plain colours).
void write_expert_map(const std::string& path, const Tensor& block_experts, const Tensor& image, int64_t index = 0);

}  // namespace switchyard
