// Where(cond, x, y) with three-way NumPy broadcasting.
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Where final : public Kernel {
 public:
  explicit Where(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& c = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& y = ctx.input(2);
    SY_CHECK(c.dtype() == DType::kBool, node_.describe() + ": condition must be bool");
    SY_CHECK(x.dtype() == y.dtype(), node_.describe() + ": X and Y dtypes differ");
    Shape shape = broadcast_shapes(broadcast_shapes(c.shape(), x.shape(), node_), y.shape(), node_);
    Tensor& out = ctx.output(0, x.dtype(), shape);
    auto sc = broadcast_strides(c.shape(), shape), sx = broadcast_strides(x.shape(), shape),
         sy = broadcast_strides(y.shape(), shape);
    const bool* cp = c.data<bool>();
    const int64_t n = out.numel();
    const size_t r = shape.size();
    SY_DISPATCH_BYTES(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      const T* yp = static_cast<const T*>(y.raw());
      T* op = static_cast<T*>(out.raw());
      std::vector<int64_t> idx(r, 0);
      int64_t oc = 0, ox = 0, oy = 0;
      for (int64_t i = 0; i < n; ++i) {
        op[i] = cp[oc] ? xp[ox] : yp[oy];
        for (size_t d = r; d-- > 0;) {
          ++idx[d];
          oc += sc[d];
          ox += sx[d];
          oy += sy[d];
          if (idx[d] < shape[d]) break;
          oc -= sc[d] * shape[d];
          ox -= sx[d] * shape[d];
          oy -= sy[d] * shape[d];
          idx[d] = 0;
        }
      }
    });
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Where", 9, make_factory<Where>(), kOpRowsBroadcast);

}  // namespace
}  // namespace switchyard
