// Not (bool), IsNaN and IsInf (float -> bool).
#include <cmath>

#include "ops/elementwise.h"

namespace switchyard {
namespace {

class Not final : public Kernel {
 public:
  explicit Not(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    SY_CHECK(x.dtype() == DType::kBool, node_.describe() + ": input must be bool");
    Tensor& y = ctx.output(0, DType::kBool, x.shape());
    unary_map<bool, bool>(x, y, ctx.pool(), [](bool v) { return !v; });
  }
  const Node& node_;
};

class FloatClass final : public Kernel {
 public:
  explicit FloatClass(const KernelBuildInfo& info) : node_(info.node), is_nan_(info.node.op_type == "IsNaN") {
    detect_pos_ = node_.attr_int("detect_positive", 1) != 0;
    detect_neg_ = node_.attr_int("detect_negative", 1) != 0;
  }
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, DType::kBool, x.shape());
    bool* yp = y.data<bool>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      double v = x.as_double(i);
      yp[i] = is_nan_ ? std::isnan(v) : (std::isinf(v) && ((v > 0 && detect_pos_) || (v < 0 && detect_neg_)));
    }
  }
  const Node& node_;
  bool is_nan_, detect_pos_, detect_neg_;
};

SY_REGISTER_OP("", "Not", 1, make_factory<Not>(), kOpRowsElementwise);
SY_REGISTER_OP("", "IsNaN", 9, make_factory<FloatClass>(), kOpRowsElementwise);
SY_REGISTER_OP("", "IsInf", 10, make_factory<FloatClass>(), kOpRowsElementwise);

}  // namespace
}  // namespace switchyard
