// Slice with starts/ends/axes/steps as attributes (opset < 10) or inputs (>= 10); negative steps.
#include <limits>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Slice final : public Kernel {
 public:
  explicit Slice(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const int64_t r = x.rank();
    std::vector<int64_t> starts, ends, axes, steps;
    if (node_.opset >= 10) {
      starts = read_int_list(ctx.input(1));
      ends = read_int_list(ctx.input(2));
      if (ctx.has_input(3)) axes = read_int_list(ctx.input(3));
      if (ctx.has_input(4)) steps = read_int_list(ctx.input(4));
    } else {
      starts = node_.attr_ints("starts");
      ends = node_.attr_ints("ends");
      axes = node_.attr_ints("axes");
    }
    SY_CHECK(starts.size() == ends.size(), node_.describe() + ": starts and ends differ in length");
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    SY_CHECK(axes.size() == starts.size() && steps.size() == starts.size(), node_.describe() + ": axes/steps length mismatch");
    std::vector<int64_t> begin(static_cast<size_t>(r), 0), step(static_cast<size_t>(r), 1);
    Shape out = x.shape();
    std::vector<bool> seen(static_cast<size_t>(r), false);
    for (size_t i = 0; i < axes.size(); ++i) {
      size_t a = static_cast<size_t>(normalize_axis(axes[i], r, node_));
      SY_CHECK(!seen[a], node_.describe() + ": repeated axis");
      seen[a] = true;
      const int64_t dim = x.shape()[a], st = steps[i];
      SY_CHECK(st != 0, node_.describe() + ": step 0");
      int64_t s = starts[i], e = ends[i];
      if (s < 0) s += dim;
      if (e < 0 && e > std::numeric_limits<int64_t>::min() / 2) e += dim;
      else if (e < 0) e = -1;
      if (st > 0) {
        s = std::clamp<int64_t>(s, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        out[a] = e > s ? (e - s + st - 1) / st : 0;
      } else {
        s = std::clamp<int64_t>(s, 0, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        out[a] = s > e ? (s - e + (-st) - 1) / (-st) : 0;
      }
      begin[a] = s;
      step[a] = st;
    }
    Tensor& y = ctx.output(0, x.dtype(), out);
    const int64_t n = y.numel();
    if (n == 0) return;
    std::vector<int64_t> in_strides(static_cast<size_t>(r), 1);
    for (int64_t d = r - 1; d > 0; --d) in_strides[static_cast<size_t>(d - 1)] = in_strides[static_cast<size_t>(d)] * x.dim(d);
    int64_t base = 0;
    std::vector<int64_t> st(static_cast<size_t>(r));
    for (size_t d = 0; d < static_cast<size_t>(r); ++d) {
      base += begin[d] * in_strides[d];
      st[d] = step[d] * in_strides[d];
    }
    SY_DISPATCH_BYTES(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      T* yp = static_cast<T*>(y.raw());
      for_each_strided(out, st, base, [&](int64_t i, int64_t off) { yp[i] = xp[off]; });
    });
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Slice", 1, make_factory<Slice>(), kOpSelectsInput0);

}  // namespace
}  // namespace switchyard
