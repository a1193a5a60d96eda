// Resize (opset 10+) and Upsample (7-9): nearest and (multi)linear over any axes, every
// coordinate_transformation_mode but tf_crop_and_resize, scales or sizes. FP32. Cubic is refused with
// a clear error.
#include <vector>

#include "core/thread_pool.h"
#include "ops/op_utils.h"
#include "ops/resize.h"

namespace switchyard {
namespace {

class Resize final : public Kernel {
 public:
  explicit Resize(const KernelBuildInfo& info) : node_(info.node) {
    const bool legacy = node_.op_type == "Upsample" || node_.opset < 11;
    mode_ = node_.attr_string("mode", "nearest");
    if (mode_ == "bilinear" || mode_ == "trilinear") mode_ = "linear";  // Upsample-7's names
    SY_CHECK(mode_ == "nearest" || mode_ == "linear",
             node_.describe() + ": mode '" + mode_ + "' is not supported (nearest, linear)");
    coord_ = legacy ? "asymmetric" : node_.attr_string("coordinate_transformation_mode", "half_pixel");
    SY_CHECK(resize_mode_known(coord_),
             node_.describe() + ": coordinate_transformation_mode '" + coord_ + "' is not supported");
    nearest_ = legacy ? "floor" : node_.attr_string("nearest_mode", "round_prefer_floor");
    SY_CHECK(nearest_ == "round_prefer_floor" || nearest_ == "round_prefer_ceil" || nearest_ == "floor" || nearest_ == "ceil",
             node_.describe() + ": nearest_mode '" + nearest_ + "' is not supported");
    SY_CHECK(node_.attr_int("antialias", 0) == 0, node_.describe() + ": antialias is not supported");
    SY_CHECK(node_.attr_string("keep_aspect_ratio_policy", "stretch") == "stretch",
             node_.describe() + ": keep_aspect_ratio_policy other than stretch is not supported");
    SY_CHECK(!node_.has("axes"), node_.describe() + ": the axes attribute is not supported");
  }

  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    SY_CHECK(x.dtype() == DType::kFloat32, node_.describe() + ": only float32 is supported");
    const int64_t r = x.rank();
    std::vector<double> scales;
    Shape out = x.shape();
    const Tensor* sizes = nullptr;
    const Tensor* scale_t = nullptr;
    if (node_.op_type == "Upsample" && node_.opset < 9) {
      for (float f : node_.attr_floats("scales")) scales.push_back(f);
    } else {
      const int scales_input = node_.op_type == "Upsample" || node_.opset < 11 ? 1 : 2;
      if (ctx.has_input(scales_input) && ctx.input(scales_input).numel() > 0) scale_t = &ctx.input(scales_input);
      if (scales_input == 2 && ctx.has_input(3) && ctx.input(3).numel() > 0) sizes = &ctx.input(3);
    }
    if (scale_t) {
      SY_CHECK(scale_t->dtype() == DType::kFloat32, node_.describe() + ": scales must be float32");
      for (int64_t i = 0; i < scale_t->numel(); ++i) scales.push_back(scale_t->data<float>()[i]);
    }
    if (sizes) {
      std::vector<int64_t> s = read_int_list(*sizes);
      SY_CHECK(static_cast<int64_t>(s.size()) == r, node_.describe() + ": sizes must have one entry per axis");
      scales.clear();
      for (int64_t d = 0; d < r; ++d) {
        SY_CHECK(s[static_cast<size_t>(d)] >= 0 && s[static_cast<size_t>(d)] <= (int64_t{1} << 31),
                 node_.describe() + ": output size out of range");
        out[static_cast<size_t>(d)] = s[static_cast<size_t>(d)];
        scales.push_back(x.dim(d) > 0 ? static_cast<double>(s[static_cast<size_t>(d)]) / static_cast<double>(x.dim(d)) : 1.0);
      }
    } else {
      SY_CHECK(static_cast<int64_t>(scales.size()) == r, node_.describe() + ": needs scales or sizes with one entry per axis (got " +
                                                             std::to_string(scales.size()) + " for rank " + std::to_string(r) + ")");
      for (int64_t d = 0; d < r; ++d) {
        const double sc = scales[static_cast<size_t>(d)];
        SY_CHECK(sc > 0 && sc < 1e6, node_.describe() + ": scales must be positive");
        const double len = std::floor(static_cast<double>(x.dim(d)) * sc);
        SY_CHECK(len <= static_cast<double>(int64_t{1} << 31), node_.describe() + ": output size out of range");
        out[static_cast<size_t>(d)] = static_cast<int64_t>(len);
      }
    }
    Tensor& y = ctx.output(0, DType::kFloat32, out);
    if (y.numel() == 0) return;
    SY_CHECK(x.numel() > 0, node_.describe() + ": cannot resize an empty input to a non-empty output");
    // Per axis: for each output coordinate, two source indices and the weight of the second.
    struct Tap {
      int64_t i0, i1;
      float w;
    };
    std::vector<std::vector<Tap>> taps(static_cast<size_t>(r));
    for (int64_t d = 0; d < r; ++d) {
      const int64_t in_len = x.dim(d), out_len = out[static_cast<size_t>(d)];
      auto& t = taps[static_cast<size_t>(d)];
      t.resize(static_cast<size_t>(out_len));
      for (int64_t o = 0; o < out_len; ++o) {
        const double src = in_len == out_len && coord_ != "align_corners" ? static_cast<double>(o)
                                                                          : resize_source(coord_, o, scales[static_cast<size_t>(d)], in_len, out_len);
        if (mode_ == "nearest") {
          const int64_t i = resize_nearest(nearest_, src, in_len);
          t[static_cast<size_t>(o)] = {i, i, 0.f};
        } else {
          const double c = std::min(std::max(src, 0.0), static_cast<double>(in_len - 1));
          const auto i0 = static_cast<int64_t>(std::floor(c));
          const int64_t i1 = std::min(i0 + 1, in_len - 1);
          t[static_cast<size_t>(o)] = {i0, i1, static_cast<float>(c - static_cast<double>(i0))};
        }
      }
    }
    std::vector<int64_t> xs(static_cast<size_t>(r), 1);
    for (int64_t d = r - 2; d >= 0; --d) xs[static_cast<size_t>(d)] = xs[static_cast<size_t>(d + 1)] * x.dim(d + 1);
    const int64_t last = out.back(), rows = y.numel() / last;
    const auto& lt = taps.back();
    const float* xp = x.data<float>();
    float* yp = y.data<float>();
    ctx.pool().parallel_for(rows, std::max<int64_t>(1, 4096 / last), [&](int64_t r0, int64_t r1) {
      std::vector<std::pair<int64_t, float>> corners, next;
      for (int64_t row = r0; row < r1; ++row) {
        // The source rows this output row blends: one per corner of the non-last axes.
        corners.assign(1, {0, 1.f});
        int64_t rest = row;
        for (int64_t d = r - 2; d >= 0; --d) {
          const int64_t o = rest % out[static_cast<size_t>(d)];
          rest /= out[static_cast<size_t>(d)];
          const Tap& t = taps[static_cast<size_t>(d)][static_cast<size_t>(o)];
          next.clear();
          for (const auto& [off, w] : corners) {
            next.emplace_back(off + t.i0 * xs[static_cast<size_t>(d)], w * (1.f - t.w));
            if (t.w != 0.f) next.emplace_back(off + t.i1 * xs[static_cast<size_t>(d)], w * t.w);
          }
          corners.swap(next);
        }
        float* yr = yp + row * last;
        if (corners.size() == 1 && mode_ == "nearest") {
          const float* src = xp + corners[0].first;
          for (int64_t o = 0; o < last; ++o) yr[o] = src[lt[static_cast<size_t>(o)].i0];
          continue;
        }
        for (int64_t o = 0; o < last; ++o) {
          const Tap& t = lt[static_cast<size_t>(o)];
          float acc = 0.f;
          for (const auto& [off, w] : corners) acc += w * ((1.f - t.w) * xp[off + t.i0] + (t.w != 0.f ? t.w * xp[off + t.i1] : 0.f));
          yr[o] = acc;
        }
      }
    });
  }

 private:
  const Node& node_;
  std::string mode_, coord_, nearest_;
};

SY_REGISTER_OP("", "Resize", 10, make_factory<Resize>());
SY_REGISTER_OP("", "Upsample", 7, make_factory<Resize>());

}  // namespace
}  // namespace switchyard
