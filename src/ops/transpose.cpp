// Transpose with an arbitrary permutation (default: reverse the dims).
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Transpose final : public Kernel {
 public:
  explicit Transpose(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const size_t r = static_cast<size_t>(x.rank());
    std::vector<int64_t> perm = node_.attr_ints("perm");
    if (perm.empty())
      for (size_t i = 0; i < r; ++i) perm.push_back(static_cast<int64_t>(r - 1 - i));
    SY_CHECK(perm.size() == r, node_.describe() + ": perm has " + std::to_string(perm.size()) + " entries for rank " +
                                   std::to_string(r));
    std::vector<bool> seen(r, false);
    Shape out(r);
    for (size_t i = 0; i < r; ++i) {
      int64_t p = normalize_axis(perm[i], static_cast<int64_t>(r), node_);
      SY_CHECK(!seen[static_cast<size_t>(p)], node_.describe() + ": perm is not a permutation");
      seen[static_cast<size_t>(p)] = true;
      perm[i] = p;
      out[i] = x.shape()[static_cast<size_t>(p)];
    }
    Tensor& y = ctx.output(0, x.dtype(), out);
    std::vector<int64_t> in_strides(r, 1);
    for (size_t i = r; i-- > 1;) in_strides[i - 1] = in_strides[i] * x.shape()[i];
    std::vector<int64_t> st(r);  // input stride for each output dim
    for (size_t i = 0; i < r; ++i) st[i] = in_strides[static_cast<size_t>(perm[i])];
    SY_DISPATCH_BYTES(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      T* yp = static_cast<T*>(y.raw());
      for_each_strided(out, st, 0, [&](int64_t i, int64_t off) { yp[i] = xp[off]; });
    });
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Transpose", 1, make_factory<Transpose>(), kOpLayoutOnly | kOpRouterPath | kOpSelectsInput0);

}  // namespace
}  // namespace switchyard
