// Gather along an axis with (possibly negative) int32/int64 indices.
#include <cstring>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Gather final : public Kernel {
 public:
  explicit Gather(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    SY_CHECK(x.rank() >= 1, node_.describe() + ": data must have rank >= 1");
    const int64_t axis = normalize_axis(node_.attr_int("axis", 0), x.rank(), node_);
    Shape out(x.shape().begin(), x.shape().begin() + axis);
    out.insert(out.end(), idx.shape().begin(), idx.shape().end());
    out.insert(out.end(), x.shape().begin() + axis + 1, x.shape().end());
    Tensor& y = ctx.output(0, x.dtype(), out);
    const AxisSplit split = split_at_axis(x.shape(), axis);
    const int64_t outer = split.outer, dim = split.dim, inner = split.inner;
    const size_t row = static_cast<size_t>(inner) * dtype_size(x.dtype());
    const int64_t ni = idx.numel();
    const char* xp = static_cast<const char*>(x.raw());
    char* yp = static_cast<char*>(y.raw());
    for (int64_t j = 0; j < ni; ++j) {
      int64_t k = idx.as_int64(j);
      if (k < 0) k += dim;
      SY_CHECK(k >= 0 && k < dim, node_.describe() + ": index " + std::to_string(idx.as_int64(j)) +
                                      " is out of range for dimension " + std::to_string(dim));
    }
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < ni; ++j) {
        int64_t k = idx.as_int64(j);
        if (k < 0) k += dim;
        if (row) std::memcpy(yp + static_cast<size_t>(o * ni + j) * row, xp + static_cast<size_t>(o * dim + k) * row, row);
      }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Gather", 1, make_factory<Gather>(), kOpSelectsInput0);

}  // namespace
}  // namespace switchyard
