// ai.switchyard::SpatialMoE — per-block image Mixture-of-Experts (see src/moe/spatial_moe_layer.h).
//
// Inputs:  0 X [N, Cin, H, W] float32 (H, W multiples of block_size);
//          1 gate [N, E, H / block_size, W / block_size]: logits (k >= 1) or combine weights (k = 0);
//          2, 3, ...: per convolution layer of the experts, W_l [E, Cout, Cin, kh, kw] and B_l [E, Cout]
//          (B_l may be omitted with an empty name). Stride 1, centred odd kernels ("same" zero padding).
// Outputs: 0 Y [N, C_last / upscale^2, H * upscale, W * upscale]; 1 expert_counts [E] int64 (optional):
//          tiles routed to each expert; 2 block_experts [N, H / block_size, W / block_size] int64 (optional):
//          each tile's highest-weighted expert.
// Attributes: k (default 1; 0: the gate holds weights), block_size (8), upscale (1: no DepthToSpace head),
//             mode (CRD | DCR, DepthToSpace's), activation (relu | gelu | gelu_tanh | silu | identity;
//             between the convolutions). Weights must be initializers: they are prepacked here.
// The fuse_spatial_moe pass creates this node from dense "every expert, then a per-block mask" exports;
// a model may also contain it directly (scripts/spatial_moe_models.py exports it from PyTorch).
#include "core/thread_pool.h"
#include "moe/spatial_moe_layer.h"
#include "ops/kernel.h"

namespace switchyard {
namespace {

class SpatialMoE final : public Kernel {
 public:
  explicit SpatialMoE(const KernelBuildInfo& info) : node_(info.node) {
    const size_t n_in = node_.inputs.size();
    SY_CHECK(n_in >= 4 && n_in % 2 == 0,
             node_.describe() + ": expects X, gate and (weight, bias) pairs per layer, got " + std::to_string(n_in) + " inputs");
    cfg_.k = node_.attr_int("k", 1);
    cfg_.block = node_.attr_int("block_size", 8);
    cfg_.upscale = node_.attr_int("upscale", 1);
    const std::string mode = node_.attr_string("mode", "CRD");
    SY_CHECK(mode == "CRD" || mode == "DCR", node_.describe() + ": mode must be CRD or DCR, got '" + mode + "'");
    cfg_.dcr = mode == "DCR";
    SY_CHECK(cfg_.k >= 0 && cfg_.k <= 64 && cfg_.block >= 1 && cfg_.block <= 4096 && cfg_.upscale >= 1 && cfg_.upscale <= 64,
             node_.describe() + ": k must be 0..64, block_size 1..4096 and upscale 1..64");
    try {
      cfg_.activation = parse_moe_activation(node_.attr_string("activation", "relu"));
      cfg_.weight_format = weight_format_for(info.precision);
      cfg_.weight_group = info.weight_group;
      for (size_t i = 2; i < n_in; i += 2) {
        const Tensor* wt = constant(info, i);
        SY_CHECK(wt, "layer " + std::to_string(i / 2 - 1) + " weight must be an initializer (weights are prepacked)");
        const bool has_bias = node_.inputs[i + 1] >= 0;
        const Tensor* bias = has_bias ? constant(info, i + 1) : nullptr;
        SY_CHECK(!has_bias || bias, "layer " + std::to_string(i / 2 - 1) + " bias must be an initializer");
        if (i == 2) cfg_.num_experts = wt->rank() > 0 ? wt->dim(0) : 0;
        SY_CHECK(cfg_.num_experts > 0 && cfg_.k <= cfg_.num_experts, "k must not exceed the number of experts");
        weights_.layers.push_back(pack_spatial_conv(cfg_, *wt, bias, "layer " + std::to_string(i / 2 - 1) + " weight"));
        const SpatialConv& now = weights_.layers.back();
        if (weights_.layers.size() > 1) {
          const SpatialConv& before = weights_.layers[weights_.layers.size() - 2];
          SY_CHECK(now.cin == before.cout, "layer " + std::to_string(i / 2 - 1) + " takes " + std::to_string(now.cin) +
                                               " channels but the layer before gives " + std::to_string(before.cout));
        }
      }
      const int64_t clast = weights_.layers.back().cout;
      SY_CHECK(clast % (cfg_.upscale * cfg_.upscale) == 0,
               "the last layer's " + std::to_string(clast) + " channels are not a multiple of upscale^2 = " +
                   std::to_string(cfg_.upscale * cfg_.upscale));
    } catch (const Error& e) {
      throw Error(node_.describe() + ": " + e.what());
    }
  }

  bool prepacks_constant_inputs() const override { return true; }

  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& gate = ctx.input(1);
    const int64_t E = cfg_.num_experts, B = cfg_.block, s = cfg_.upscale;
    SY_CHECK(x.dtype() == DType::kFloat32 && gate.dtype() == DType::kFloat32, node_.describe() + ": X and gate must be float32");
    SY_CHECK(x.rank() == 4 && x.dim(1) == weights_.in_channels(),
             node_.describe() + ": X must be [N, " + std::to_string(weights_.in_channels()) + ", H, W], got " + shape_str(x.shape()));
    const int64_t N = x.dim(0), H = x.dim(2), W = x.dim(3);
    SY_CHECK(H % B == 0 && W % B == 0, node_.describe() + ": image " + std::to_string(H) + "x" + std::to_string(W) +
                                           " is not a whole number of " + std::to_string(B) + "x" + std::to_string(B) + " blocks");
    SY_CHECK(H <= (int64_t{1} << 15) && W <= (int64_t{1} << 15), node_.describe() + ": image larger than 32768 pixels per side");
    const Shape gate_shape{N, E, H / B, W / B};
    SY_CHECK(gate.shape() == gate_shape, node_.describe() + ": gate must be " + shape_str(gate_shape) + " for image " +
                                             shape_str(x.shape()) + ", got " + shape_str(gate.shape()));
    Tensor& y = ctx.output(0, DType::kFloat32, {N, weights_.out_channels(cfg_), H * s, W * s});
    int64_t* counts = ctx.wants_output(1) ? ctx.output(1, DType::kInt64, {E}).data<int64_t>() : nullptr;
    int64_t* map = ctx.wants_output(2) ? ctx.output(2, DType::kInt64, {N, H / B, W / B}).data<int64_t>() : nullptr;
    if (N == 0 || H == 0 || W == 0) {
      if (counts) std::fill(counts, counts + E, int64_t{0});
      return;
    }
    void* scratch = ctx.scratch(spatial_moe_scratch_bytes(cfg_, weights_, H, W, ctx.pool().size()));
    spatial_moe_forward(cfg_, weights_, x.data<float>(), N, H, W, gate.data<float>(), y.data<float>(), counts, map, scratch,
                        ctx.pool());
  }

 private:
  const Tensor* constant(const KernelBuildInfo& info, size_t i) const {
    return i < info.constant_inputs.size() ? info.constant_inputs[i] : nullptr;
  }

  const Node& node_;
  SpatialMoeConfig cfg_;
  SpatialMoeWeights weights_;
};

SY_REGISTER_OP("ai.switchyard", "SpatialMoE", 1, make_factory<SpatialMoE>());

}  // namespace
}  // namespace switchyard
