// com.microsoft::MoE — ONNX Runtime's contrib MoE operator, run by Switchyard's sparse MoE layer.
//
// Inputs: 0 input [T,H] or [B,S,H]; 1 router_probs [T,E] (router logits, computed by the graph);
// 2 fc1_experts_weights [E, f*I, H] (f = 2 when swiglu_fusion is 1 (interleaved) or 2 (halves));
// 3 fc1 bias [E, f*I]; 4 fc2_experts_weights [E, H, I]; 5 fc2 bias [E, H]; 6 fc3 weights [E, I, H];
// 7 fc3 bias [E, I]. Attributes: k, activation_type (relu|gelu|silu|identity|swiglu),
// normalize_routing_weights, swiglu_fusion, activation_alpha/beta, swiglu_limit.
// Routing: softmax over all experts, top-k, optionally renormalised by the sum of the k weights.
#include "moe/ms_moe_layer.h"

namespace switchyard {
namespace {

// FP32 expert weights, as initializers.
std::unique_ptr<Kernel> make_moe(const KernelBuildInfo& info) {
  const Node& node = info.node;
  auto constant = [&](int i) -> const Tensor* {
    if (static_cast<size_t>(i) >= node.inputs.size() || node.inputs[static_cast<size_t>(i)] < 0) return nullptr;
    const Tensor* t = info.constant_inputs[static_cast<size_t>(i)];
    SY_CHECK(t, node.describe() + ": input " + std::to_string(i) + " must be an initializer (expert weights are prepacked)");
    SY_CHECK(t->dtype() == DType::kFloat32, node.describe() + ": only float32 expert weights are supported");
    return t;
  };
  OrtMoeWeights w;
  w.fc1 = constant(2);
  w.b1 = constant(3);
  w.fc2 = constant(4);
  w.b2 = constant(5);
  w.fc3 = constant(6);
  w.b3 = constant(7);
  return std::make_unique<OrtMoeLayer>(info, w);
}

SY_REGISTER_OP("com.microsoft", "MoE", 1, make_moe);

}  // namespace
}  // namespace switchyard
