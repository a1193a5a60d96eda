// CumSum along an axis (input), with exclusive and reverse.
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class CumSum final : public Kernel {
 public:
  explicit CumSum(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const int64_t axis = normalize_axis(ctx.input(1).as_int64(0), x.rank(), node_);
    const bool exclusive = node_.attr_int("exclusive", 0) != 0, reverse = node_.attr_int("reverse", 0) != 0;
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    const AxisSplit split = split_at_axis(x.shape(), axis);
    const int64_t outer = split.outer, dim = split.dim, inner = split.inner;
    SY_DISPATCH_NUMERIC(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      T* yp = static_cast<T*>(y.raw());
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t in = 0; in < inner; ++in) {
          T acc = 0;
          for (int64_t j = 0; j < dim; ++j) {
            int64_t jj = reverse ? dim - 1 - j : j;
            int64_t off = (o * dim + jj) * inner + in;
            if (exclusive) {
              yp[off] = acc;
              acc = static_cast<T>(acc + xp[off]);
            } else {
              acc = static_cast<T>(acc + xp[off]);
              yp[off] = acc;
            }
          }
        }
    });
  }
  const Node& node_;
};

SY_REGISTER_OP("", "CumSum", 11, make_factory<CumSum>());

}  // namespace
}  // namespace switchyard
