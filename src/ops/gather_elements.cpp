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
    SY_DISPATCH_BYTES(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      T* yp = static_cast<T*>(y.raw());
      for_each_element_index(x.shape(), idx, axis, node_, [&](int64_t i, int64_t off) { yp[i] = xp[off]; });
    });
  }
  const Node& node_;
};

SY_REGISTER_OP("", "GatherElements", 11, make_factory<GatherElements>(), kOpSelectsInput0);

}  // namespace
}  // namespace switchyard
