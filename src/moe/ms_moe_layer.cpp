#include "moe/ms_moe_layer.h"

#include <cstring>

namespace switchyard {

OrtMoeLayer::OrtMoeLayer(const KernelBuildInfo& info, const OrtMoeWeights& weights) : node_(info.node) {
  SY_CHECK(!node_.attr_int("use_sparse_mixer", 0), node_.describe() + ": use_sparse_mixer is not supported");
  const Tensor* fc1 = weights.fc1;
  const Tensor* fc2 = weights.fc2;
  SY_CHECK(fc1 && fc2 && fc1->rank() == 3 && fc2->rank() == 3, node_.describe() + ": fc1/fc2 weights must be 3-D initializers");
  const std::string act = node_.attr_string("activation_type", "relu");
  const int64_t fusion = node_.attr_int("swiglu_fusion", 0);
  cfg_.num_experts = fc1->dim(0);
  cfg_.hidden = fc1->dim(2);
  cfg_.inter = fc2->dim(2);
  cfg_.k = node_.attr_int("k", 1);
  cfg_.normalize = node_.attr_int("normalize_routing_weights", 0) ? MoeNormalize::kSum : MoeNormalize::kNone;
  cfg_.scoring = MoeScoring::kSoftmax;
  SY_CHECK(fc2->dim(0) == cfg_.num_experts && fc2->dim(1) == cfg_.hidden,
           node_.describe() + ": fc2 weights " + shape_str(fc2->shape()) + " do not match fc1 " + shape_str(fc1->shape()));
  const Tensor* b1 = weights.b1;
  Tensor w1, w3, bias1, bias3;
  const Tensor* fc3 = weights.fc3;
  const Tensor* b3 = weights.b3;
  if (act == "swiglu") {
    cfg_.gated = true;
    cfg_.activation = MoeActivation::kSilu;
    cfg_.swiglu_alpha = node_.attr_float("activation_alpha", 1.f);
    cfg_.swiglu_beta = node_.attr_float("activation_beta", 0.f);
    cfg_.swiglu_limit = node_.attr_float("swiglu_limit", 0.f);
    const int64_t E = cfg_.num_experts, I = cfg_.inter, H = cfg_.hidden;
    if (fusion == 0) {
      SY_CHECK(fc3, node_.describe() + ": swiglu without fusion needs fc3 weights");
      w1 = fc1->clone();
      w3 = fc3->clone();
      if (b1) bias1 = b1->clone();
      if (b3) bias3 = b3->clone();
    } else {
      SY_CHECK(fusion == 1 || fusion == 2, node_.describe() + ": swiglu_fusion must be 0, 1 or 2");
      SY_CHECK(fc1->dim(1) == 2 * I, node_.describe() + ": fused swiglu fc1 must have 2 * inter rows");
      // Split the fused FC1 rows into gate (g) and linear (l) halves.
      w1 = Tensor(DType::kFloat32, {E, I, H});
      w3 = Tensor(DType::kFloat32, {E, I, H});
      if (b1) {
        bias1 = Tensor(DType::kFloat32, {E, I});
        bias3 = Tensor(DType::kFloat32, {E, I});
      }
      for (int64_t e = 0; e < E; ++e)
        for (int64_t i = 0; i < I; ++i) {
          const int64_t g_row = fusion == 1 ? 2 * i : i, l_row = fusion == 1 ? 2 * i + 1 : I + i;
          std::memcpy(w1.data<float>() + (e * I + i) * H, fc1->data<float>() + (e * 2 * I + g_row) * H, static_cast<size_t>(H) * 4);
          std::memcpy(w3.data<float>() + (e * I + i) * H, fc1->data<float>() + (e * 2 * I + l_row) * H, static_cast<size_t>(H) * 4);
          if (b1) {
            bias1.data<float>()[e * I + i] = b1->data<float>()[e * 2 * I + g_row];
            bias3.data<float>()[e * I + i] = b1->data<float>()[e * 2 * I + l_row];
          }
        }
    }
  } else {
    // ONNX Runtime's MoE computes "gelu" with the tanh approximation.
    cfg_.activation = parse_moe_activation(act == "gelu" ? "gelu_tanh" : act);
    SY_CHECK(fc1->dim(1) == cfg_.inter, node_.describe() + ": fc1 rows must equal inter size");
    w1 = fc1->clone();
    if (b1) bias1 = b1->clone();
    if (fc3) {  // gated without swiglu: act(fc1 x) * fc3 x
      cfg_.gated = true;
      w3 = fc3->clone();
      if (b3) bias3 = b3->clone();
    }
  }
  auto opt = [](const Tensor& t) { return t.defined() ? &t : nullptr; };
  try {
    cfg_.weight_format = weight_format_for(info.precision);
    cfg_.weight_group = info.weight_group;
    weights_ = pack_moe_weights(cfg_, Tensor(), nullptr, w1, opt(bias1), *fc2, weights.b2, opt(w3), opt(bias3));
  } catch (const Error& e) {
    throw Error(node_.describe() + ": " + e.what());
  }
}

void OrtMoeLayer::compute(KernelContext& ctx) const {
  const Tensor& x = ctx.input(0);
  const Tensor& logits = ctx.input(1);
  const int64_t tokens = moe_tokens(node_, cfg_, x, 2);
  SY_CHECK(logits.dtype() == DType::kFloat32, node_.describe() + ": router_probs must be float32");
  SY_CHECK(logits.rank() == 2 && logits.dim(0) == tokens && logits.dim(1) == cfg_.num_experts,
           node_.describe() + ": router_probs " + shape_str(logits.shape()) + " must be [" + std::to_string(tokens) + "," +
               std::to_string(cfg_.num_experts) + "]");
  run_moe_layer(ctx, cfg_, weights_, x, tokens, logits.data<float>());
}

}  // namespace switchyard
