// ai.switchyard::MoE — the fused sparse Mixture-of-Experts operator (see src/moe/moe_layer.h).
//
// Inputs:  0 X [..., H]; 1 router weight [E, H]; 2 router bias [E] (optional);
//          3 fc1 weight [E, I, H]; 4 fc1 bias [E, I] (opt.); 5 fc2 weight [E, H, I]; 6 fc2 bias [E, H] (opt.);
//          7 fc3 weight [E, I, H] (optional: gated / SwiGLU experts); 8 fc3 bias [E, I] (opt.)
//          9 input projection weight [H, Kin] (optional), 10 its bias [H] (opt.),
//          11 output projection weight [N, H] (optional), 12 its bias [N] (opt.): dense layers folded
//          around the layer (see src/moe/moe_block.h); X is then [T, Kin] and Y [T, N].
//          13 selection bias [E] (optional; DeepSeek-V3's e_score_correction_bias: shifts the scores
//          that choose the experts, not the weights); 14 shared fc1 [Is, H], 15 shared fc2 [H, Is],
//          16 shared fc3 [Is, H] (gated), 17 shared gate [H] (optional; Qwen-MoE): shared experts,
//          one MLP applied to every token and added (times sigmoid(x . gate) if given).
// Outputs: 0 Y, shape of X (last dim N with an output projection); 1 expert_counts [E] int64
//          (optional): tokens routed to each expert.
// Attributes: k, activation (relu|gelu|gelu_tanh|silu|identity), scoring (softmax|sigmoid|none: raw logits|
//             sparsemixer: Phi-MoE, with sparsemixer_eps), swiglu_alpha / swiglu_beta / swiglu_limit (gated
//             silu as g * sigmoid(alpha g) * (u + beta), g <= limit, |u| <= limit: GPT-OSS),
//             normalize (none|softmax|sum), normalize_epsilon (sum: divide by sum + epsilon); n_group, topk_group, group_score (max|top2sum):
//             grouped top-k (DeepSeek); routed_scaling_factor (multiplies the routing weights). Weights must be initializers: they are prepacked here.
// Graph passes in src/compiler/passes/ create this node from exported routing subgraphs; a model may
// also contain it directly (domain "ai.switchyard", version 1).
#include "moe/moe_block.h"
#include "moe/moe_kernel.h"
#include "core/thread_pool.h"

namespace switchyard {
namespace {

class MoE final : public Kernel {
 public:
  explicit MoE(const KernelBuildInfo& info) : node_(info.node) {
    auto constant = [&](int i, bool required) -> const Tensor* {
      const Tensor* t = static_cast<size_t>(i) < info.constant_inputs.size() ? info.constant_inputs[static_cast<size_t>(i)] : nullptr;
      bool present = static_cast<size_t>(i) < node_.inputs.size() && node_.inputs[static_cast<size_t>(i)] >= 0;
      SY_CHECK(!present || t, node_.describe() + ": input " + std::to_string(i) + " must be an initializer (weights are prepacked)");
      SY_CHECK(!required || t, node_.describe() + ": required input " + std::to_string(i) + " is missing");
      return t;
    };
    const Tensor* router = constant(1, true);
    const Tensor* w1 = constant(3, true);
    const Tensor* w2 = constant(5, true);
    SY_CHECK(router->rank() == 2 && w1->rank() == 3 && w2->rank() == 3,
             node_.describe() + ": expected router [E,H], fc1 [E,I,H], fc2 [E,H,I]");
    cfg_.num_experts = router->dim(0);
    cfg_.hidden = router->dim(1);
    cfg_.inter = w1->dim(1);
    SY_CHECK(w1->dim(0) == cfg_.num_experts && w1->dim(2) == cfg_.hidden && w2->dim(0) == cfg_.num_experts &&
                 w2->dim(1) == cfg_.hidden && w2->dim(2) == cfg_.inter,
             node_.describe() + ": expert weight shapes disagree: router " + shape_str(router->shape()) + ", fc1 " +
                 shape_str(w1->shape()) + ", fc2 " + shape_str(w2->shape()));
    const Tensor* w3 = constant(7, false);
    if (w3) SY_CHECK(w3->shape() == w1->shape(), node_.describe() + ": fc3 must have fc1's shape");
    cfg_.gated = w3 != nullptr;
    cfg_.k = node_.attr_int("k", 2);
    cfg_.activation = parse_moe_activation(node_.attr_string("activation", cfg_.gated ? "silu" : "relu"));
    cfg_.scoring = parse_moe_scoring(node_.attr_string("scoring", "softmax"));
    cfg_.normalize = parse_moe_normalize(node_.attr_string("normalize", "none"));
    cfg_.normalize_epsilon = node_.attr_float("normalize_epsilon", 0.f);
    cfg_.sparsemixer_eps = node_.attr_float("sparsemixer_eps", 0.01f);
    cfg_.swiglu_alpha = node_.attr_float("swiglu_alpha", 1.f);
    cfg_.swiglu_beta = node_.attr_float("swiglu_beta", 0.f);
    cfg_.swiglu_limit = node_.attr_float("swiglu_limit", 0.f);
    SY_CHECK(cfg_.activation == MoeActivation::kSilu || (cfg_.swiglu_alpha == 1.f && cfg_.swiglu_beta == 0.f && cfg_.swiglu_limit == 0.f),
             node_.describe() + ": swiglu_alpha / swiglu_beta / swiglu_limit apply to gated silu experts only");
    try {
      cfg_.weight_format = weight_format_for(info.precision);  // small experts: FP32 (assign_precision)
      cfg_.weight_group = info.weight_group;
      weights_ = pack_moe_weights(cfg_, *router, constant(2, false), *w1, constant(4, false), *w2, constant(6, false), w3,
                                  constant(8, false));
      cfg_.n_group = node_.attr_int("n_group", 1);
      cfg_.topk_group = node_.attr_int("topk_group", cfg_.n_group);
      const std::string group_score = node_.attr_string("group_score", "max");
      SY_CHECK(group_score == "max" || group_score == "top2sum", "unknown group_score '" + group_score + "' (max, top2sum)");
      cfg_.group_top2 = group_score == "top2sum";
      cfg_.routed_scaling = node_.attr_float("routed_scaling_factor", 1.f);
      const Tensor* shared_w1 = constant(14, false);
      if (shared_w1) {
        SY_CHECK(shared_w1->rank() == 2 && shared_w1->dim(1) == cfg_.hidden,
                 "shared fc1 must be [Is, " + std::to_string(cfg_.hidden) + "], got " + shape_str(shared_w1->shape()));
        cfg_.shared_inter = shared_w1->dim(0);
      }
      pack_moe_extras(cfg_, weights_, constant(13, false), shared_w1, constant(15, false), constant(16, false),
                      constant(17, false));
      if (const Tensor* win = constant(9, false)) in_ = pack_dense_projection(*win, constant(10, false), "input projection");
      if (const Tensor* wout = constant(11, false)) out_ = pack_dense_projection(*wout, constant(12, false), "output projection");
    } catch (const Error& e) {
      throw Error(node_.describe() + ": " + e.what());
    }
    SY_CHECK(!in_.defined() || in_.out == cfg_.hidden, node_.describe() + ": input projection must produce " +
                                                          std::to_string(cfg_.hidden) + " features, not " + std::to_string(in_.out));
    SY_CHECK(!out_.defined() || out_.in == cfg_.hidden, node_.describe() + ": output projection must take " +
                                                            std::to_string(cfg_.hidden) + " features, not " + std::to_string(out_.in));
  }

  bool prepacks_constant_inputs() const override { return true; }

  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    if (!in_.defined() && !out_.defined()) {
      run_moe_layer(ctx, cfg_, weights_, x, moe_tokens(node_, cfg_, x, 1));
      return;
    }
    const int64_t x_cols = in_.defined() ? in_.in : cfg_.hidden;
    SY_CHECK(x.dtype() == DType::kFloat32, node_.describe() + ": input must be float32");
    SY_CHECK(x.rank() >= 1 && x.dim(-1) == x_cols,
             node_.describe() + ": input " + shape_str(x.shape()) + " must end in " + std::to_string(x_cols));
    const int64_t tokens = x.numel() / x_cols;
    Shape y_shape = x.shape();
    y_shape.back() = out_.defined() ? out_.out : cfg_.hidden;
    Tensor& y = ctx.output(0, DType::kFloat32, y_shape);
    int64_t* counts = ctx.wants_output(1) ? ctx.output(1, DType::kInt64, {cfg_.num_experts}).data<int64_t>() : nullptr;
    void* scratch = ctx.scratch(moe_block_scratch_bytes(cfg_, in_, out_, tokens, ctx.pool().size()));
    moe_block_forward(cfg_, weights_, in_, out_, x.data<float>(), tokens, y.data<float>(), counts, scratch, ctx.pool());
  }

 private:
  const Node& node_;
  MoeConfig cfg_;
  MoeWeights weights_;
  DenseProjection in_, out_;  // folded dense layers (undefined when absent)
};

SY_REGISTER_OP("ai.switchyard", "MoE", 1, make_factory<MoE>());

}  // namespace
}  // namespace switchyard
