// Reshape (0 copies a dim unless allowzero, -1 inferred), Flatten, Squeeze, Unsqueeze.
// All four only change the shape: they copy the bytes into the output buffer.
#include <cstring>

#include <limits>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class ReshapeLike final : public Kernel {
 public:
  explicit ReshapeLike(const KernelBuildInfo& info) : node_(info.node) {}

  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    Shape out = target_shape(ctx, x);
    SY_CHECK(checked_numel(out) == x.numel(), node_.describe() + ": cannot reshape " + shape_str(x.shape()) + " to " +
                                                  shape_str(out));
    ctx.output_view(0, 0, out);
  }

 private:
  std::vector<int64_t> axes(const KernelContext& ctx) const {
    if (node_.opset >= 13) return ctx.has_input(1) ? read_int_list(ctx.input(1)) : std::vector<int64_t>{};
    return node_.attr_ints("axes");
  }

  Shape target_shape(const KernelContext& ctx, const Tensor& x) const {
    const Shape& in = x.shape();
    const int64_t r = x.rank();
    const std::string& op = node_.op_type;
    if (op == "Flatten") {
      int64_t axis = node_.attr_int("axis", 1);
      if (axis < 0) axis += r;
      SY_CHECK(axis >= 0 && axis <= r, node_.describe() + ": axis out of range");
      int64_t cols = 1;  // product of the trailing dims (not numel / rows: rows may be 0)
      for (size_t d = static_cast<size_t>(axis); d < in.size(); ++d) cols *= in[d];
      return {rows_of(in, static_cast<size_t>(axis)), cols};
    }
    if (op == "Squeeze") {
      auto ax = axes(ctx);
      std::vector<bool> drop(in.size(), false);
      if (ax.empty()) {
        for (size_t i = 0; i < in.size(); ++i) drop[i] = in[i] == 1;
      } else {
        for (int64_t a : ax) {
          int64_t n = normalize_axis(a, r, node_);
          SY_CHECK(in[static_cast<size_t>(n)] == 1, node_.describe() + ": cannot squeeze dimension " + std::to_string(a) +
                                                        " of shape " + shape_str(in));
          drop[static_cast<size_t>(n)] = true;
        }
      }
      Shape out;
      for (size_t i = 0; i < in.size(); ++i)
        if (!drop[i]) out.push_back(in[i]);
      return out;
    }
    if (op == "Unsqueeze") {
      auto ax = axes(ctx);
      const int64_t out_rank = r + static_cast<int64_t>(ax.size());
      std::vector<bool> ins(static_cast<size_t>(out_rank), false);
      for (int64_t a : ax) {
        int64_t n = normalize_axis(a, out_rank, node_);
        SY_CHECK(!ins[static_cast<size_t>(n)], node_.describe() + ": repeated axis");
        ins[static_cast<size_t>(n)] = true;
      }
      Shape out;
      size_t k = 0;
      for (int64_t i = 0; i < out_rank; ++i) out.push_back(ins[static_cast<size_t>(i)] ? 1 : in[k++]);
      return out;
    }
    // Reshape
    std::vector<int64_t> spec = node_.opset >= 5 ? read_int_list(ctx.input(1)) : node_.attr_ints("shape");
    const bool allow_zero = node_.attr_int("allowzero", 0) != 0;
    Shape out(spec.size());
    int infer = -1;
    int64_t known = 1;
    for (size_t i = 0; i < spec.size(); ++i) {
      int64_t d = spec[i];
      if (d == 0 && !allow_zero) {
        SY_CHECK(i < in.size(), node_.describe() + ": 0 in shape refers to a missing input dimension");
        d = in[i];
      }
      if (d == -1) {
        SY_CHECK(infer < 0, node_.describe() + ": more than one -1 in shape");
        infer = static_cast<int>(i);
        out[i] = 1;
        continue;
      }
      SY_CHECK(d >= 0, node_.describe() + ": invalid dimension " + std::to_string(d) + " in shape");
      SY_CHECK(d == 0 || known <= std::numeric_limits<int64_t>::max() / d,
               node_.describe() + ": shape " + shape_str(spec) + " has too many elements");
      out[i] = d;
      known *= d;
    }
    if (infer >= 0) {
      SY_CHECK(known != 0 && x.numel() % known == 0, node_.describe() + ": cannot infer -1 reshaping " +
                                                         shape_str(in) + " to " + shape_str(spec));
      out[static_cast<size_t>(infer)] = x.numel() / known;
    }
    return out;
  }

  const Node& node_;
};

SY_REGISTER_OP("", "Reshape", 1, make_factory<ReshapeLike>(),
               kOpViewOfInput0 | kOpLayoutOnly | kOpRouterPath | kOpSelectsInput0);
SY_REGISTER_OP("", "Flatten", 1, make_factory<ReshapeLike>(),
               kOpViewOfInput0 | kOpLayoutOnly | kOpRouterPath | kOpSelectsInput0);
SY_REGISTER_OP("", "Squeeze", 1, make_factory<ReshapeLike>(),
               kOpViewOfInput0 | kOpLayoutOnly | kOpRouterPath | kOpSelectsInput0);
SY_REGISTER_OP("", "Unsqueeze", 1, make_factory<ReshapeLike>(),
               kOpViewOfInput0 | kOpLayoutOnly | kOpRouterPath | kOpSelectsInput0);

}  // namespace
}  // namespace switchyard
