// GatherElements: y[i][j][k] = x[index[i][j][k]][j][k] along `axis`.
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class GatherElements final : public Kernel {
 public:
  explicit GatherElements(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    SY_CHECK(x.rank() == idx.rank(), node_.describe() + ": data and indices ranks differ");
    const int64_t axis = normalize_axis(node_.attr_int("axis", 0), x.rank(), node_);
    Tensor& y = ctx.output(0, x.dtype(), idx.shape());
    const size_t r = static_cast<size_t>(x.rank());
    std::vector<int64_t> xs(r, 1);
    for (size_t d = r; d-- > 1;) xs[d - 1] = xs[d] * x.shape()[d];
    const int64_t n = idx.numel(), dim = x.dim(axis);
    SY_DISPATCH_BYTES(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      T* yp = static_cast<T*>(y.raw());
      std::vector<int64_t> pos(r, 0);
      for (int64_t i = 0; i < n; ++i) {
        int64_t k = idx.as_int64(i);
        if (k < 0) k += dim;
        SY_CHECK(k >= 0 && k < dim, node_.describe() + ": index out of range");
        int64_t off = 0;
        for (size_t d = 0; d < r; ++d) off += (d == static_cast<size_t>(axis) ? k : pos[d]) * xs[d];
        yp[i] = xp[off];
        for (size_t d = r; d-- > 0;) {
          if (++pos[d] < idx.shape()[d]) break;
          pos[d] = 0;
        }
      }
    });
  }
  const Node& node_;
};

SY_REGISTER_OP("", "GatherElements", 11, make_factory<GatherElements>(), kOpSelectsInput0);

}  // namespace
}  // namespace switchyard
