// Split: sizes from the `split` attribute (opset < 13), the second input (>= 13), num_outputs
// (>= 18) or equal parts.
#include <cstring>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Split final : public Kernel {
 public:
  explicit Split(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const int64_t axis = normalize_axis(node_.attr_int("axis", 0), x.rank(), node_);
    const int64_t len = x.dim(axis);
    const int n = ctx.num_outputs();
    std::vector<int64_t> sizes = node_.opset >= 13 ? (ctx.has_input(1) ? read_int_list(ctx.input(1)) : std::vector<int64_t>{})
                                                   : node_.attr_ints("split");
    if (sizes.empty()) {
      int64_t parts = node_.has("num_outputs") ? node_.attr_int("num_outputs", n) : n;
      int64_t chunk = (len + parts - 1) / parts;
      for (int64_t i = 0; i < parts; ++i) sizes.push_back(std::max<int64_t>(0, std::min(chunk, len - i * chunk)));
    }
    SY_CHECK(static_cast<int>(sizes.size()) == n, node_.describe() + ": split sizes do not match the outputs");
    int64_t total = 0;
    for (int64_t s : sizes) {
      SY_CHECK(s >= 0, node_.describe() + ": negative split size");
      total += s;
    }
    SY_CHECK(total == len, node_.describe() + ": split sizes sum to " + std::to_string(total) + ", axis has " +
                               std::to_string(len));
    const int64_t outer = rows_of(x.shape(), static_cast<size_t>(axis));
    int64_t inner = 1;
    for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
    const size_t es = dtype_size(x.dtype());
    const size_t in_row = static_cast<size_t>(len * inner) * es;
    size_t offset = 0;
    for (int i = 0; i < n; ++i) {
      Shape s = x.shape();
      s[static_cast<size_t>(axis)] = sizes[static_cast<size_t>(i)];
      Tensor& y = ctx.output(i, x.dtype(), s);
      const size_t row = static_cast<size_t>(sizes[static_cast<size_t>(i)] * inner) * es;
      for (int64_t o = 0; o < outer; ++o)
        if (row) std::memcpy(static_cast<char*>(y.raw()) + static_cast<size_t>(o) * row,
                             static_cast<const char*>(x.raw()) + static_cast<size_t>(o) * in_row + offset, row);
      offset += row;
    }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Split", 2, make_factory<Split>());

}  // namespace
}  // namespace switchyard
