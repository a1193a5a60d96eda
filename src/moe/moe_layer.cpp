#include "moe/moe_layer.h"

#include "kernels/scratch_layout.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moe/dispatch.h"
#include "moe/routing.h"
#include "kernels/gemm_kernel.h"
#include "kernels/gemm_panel.h"
#include "kernels/vector_math.h"
#include "kernels/isa_clones.h"
#include "moe/moe_kernels.h"
#include "core/thread_pool.h"

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
  if (n == "none") return MoeScoring::kNone;
  if (n == "sparsemixer") return MoeScoring::kSparseMixer;
  throw Error("MoE: unknown scoring '" + n + "' (softmax, sigmoid, none, sparsemixer)");
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
const char* to_string(MoeScoring s) {
  switch (s) {
    case MoeScoring::kSoftmax: return "softmax";
    case MoeScoring::kSigmoid: return "sigmoid";
    case MoeScoring::kSparseMixer: return "sparsemixer";
    default: return "none";
  }
}
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
      shared_out, gathered_forms, hidden_forms, total;
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
  // The expert inputs of each phase in the weight format's own form (BF16, INT8 codes), converted once.
  l.gathered_forms = take(linear_rows_bytes(c.weight_format, T * c.k, c.hidden, c.weight_group));
  l.hidden_forms = take(linear_rows_bytes(c.weight_format, T * c.k, c.inter, c.weight_group));
  l.total = b.total();
  return l;
}

inline float activate(MoeActivation a, float v) {
  switch (a) {
    case MoeActivation::kRelu: return v > 0.f ? v : 0.f;
    case MoeActivation::kGelu: return gelu_erf(v);
    case MoeActivation::kGeluTanh: return gelu_tanh(v);
    case MoeActivation::kSilu: return v * sigmoid(v);
    default: return v;
  }
}

// Copies the input rows of every (token, slot) pair of expert e into its block of `gathered`.
void gather_rows(const MoeConfig& c, int64_t r0, int64_t r1, const float* x, const int32_t* rows, float* gathered) {
  const int64_t H = c.hidden;
  for (int64_t r = r0; r < r1; ++r) std::memcpy(gathered + r * H, x + (rows[r] / c.k) * H, static_cast<size_t>(H) * 4);
}

// The gated activation over n values, in place in h: ONNX Runtime's generalised SwiGLU
// h = g * sigmoid(alpha g) * (v + beta) with g clamped to <= limit and v to [-limit, limit] when
// limit > 0 (Mixtral: alpha 1, beta 0, no limit), or act(g) * v for the other activations.
SY_CLONE_BODY void f32_gated_activation_body(const MoeConfig& c, float* __restrict h, const float* __restrict u,
                                             int64_t n) {
  if (c.activation != MoeActivation::kSilu) {
    // One loop per activation (no switch inside): each vectorises.
    switch (c.activation) {
      case MoeActivation::kGelu: for (int64_t i = 0; i < n; ++i) h[i] = gelu_erf(h[i]) * u[i]; break;
      case MoeActivation::kGeluTanh: for (int64_t i = 0; i < n; ++i) h[i] = gelu_tanh(h[i]) * u[i]; break;
      case MoeActivation::kRelu: for (int64_t i = 0; i < n; ++i) h[i] = std::max(h[i], 0.f) * u[i]; break;
      default: for (int64_t i = 0; i < n; ++i) h[i] = h[i] * u[i]; break;
    }
    return;
  }
  const float alpha = c.swiglu_alpha, beta = c.swiglu_beta, limit = c.swiglu_limit;
  if (limit > 0.f) {
    for (int64_t i = 0; i < n; ++i) {
      const float g = std::min(h[i], limit), v = std::max(-limit, std::min(u[i], limit));
      h[i] = g * sigmoid(alpha * g) * (v + beta);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) h[i] = h[i] * sigmoid(alpha * h[i]) * (u[i] + beta);
  }
}

// act(h) over n values in place, one loop per activation so that each vectorises (std::erf per element
// kept GELU experts scalar: ~70% of a small GELU layer's time).
SY_CLONE_BODY void f32_activate_row_body(MoeActivation a, float* __restrict h, int64_t n) {
  switch (a) {
    case MoeActivation::kGelu: for (int64_t i = 0; i < n; ++i) h[i] = gelu_erf(h[i]); break;
    case MoeActivation::kGeluTanh: for (int64_t i = 0; i < n; ++i) h[i] = gelu_tanh(h[i]); break;
    case MoeActivation::kSilu: for (int64_t i = 0; i < n; ++i) h[i] = h[i] * sigmoid(h[i]); break;
    case MoeActivation::kRelu: for (int64_t i = 0; i < n; ++i) h[i] = std::max(h[i], 0.f); break;
    default: break;
  }
}

// Bias and activation on the first projection's tile (rows x cols at h, leading dimension I), while it
// is in cache; gated: h = act(h + b1) * (u + b3).
void finish_first_projection(const MoeConfig& c, const float* b1, const float* b3, int64_t n, int64_t cols, float* h,
                             float* u) {
  const int64_t I = c.inter;
  if (c.gated) {
    for (int64_t r = 0; r < n; ++r) {
      float* __restrict hr = h + r * I;
      float* __restrict ur = u + r * I;
      if (b1)
        for (int64_t i = 0; i < cols; ++i) hr[i] += b1[i];
      if (b3)
        for (int64_t i = 0; i < cols; ++i) ur[i] += b3[i];
      moe_kernels().gated_activation(c, hr, ur, cols);
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
    for (int64_t r = 0; r < n; ++r) {
      float* __restrict row = h + r * I;
      if (b1)
        for (int64_t i = 0; i < cols; ++i) row[i] += b1[i];
      moe_kernels().activate_row(c.activation, row, cols);
    }
  }
}

// First projection of expert e over its rows [r0, r1) for the panels [q0, q1) of the inter dimension.
void first_projection(const MoeConfig& c, const MoeWeights& w, int64_t e, int64_t r0, int64_t r1, int64_t q0, int64_t q1,
                      const LinearRows& gathered, float* hidden, float* up) {
  const int64_t I = c.inter, n = r1 - r0;
  const int64_t j0 = q0 * kPanelWidth, cols = std::min(I, q1 * kPanelWidth) - j0;
  const LinearRows a = gathered.from(r0);
  float* h = hidden + r0 * I;
  linear_gemm(w.w1, e, n, a, q0, q1, h, I);
  float* u = nullptr;
  if (c.gated) {
    u = up + r0 * I;
    linear_gemm(w.w3, e, n, a, q0, q1, u, I);
    u += j0;
  }
  finish_first_projection(c, w.b1.defined() ? w.b1.data<float>() + e * I + j0 : nullptr,
                          w.b3.defined() ? w.b3.data<float>() + e * I + j0 : nullptr, n, cols, h + j0, u);
}

// Second projection of expert e over its rows [r0, r1) for the panels [q0, q1) of the output: hidden W2 + b2.
void second_projection(const MoeConfig& c, const MoeWeights& w, int64_t e, int64_t r0, int64_t r1, int64_t q0, int64_t q1,
                       const LinearRows& hidden, float* expert_out) {
  const int64_t H = c.hidden, n = r1 - r0;
  float* y = expert_out + r0 * H;
  linear_gemm(w.w2, e, n, hidden.from(r0), q0, q1, y, H);
  if (w.b2.defined()) {
    const int64_t j0 = q0 * kPanelWidth, cols = std::min(H, q1 * kPanelWidth) - j0;
    const float* b2 = w.b2.data<float>() + e * H + j0;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < cols; ++j) y[r * H + j0 + j] += b2[j];
  }
}

// Cost of one panel of an expert with `rows` rows, in row units: the weights stream from memory
// whatever the rows (about the time of 8 rows of arithmetic), then each row costs its FMAs.
constexpr int64_t kPanelStreamCost = 8;

// Runs fn(expert, q0, q1) over every panel of every expert that has rows, split into ranges of about
// equal cost (rows + streaming), several per thread so a slow one does not hold the others up. A
// range is consecutive panels, so each task reads one contiguous block of weights; no task is
// bigger than its share, however skewed the load.
template <typename F>
void for_expert_panels(const Dispatch& d, int64_t E, int64_t panels, ThreadPool& pool, F&& fn) {
  int64_t total = 0;
  for (int64_t e = 0; e < E; ++e)
    if (d.counts[e] > 0) total += (d.counts[e] + kPanelStreamCost) * panels;
  if (total == 0) return;
  const int64_t parts = pool.size() == 1 ? 1 : std::min<int64_t>(pool.size() * 4, total);
  pool.parallel_for(parts, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t part = c0; part < c1; ++part) {
      const int64_t lo = total * part / parts, hi = total * (part + 1) / parts;
      int64_t start = 0;  // cost before expert e
      for (int64_t e = 0; e < E && start < hi; ++e) {
        if (d.counts[e] == 0) continue;
        const int64_t unit = d.counts[e] + kPanelStreamCost;
        // Panels whose cost interval starts in [lo, hi).
        const int64_t q0 = std::clamp<int64_t>((lo - start + unit - 1) / unit, 0, panels);
        const int64_t q1 = std::clamp<int64_t>((hi - start + unit - 1) / unit, 0, panels);
        if (q0 < q1) fn(e, q0, q1);
        start += unit * panels;
      }
    }
  });
}

}  // namespace

MoeWeights pack_moe_weights(const MoeConfig& c, const Tensor& router, const Tensor* router_b, const Tensor& w1,
                            const Tensor* b1, const Tensor& w2, const Tensor* b2, const Tensor* w3, const Tensor* b3) {
  SY_CHECK(c.num_experts >= 1 && c.num_experts <= 1024, "MoE: expert count must be in 1..1024");
  SY_CHECK(c.k >= 1 && c.k <= c.num_experts, "MoE: k must be in 1..num_experts");
  SY_CHECK(c.gated == (w3 != nullptr), "MoE: gated experts need fc3 weights");
  MoeWeights w;
  if (router.defined()) w.router_t = pack_transposed(router, 1, c.num_experts, c.hidden, "router weight");  // [1, H, E]
  w.router_b = pack_bias(router_b, c.num_experts, "router bias");
  const int64_t E = c.num_experts, H = c.hidden, I = c.inter;
  auto pack = [&](const Tensor& t, int64_t N, int64_t K, const char* name, PackedLinear& p) {
    p = pack_linear(t, E, N, K, c.weight_format, c.weight_group, std::string("MoE: ") + name);
  };
  pack(w1, I, H, "fc1 weight", w.w1);
  w.b1 = pack_bias(b1, E * I, "fc1 bias");
  pack(w2, H, I, "fc2 weight", w.w2);
  w.b2 = pack_bias(b2, E * H, "fc2 bias");
  if (w3) {
    pack(*w3, I, H, "fc3 weight", w.w3);
    w.b3 = pack_bias(b3, E * I, "fc3 bias");
  }
  if (!c.gated && c.weight_format == WeightFormat::kFp32 && H <= 64 && I <= 64) {
    w.w1_t = pack_transposed(w1, E, I, H, "fc1 weight");
    w.w2_t = pack_transposed(w2, E, H, I, "fc2 weight");
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
                 void* scratch, ThreadPool& threads, const float* router_logits) {
  const int64_t E = c.num_experts, k = c.k, H = c.hidden;
  // A small layer runs on the calling thread alone: waking the other thread for each of the layer's
  // parallel phases costs more than the work (64 tokens of a 16-wide, 24-deep layer, 2 cores: 10 us on
  // one thread, 16 us on two). 256 K multiply-adds is ~10 us on one core.
  constexpr int64_t kSerialMacs = int64_t{256} << 10;
  const int64_t macs = T * k * H * (c.inter * (c.gated ? 3 : 2) + (c.shared_inter ? 3 * c.shared_inter : 0));
  ThreadPool& pool = macs < kSerialMacs ? ThreadPool::serial() : threads;
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
  // 3. Each expert once over all of its rows, as two phases of (expert, panel range) tasks balanced
  //    by cost: both threads stay busy whatever the load per expert, each task streams only its slice
  //    of the prepacked weights, once, and no task needs a reduction (decode too: the columns are
  //    split, not K).
  //    In BF16 (INT8), each phase's input rows are rounded to BF16 (quantized) once, before the phase.
  const int64_t I = c.inter;
  const LinearRows in = linear_rows(c.weight_format, gathered, T * k, H, c.weight_group, base + l.gathered_forms);
  const LinearRows mid = linear_rows(c.weight_format, hidden, T * k, I, c.weight_group, base + l.hidden_forms);
  pool.parallel_for(T * k, 64, [&](int64_t r0, int64_t r1) {
    gather_rows(c, r0, r1, x, d.rows, gathered);
    convert_linear_rows(c.weight_format, in, r0, r1, c.weight_group);
  });
  for_expert_panels(d, E, panel_count(I), pool, [&](int64_t e, int64_t q0, int64_t q1) {
    first_projection(c, w, e, d.offsets[e], d.offsets[e + 1], q0, q1, in, hidden, up);
  });
  if (c.bf16() || c.int8_activations())
    pool.parallel_for(T * k, 64, [&](int64_t r0, int64_t r1) { convert_linear_rows(c.weight_format, mid, r0, r1, c.weight_group); });
  for_expert_panels(d, E, panel_count(H), pool, [&](int64_t e, int64_t q0, int64_t q1) {
    second_projection(c, w, e, d.offsets[e], d.offsets[e + 1], q0, q1, mid, expert_out);
  });
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
      if (c.gated) {
        moe_kernels().gated_activation(c, sh + t0 * Is, su + t0 * Is, (t1 - t0) * Is);
      } else {
        for (int64_t i = t0 * Is; i < t1 * Is; ++i) sh[i] = activate(c.activation, sh[i]);
      }
    });
    sgemm(false, T, H, Is, 1.f, sh, Is, w.shared_w2_t.data<float>(), H, 0.f, so, H, &pool);
    pool.parallel_for(T, std::max<int64_t>(1, 4096 / H), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float scale = 1.f;
        if (w.shared_gate.defined()) {
          float dot = 0.f;
          for (int64_t j = 0; j < H; ++j) dot += x[t * H + j] * w.shared_gate.data<float>()[j];
          scale = sigmoid(dot);
        }
        for (int64_t j = 0; j < H; ++j) y[t * H + j] += scale * so[t * H + j];
      }
    });
  }
  if (expert_counts) std::memcpy(expert_counts, d.counts, static_cast<size_t>(E) * 8);
}

SY_ISA_CLONES(void, f32_gated_activation, (const MoeConfig& c, float* h, const float* u, int64_t n), (c, h, u, n))
SY_ISA_CLONES(void, f32_activate_row, (MoeActivation a, float* h, int64_t n), (a, h, n))

}  // namespace switchyard
