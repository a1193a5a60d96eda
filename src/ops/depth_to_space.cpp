// DepthToSpace (DCR and CRD modes; PixelShuffle exports as CRD) and SpaceToDepth, any element type.
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class DepthToSpace final : public Kernel {
 public:
  explicit DepthToSpace(const KernelBuildInfo& info)
      : node_(info.node), to_space_(info.node.op_type == "DepthToSpace"), b_(info.node.attr_int("blocksize", 0)) {
    SY_CHECK(b_ >= 1 && b_ <= 1024, node_.describe() + ": blocksize must be 1..1024");
    const std::string mode = node_.attr_string("mode", "DCR");
    SY_CHECK(mode == "DCR" || mode == "CRD", node_.describe() + ": mode must be DCR or CRD");
    SY_CHECK(to_space_ || mode == "DCR", node_.describe() + ": SpaceToDepth has no mode");
    crd_ = mode == "CRD";
  }
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    SY_CHECK(x.rank() == 4, node_.describe() + ": input must be 4-D NCHW, got " + shape_str(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), b = b_;
    Shape out;
    if (to_space_) {
      SY_CHECK(c % (b * b) == 0, node_.describe() + ": channels " + std::to_string(c) + " not divisible by blocksize^2");
      out = {n, c / (b * b), h * b, w * b};
    } else {
      SY_CHECK(h % b == 0 && w % b == 0, node_.describe() + ": height and width must be multiples of blocksize");
      out = {n, c * b * b, h / b, w / b};
    }
    Tensor& y = ctx.output(0, x.dtype(), out);
    // Space side: [n, cs, hs, ws] with hs = hd * b; depth side channel of (cs_i, dy, dx).
    const int64_t cs = to_space_ ? out[1] : c, hs = to_space_ ? out[2] : h, ws = to_space_ ? out[3] : w;
    const int64_t cd = cs * b * b, hd = hs / b, wd = ws / b;
    SY_DISPATCH_BYTES(x.dtype(), node_.describe(), {
      const T* xp = static_cast<const T*>(x.raw());
      T* yp = static_cast<T*>(y.raw());
      for (int64_t in = 0; in < n; ++in)
        for (int64_t ci = 0; ci < cs; ++ci)
          for (int64_t yy = 0; yy < hs; ++yy)
            for (int64_t xx = 0; xx < ws; ++xx) {
              const int64_t dy = yy % b, dx = xx % b;
              const int64_t cdi = crd_ ? (ci * b + dy) * b + dx : (dy * b + dx) * cs + ci;
              const int64_t space = ((in * cs + ci) * hs + yy) * ws + xx;
              const int64_t depth = ((in * cd + cdi) * hd + yy / b) * wd + xx / b;
              if (to_space_) yp[space] = xp[depth];
              else yp[depth] = xp[space];
            }
    });
  }

 private:
  const Node& node_;
  bool to_space_;
  int64_t b_;
  bool crd_ = false;
};

SY_REGISTER_OP("", "DepthToSpace", 1, make_factory<DepthToSpace>(), kOpLayoutOnly | kOpSelectsInput0);
SY_REGISTER_OP("", "SpaceToDepth", 1, make_factory<DepthToSpace>(), kOpLayoutOnly | kOpSelectsInput0);

}  // namespace
}  // namespace switchyard
