// Expand (broadcast to a shape) and Tile (repeat along each axis).
#include "ops/op_utils.h"

namespace switchyard {
namespace {

// Copies x into y where each y dim reads x at (index % x dim) with the given input strides.
template <typename T>
void repeat_copy(const T* xp, const Shape& xshape, T* yp, const Shape& out, bool modulo) {
  const size_t r = out.size();
  std::vector<int64_t> xs(r, 0);
  int64_t s = 1;
  for (size_t k = 0; k < xshape.size(); ++k) {
    size_t i = xshape.size() - 1 - k, o = r - 1 - k;
    xs[o] = s;
    s *= xshape[i];
  }
  Shape xdim(r, 1);
  for (size_t k = 0; k < xshape.size(); ++k) xdim[r - 1 - k] = xshape[xshape.size() - 1 - k];
  const int64_t n = checked_numel(out);
  std::vector<int64_t> idx(r, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < r; ++d) off += (modulo ? idx[d] % xdim[d] : (xdim[d] == 1 ? 0 : idx[d])) * xs[d];
    yp[i] = xp[off];
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
}

class Expand final : public Kernel {
 public:
  explicit Expand(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> target = read_int_list(ctx.input(1));
    Shape out;
    if (node_.op_type == "Expand") {
      out = broadcast_shapes(x.shape(), target, node_);
    } else {
      SY_CHECK(static_cast<int64_t>(target.size()) == x.rank(), node_.describe() + ": repeats length must equal rank");
      out = x.shape();
      for (size_t d = 0; d < out.size(); ++d) {
        SY_CHECK(target[d] >= 0, node_.describe() + ": negative repeat");
        out[d] *= target[d];
      }
    }
    Tensor& y = ctx.output(0, x.dtype(), out);
    const bool tile = node_.op_type == "Tile";
    SY_DISPATCH_BYTES(x.dtype(), node_.describe(),
                      repeat_copy<T>(static_cast<const T*>(x.raw()), x.shape(), static_cast<T*>(y.raw()), out, tile));
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Expand", 8, make_factory<Expand>(), kOpSelectsInput0);
SY_REGISTER_OP("", "Tile", 6, make_factory<Expand>(), kOpSelectsInput0);

}  // namespace
}  // namespace switchyard
