// Identity, and Dropout at inference (identity; the optional mask output is all true).
#include <cstring>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Identity final : public Kernel {
 public:
  explicit Identity(const KernelBuildInfo&) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    ctx.output_view(0, 0, x.shape());
    if (ctx.wants_output(1)) {
      Tensor& mask = ctx.output(1, DType::kBool, x.shape());
      std::memset(mask.raw(), 1, mask.nbytes());
    }
  }
};

SY_REGISTER_OP("", "Identity", 1, make_factory<Identity>(),
               kOpViewOfInput0 | kOpLayoutOnly | kOpRowsElementwise | kOpRouterPath | kOpSelectsInput0);
SY_REGISTER_OP("", "Dropout", 1, make_factory<Identity>(), kOpRowsElementwise);

}  // namespace
}  // namespace switchyard
