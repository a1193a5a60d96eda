// BatchNormalization in inference mode: y = scale * (x - mean) / sqrt(var + eps) + bias per channel.
#include <cmath>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class BatchNorm final : public Kernel {
 public:
  explicit BatchNorm(const KernelBuildInfo& info) : node_(info.node) {
    SY_CHECK(node_.attr_int("training_mode", 0) == 0, node_.describe() + ": training_mode is not supported");
  }
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    SY_CHECK(x.dtype() == DType::kFloat32, node_.describe() + ": only float32 is supported");
    SY_CHECK(x.rank() >= 2, node_.describe() + ": input must have rank >= 2");
    const int64_t n = x.dim(0), c = x.dim(1), area = x.numel() / std::max<int64_t>(1, n * c);
    for (int i = 1; i <= 4; ++i)
      SY_CHECK(ctx.input(i).numel() == c, node_.describe() + ": parameter " + std::to_string(i) + " must have C elements");
    const float eps = node_.attr_float("epsilon", 1e-5f);
    const float *scale = ctx.input(1).data<float>(), *bias = ctx.input(2).data<float>(),
                *mean = ctx.input(3).data<float>(), *var = ctx.input(4).data<float>();
    Tensor& y = ctx.output(0, DType::kFloat32, x.shape());
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < c; ++ch) {
        const float a = scale[ch] / std::sqrt(var[ch] + eps), s = bias[ch] - mean[ch] * a;
        const float* xp = x.data<float>() + (b * c + ch) * area;
        float* yp = y.data<float>() + (b * c + ch) * area;
        for (int64_t i = 0; i < area; ++i) yp[i] = xp[i] * a + s;
      }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "BatchNormalization", 7, make_factory<BatchNorm>(), kOpRowsWithWeights);

}  // namespace
}  // namespace switchyard
