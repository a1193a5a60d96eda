// Pad: constant / reflect / edge / wrap; pads from the attribute (opset < 11) or inputs (>= 11,
// with optional axes from 18).
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Pad final : public Kernel {
 public:
  explicit Pad(const KernelBuildInfo& info) : node_(info.node), mode_(info.node.attr_string("mode", "constant")) {
    SY_CHECK(mode_ == "constant" || mode_ == "reflect" || mode_ == "edge" || mode_ == "wrap",
             node_.describe() + ": unsupported mode '" + mode_ + "'");
  }
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const int64_t r = x.rank();
    std::vector<int64_t> pads = node_.opset >= 11 ? read_int_list(ctx.input(1)) : node_.attr_ints("pads");
    std::vector<int64_t> axes;
    if (node_.opset >= 18 && ctx.has_input(3)) axes = read_int_list(ctx.input(3));
    if (axes.empty())
      for (int64_t d = 0; d < r; ++d) axes.push_back(d);
    SY_CHECK(pads.size() == 2 * axes.size(), node_.describe() + ": pads must have 2 entries per axis");
    std::vector<int64_t> begin(static_cast<size_t>(r), 0), end(static_cast<size_t>(r), 0);
    for (size_t i = 0; i < axes.size(); ++i) {
      size_t a = static_cast<size_t>(normalize_axis(axes[i], r, node_));
      begin[a] = pads[i];
      end[a] = pads[i + axes.size()];
    }
    Shape out(static_cast<size_t>(r));
    for (size_t d = 0; d < static_cast<size_t>(r); ++d) {
      out[d] = x.shape()[d] + begin[d] + end[d];
      SY_CHECK(out[d] >= 0, node_.describe() + ": negative output dimension");
      if (mode_ != "constant" && out[d] > 0) SY_CHECK(x.shape()[d] > 0, node_.describe() + ": cannot pad an empty axis in mode " + mode_);
      if (mode_ == "reflect" && (begin[d] > 0 || end[d] > 0))
        SY_CHECK(x.shape()[d] >= 2, node_.describe() + ": reflect padding needs at least 2 elements per axis");
    }
    Tensor& y = ctx.output(0, x.dtype(), out);
    std::vector<int64_t> xs(static_cast<size_t>(r), 1);
    for (int64_t d = r - 1; d > 0; --d) xs[static_cast<size_t>(d - 1)] = xs[static_cast<size_t>(d)] * x.dim(d);
    const int64_t n = y.numel();
    SY_DISPATCH_BYTES(x.dtype(), node_.describe(), {
      T fill{};
      if (ctx.has_input(2) && ctx.input(2).numel() > 0) std::memcpy(&fill, ctx.input(2).raw(), sizeof(T));
      if constexpr (sizeof(T) == sizeof(float)) {
        if (node_.opset < 11 && x.dtype() == DType::kFloat32) {
          float v = node_.attr_float("value", 0.f);
          std::memcpy(&fill, &v, sizeof(T));
        }
      }
      const T* xp = static_cast<const T*>(x.raw());
      T* yp = static_cast<T*>(y.raw());
      // Constant padding row by row: fill, one copy of the input row (with negative pads: its slice), fill.
      if (mode_ == "constant" && r >= 1 && n > 0) {
        const int64_t last = out.back(), in_last = x.shape().back(), b0 = begin.back();
        const int64_t lo = std::max<int64_t>(0, b0), hi = std::min<int64_t>(last, b0 + in_last);
        std::vector<int64_t> idx(static_cast<size_t>(r), 0);
        for (int64_t row = 0; row < n / std::max<int64_t>(1, last); ++row) {
          T* yr = yp + row * last;
          int64_t off = 0;
          bool inside = true;
          for (size_t d = 0; d + 1 < static_cast<size_t>(r); ++d) {
            const int64_t k = idx[d] - begin[d];
            if (k < 0 || k >= x.shape()[d]) inside = false;
            off += k * xs[d];
          }
          if (!inside || hi <= lo) {
            std::fill(yr, yr + last, fill);
          } else {
            std::fill(yr, yr + lo, fill);
            std::memcpy(yr + lo, xp + off + (lo - b0), static_cast<size_t>(hi - lo) * sizeof(T));
            std::fill(yr + hi, yr + last, fill);
          }
          for (size_t d = static_cast<size_t>(r) - 1; d-- > 0;) {
            if (++idx[d] < out[d]) break;
            idx[d] = 0;
          }
        }
        return;
      }
      std::vector<int64_t> idx(static_cast<size_t>(r), 0);
      for (int64_t i = 0; i < n; ++i) {
        int64_t off = 0;
        bool inside = true;
        for (size_t d = 0; d < static_cast<size_t>(r); ++d) {
          int64_t k = idx[d] - begin[d];
          const int64_t dim = x.shape()[d];
          if (k < 0 || k >= dim) {
            if (mode_ == "constant") { inside = false; break; }
            if (mode_ == "edge") k = k < 0 ? 0 : dim - 1;
            else if (mode_ == "wrap") k = ((k % dim) + dim) % dim;
            else {  // reflect
              const int64_t period = 2 * (dim - 1);
              k = ((k % period) + period) % period;
              if (k >= dim) k = period - k;
            }
          }
          off += k * xs[d];
        }
        yp[i] = inside ? xp[off] : fill;
        for (size_t d = static_cast<size_t>(r); d-- > 0;) {
          if (++idx[d] < out[d]) break;
          idx[d] = 0;
        }
      }
    });
  }
  const Node& node_;
  std::string mode_;
};

SY_REGISTER_OP("", "Pad", 2, make_factory<Pad>());

}  // namespace
}  // namespace switchyard
