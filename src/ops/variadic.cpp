// Variadic element-wise ops over any number of broadcast inputs: Sum, Mean, Max, Min.
#include <cstring>

#include "ops/elementwise.h"

namespace switchyard {
namespace {

class Variadic final : public Kernel {
 public:
  explicit Variadic(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const int n = ctx.num_inputs();
    SY_CHECK(n >= 1, node_.describe() + ": needs at least one input");
    Shape shape = ctx.input(0).shape();
    for (int i = 1; i < n; ++i) shape = broadcast_shapes(shape, ctx.input(i).shape(), node_);
    const DType dt = ctx.input(0).dtype();
    Tensor& y = ctx.output(0, dt, shape);
    const std::string& op = node_.op_type;
    SY_DISPATCH_NUMERIC(dt, node_.describe(), {
      // Start from the broadcast first input, then fold in the rest.
      Tensor ones(dt, {});
      broadcast_binary<T, T, T>(ctx.input(0), ones, y, [](T a, T) { return a; });
      for (int i = 1; i < n; ++i) {
        const Tensor& in = ctx.input(i);
        SY_CHECK(in.dtype() == dt, node_.describe() + ": input dtypes differ");
        Tensor acc = Tensor::wrap(dt, shape, y.raw());
        if (op == "Max") broadcast_binary<T, T, T>(acc, in, y, [](T a, T b) { return a > b || a != a ? a : b; });
        else if (op == "Min") broadcast_binary<T, T, T>(acc, in, y, [](T a, T b) { return a < b || a != a ? a : b; });
        else broadcast_binary<T, T, T>(acc, in, y, [](T a, T b) { return static_cast<T>(a + b); });
      }
      if (op == "Mean") {
        T* yp = static_cast<T*>(y.raw());
        for (int64_t i = 0; i < y.numel(); ++i) yp[i] = static_cast<T>(yp[i] / static_cast<T>(n));
      }
    });
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Sum", 8, make_factory<Variadic>(), kOpRowsBroadcast);
SY_REGISTER_OP("", "Mean", 8, make_factory<Variadic>(), kOpRowsBroadcast);
SY_REGISTER_OP("", "Max", 8, make_factory<Variadic>(), kOpRowsBroadcast);
SY_REGISTER_OP("", "Min", 8, make_factory<Variadic>(), kOpRowsBroadcast);

}  // namespace
}  // namespace switchyard
