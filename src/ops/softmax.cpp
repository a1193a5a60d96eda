// Softmax / LogSoftmax. Opset >= 13: along one axis (default -1). Opset < 13: the input is
// coerced to 2-D at `axis` (default 1) and normalised over the flattened trailing dims.
#include <cmath>

#include "ops/op_utils.h"
#include "core/thread_pool.h"

namespace switchyard {
namespace {

class Softmax final : public Kernel {
 public:
  explicit Softmax(const KernelBuildInfo& info) : node_(info.node), log_(info.node.op_type == "LogSoftmax") {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    const int64_t r = x.rank();
    int64_t outer, dim, inner;
    if (node_.opset >= 13) {
      const int64_t axis = normalize_axis(node_.attr_int("axis", -1), r, node_);
      outer = rows_of(x.shape(), static_cast<size_t>(axis));
      dim = r ? x.dim(axis) : 1;
      inner = 1;
      for (int64_t d = axis + 1; d < r; ++d) inner *= x.dim(d);
    } else {
      int64_t axis = node_.attr_int("axis", 1);
      if (axis < 0) axis += r;
      SY_CHECK(axis >= 0 && axis <= r, node_.describe() + ": axis out of range");
      outer = rows_of(x.shape(), static_cast<size_t>(axis));
      dim = outer ? x.numel() / outer : 0;
      inner = 1;
    }
    SY_DISPATCH_FLOAT(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      T* yp = static_cast<T*>(y.raw());
      ctx.pool().parallel_for(outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, dim)), [&](int64_t b, int64_t e) {
        for (int64_t row = b; row < e; ++row) {
          const int64_t o = row / inner, in = row % inner;
          const T* xr = xp + o * dim * inner + in;
          T* yr = yp + o * dim * inner + in;
          T m = xr[0];
          for (int64_t j = 1; j < dim; ++j) m = std::max(m, xr[j * inner]);
          T sum = 0;
          for (int64_t j = 0; j < dim; ++j) {
            T e_ = std::exp(xr[j * inner] - m);
            yr[j * inner] = e_;
            sum += e_;
          }
          if (log_) {
            T ls = std::log(sum);
            for (int64_t j = 0; j < dim; ++j) yr[j * inner] = xr[j * inner] - m - ls;
          } else {
            T inv = T(1) / sum;
            for (int64_t j = 0; j < dim; ++j) yr[j * inner] *= inv;
          }
        }
      });
    });
  }
  const Node& node_;
  bool log_;
};

SY_REGISTER_OP("", "Softmax", 1, make_factory<Softmax>(), kOpRouterPath | kOpNonNegative);
SY_REGISTER_OP("", "LogSoftmax", 1, make_factory<Softmax>(), kOpRouterPath);

}  // namespace
}  // namespace switchyard
