// MaxPool / AveragePool (1-D/2-D, pads, auto_pad, ceil_mode, dilations, count_include_pad) and
// GlobalAveragePool / GlobalMaxPool. FP32.
#include <limits>

#include "core/thread_pool.h"
#include "ops/spatial.h"

namespace switchyard {
namespace {

class Pool final : public Kernel {
 public:
  explicit Pool(const KernelBuildInfo& info) : node_(info.node) {
    const std::string& op = node_.op_type;
    global_ = op.rfind("Global", 0) == 0;
    max_ = op.find("Max") != std::string::npos;
  }
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    SY_CHECK(x.dtype() == DType::kFloat32, node_.describe() + ": only float32 is supported");
    SY_CHECK(x.rank() >= 3, node_.describe() + ": input must be N x C x spatial");
    const int64_t n = x.dim(0), c = x.dim(1);
    if (global_) {
      Shape out(static_cast<size_t>(x.rank()), 1);
      out[0] = n;
      out[1] = c;
      Tensor& y = ctx.output(0, DType::kFloat32, out);
      const int64_t area = (n * c) != 0 ? x.numel() / (n * c) : 0;
      for (int64_t i = 0; i < n * c; ++i) {
        const float* p = x.data<float>() + i * area;
        float acc = max_ ? -std::numeric_limits<float>::infinity() : 0.f;
        for (int64_t j = 0; j < area; ++j) acc = max_ ? std::max(acc, p[j]) : acc + p[j];
        y.data<float>()[i] = max_ ? acc : acc / static_cast<float>(area);
      }
      return;
    }
    auto kernel = node_.attr_ints("kernel_shape");
    SY_CHECK(!kernel.empty(), node_.describe() + ": kernel_shape is required");
    Window2D w = make_window(node_, x.shape(), kernel, node_.attr_int("ceil_mode", 0) != 0);
    Tensor& y = ctx.output(0, DType::kFloat32, window_output_shape(x.shape(), c, w));
    const bool include_pad = node_.attr_int("count_include_pad", 0) != 0;
    const float* xp = x.data<float>();
    float* yp = y.data<float>();
    ctx.pool().parallel_for(n * c, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, w.ih * w.iw)), [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      const float* xi = xp + plane * w.ih * w.iw;
      float* yo = yp + plane * w.oh * w.ow;
      for (int64_t oy = 0; oy < w.oh; ++oy)
        for (int64_t ox = 0; ox < w.ow; ++ox) {
          const int64_t iy0 = oy * w.sh - w.pad_top, ix0 = ox * w.sw - w.pad_left;
          if (w.dh == 1 && w.dw == 1 && iy0 >= 0 && ix0 >= 0 && iy0 + w.kh <= w.ih && ix0 + w.kw <= w.iw) {
            // window inside the image: no bounds, the count is the window
            float acc = max_ ? -std::numeric_limits<float>::infinity() : 0.f;
            for (int64_t ky = 0; ky < w.kh; ++ky) {
              const float* row = xi + (iy0 + ky) * w.iw + ix0;
              for (int64_t kx = 0; kx < w.kw; ++kx) acc = max_ ? std::max(acc, row[kx]) : acc + row[kx];
            }
            yo[oy * w.ow + ox] = max_ ? acc : acc / static_cast<float>(w.kh * w.kw);
            continue;
          }
          float acc = max_ ? -std::numeric_limits<float>::infinity() : 0.f;
          int64_t count = 0, padded_count = 0;
          for (int64_t ky = 0; ky < w.kh; ++ky)
            for (int64_t kx = 0; kx < w.kw; ++kx) {
              const int64_t iy = oy * w.sh - w.pad_top + ky * w.dh, ix = ox * w.sw - w.pad_left + kx * w.dw;
              // Positions in explicit padding count for count_include_pad; beyond it (ceil_mode) never.
              if (iy >= -w.pad_top && iy < w.ih + w.pad_bottom && ix >= -w.pad_left && ix < w.iw + w.pad_right)
                ++padded_count;
              if (iy < 0 || iy >= w.ih || ix < 0 || ix >= w.iw) continue;
              const float v = xi[iy * w.iw + ix];
              acc = max_ ? std::max(acc, v) : acc + v;
              ++count;
            }
          yo[oy * w.ow + ox] = max_ ? acc : acc / static_cast<float>(std::max<int64_t>(1, include_pad ? padded_count : count));
        }
    }
    });
    SY_CHECK(!ctx.wants_output(1), node_.describe() + ": the Indices output of MaxPool is not supported");
  }
  const Node& node_;
  bool global_, max_;
};

SY_REGISTER_OP("", "MaxPool", 1, make_factory<Pool>(), kOpRowsWithWeights | kOpSelectsInput0);
SY_REGISTER_OP("", "AveragePool", 1, make_factory<Pool>(), kOpRowsWithWeights);
SY_REGISTER_OP("", "GlobalAveragePool", 1, make_factory<Pool>(), kOpRowsWithWeights);
SY_REGISTER_OP("", "GlobalMaxPool", 1, make_factory<Pool>(), kOpRowsWithWeights);

}  // namespace
}  // namespace switchyard
