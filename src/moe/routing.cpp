#include "moe/routing.h"

#include <cmath>

namespace switchyard {

void route_tokens(const MoeConfig& cfg, const float* logits, int64_t tokens, int32_t* expert_ids, float* weights) {
  const int64_t E = cfg.num_experts, k = cfg.k;
  constexpr int64_t kMaxStackExperts = 1024;
  float probs_stack[kMaxStackExperts];
  for (int64_t t = 0; t < tokens; ++t) {
    const float* l = logits + t * E;
    float* p = probs_stack;
    if (cfg.scoring == MoeScoring::kSoftmax) {
      float m = l[0];
      for (int64_t e = 1; e < E; ++e) m = std::max(m, l[e]);
      float sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += (p[e] = std::exp(l[e] - m));
      const float inv = 1.f / sum;
      for (int64_t e = 0; e < E; ++e) p[e] *= inv;
    } else {
      for (int64_t e = 0; e < E; ++e) p[e] = 1.f / (1.f + std::exp(-l[e]));
    }
    // Top-k by repeated selection (k is small); strict '>' keeps the lower index on ties.
    int32_t* ids = expert_ids + t * k;
    float* w = weights + t * k;
    uint64_t taken[kMaxStackExperts / 64] = {};
    for (int64_t j = 0; j < k; ++j) {
      int64_t best = -1;
      for (int64_t e = 0; e < E; ++e) {
        if (taken[e >> 6] & (uint64_t{1} << (e & 63))) continue;
        if (best < 0 || p[e] > p[best] || (std::isnan(p[e]) && !std::isnan(p[best]))) best = e;
      }
      taken[best >> 6] |= uint64_t{1} << (best & 63);
      ids[j] = static_cast<int32_t>(best);
      w[j] = p[best];
    }
    if (cfg.normalize == MoeNormalize::kSoftmax) {
      float m = w[0], sum = 0;  // values are sorted: w[0] is the max
      for (int64_t j = 0; j < k; ++j) sum += (w[j] = std::exp(w[j] - m));
      for (int64_t j = 0; j < k; ++j) w[j] /= sum;
    } else if (cfg.normalize == MoeNormalize::kSum) {
      float sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += w[j];
      for (int64_t j = 0; j < k; ++j) w[j] /= sum;
    }
  }
}

}  // namespace switchyard
