// NonZero: [rank, count] int64 coordinates of the non-zero elements, row-major order.
// Its output size depends on the data (in MoE exports: how many tokens each expert got).
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class NonZero final : public Kernel {
 public:
  explicit NonZero(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const int64_t n = x.numel();
    const size_t r = static_cast<size_t>(x.rank());
    int64_t count = 0;
    SY_DISPATCH_BYTES(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      for (int64_t i = 0; i < n; ++i) count += xp[i] != 0;
    });
    if (x.dtype() == DType::kFloat32 || x.dtype() == DType::kFloat64) {  // -0.0 is zero
      count = 0;
      for (int64_t i = 0; i < n; ++i) count += x.as_double(i) != 0;
    }
    const int64_t out_rank = r == 0 ? 1 : static_cast<int64_t>(r);
    Tensor& y = ctx.output(0, DType::kInt64, {out_rank, count});
    int64_t* yp = y.data<int64_t>();
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (x.as_double(i) == 0) continue;
      int64_t rem = i;
      for (size_t d = r; d-- > 0;) {
        yp[static_cast<int64_t>(d) * count + k] = rem % x.shape()[d];
        rem /= x.shape()[d];
      }
      if (r == 0) yp[k] = 0;
      ++k;
    }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "NonZero", 9, make_factory<NonZero>());

}  // namespace
}  // namespace switchyard
