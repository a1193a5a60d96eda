// Clip: bounds from attributes (opset < 11) or optional inputs (opset >= 11).
#include <limits>

#include "ops/elementwise.h"

namespace switchyard {
namespace {

class Clip final : public Kernel {
 public:
  explicit Clip(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    SY_DISPATCH_NUMERIC(x.dtype(), node_.describe(), {
      T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
      if (node_.opset < 11) {
        lo = static_cast<T>(node_.attr_float("min", -std::numeric_limits<float>::max()));
        hi = static_cast<T>(node_.attr_float("max", std::numeric_limits<float>::max()));
      } else {
        if (ctx.has_input(1)) lo = static_cast<const T*>(ctx.input(1).raw())[0];
        if (ctx.has_input(2)) hi = static_cast<const T*>(ctx.input(2).raw())[0];
      }
      unary_map<T, T>(x, y, ctx.pool(), [lo, hi](T v) { return v < lo ? lo : (v > hi ? hi : v); });
    });
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Clip", 6, make_factory<Clip>(), kOpRowsBroadcast);

}  // namespace
}  // namespace switchyard
