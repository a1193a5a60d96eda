// ArgMax / ArgMin along an axis (keepdims, select_last_index) -> int64.
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class ArgReduce final : public Kernel {
 public:
  explicit ArgReduce(const KernelBuildInfo& info) : node_(info.node), is_max_(info.node.op_type == "ArgMax") {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const int64_t axis = normalize_axis(node_.attr_int("axis", 0), x.rank(), node_);
    const bool keep = node_.attr_int("keepdims", 1) != 0, last = node_.attr_int("select_last_index", 0) != 0;
    const int64_t dim = x.dim(axis);
    SY_CHECK(dim > 0, node_.describe() + ": cannot reduce an empty axis");
    Shape out = x.shape();
    if (keep) out[static_cast<size_t>(axis)] = 1;
    else out.erase(out.begin() + axis);
    Tensor& y = ctx.output(0, DType::kInt64, out);
    const AxisSplit split = split_at_axis(x.shape(), axis);
    const int64_t outer = split.outer, inner = split.inner;
    SY_DISPATCH_NUMERIC(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      int64_t* yp = y.data<int64_t>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t in = 0; in < inner; ++in) {
          const T* base = xp + o * dim * inner + in;
          int64_t best = 0;
          for (int64_t j = 1; j < dim; ++j) {
            T v = base[j * inner], b = base[best * inner];
            bool better = is_max_ ? (v > b || (last && v == b)) : (v < b || (last && v == b));
            if (better) best = j;
          }
          yp[o * inner + in] = best;
        }
    });
  }
  const Node& node_;
  bool is_max_;
};

SY_REGISTER_OP("", "ArgMax", 1, make_factory<ArgReduce>());
SY_REGISTER_OP("", "ArgMin", 1, make_factory<ArgReduce>());

}  // namespace
}  // namespace switchyard
