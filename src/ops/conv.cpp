// Conv (1-D/2-D, groups, strides, dilations, pads, auto_pad) as im2col + GEMM per group. FP32.
// Ungrouped stride-1 convolutions with at most 16 output channels (image stems, routers, small experts)
// run the direct NHWC kernel instead (kernels/conv_nhwc.h): no im2col, whole vectors per pixel.
#include "core/thread_pool.h"
#include <algorithm>
#include <atomic>
#include <cstring>

#include "kernels/conv_nhwc.h"
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
    const float* bias_in = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
    if (bias_in) SY_CHECK(ctx.input(2).numel() == cout, node_.describe() + ": bias length must equal output channels");
    if (group == 1 && cout <= kConvNarrowWidth && win.sh == 1 && win.sw == 1 && win.dh == 1 && win.dw == 1) {
      direct_narrow(ctx, x, w, bias_in, win, y);
      return;
    }
    const int64_t cols = win.oh * win.ow, krows = cin_g * win.kh * win.kw, cout_g = cout / group;
    // im2col in slices of whole output rows, so the column buffer stays a few MB (in the request's
    // scratch) however large the image: one GEMM per slice.
    const int64_t slice_rows = std::max<int64_t>(1, std::min<int64_t>(win.oh, (int64_t{1} << 19) / std::max<int64_t>(1, krows * win.ow)));
    const int64_t slice = slice_rows * win.ow;
    float* col = static_cast<float*>(ctx.scratch(static_cast<size_t>(krows * std::min(slice, cols)) * 4));
    const float* xp = x.data<float>();
    const float* wp = w.data<float>();
    float* yp = y.data<float>();
    const float* bias = bias_in;
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
  // NCHW -> NHWC once, then per output row and run of up to 64 pixels: a row-pointer table (zeros where
  // a tap falls in the padding), the direct kernel into a small buffer, and back to NCHW.
  void direct_narrow(KernelContext& ctx, const Tensor& x, const Tensor& w, const float* bias, const Window2D& win,
                     Tensor& y) const {
    constexpr int64_t kRun = 64;
    const int64_t n = x.dim(0), cin = x.dim(1), cout = w.dim(0), taps = win.kh * win.kw, hw = win.ih * win.iw;
    const int64_t cols = win.oh * win.ow, threads = ctx.pool().size();
    auto whole = [](int64_t floats) { return static_cast<size_t>((floats + 15) / 16 * 16); };  // 64-byte pieces
    const size_t nhwc = whole(hw * cin), packed = whole(taps * cin * kConvNarrowWidth), zero_n = whole(cin);
    const size_t per_slot = whole(kRun * cout) + whole(taps * kRun * 2);  // output rows, then row pointers
    auto* base = static_cast<float*>(
        ctx.scratch((nhwc + packed + kConvNarrowWidth + zero_n + per_slot * static_cast<size_t>(threads)) * 4));
    float* xin = base;
    float* wp = xin + nhwc;
    float* bp = wp + packed;
    float* zeros = bp + kConvNarrowWidth;
    float* slots = zeros + zero_n;
    // weights [Cout, Cin, kh, kw] -> [(ky, kx, ci), 16]
    std::memset(wp, 0, packed * 4);
    std::memset(bp, 0, kConvNarrowWidth * 4);
    std::memset(zeros, 0, static_cast<size_t>(cin) * 4);
    const float* wsrc = w.data<float>();
    for (int64_t o = 0; o < cout; ++o) {
      bp[o] = bias ? bias[o] : 0.f;
      for (int64_t c = 0; c < cin; ++c)
        for (int64_t t = 0; t < taps; ++t) wp[(t * cin + c) * kConvNarrowWidth + o] = wsrc[(o * cin + c) * taps + t];
    }
    const int64_t runs_per_row = (win.ow + kRun - 1) / kRun;
    for (int64_t b = 0; b < n; ++b) {
      const float* xb = x.data<float>() + b * cin * hw;
      float* yb = y.data<float>() + b * cout * cols;
      ctx.pool().parallel_for(win.ih, 8, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t px = 0; px < win.iw; ++px)
            for (int64_t c = 0; c < cin; ++c) xin[(r * win.iw + px) * cin + c] = xb[c * hw + r * win.iw + px];
      });
      std::atomic<int64_t> next{0};
      const int64_t tasks = win.oh * runs_per_row;
      ctx.pool().parallel_for(std::min<int64_t>(threads, tasks), 1, [&](int64_t s0, int64_t s1) {
        for (int64_t slot = s0; slot < s1; ++slot) {
          float* tmp = slots + static_cast<size_t>(slot) * per_slot;
          auto** rows = reinterpret_cast<const float**>(tmp + whole(kRun * cout));
          for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) {
            const int64_t oy = t / runs_per_row, ox0 = t % runs_per_row * kRun, P = std::min(kRun, win.ow - ox0);
            conv_tap_rows(xin, win.ih, win.iw, cin, oy, ox0, P, win.kh, win.kw, win.pad_top, win.pad_left, zeros, rows);
            conv_nhwc16(P, taps, cin, rows, wp, bp, cout, false, tmp, cout);
            for (int64_t o = 0; o < cout; ++o) {
              float* dst = yb + o * cols + oy * win.ow + ox0;
              for (int64_t p = 0; p < P; ++p) dst[p] = tmp[p * cout + o];
            }
          }
        }
      });
    }
  }

  const Node& node_;
};

SY_REGISTER_OP("", "Conv", 1, make_factory<Conv>(), kOpRowsWithWeights);

}  // namespace
}  // namespace switchyard
