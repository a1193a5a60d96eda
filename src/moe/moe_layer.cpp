#include "moe/moe_layer.h"

#include "moe/scratch_layout.h"

#include <cmath>
#include <cstring>

#include "moe/dispatch.h"
#include "moe/routing.h"
#include "ops/gemm_kernel.h"
#include "runtime/thread_pool.h"

namespace switchyard {

MoeActivation parse_moe_activation(const std::string& n) {
  if (n == "relu") return MoeActivation::kRelu;
  if (n == "gelu") return MoeActivation::kGelu;
  if (n == "gelu_tanh") return MoeActivation::kGeluTanh;
  if (n == "silu" || n == "swish") return MoeActivation::kSilu;
  if (n == "identity") return MoeActivation::kIdentity;
  throw Error("MoE: unknown activation '" + n + "' (relu, gelu, gelu_tanh, silu, identity)");
}
MoeScoring parse_moe_scoring(const std::string& n) {
  if (n == "softmax") return MoeScoring::kSoftmax;
  if (n == "sigmoid") return MoeScoring::kSigmoid;
  throw Error("MoE: unknown scoring '" + n + "' (softmax, sigmoid)");
}
MoeNormalize parse_moe_normalize(const std::string& n) {
  if (n == "none") return MoeNormalize::kNone;
  if (n == "softmax") return MoeNormalize::kSoftmax;
  if (n == "sum") return MoeNormalize::kSum;
  throw Error("MoE: unknown normalize '" + n + "' (none, softmax, sum)");
}
const char* to_string(MoeActivation a) {
  switch (a) {
    case MoeActivation::kRelu: return "relu";
    case MoeActivation::kGelu: return "gelu";
    case MoeActivation::kGeluTanh: return "gelu_tanh";
    case MoeActivation::kSilu: return "silu";
    default: return "identity";
  }
}
const char* to_string(MoeScoring s) { return s == MoeScoring::kSoftmax ? "softmax" : "sigmoid"; }
const char* to_string(MoeNormalize n) {
  return n == MoeNormalize::kNone ? "none" : (n == MoeNormalize::kSoftmax ? "softmax" : "sum");
}

namespace {

// [E, N, K] (nn.Linear weights per expert) -> [E, K, N] row-major, the layout sgemm streams.
Tensor pack_transposed(const Tensor& w, int64_t E, int64_t N, int64_t K, const char* name) {
  SY_CHECK(w.dtype() == DType::kFloat32 && w.numel() == E * N * K,
           std::string("MoE: ") + name + " must be float32 with " + std::to_string(E * N * K) + " elements, got " +
               shape_str(w.shape()));
  Tensor out(DType::kFloat32, {E, K, N});
  for (int64_t e = 0; e < E; ++e) transpose_matrix(w.data<float>() + e * N * K, N, K, out.data<float>() + e * N * K);
  return out;
}

Tensor pack_bias(const Tensor* b, int64_t n, const char* name) {
  if (!b) return Tensor();
  SY_CHECK(b->dtype() == DType::kFloat32 && b->numel() == n,
           std::string("MoE: ") + name + " must be float32 with " + std::to_string(n) + " elements, got " + shape_str(b->shape()));
  return b->clone();
}

struct ScratchLayout {
  size_t logits, ids, weights, counts, offsets, rows, inverse, gathered, hidden, up, expert_out, shared_hidden, shared_up,
      shared_out, total;
};

ScratchLayout layout(const MoeConfig& c, int64_t T) {
  const size_t pairs = static_cast<size_t>(T * c.k), E = static_cast<size_t>(c.num_experts);
  const size_t H = static_cast<size_t>(c.hidden), I = static_cast<size_t>(c.inter);
  ScratchLayout l{};
  ScratchLayoutBuilder b;
  auto take = [&](size_t bytes) { return b.take(bytes); };
  l.logits = take(static_cast<size_t>(T) * E * 4);
  l.ids = take(pairs * 4);
  l.weights = take(pairs * 4);
  l.counts = take(E * 8);
  l.offsets = take((E + 1) * 8);
  l.rows = take(pairs * 4);
  l.inverse = take(pairs * 4);
  l.gathered = take(pairs * H * 4);
  l.hidden = take(pairs * I * 4);
  l.up = c.gated ? take(pairs * I * 4) : 0;
  l.expert_out = take(pairs * H * 4);
  const size_t Is = static_cast<size_t>(c.shared_inter), Tn = static_cast<size_t>(T);
  l.shared_hidden = Is ? take(Tn * Is * 4) : 0;
  l.shared_up = Is && c.gated ? take(Tn * Is * 4) : 0;
  l.shared_out = Is ? take(Tn * H * 4) : 0;
  l.total = b.total();
  return l;
}

inline float activate(MoeActivation a, float v) {
  switch (a) {
    case MoeActivation::kRelu: return v > 0.f ? v : 0.f;
    case MoeActivation::kGelu: return 0.5f * v * (1.f + std::erf(v * 0.70710678118654752f));
    case MoeActivation::kGeluTanh:
      return 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case MoeActivation::kSilu: return v / (1.f + std::exp(-v));
    default: return v;
  }
}

// Copies the input rows of every (token, slot) pair of expert e into its block of `gathered`.
void gather_rows(const MoeConfig& c, int64_t r0, int64_t r1, const float* x, const int32_t* rows, float* gathered) {
  const int64_t H = c.hidden;
  for (int64_t r = r0; r < r1; ++r) std::memcpy(gathered + r * H, x + (rows[r] / c.k) * H, static_cast<size_t>(H) * 4);
}

// First projection of expert e for its rows [r0, r1), columns [j0, j1) of the inter dimension:
// hidden = act(X W1 + b1) [* (X W3 + b3)]; bias and activation applied while the tile is in cache.
void first_projection(const MoeConfig& c, const MoeWeights& w, int64_t e, int64_t r0, int64_t r1, int64_t j0, int64_t j1,
                      const float* gathered, float* hidden, float* up, ThreadPool* gemm_pool) {
  const int64_t H = c.hidden, I = c.inter, n = r1 - r0, cols = j1 - j0;
  if (n <= 0 || cols <= 0) return;
  const float* xg = gathered + r0 * H;
  float* h = hidden + r0 * I + j0;
  sgemm(false, n, cols, H, 1.f, xg, H, w.w1_t.data<float>() + e * H * I + j0, I, 0.f, h, I, gemm_pool);
  const float* b1 = w.b1.defined() ? w.b1.data<float>() + e * I + j0 : nullptr;
  if (c.gated) {
    float* u = up + r0 * I + j0;
    sgemm(false, n, cols, H, 1.f, xg, H, w.w3_t.data<float>() + e * H * I + j0, I, 0.f, u, I, gemm_pool);
    const float* b3 = w.b3.defined() ? w.b3.data<float>() + e * I + j0 : nullptr;
    const bool swiglu = c.activation == MoeActivation::kSilu;
    const float alpha = c.swiglu_alpha, beta = c.swiglu_beta, limit = c.swiglu_limit;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < cols; ++i) {
        float g = h[r * I + i] + (b1 ? b1[i] : 0.f), v = u[r * I + i] + (b3 ? b3[i] : 0.f);
        if (swiglu) {
          if (limit > 0.f) {
            g = std::min(g, limit);
            v = std::max(-limit, std::min(v, limit));
          }
          h[r * I + i] = g / (1.f + std::exp(-alpha * g)) * (v + beta);
        } else {
          h[r * I + i] = activate(c.activation, g) * v;
        }
      }
  } else if (c.activation == MoeActivation::kRelu) {
    // The common case gets a loop the compiler vectorises (no per-element switch).
    for (int64_t r = 0; r < n; ++r) {
      float* __restrict row = h + r * I;
      if (b1)
        for (int64_t i = 0; i < cols; ++i) row[i] = std::max(row[i] + b1[i], 0.f);
      else
        for (int64_t i = 0; i < cols; ++i) row[i] = std::max(row[i], 0.f);
    }
  } else {
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < cols; ++i) h[r * I + i] = activate(c.activation, h[r * I + i] + (b1 ? b1[i] : 0.f));
  }
}

// Second projection of expert e for its rows [r0, r1), output columns [j0, j1): out = hidden W2 + b2.
void second_projection(const MoeConfig& c, const MoeWeights& w, int64_t e, int64_t r0, int64_t r1, int64_t j0, int64_t j1,
                       const float* hidden, float* expert_out, ThreadPool* gemm_pool) {
  const int64_t H = c.hidden, I = c.inter, n = r1 - r0, cols = j1 - j0;
  if (n <= 0 || cols <= 0) return;
  float* y = expert_out + r0 * H + j0;
  sgemm(false, n, cols, I, 1.f, hidden + r0 * I, I, w.w2_t.data<float>() + e * I * H + j0, H, 0.f, y, H, gemm_pool);
  if (w.b2.defined()) {
    const float* b2 = w.b2.data<float>() + e * H + j0;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < cols; ++j) y[r * H + j] += b2[j];
  }
}

// Column tile of the expert GEMMs: wide enough for an efficient GEMM, narrow enough that the tasks
// (expert x column tile) outnumber the threads when the load is skewed.
constexpr int64_t kColumnTile = 512;

}  // namespace

MoeWeights pack_moe_weights(const MoeConfig& c, const Tensor& router, const Tensor* router_b, const Tensor& w1,
                            const Tensor* b1, const Tensor& w2, const Tensor* b2, const Tensor* w3, const Tensor* b3) {
  SY_CHECK(c.num_experts >= 1 && c.num_experts <= 1024, "MoE: expert count must be in 1..1024");
  SY_CHECK(c.k >= 1 && c.k <= c.num_experts, "MoE: k must be in 1..num_experts");
  SY_CHECK(c.gated == (w3 != nullptr), "MoE: gated experts need fc3 weights");
  MoeWeights w;
  if (router.defined()) w.router_t = pack_transposed(router, 1, c.num_experts, c.hidden, "router weight");  // [1, H, E]
  w.router_b = pack_bias(router_b, c.num_experts, "router bias");
  w.w1_t = pack_transposed(w1, c.num_experts, c.inter, c.hidden, "fc1 weight");
  w.b1 = pack_bias(b1, c.num_experts * c.inter, "fc1 bias");
  w.w2_t = pack_transposed(w2, c.num_experts, c.hidden, c.inter, "fc2 weight");
  w.b2 = pack_bias(b2, c.num_experts * c.hidden, "fc2 bias");
  if (w3) {
    w.w3_t = pack_transposed(*w3, c.num_experts, c.inter, c.hidden, "fc3 weight");
    w.b3 = pack_bias(b3, c.num_experts * c.inter, "fc3 bias");
  }
  return w;
}

void pack_moe_extras(const MoeConfig& c, MoeWeights& w, const Tensor* selection_bias, const Tensor* shared_w1,
                     const Tensor* shared_w2, const Tensor* shared_w3, const Tensor* shared_gate) {
  const int64_t E = c.num_experts, H = c.hidden, Is = c.shared_inter;
  SY_CHECK(c.n_group >= 1 && E % c.n_group == 0, "MoE: n_group must divide the " + std::to_string(E) + " experts");
  SY_CHECK(c.topk_group >= 1 && c.topk_group <= c.n_group, "MoE: topk_group must be in 1..n_group");
  SY_CHECK(c.k <= c.topk_group * (E / c.n_group), "MoE: k is larger than the experts of the topk_group best groups");
  w.selection_bias = pack_bias(selection_bias, E, "selection bias");
  SY_CHECK((Is > 0) == (shared_w1 != nullptr) && (shared_w1 != nullptr) == (shared_w2 != nullptr),
           "MoE: shared experts need both fc1 and fc2 weights");
  if (!shared_w1) {
    SY_CHECK(!shared_w3 && !shared_gate, "MoE: shared fc3 or gate given without shared experts");
    return;
  }
  SY_CHECK(c.gated == (shared_w3 != nullptr), "MoE: gated experts need shared fc3 weights (and only they)");
  auto transposed = [](const Tensor& t, int64_t N, int64_t K, const char* name) {
    SY_CHECK(t.dtype() == DType::kFloat32 && t.numel() == N * K,
             std::string("MoE: ") + name + " must be float32 with " + std::to_string(N * K) + " elements, got " +
                 shape_str(t.shape()));
    Tensor out(DType::kFloat32, {K, N});
    transpose_matrix(t.data<float>(), N, K, out.data<float>());
    return out;
  };
  w.shared_w1_t = transposed(*shared_w1, Is, H, "shared fc1 weight");
  w.shared_w2_t = transposed(*shared_w2, H, Is, "shared fc2 weight");
  if (shared_w3) w.shared_w3_t = transposed(*shared_w3, Is, H, "shared fc3 weight");
  w.shared_gate = pack_bias(shared_gate, H, "shared gate");
}

size_t moe_scratch_bytes(const MoeConfig& c, int64_t tokens) { return layout(c, tokens).total; }

void moe_forward(const MoeConfig& c, const MoeWeights& w, const float* x, int64_t T, float* y, int64_t* expert_counts,
                 void* scratch, ThreadPool& pool, const float* router_logits) {
  const int64_t E = c.num_experts, k = c.k, H = c.hidden;
  if (T == 0) {
    if (expert_counts) std::memset(expert_counts, 0, static_cast<size_t>(E) * 8);
    return;
  }
  const ScratchLayout l = layout(c, T);
  char* base = static_cast<char*>(scratch);
  auto* logits = reinterpret_cast<float*>(base + l.logits);
  auto* ids = reinterpret_cast<int32_t*>(base + l.ids);
  auto* weights = reinterpret_cast<float*>(base + l.weights);
  auto* inverse = reinterpret_cast<int32_t*>(base + l.inverse);
  auto* gathered = reinterpret_cast<float*>(base + l.gathered);
  auto* hidden = reinterpret_cast<float*>(base + l.hidden);
  auto* up = c.gated ? reinterpret_cast<float*>(base + l.up) : nullptr;
  auto* expert_out = reinterpret_cast<float*>(base + l.expert_out);
  Dispatch d{reinterpret_cast<int64_t*>(base + l.counts), reinterpret_cast<int64_t*>(base + l.offsets),
             reinterpret_cast<int32_t*>(base + l.rows)};

  // 1. Router logits, then scores, top-k and weights per token.
  if (router_logits) {
    std::memcpy(logits, router_logits, static_cast<size_t>(T * E) * 4);
  } else {
    sgemm(false, T, E, H, 1.f, x, H, w.router_t.data<float>(), E, 0.f, logits, E, &pool);
  }
  if (w.router_b.defined())
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < E; ++e) logits[t * E + e] += w.router_b.data<float>()[e];
  route_tokens(c, logits, T, ids, weights, w.selection_bias.defined() ? w.selection_bias.data<float>() : nullptr);
  // 2. Rows of each expert made contiguous.
  build_dispatch(ids, T * k, E, d);
  for (int64_t r = 0; r < T * k; ++r) inverse[d.rows[r]] = static_cast<int32_t>(r);
  // 3. Each expert once over all of its rows. Decode (a handful of rows): experts in turn, each GEMM
  //    split over the pool (memory-bound: split-K streams the weights). Otherwise two phases of
  //    (expert, column tile) tasks, single-threaded GEMMs, so that both threads stay busy whatever the
  //    load per expert; each task reads only its slice of the weights, once.
  if (T * k <= 4 || pool.size() == 1) {
    for (int64_t e = 0; e < E; ++e) {
      const int64_t r0 = d.offsets[e], r1 = d.offsets[e + 1];
      if (r0 == r1) continue;
      gather_rows(c, r0, r1, x, d.rows, gathered);
      first_projection(c, w, e, r0, r1, 0, c.inter, gathered, hidden, up, &pool);
      second_projection(c, w, e, r0, r1, 0, H, hidden, expert_out, &pool);
    }
  } else {
    pool.parallel_for(T * k, 64, [&](int64_t r0, int64_t r1) { gather_rows(c, r0, r1, x, d.rows, gathered); });
    const int64_t tiles1 = (c.inter + kColumnTile - 1) / kColumnTile, tiles2 = (H + kColumnTile - 1) / kColumnTile;
    pool.parallel_for(E * tiles1, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t e = t / tiles1, j0 = (t % tiles1) * kColumnTile;
        first_projection(c, w, e, d.offsets[e], d.offsets[e + 1], j0, std::min(c.inter, j0 + kColumnTile), gathered, hidden,
                         up, nullptr);
      }
    });
    pool.parallel_for(E * tiles2, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t e = t / tiles2, j0 = (t % tiles2) * kColumnTile;
        second_projection(c, w, e, d.offsets[e], d.offsets[e + 1], j0, std::min(H, j0 + kColumnTile), hidden, expert_out,
                          nullptr);
      }
    });
  }
  // 4. Weighted combine: each output row reads its k expert rows; no write conflicts, no reductions.
  pool.parallel_for(T, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, H * k)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* out = y + t * H;
      const float* src = expert_out + static_cast<int64_t>(inverse[t * k]) * H;
      const float w0 = weights[t * k];
      for (int64_t j = 0; j < H; ++j) out[j] = w0 * src[j];
      for (int64_t s = 1; s < k; ++s) {
        const float* src_s = expert_out + static_cast<int64_t>(inverse[t * k + s]) * H;
        const float ws = weights[t * k + s];
        for (int64_t j = 0; j < H; ++j) out[j] += ws * src_s[j];
      }
    }
  });
  // 5. Shared experts: one dense MLP over every token, added (scaled by its sigmoid gate if any).
  if (c.shared_inter > 0) {
    const int64_t Is = c.shared_inter;
    auto* sh = reinterpret_cast<float*>(base + l.shared_hidden);
    auto* su = c.gated ? reinterpret_cast<float*>(base + l.shared_up) : nullptr;
    auto* so = reinterpret_cast<float*>(base + l.shared_out);
    sgemm(false, T, Is, H, 1.f, x, H, w.shared_w1_t.data<float>(), Is, 0.f, sh, Is, &pool);
    if (c.gated) sgemm(false, T, Is, H, 1.f, x, H, w.shared_w3_t.data<float>(), Is, 0.f, su, Is, &pool);
    pool.parallel_for(T, std::max<int64_t>(1, 4096 / Is), [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * Is; i < t1 * Is; ++i) {
        if (!c.gated) {
          sh[i] = activate(c.activation, sh[i]);
          continue;
        }
        float g = sh[i], v = su[i];
        if (c.activation == MoeActivation::kSilu) {
          if (c.swiglu_limit > 0.f) {
            g = std::min(g, c.swiglu_limit);
            v = std::max(-c.swiglu_limit, std::min(v, c.swiglu_limit));
          }
          sh[i] = g / (1.f + std::exp(-c.swiglu_alpha * g)) * (v + c.swiglu_beta);
        } else {
          sh[i] = activate(c.activation, g) * v;
        }
      }
    });
    sgemm(false, T, H, Is, 1.f, sh, Is, w.shared_w2_t.data<float>(), H, 0.f, so, H, &pool);
    pool.parallel_for(T, std::max<int64_t>(1, 4096 / H), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float scale = 1.f;
        if (w.shared_gate.defined()) {
          float dot = 0.f;
          for (int64_t j = 0; j < H; ++j) dot += x[t * H + j] * w.shared_gate.data<float>()[j];
          scale = 1.f / (1.f + std::exp(-dot));
        }
        for (int64_t j = 0; j < H; ++j) y[t * H + j] += scale * so[t * H + j];
      }
    });
  }
  if (expert_counts) std::memcpy(expert_counts, d.counts, static_cast<size_t>(E) * 8);
}

}  // namespace switchyard
