// LayerNormalization (opset 17) over the trailing dims from `axis`; optional Mean / InvStdDev outputs.
#include <cmath>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class LayerNorm final : public Kernel {
 public:
  explicit LayerNorm(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    SY_CHECK(x.dtype() == DType::kFloat32, node_.describe() + ": only float32 is supported");
    const int64_t axis = normalize_axis(node_.attr_int("axis", -1), x.rank(), node_);
    const float eps = node_.attr_float("epsilon", 1e-5f);
    const int64_t rows = rows_of(x.shape(), static_cast<size_t>(axis)), dim = rows ? x.numel() / rows : 0;
    const Tensor& scale = ctx.input(1);
    const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    SY_CHECK(scale.numel() == dim || scale.numel() == 1, node_.describe() + ": scale shape mismatch");
    Tensor& y = ctx.output(0, DType::kFloat32, x.shape());
    Shape stat_shape = x.shape();
    for (size_t d = static_cast<size_t>(axis); d < stat_shape.size(); ++d) stat_shape[d] = 1;
    float* mean_out = ctx.wants_output(1) ? ctx.output(1, DType::kFloat32, stat_shape).data<float>() : nullptr;
    float* istd_out = ctx.wants_output(2) ? ctx.output(2, DType::kFloat32, stat_shape).data<float>() : nullptr;
    const float* sp = scale.data<float>();
    const float* bp = bias ? bias->data<float>() : nullptr;
    const bool scalar_scale = scale.numel() == 1, scalar_bias = bias && bias->numel() == 1;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x.data<float>() + r * dim;
      float* yr = y.data<float>() + r * dim;
      double sum = 0, sq = 0;
      for (int64_t j = 0; j < dim; ++j) sum += xr[j];
      const double mean = sum / static_cast<double>(dim);
      for (int64_t j = 0; j < dim; ++j) sq += (xr[j] - mean) * (xr[j] - mean);
      const float inv = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(dim) + eps));
      for (int64_t j = 0; j < dim; ++j) {
        float v = (xr[j] - static_cast<float>(mean)) * inv * sp[scalar_scale ? 0 : j];
        if (bp) v += bp[scalar_bias ? 0 : j];
        yr[j] = v;
      }
      if (mean_out) mean_out[r] = static_cast<float>(mean);
      if (istd_out) istd_out[r] = inv;
    }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "LayerNormalization", 17, make_factory<LayerNorm>());

}  // namespace
}  // namespace switchyard
