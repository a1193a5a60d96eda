// The sparse MoE layer: route each token to its top-k experts, run every expert once on all of its
// tokens (a GEMM over a contiguous block of gathered rows), and combine the weighted results.
//
//   p = score(x Wr^T + br)                    score: softmax | sigmoid
//   (v, e) = topk(p, k)                       ties -> lower expert index (as PyTorch / ONNX Runtime)
//   w = normalize(v)                          none | softmax (the seed classifier) | sum (Mixtral)
//   y = sum_j w_j * expert_{e_j}(x) [+ gate(x) * shared(x)]
//   expert(x) = W2 act(W1 x + b1) + b2        or, gated (SwiGLU): W2 (act(W1 x + b1) * (W3 x + b3)) + b2
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/packed_linear.h"
#include "switchyard/tensor.h"

namespace switchyard {

class ThreadPool;

enum class MoeActivation { kRelu, kGelu, kGeluTanh, kSilu, kIdentity };  // kGelu: exact (erf)
// kNone: the raw logits choose and weigh. kSparseMixer: Phi-MoE's router — the j-th expert is the best
// logit m not yet taken, weighted by softmax over the untaken experts e with (m - l_e) / max(|l_e|, m) <=
// 2 * sparsemixer_eps.
enum class MoeScoring { kSoftmax, kSigmoid, kNone, kSparseMixer };
enum class MoeNormalize { kNone, kSoftmax, kSum };

MoeActivation parse_moe_activation(const std::string& name);
MoeScoring parse_moe_scoring(const std::string& name);
MoeNormalize parse_moe_normalize(const std::string& name);
const char* to_string(MoeActivation a);
const char* to_string(MoeScoring s);
const char* to_string(MoeNormalize n);

struct MoeConfig {
  int64_t num_experts = 0, k = 0, hidden = 0, inter = 0;
  MoeActivation activation = MoeActivation::kRelu;
  MoeScoring scoring = MoeScoring::kSoftmax;
  MoeNormalize normalize = MoeNormalize::kNone;
  bool gated = false;  // SwiGLU-style: a third projection multiplies the activation
  // Gated silu generalised as in ONNX Runtime's MoE: clamp g to <= limit and l to [-limit, limit],
  // then g * sigmoid(alpha * g) * (l + beta). Mixtral: alpha 1, beta 0, no limit.
  float swiglu_alpha = 1.f, swiglu_beta = 0.f, swiglu_limit = 0.f;  // limit 0: no clamp
  // Grouped top-k (DeepSeek): the experts form n_group equal groups, and only the experts of the
  // topk_group groups with the best group score (their best expert, or with group_top2 the sum of
  // their best two, as DeepSeek-V3) compete for the k slots.
  int64_t n_group = 1, topk_group = 1;
  bool group_top2 = false;
  float sparsemixer_eps = 0.01f;
  float normalize_epsilon = 0.f;  // kSum divides by (sum + epsilon), as many routers write it
  float routed_scaling = 1.f;  // multiplies the final routing weights (DeepSeek's routed_scaling_factor)
  // Shared experts (DeepSeek, Qwen-MoE): one MLP of this width, same activation and gating as the
  // routed experts, applied to every token and added to the output (0: none).
  int64_t shared_inter = 0;
  // How the routed experts' weights are stored and multiplied (CompileOptions::precision; the formats
  // are described in kernels/packed_linear.h); the router, combine and shared experts stay FP32 in every
  // format. weight_group: rows per scale of the weight-only and INT4 formats.
  WeightFormat weight_format = WeightFormat::kFp32;
  int64_t weight_group = 32;
  bool bf16() const { return bf16_rows(weight_format); }
  // Expert inputs quantized to INT8 per row (the formats that multiply in integers).
  bool int8_activations() const { return int8_rows(weight_format); }
  bool quantized() const { return weight_only(weight_format); }  // weight-only
};


// Weights prepacked at compile time into the layout the kernels stream.
struct MoeWeights {
  Tensor router_t;   // [H, E]
  Tensor router_b;   // [E] or undefined
  // Experts: fc1/fc3 map H -> I, fc2 maps I -> H (fc3 only when gated). Biases [E, I] / [E, H], each
  // may be undefined.
  PackedLinear w1, w3, w2;  // [E] matrices each, in the config's weight format
  Tensor b1, b3, b2;
  // Row-major copies [E, H, I] and [E, I, H] for the tiny-expert kernel only (H, I <= 64, not gated).
  Tensor w1_t, w2_t;
  Tensor selection_bias;  // [E] or undefined: added to the scores for choosing experts only (DeepSeek-V3)
  Tensor shared_w1_t, shared_w3_t, shared_w2_t;  // [H, Is], [H, Is] (gated), [Is, H]
  Tensor shared_gate;     // [H] or undefined: the shared output is scaled by sigmoid(x . gate) (Qwen-MoE)
};

// Packs the optional parts: selection bias [E], shared experts fc1/fc3 [Is, H], fc2 [H, Is], gate [H].
void pack_moe_extras(const MoeConfig& cfg, MoeWeights& w, const Tensor* selection_bias, const Tensor* shared_w1,
                     const Tensor* shared_w2, const Tensor* shared_w3, const Tensor* shared_gate);

// Packs PyTorch/ONNX-layout weights: router [E,H], w1/w3 [E,I,H], w2 [E,H,I] (nn.Linear layout).
MoeWeights pack_moe_weights(const MoeConfig& cfg, const Tensor& router, const Tensor* router_b, const Tensor& w1,
                            const Tensor* b1, const Tensor& w2, const Tensor* b2, const Tensor* w3, const Tensor* b3);

// Scratch bytes moe_forward needs for `tokens` tokens.
size_t moe_scratch_bytes(const MoeConfig& cfg, int64_t tokens);

// y[T,H] = MoE(x[T,H]). expert_counts (optional, [E]) receives the tokens routed to each expert.
// router_logits (optional, [T,E]): logits computed outside the layer (ONNX Runtime's MoE takes
// them as an input); when null, the layer's own router weights compute them.
void moe_forward(const MoeConfig& cfg, const MoeWeights& w, const float* x, int64_t tokens, float* y,
                 int64_t* expert_counts, void* scratch, ThreadPool& pool, const float* router_logits = nullptr);

}  // namespace switchyard
