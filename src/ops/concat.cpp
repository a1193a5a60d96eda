// Concat along one axis.
#include <cstring>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Concat final : public Kernel {
 public:
  explicit Concat(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& first = ctx.input(0);
    const int64_t r = first.rank();
    SY_CHECK(r > 0, node_.describe() + ": cannot concatenate scalars");
    const int64_t axis = normalize_axis(node_.attr_int("axis", 0), r, node_);
    Shape out = first.shape();
    out[static_cast<size_t>(axis)] = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& t = ctx.input(i);
      SY_CHECK(t.dtype() == first.dtype() && t.rank() == r, node_.describe() + ": inputs differ in dtype or rank");
      for (int64_t d = 0; d < r; ++d)
        SY_CHECK(d == axis || t.shape()[static_cast<size_t>(d)] == first.shape()[static_cast<size_t>(d)],
                 node_.describe() + ": input shapes " + shape_str(first.shape()) + " and " + shape_str(t.shape()) +
                     " differ off the concat axis");
      out[static_cast<size_t>(axis)] += t.shape()[static_cast<size_t>(axis)];
    }
    Tensor& y = ctx.output(0, first.dtype(), out);
    const int64_t outer = rows_of(out, static_cast<size_t>(axis));
    const size_t es = dtype_size(first.dtype());
    int64_t inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < out.size(); ++d) inner *= out[d];
    const size_t out_row = static_cast<size_t>(out[static_cast<size_t>(axis)] * inner) * es;
    size_t offset = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& t = ctx.input(i);
      const size_t row = static_cast<size_t>(t.shape()[static_cast<size_t>(axis)] * inner) * es;
      for (int64_t o = 0; o < outer; ++o)
        if (row) std::memcpy(static_cast<char*>(y.raw()) + static_cast<size_t>(o) * out_row + offset,
                             static_cast<const char*>(t.raw()) + static_cast<size_t>(o) * row, row);
      offset += row;
    }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Concat", 4, make_factory<Concat>());

}  // namespace
}  // namespace switchyard
