// ScatterElements (and its opset-9 alias Scatter) with reduction none/add/mul/max/min.
#include <cstring>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class ScatterElements final : public Kernel {
 public:
  explicit ScatterElements(const KernelBuildInfo& info) : node_(info.node) {
    reduction_ = node_.attr_string("reduction", "none");
    SY_CHECK(reduction_ == "none" || reduction_ == "add" || reduction_ == "mul" || reduction_ == "max" ||
                 reduction_ == "min",
             node_.describe() + ": unsupported reduction '" + reduction_ + "'");
  }
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    const Tensor& upd = ctx.input(2);
    SY_CHECK(x.rank() == idx.rank() && idx.shape() == upd.shape(), node_.describe() + ": indices/updates shapes mismatch");
    SY_CHECK(x.dtype() == upd.dtype(), node_.describe() + ": data and updates dtypes differ");
    const int64_t axis = normalize_axis(node_.attr_int("axis", 0), x.rank(), node_);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
    SY_DISPATCH_NUMERIC(x.dtype(), node_.describe(), {
      const T* up = static_cast<const T*>(upd.raw());
      T* yp = static_cast<T*>(y.raw());
      for_each_element_index(x.shape(), idx, axis, node_, [&](int64_t i, int64_t off) { apply(yp[off], up[i]); });
    });
  }

 private:
  template <typename T>
  void apply(T& dst, T v) const {
    switch (reduction_[0]) {
      case 'a': dst = static_cast<T>(dst + v); break;
      case 'm':
        if (reduction_ == "mul") dst = static_cast<T>(dst * v);
        else if (reduction_ == "max") dst = std::max(dst, v);
        else dst = std::min(dst, v);
        break;
      default: dst = v;
    }
  }
  const Node& node_;
  std::string reduction_;
};

SY_REGISTER_OP("", "ScatterElements", 11, make_factory<ScatterElements>());
SY_REGISTER_OP("", "Scatter", 9, make_factory<ScatterElements>());

}  // namespace
}  // namespace switchyard
