// OneHot(indices, depth, values[off, on]) along `axis`; negative indices count from depth.
#include <cstring>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class OneHot final : public Kernel {
 public:
  explicit OneHot(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& idx = ctx.input(0);
    const int64_t depth = static_cast<int64_t>(ctx.input(1).as_double(0));
    const Tensor& vals = ctx.input(2);
    SY_CHECK(depth > 0, node_.describe() + ": depth must be positive");
    SY_CHECK(vals.numel() == 2, node_.describe() + ": values must hold [off, on]");
    const int64_t r = idx.rank() + 1;
    const int64_t axis = normalize_axis(node_.attr_int("axis", -1), r, node_);
    Shape out = idx.shape();
    out.insert(out.begin() + axis, depth);
    Tensor& y = ctx.output(0, vals.dtype(), out);
    const int64_t outer = rows_of(idx.shape(), static_cast<size_t>(axis));
    const int64_t inner = outer ? idx.numel() / std::max<int64_t>(1, outer) : 0;
    SY_DISPATCH_BYTES(vals.dtype(), node_.describe(), {
      const T off = static_cast<const T*>(vals.raw())[0], on = static_cast<const T*>(vals.raw())[1];
      T* yp = static_cast<T*>(y.raw());
      for (int64_t i = 0; i < y.numel(); ++i) yp[i] = off;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t in = 0; in < inner; ++in) {
          int64_t k = static_cast<int64_t>(idx.as_double(o * inner + in));
          if (k < 0) k += depth;
          if (k >= 0 && k < depth) yp[(o * depth + k) * inner + in] = on;
        }
    });
  }
  const Node& node_;
};

SY_REGISTER_OP("", "OneHot", 9, make_factory<OneHot>());

}  // namespace
}  // namespace switchyard
