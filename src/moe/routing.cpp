#include "moe/routing.h"

#include <bit>
#include <cmath>
#include <cstdint>

#include "kernels/isa_clones.h"
#include "moe/moe_kernels.h"
#include "kernels/vector_math.h"

namespace switchyard {

namespace {

// Orders floats like their values (-0 == +0), with NaN above everything.
inline int64_t order_key(float f) {
  const uint32_t b = std::bit_cast<uint32_t>(f + 0.f);  // -0 + 0 = +0
  const int64_t key = (b & 0x80000000u) ? static_cast<int64_t>(~b & 0xffffffffu) : static_cast<int64_t>(b | 0x80000000u);
  return f != f ? (int64_t{1} << 32) : key;
}

// Grouped top-k: scores the n_group groups of c (their best expert, or the sum of their best two),
// keeps the topk_group best groups (ties to the lower group) and sets every other expert to -inf.
void limit_to_best_groups(const MoeConfig& cfg, float* c, int64_t* scratch_keys) {
  const int64_t G = cfg.num_experts / cfg.n_group;
  int64_t* group_keys = scratch_keys;  // n_group <= E entries
  for (int64_t g = 0; g < cfg.n_group; ++g) {
    float best = -INFINITY, second = -INFINITY;
    for (int64_t e = g * G; e < (g + 1) * G; ++e) {
      if (c[e] > best) {
        second = best;
        best = c[e];
      } else if (c[e] > second) {
        second = c[e];
      }
    }
    group_keys[g] = order_key(cfg.group_top2 && G > 1 ? best + second : best);
  }
  uint64_t keep[1024 / 64] = {};
  for (int64_t j = 0; j < cfg.topk_group; ++j) {
    int64_t pick = 0, pick_key = -1;
    for (int64_t g = 0; g < cfg.n_group; ++g)
      if (group_keys[g] > pick_key) {
        pick_key = group_keys[g];
        pick = g;
      }
    group_keys[pick] = -2;
    keep[pick >> 6] |= uint64_t{1} << (pick & 63);
  }
  for (int64_t g = 0; g < cfg.n_group; ++g)
    if (!(keep[g >> 6] & (uint64_t{1} << (g & 63))))
      for (int64_t e = g * G; e < (g + 1) * G; ++e) c[e] = -INFINITY;
}

}  // namespace

namespace {

// Phi-MoE's sparsemixer at inference: k rounds, each taking the best logit m not yet taken and weighting
// it by the softmax over the untaken experts close enough to m ((m - l) / max(|l|, m) <= 2 eps).
void sparsemixer_route(const MoeConfig& cfg, const float* l, int32_t* ids, float* w, bool* taken) {
  const int64_t E = cfg.num_experts;
  for (int64_t e = 0; e < E; ++e) taken[e] = false;
  for (int64_t j = 0; j < cfg.k; ++j) {
    int64_t best = -1;
    for (int64_t e = 0; e < E; ++e)
      if (!taken[e] && (best < 0 || l[e] > l[best])) best = e;
    const float m = l[best];
    float sum = 0;
    for (int64_t e = 0; e < E; ++e)
      if (!taken[e] && (m - l[e]) / std::max(std::fabs(l[e]), m) <= 2 * cfg.sparsemixer_eps) sum += std::exp(l[e] - m);
    ids[j] = static_cast<int32_t>(best);
    w[j] = 1.f / sum;  // exp(m - m) / sum
    taken[best] = true;
  }
}

// The chosen scores (best first) of one token become its routing weights.
[[gnu::always_inline]] inline void finish_weights(const MoeConfig& cfg, float* w) {
  const int64_t k = cfg.k;
  if (cfg.normalize == MoeNormalize::kSoftmax) {
    float m = w[0], sum = 0;  // values are sorted: w[0] is the max
    for (int64_t j = 0; j < k; ++j) sum += (w[j] = exp_nonpositive(w[j] - m));
    for (int64_t j = 0; j < k; ++j) w[j] /= sum;
  } else if (cfg.normalize == MoeNormalize::kSum) {
    float sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += w[j];
    sum += cfg.normalize_epsilon;
    for (int64_t j = 0; j < k; ++j) w[j] /= sum;
  }
  if (cfg.routed_scaling != 1.f)
    for (int64_t j = 0; j < k; ++j) w[j] *= cfg.routed_scaling;
}

// A block of up to kBlock tokens laid out expert-major ([E][kBlock]), so that every loop runs over the
// block's tokens with a fixed trip count and vectorises in any ISA's clone (per token, the E-long loops
// stayed scalar: the router was a third of a small layer's time). Plain top-k only (no selection bias,
// no groups) and finite logits; false leaves the block to the per-token path, whose integer keys order
// NaN and infinities as PyTorch does.
constexpr int64_t kBlock = 16;
constexpr int64_t kBlockMaxExperts = 64;

[[gnu::always_inline]] inline bool route_block(const MoeConfig& cfg, const float* logits, int64_t nb, int32_t* ids, float* weights) {
  const int64_t E = cfg.num_experts, k = cfg.k;
  alignas(64) float p[kBlockMaxExperts][kBlock];
  alignas(64) float m[kBlock], sum[kBlock], best[kBlock];
  alignas(64) int32_t pick[kBlock];
  bool finite = true;
  for (int64_t e = 0; e < E; ++e)
    for (int64_t j = 0; j < kBlock; ++j) {
      const float v = j < nb ? logits[j * E + e] : 0.f;
      finite = finite && std::isfinite(v);
      p[e][j] = v;
    }
  if (!finite) return false;
  if (cfg.scoring == MoeScoring::kSoftmax) {
    for (int64_t j = 0; j < kBlock; ++j) m[j] = p[0][j], sum[j] = 0.f;
    for (int64_t e = 1; e < E; ++e)
      for (int64_t j = 0; j < kBlock; ++j) m[j] = std::max(m[j], p[e][j]);
    for (int64_t e = 0; e < E; ++e)
      for (int64_t j = 0; j < kBlock; ++j) sum[j] += (p[e][j] = exp_nonpositive(p[e][j] - m[j]));
    for (int64_t j = 0; j < kBlock; ++j) sum[j] = 1.f / sum[j];
    for (int64_t e = 0; e < E; ++e)
      for (int64_t j = 0; j < kBlock; ++j) p[e][j] *= sum[j];
  } else if (cfg.scoring == MoeScoring::kSigmoid) {
    for (int64_t e = 0; e < E; ++e)
      for (int64_t j = 0; j < kBlock; ++j) p[e][j] = sigmoid(p[e][j]);
  }
  // k rounds of an arg-max over the experts, ties to the lower index (strict '>'); a taken expert's
  // score becomes -inf (scores are finite, so it never wins again).
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t j = 0; j < kBlock; ++j) best[j] = -INFINITY, pick[j] = 0;
    for (int64_t e = 0; e < E; ++e)
      for (int64_t j = 0; j < kBlock; ++j) {
        const bool better = p[e][j] > best[j];
        best[j] = better ? p[e][j] : best[j];
        pick[j] = better ? static_cast<int32_t>(e) : pick[j];
      }
    for (int64_t j = 0; j < nb; ++j) {
      ids[j * k + r] = pick[j];
      weights[j * k + r] = best[j];
    }
    for (int64_t e = 0; e < E; ++e)
      for (int64_t j = 0; j < kBlock; ++j) p[e][j] = pick[j] == e ? -INFINITY : p[e][j];
  }
  for (int64_t j = 0; j < nb; ++j) finish_weights(cfg, weights + j * k);
  return true;
}

}  // namespace

// Compiled per ISA as a whole (not only its exp): the per-token loops are short (E values) and a call
// into a multiversioned helper per token cost as much as the work.
SY_CLONE_BODY void f32_route_tokens_body(const MoeConfig& cfg, const float* logits, int64_t tokens, int32_t* expert_ids,
                                         float* weights, const float* selection_bias) {
  const int64_t E = cfg.num_experts, k = cfg.k;
  constexpr int64_t kMaxStackExperts = 1024;
  float probs_stack[kMaxStackExperts], choice_stack[kMaxStackExperts];
  int64_t keys_stack[kMaxStackExperts];
  const bool blocks = !selection_bias && cfg.n_group == 1 && E <= kBlockMaxExperts && cfg.scoring != MoeScoring::kSparseMixer;
  for (int64_t t = 0; t < tokens; ++t) {
    if (blocks && t % kBlock == 0) {
      const int64_t nb = std::min(kBlock, tokens - t);
      if (route_block(cfg, logits + t * E, nb, expert_ids + t * k, weights + t * k)) {
        t += nb - 1;
        continue;
      }
    }
    const float* l = logits + t * E;
    if (cfg.scoring == MoeScoring::kSparseMixer) {
      bool taken[kMaxStackExperts];
      sparsemixer_route(cfg, l, expert_ids + t * k, weights + t * k, taken);
      continue;
    }
    float* p = probs_stack;
    if (cfg.scoring == MoeScoring::kSoftmax) {
      float m = l[0];
      for (int64_t e = 1; e < E; ++e) m = std::max(m, l[e]);
      for (int64_t e = 0; e < E; ++e) p[e] = l[e] - m;
      for (int64_t e = 0; e < E; ++e) p[e] = exp_nonpositive(p[e]);  // inlined: vectorised in this clone
      float sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += p[e];
      const float inv = 1.f / sum;
      for (int64_t e = 0; e < E; ++e) p[e] *= inv;
    } else if (cfg.scoring == MoeScoring::kSigmoid) {
      for (int64_t e = 0; e < E; ++e) p[e] = sigmoid(l[e]);
    } else {
      for (int64_t e = 0; e < E; ++e) p[e] = l[e];
    }
    // Top-k by repeated selection (k is small) on integer keys that order the floats as PyTorch's
    // topk does (NaN above everything, ties to the lower index through the strict '>'), with
    // conditional moves instead of branches: the comparisons are data-dependent and mispredicted
    // branches made this loop ~10% of the seed classifier's time.
    int32_t* ids = expert_ids + t * k;
    float* w = weights + t * k;
    int64_t* keys = keys_stack;
    // The scores that choose (bias-shifted, limited to the best groups); the weights stay p.
    const float* choice = p;
    if (selection_bias || cfg.n_group > 1) {
      float* c = choice_stack;
      for (int64_t e = 0; e < E; ++e) c[e] = p[e] + (selection_bias ? selection_bias[e] : 0.f);
      if (cfg.n_group > 1) limit_to_best_groups(cfg, c, keys);
      choice = c;
    }
    for (int64_t e = 0; e < E; ++e) keys[e] = order_key(choice[e]);
    for (int64_t j = 0; j < k; ++j) {
      int64_t best = 0, best_key = -1;
      for (int64_t e = 0; e < E; ++e) {
        const bool better = keys[e] > best_key;
        best_key = better ? keys[e] : best_key;
        best = better ? e : best;
      }
      keys[best] = -2;  // taken
      ids[j] = static_cast<int32_t>(best);
      w[j] = p[best];
    }
    finish_weights(cfg, w);
  }
}

SY_ISA_CLONES(void, f32_route_tokens, (const MoeConfig& cfg, const float* logits, int64_t tokens, int32_t* expert_ids,
                                       float* weights, const float* selection_bias),
              (cfg, logits, tokens, expert_ids, weights, selection_bias))

void route_tokens(const MoeConfig& cfg, const float* logits, int64_t tokens, int32_t* expert_ids, float* weights,
                  const float* selection_bias) {
  moe_kernels().route_tokens(cfg, logits, tokens, expert_ids, weights, selection_bias);
}

}  // namespace switchyard
