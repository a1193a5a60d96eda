// The coordinate mapping of ONNX Resize, shared by the op (resize.cpp) and the spatial-MoE fusion
// pass, which proves with it that a Resize repeats each element of a per-block tensor over its block.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

namespace switchyard {

// Where output coordinate x of an axis resized from in_len to out_len by `scale` reads in the input
// (coordinate_transformation_mode); "" mode names are rejected by the caller.
inline double resize_source(const std::string& mode, int64_t x, double scale, int64_t in_len, int64_t out_len) {
  const double xf = static_cast<double>(x);
  if (mode == "asymmetric") return xf / scale;
  // ONNX scales the corner distance by the unrounded resized length (in_len * scale), not the output size.
  if (mode == "align_corners") {
    const double resized = static_cast<double>(in_len) * scale;
    return out_len <= 1 || resized <= 1.0 ? 0.0 : xf * static_cast<double>(in_len - 1) / (resized - 1.0);
  }
  if (mode == "pytorch_half_pixel") return out_len > 1 ? (xf + 0.5) / scale - 0.5 : 0.0;
  if (mode == "tf_half_pixel_for_nn") return (xf + 0.5) / scale;
  return (xf + 0.5) / scale - 0.5;  // half_pixel
}

inline bool resize_mode_known(const std::string& mode) {
  return mode == "asymmetric" || mode == "align_corners" || mode == "pytorch_half_pixel" || mode == "tf_half_pixel_for_nn" ||
         mode == "half_pixel";
}

// nearest_mode: round_prefer_floor | round_prefer_ceil | floor | ceil; clamped to the input.
inline int64_t resize_nearest(const std::string& nearest_mode, double src, int64_t in_len) {
  double i;
  if (nearest_mode == "floor") i = std::floor(src);
  else if (nearest_mode == "ceil") i = std::ceil(src);
  else if (nearest_mode == "round_prefer_ceil") i = std::floor(src + 0.5);
  else i = (src - std::floor(src) == 0.5) ? std::floor(src) : std::round(src);  // round_prefer_floor
  const auto k = static_cast<int64_t>(i);
  return k < 0 ? 0 : (k >= in_len ? in_len - 1 : k);
}

}  // namespace switchyard
