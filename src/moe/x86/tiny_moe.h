// The MoE chain of tiny experts in registers: the AVX-512 kernel (f32_moe_tiny_avx512.cpp) and the AVX2 one
// (f32_moe_tiny_avx2.cpp), same contract.
#pragma once

#include <cmath>
#include <cstdint>

#include "moe/moe_layer.h"

namespace switchyard::x86 {

struct TinyMoe {
  const MoeConfig* cfg;
  const float *router_t, *router_b;  // [H, E], [E] or null
  const float *w1_t, *b1, *w2_t, *b2;  // [E, H, I], [E, I] or null, [E, I, H], [E, H] or null
  const float *out_t = nullptr, *out_b = nullptr;  // output projection [H, out_n], [out_n] (optional)
  int64_t out_n = 0;
};

// True for the shapes the kernel covers: E <= 16, H and I in {16, 32, 64}, not gated, ReLU or
// identity, softmax scoring, at most 16 outputs; no expert groups, weight scaling or shared experts
// (the caller also checks that there is no selection bias).
inline bool tiny_moe_supported(const MoeConfig& c, int64_t out_n) {
  auto small = [](int64_t n) { return n == 16 || n == 32 || n == 64; };
  return c.num_experts <= 16 && c.k <= c.num_experts && small(c.hidden) && small(c.inter) && !c.gated &&
         (c.activation == MoeActivation::kRelu || c.activation == MoeActivation::kIdentity) &&
         c.scoring == MoeScoring::kSoftmax && out_n <= 16 && c.n_group == 1 && c.routed_scaling == 1.f && c.shared_inter == 0 &&
         c.normalize_epsilon == 0.f;
}

// The k selected probabilities renormalised as the config says (softmax over them, or divided by their
// sum), in place: the scalar step both kernels share after their vector top-k.
inline void normalize_selected(const MoeConfig& c, float* w, int64_t k) {
  if (c.normalize == MoeNormalize::kSoftmax) {
    float sum = 0;
    const float top = w[0];
    for (int64_t j = 0; j < k; ++j) sum += (w[j] = std::exp(w[j] - top));
    for (int64_t j = 0; j < k; ++j) w[j] /= sum;
  } else if (c.normalize == MoeNormalize::kSum) {
    float sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += w[j];
    for (int64_t j = 0; j < k; ++j) w[j] /= sum;
  }
}

// y[r, :] for rows r < rows of x [rows, H]; counts[e] += tokens routed to e.
void f32_moe_tiny_avx512(const TinyMoe& m, const float* x, int64_t rows, float* y, int64_t ldy, int64_t* counts);
void f32_moe_tiny_avx2(const TinyMoe& m, const float* x, int64_t rows, float* y, int64_t ldy, int64_t* counts);

}  // namespace switchyard::x86
