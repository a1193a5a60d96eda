// What the two MoE operators (ai.switchyard::MoE, com.microsoft::MoE) share once their inputs are
// mapped onto a MoeConfig and prepacked MoeWeights: checking X and running the layer.
#pragma once

#include "moe/moe_layer.h"
#include "ops/op_utils.h"

namespace switchyard {

// Number of tokens in X [..., H] (throws if X is not float32 or does not end in H).
inline int64_t moe_tokens(const Node& node, const MoeConfig& cfg, const Tensor& x, int64_t min_rank) {
  SY_CHECK(x.dtype() == DType::kFloat32, node.describe() + ": input must be float32");
  SY_CHECK(x.rank() >= min_rank && x.dim(-1) == cfg.hidden, node.describe() + ": input " + shape_str(x.shape()) +
                                                                " must end in the hidden size " + std::to_string(cfg.hidden));
  return x.numel() / cfg.hidden;
}

// Output 0 = MoE(X) in X's shape; output 1 (if wanted) = per-expert token counts. `router_logits`
// (optional) replaces the layer's own router.
inline void run_moe_layer(KernelContext& ctx, const MoeConfig& cfg, const MoeWeights& weights, const Tensor& x,
                          int64_t tokens, const float* router_logits = nullptr) {
  Tensor& y = ctx.output(0, DType::kFloat32, x.shape());
  int64_t* counts = ctx.wants_output(1) ? ctx.output(1, DType::kInt64, {cfg.num_experts}).data<int64_t>() : nullptr;
  void* scratch = ctx.scratch(moe_scratch_bytes(cfg, tokens));
  moe_forward(cfg, weights, x.data<float>(), tokens, y.data<float>(), counts, scratch, ctx.pool(), router_logits);
}

}  // namespace switchyard
