// Conv (1-D/2-D, groups, strides, dilations, pads, auto_pad) as im2col + GEMM per group. FP32.
#include "kernels/gemm_kernel.h"
#include "ops/spatial.h"

namespace switchyard {
namespace {

class Conv final : public Kernel {
 public:
  explicit Conv(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    SY_CHECK(x.dtype() == DType::kFloat32 && w.dtype() == DType::kFloat32, node_.describe() + ": only float32 is supported");
    SY_CHECK(x.rank() == w.rank() && x.rank() >= 3, node_.describe() + ": X " + shape_str(x.shape()) + " and W " +
                                                        shape_str(w.shape()) + " ranks mismatch");
    const int64_t group = node_.attr_int("group", 1);
    const int64_t n = x.dim(0), cin = x.dim(1), cout = w.dim(0), cin_g = w.dim(1);
    SY_CHECK(group > 0 && cin == cin_g * group && cout % group == 0,
             node_.describe() + ": channels do not match groups (X " + shape_str(x.shape()) + ", W " + shape_str(w.shape()) + ")");
    std::vector<int64_t> kernel(w.shape().begin() + 2, w.shape().end());
    auto ks = node_.attr_ints("kernel_shape");
    SY_CHECK(ks.empty() || ks == kernel, node_.describe() + ": kernel_shape disagrees with W");
    Window2D win = make_window(node_, x.shape(), kernel, false);
    Tensor& y = ctx.output(0, DType::kFloat32, window_output_shape(x.shape(), cout, win));
    const int64_t cols = win.oh * win.ow, krows = cin_g * win.kh * win.kw, cout_g = cout / group;
    std::vector<float> col(static_cast<size_t>(krows * cols));
    const float* xp = x.data<float>();
    const float* wp = w.data<float>();
    float* yp = y.data<float>();
    const float* bias = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
    if (bias) SY_CHECK(ctx.input(2).numel() == cout, node_.describe() + ": bias length must equal output channels");
    for (int64_t b = 0; b < n; ++b)
      for (int64_t g = 0; g < group; ++g) {
        const float* xg = xp + (b * cin + g * cin_g) * win.ih * win.iw;
        for (int64_t c = 0; c < cin_g; ++c)
          for (int64_t ky = 0; ky < win.kh; ++ky)
            for (int64_t kx = 0; kx < win.kw; ++kx) {
              float* crow = col.data() + ((c * win.kh + ky) * win.kw + kx) * cols;
              for (int64_t oy = 0; oy < win.oh; ++oy) {
                const int64_t iy = oy * win.sh - win.pad_top + ky * win.dh;
                for (int64_t ox = 0; ox < win.ow; ++ox) {
                  const int64_t ix = ox * win.sw - win.pad_left + kx * win.dw;
                  crow[oy * win.ow + ox] = (iy >= 0 && iy < win.ih && ix >= 0 && ix < win.iw)
                                               ? xg[(c * win.ih + iy) * win.iw + ix] : 0.f;
                }
              }
            }
        float* yg = yp + (b * cout + g * cout_g) * cols;
        sgemm(false, cout_g, cols, krows, 1.f, wp + g * cout_g * krows, krows, col.data(), cols, 0.f, yg, cols, &ctx.pool());
        if (bias)
          for (int64_t oc = 0; oc < cout_g; ++oc)
            for (int64_t j = 0; j < cols; ++j) yg[oc * cols + j] += bias[g * cout_g + oc];
      }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Conv", 1, make_factory<Conv>(), kOpRowsWithWeights);

}  // namespace
}  // namespace switchyard
