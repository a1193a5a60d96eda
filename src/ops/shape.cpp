// Shape (with opset-15 start/end) and Size.
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class ShapeOp final : public Kernel {
 public:
  explicit ShapeOp(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Shape& s = ctx.input(0).shape();
    const int64_t r = static_cast<int64_t>(s.size());
    if (node_.op_type == "Size") {
      ctx.output(0, DType::kInt64, {}).data<int64_t>()[0] = ctx.input(0).numel();
      return;
    }
    int64_t start = node_.attr_int("start", 0), end = node_.attr_int("end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::clamp<int64_t>(start, 0, r);
    end = std::clamp<int64_t>(end, 0, r);
    int64_t n = std::max<int64_t>(0, end - start);
    Tensor& y = ctx.output(0, DType::kInt64, {n});
    for (int64_t i = 0; i < n; ++i) y.data<int64_t>()[i] = s[static_cast<size_t>(start + i)];
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Shape", 1, make_factory<ShapeOp>());
SY_REGISTER_OP("", "Size", 1, make_factory<ShapeOp>());

}  // namespace
}  // namespace switchyard
