#include "io/png.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

namespace switchyard {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kMaxPixels = int64_t{1} << 28;  // 256 M pixels: larger files are refused before decoding

void write_rgb_or_gray(const std::string& path, const std::vector<uint8_t>& pixels, int64_t w, int64_t h, int64_t channels) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(w);
  image.height = static_cast<png_uint_32>(h);
  image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  const fs::path target(path);
  fs::path tmp = target;
  tmp += ".tmp-switchyard";
  std::error_code ec;
  if (!png_image_write_to_file(&image, tmp.c_str(), 0, pixels.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    fs::remove(tmp, ec);
    throw Error("cannot write PNG '" + path + "': " + why);
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error("cannot write PNG '" + path + "': " + ec.message());
  }
}

uint8_t to_byte(float v) {
  if (!(v > 0.f)) return 0;  // NaN too
  if (v >= 1.f) return 255;
  return static_cast<uint8_t>(std::lround(v * 255.f));
}

}  // namespace

Tensor read_png(const std::string& path, int64_t channels) {
  SY_CHECK(channels == 1 || channels == 3, "PNG input needs a model input with 1 or 3 channels, not " + std::to_string(channels));
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    const std::string why = image.message;
    png_image_free(&image);
    throw Error("cannot read PNG '" + path + "': " + why);
  }
  const int64_t w = image.width, h = image.height;
  if (w <= 0 || h <= 0 || w * h > kMaxPixels) {
    png_image_free(&image);
    throw Error("PNG '" + path + "' is " + std::to_string(w) + "x" + std::to_string(h) + ": too large or empty");
  }
  image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    throw Error("cannot read PNG '" + path + "': " + why);
  }
  Tensor t(DType::kFloat32, {1, channels, h, w});
  float* out = t.data<float>();
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < h * w; ++i) out[c * h * w + i] = static_cast<float>(pixels[static_cast<size_t>(i * channels + c)]) / 255.f;
  return t;
}

void write_png(const std::string& path, const Tensor& x, int64_t index) {
  SY_CHECK(x.dtype() == DType::kFloat32 && x.rank() == 4 && (x.dim(1) == 1 || x.dim(1) == 3) && index < x.dim(0),
           "only float32 [N, 1 or 3, H, W] outputs can be written as PNG, got " + shape_str(x.shape()));
  const int64_t c = x.dim(1), h = x.dim(2), w = x.dim(3);
  SY_CHECK(h > 0 && w > 0 && h * w <= kMaxPixels, "image of " + shape_str(x.shape()) + " cannot be written as PNG");
  std::vector<uint8_t> pixels(static_cast<size_t>(h * w * c));
  const float* src = x.data<float>() + index * c * h * w;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < h * w; ++i) pixels[static_cast<size_t>(i * c + ch)] = to_byte(src[ch * h * w + i]);
  write_rgb_or_gray(path, pixels, w, h, c);
}

void write_expert_map(const std::string& path, const Tensor& block_experts, const Tensor& image, int64_t index) {
  SY_CHECK(block_experts.dtype() == DType::kInt64 && block_experts.rank() == 3 && index < block_experts.dim(0),
           "expert map must be int64 [N, Hb, Wb], got " + shape_str(block_experts.shape()));
  const int64_t hb = block_experts.dim(1), wb = block_experts.dim(2);
  const bool with_image = image.defined() && image.rank() == 4 && image.dtype() == DType::kFloat32 && hb > 0 && wb > 0 &&
                          image.dim(2) % hb == 0 && image.dim(3) % wb == 0;
  const int64_t by = with_image ? image.dim(2) / hb : 8, bx = with_image ? image.dim(3) / wb : 8;
  const int64_t h = hb * by, w = wb * bx;
  SY_CHECK(h > 0 && w > 0 && h * w <= kMaxPixels, "expert map of " + shape_str(block_experts.shape()) + " is too large or empty");
  // Colours far apart for the first experts (Okabe-Ito + extras), cycled beyond.
  static const uint8_t palette[12][3] = {{230, 159, 0},  {86, 180, 233}, {0, 158, 115},  {240, 228, 66},
                                         {0, 114, 178},  {213, 94, 0},   {204, 121, 167}, {255, 255, 255},
                                         {120, 120, 255}, {160, 60, 60}, {60, 160, 60},  {128, 128, 128}};
  std::vector<uint8_t> pixels(static_cast<size_t>(h * w * 3));
  const int64_t* ids = block_experts.data<int64_t>() + index * hb * wb;
  const float* gray = with_image ? image.data<float>() + index * image.dim(1) * image.dim(2) * image.dim(3) : nullptr;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const int64_t e = ids[(y / by) * wb + x / bx];
      const float g = gray ? std::clamp(gray[y * w + x], 0.f, 1.f) * 255.f : 0.f;
      for (int c = 0; c < 3; ++c) {
        const float col = e < 0 ? 0.f : static_cast<float>(palette[e % 12][c]);
        pixels[static_cast<size_t>((y * w + x) * 3 + c)] = static_cast<uint8_t>(std::lround(gray ? 0.55f * col + 0.45f * g : col));
      }
    }
  write_rgb_or_gray(path, pixels, w, h, 3);
}

}  // namespace switchyard
