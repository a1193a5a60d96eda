// Conv (1-D/2-D, groups, strides, dilations, pads, auto_pad) as im2col + GEMM per group. FP32.
#include "core/thread_pool.h"
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
    // im2col in slices of whole output rows, so the column buffer stays a few MB (in the request's
    // scratch) however large the image: one GEMM per slice.
    const int64_t slice_rows = std::max<int64_t>(1, std::min<int64_t>(win.oh, (int64_t{1} << 19) / std::max<int64_t>(1, krows * win.ow)));
    const int64_t slice = slice_rows * win.ow;
    float* col = static_cast<float*>(ctx.scratch(static_cast<size_t>(krows * std::min(slice, cols)) * 4));
    const float* xp = x.data<float>();
    const float* wp = w.data<float>();
    float* yp = y.data<float>();
    const float* bias = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
    if (bias) SY_CHECK(ctx.input(2).numel() == cout, node_.describe() + ": bias length must equal output channels");
    for (int64_t b = 0; b < n; ++b)
      for (int64_t g = 0; g < group; ++g) {
        const float* xg = xp + (b * cin + g * cin_g) * win.ih * win.iw;
        float* yg = yp + (b * cout + g * cout_g) * cols;
        for (int64_t oy0 = 0; oy0 < win.oh; oy0 += slice_rows) {
          const int64_t ny = std::min(slice_rows, win.oh - oy0), nj = ny * win.ow, j0 = oy0 * win.ow;
          ctx.pool().parallel_for(krows, 1, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
              const int64_t c = r / (win.kh * win.kw), ky = r / win.kw % win.kh, kx = r % win.kw;
              for (int64_t oy = oy0; oy < oy0 + ny; ++oy) {
                float* crow = col + r * nj + (oy - oy0) * win.ow;
                const int64_t iy = oy * win.sh - win.pad_top + ky * win.dh;
                if (iy < 0 || iy >= win.ih) {
                  std::fill(crow, crow + win.ow, 0.f);
                  continue;
                }
                const float* xrow = xg + (c * win.ih + iy) * win.iw;
                for (int64_t ox = 0; ox < win.ow; ++ox) {
                  const int64_t ix = ox * win.sw - win.pad_left + kx * win.dw;
                  crow[ox] = (ix >= 0 && ix < win.iw) ? xrow[ix] : 0.f;
                }
              }
            }
          });
          sgemm(false, cout_g, nj, krows, 1.f, wp + g * cout_g * krows, krows, col, nj, 0.f, yg + j0, cols, &ctx.pool());
        }
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
