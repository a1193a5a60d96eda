// ScatterND with reduction none/add/mul/max/min.
#include <cstring>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class ScatterND final : public Kernel {
 public:
  explicit ScatterND(const KernelBuildInfo& info) : node_(info.node), reduction_(info.node.attr_string("reduction", "none")) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    const Tensor& upd = ctx.input(2);
    SY_CHECK(idx.rank() >= 1, node_.describe() + ": indices must have rank >= 1");
    const int64_t q = idx.dim(-1);
    SY_CHECK(q <= x.rank(), node_.describe() + ": index depth exceeds data rank");
    int64_t slice = 1;
    for (int64_t d = q; d < x.rank(); ++d) slice *= x.dim(d);
    const int64_t lookups = q ? idx.numel() / q : 0;
    SY_CHECK(upd.numel() == lookups * slice, node_.describe() + ": updates shape " + shape_str(upd.shape()) + " mismatch");
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
    SY_DISPATCH_NUMERIC(x.dtype(), node_.describe(), {
      const T* up = static_cast<const T*>(upd.raw());
      T* yp = static_cast<T*>(y.raw());
      for (int64_t l = 0; l < lookups; ++l) {
        int64_t off = 0;
        for (int64_t j = 0; j < q; ++j) {
          int64_t dim = x.dim(j), k = idx.as_int64(l * q + j);
          if (k < 0) k += dim;
          SY_CHECK(k >= 0 && k < dim, node_.describe() + ": index out of range");
          off = off * dim + k;
        }
        T* dst = yp + off * slice;
        const T* src = up + l * slice;
        for (int64_t s = 0; s < slice; ++s) {
          if (reduction_ == "add") dst[s] = static_cast<T>(dst[s] + src[s]);
          else if (reduction_ == "mul") dst[s] = static_cast<T>(dst[s] * src[s]);
          else if (reduction_ == "max") dst[s] = std::max(dst[s], src[s]);
          else if (reduction_ == "min") dst[s] = std::min(dst[s], src[s]);
          else dst[s] = src[s];
        }
      }
    });
  }
  const Node& node_;
  std::string reduction_;
};

SY_REGISTER_OP("", "ScatterND", 11, make_factory<ScatterND>());

}  // namespace
}  // namespace switchyard
