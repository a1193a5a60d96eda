// TopK along an axis: values and int64 indices; largest/smallest, sorted. Ties keep the lower index
// first, as ONNX Runtime and PyTorch do, so routing decisions match them exactly.
#include <algorithm>
#include <numeric>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class TopK final : public Kernel {
 public:
  explicit TopK(const KernelBuildInfo& info) : node_(info.node) {
    largest_ = node_.attr_int("largest", 1) != 0;
  }
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const int64_t axis = normalize_axis(node_.attr_int("axis", -1), x.rank(), node_);
    const int64_t k = node_.opset >= 10 ? ctx.input(1).as_int64(0) : node_.attr_int("k", 1);
    const int64_t dim = x.dim(axis);
    SY_CHECK(k >= 0 && k <= dim, node_.describe() + ": k=" + std::to_string(k) + " exceeds axis size " + std::to_string(dim));
    Shape out = x.shape();
    out[static_cast<size_t>(axis)] = k;
    Tensor& values = ctx.output(0, x.dtype(), out);
    Tensor& indices = ctx.output(1, DType::kInt64, out);
    const AxisSplit split = split_at_axis(x.shape(), axis);
    const int64_t outer = split.outer, inner = split.inner;
    SY_DISPATCH_NUMERIC(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      T* vp = static_cast<T*>(values.raw());
      int64_t* ip = indices.data<int64_t>();
      std::vector<int64_t> order(static_cast<size_t>(dim));
      const bool largest = largest_;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t in = 0; in < inner; ++in) {
          const T* base = xp + o * dim * inner + in;
          std::iota(order.begin(), order.end(), 0);
          auto better = [&](int64_t a, int64_t b) {
            T va = base[a * inner], vb = base[b * inner];
            if (va != vb) return largest ? va > vb : va < vb;
            return a < b;
          };
          std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
          for (int64_t j = 0; j < k; ++j) {
            vp[(o * k + j) * inner + in] = base[order[static_cast<size_t>(j)] * inner];
            ip[(o * k + j) * inner + in] = order[static_cast<size_t>(j)];
          }
        }
    });
  }
  const Node& node_;
  bool largest_;
};

SY_REGISTER_OP("", "TopK", 1, make_factory<TopK>(), kOpSelectsInput0);

}  // namespace
}  // namespace switchyard
