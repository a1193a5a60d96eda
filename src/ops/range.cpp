// Range(start, limit, delta) for float and integer dtypes.
#include <cmath>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Range final : public Kernel {
 public:
  explicit Range(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& s = ctx.input(0);
    const DType dt = s.dtype();
    SY_DISPATCH_NUMERIC(dt, node_.describe(), {
      const T start = static_cast<const T*>(s.raw())[0];
      const T limit = static_cast<const T*>(ctx.input(1).raw())[0];
      const T delta = static_cast<const T*>(ctx.input(2).raw())[0];
      SY_CHECK(delta != 0, node_.describe() + ": delta is 0");
      double count = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) / static_cast<double>(delta));
      SY_CHECK(count < 1e10, node_.describe() + ": range too long");
      int64_t n = std::max<int64_t>(0, static_cast<int64_t>(count));
      Tensor& y = ctx.output(0, dt, {n});
      T* yp = static_cast<T*>(y.raw());
      for (int64_t i = 0; i < n; ++i) yp[i] = static_cast<T>(start + static_cast<T>(i) * delta);
    });
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Range", 11, make_factory<Range>());

}  // namespace
}  // namespace switchyard
