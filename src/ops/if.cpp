// If: runs then_branch or else_branch (captured values come from the enclosing scope) and copies
// the branch outputs into the node outputs.
#include <cstring>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class If final : public Kernel {
 public:
  explicit If(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& cond = ctx.input(0);
    SY_CHECK(cond.numel() == 1, node_.describe() + ": condition must hold one element");
    const bool taken = cond.as_double(0) != 0;
    std::vector<Tensor> outs = ctx.run_subgraph(taken ? "then_branch" : "else_branch", {});
    SY_CHECK(static_cast<int>(outs.size()) == ctx.num_outputs(), node_.describe() + ": branch output count mismatch");
    for (size_t i = 0; i < outs.size(); ++i) {
      if (!ctx.wants_output(static_cast<int>(i))) continue;
      if (outs[i].dtype() == DType::kSequence) {
        ctx.set_output(static_cast<int>(i), outs[i]);
        continue;
      }
      Tensor& y = ctx.output(static_cast<int>(i), outs[i].dtype(), outs[i].shape());
      if (outs[i].nbytes()) std::memcpy(y.raw(), outs[i].raw(), outs[i].nbytes());
    }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "If", 1, make_factory<If>());

}  // namespace
}  // namespace switchyard
