// The fused MoE operator against a plain reference, and fused vs unfused exported graphs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "io/npy.h"
#include "moe/moe_block.h"
#include "moe/moe_kernels.h"
#include "moe/moe_layer.h"
#include "moe/routing.h"
#include "core/thread_pool.h"
#include "switchyard/engine.h"

using namespace switchyard;
namespace fs = std::filesystem;

namespace {

Tensor randn(Shape s, std::mt19937& rng, float scale = 1.f) {
  Tensor t(DType::kFloat32, std::move(s));
  std::normal_distribution<float> d(0.f, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

float act(MoeActivation a, float v) {
  switch (a) {
    case MoeActivation::kRelu: return std::max(v, 0.f);
    case MoeActivation::kGelu: return 0.5f * v * (1.f + std::erf(v / std::sqrt(2.f)));
    case MoeActivation::kGeluTanh: return 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case MoeActivation::kSilu: return v / (1.f + std::exp(-v));
    default: return v;
  }
}

// Token by token, straight from the definition in moe_layer.h (double accumulation).
std::vector<float> reference(const MoeConfig& c, const Tensor& x, const Tensor& router, const Tensor& rb, const Tensor& w1,
                             const Tensor& b1, const Tensor& w2, const Tensor& b2, const Tensor& w3, const Tensor& b3) {
  const int64_t T = x.dim(0), E = c.num_experts, H = c.hidden, I = c.inter;
  std::vector<float> y(static_cast<size_t>(T * H), 0.f);
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x.data<float>() + t * H;
    std::vector<double> p(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e) {
      double s = rb.defined() ? rb.data<float>()[e] : 0.0;
      for (int64_t h = 0; h < H; ++h) s += static_cast<double>(router.data<float>()[e * H + h]) * xt[h];
      p[static_cast<size_t>(e)] = s;
    }
    if (c.scoring == MoeScoring::kSoftmax) {
      double m = *std::max_element(p.begin(), p.end()), sum = 0;
      for (auto& v : p) sum += (v = std::exp(v - m));
      for (auto& v : p) v /= sum;
    } else {
      for (auto& v : p) v = 1.0 / (1.0 + std::exp(-v));
    }
    std::vector<int64_t> order(static_cast<size_t>(E));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[static_cast<size_t>(a)] > p[static_cast<size_t>(b)]; });
    std::vector<double> w(static_cast<size_t>(c.k));
    for (int64_t j = 0; j < c.k; ++j) w[static_cast<size_t>(j)] = p[static_cast<size_t>(order[static_cast<size_t>(j)])];
    if (c.normalize == MoeNormalize::kSoftmax) {
      double m = w[0], sum = 0;
      for (auto& v : w) sum += (v = std::exp(v - m));
      for (auto& v : w) v /= sum;
    } else if (c.normalize == MoeNormalize::kSum) {
      double sum = 0;
      for (auto v : w) sum += v;
      for (auto& v : w) v /= sum;
    }
    for (int64_t j = 0; j < c.k; ++j) {
      const int64_t e = order[static_cast<size_t>(j)];
      std::vector<float> h(static_cast<size_t>(I));
      for (int64_t i = 0; i < I; ++i) {
        double a = b1.defined() ? b1.data<float>()[e * I + i] : 0.0, u = b3.defined() ? b3.data<float>()[e * I + i] : 0.0;
        for (int64_t d = 0; d < H; ++d) {
          a += static_cast<double>(w1.data<float>()[(e * I + i) * H + d]) * xt[d];
          if (c.gated) u += static_cast<double>(w3.data<float>()[(e * I + i) * H + d]) * xt[d];
        }
        h[static_cast<size_t>(i)] = act(c.activation, static_cast<float>(a)) * (c.gated ? static_cast<float>(u) : 1.f);
      }
      for (int64_t o = 0; o < H; ++o) {
        double s = b2.defined() ? b2.data<float>()[e * H + o] : 0.0;
        for (int64_t i = 0; i < I; ++i) s += static_cast<double>(w2.data<float>()[(e * H + o) * I + i]) * h[static_cast<size_t>(i)];
        y[static_cast<size_t>(t * H + o)] += static_cast<float>(w[static_cast<size_t>(j)] * s);
      }
    }
  }
  return y;
}

struct Case {
  int64_t E, k, H, I, T;
  MoeActivation act;
  MoeScoring scoring;
  MoeNormalize norm;
  bool gated, biases;
  int threads;
};

class MoeLayer : public ::testing::TestWithParam<Case> {};

TEST_P(MoeLayer, MatchesReference) {
  const Case p = GetParam();
  std::mt19937 rng(static_cast<unsigned>(p.E * 131 + p.k * 17 + p.T));
  MoeConfig c{p.E, p.k, p.H, p.I, p.act, p.scoring, p.norm, p.gated};
  Tensor x = randn({p.T, p.H}, rng), router = randn({p.E, p.H}, rng), w1 = randn({p.E, p.I, p.H}, rng, 0.3f),
         w2 = randn({p.E, p.H, p.I}, rng, 0.3f);
  Tensor rb, b1, b2, w3, b3;
  if (p.biases) {
    rb = randn({p.E}, rng);
    b1 = randn({p.E, p.I}, rng);
    b2 = randn({p.E, p.H}, rng);
  }
  if (p.gated) {
    w3 = randn({p.E, p.I, p.H}, rng, 0.3f);
    if (p.biases) b3 = randn({p.E, p.I}, rng);
  }
  auto opt = [](const Tensor& t) { return t.defined() ? &t : nullptr; };
  auto ref = reference(c, x, router, rb, w1, b1, w2, b2, w3, b3);
  // Every expert weight format against the FP32 reference. FP32: to rounding. FP16 weights (11
  // significant bits) and BF16 (8 significant
  // bits in weights and expert inputs, FP32 sums), INT8 (weights per column, activations per row,
  // 127 levels each) and weight-only INT8 (scales per 32 rows): cosine >= 0.9995 and 2% of the output
  // scale. INT4 and INT4 x INT8 (16 levels per group): cosine >= 0.99, 25%.
  for (WeightFormat format : {WeightFormat::kFp32, WeightFormat::kFp16, WeightFormat::kBf16, WeightFormat::kInt8,
                                 WeightFormat::kInt4, WeightFormat::kInt8Weights, WeightFormat::kInt4Weights}) {
    c.weight_format = format;
    const bool bf16 = format != WeightFormat::kFp32;
    const bool int4 = format == WeightFormat::kInt4Weights || format == WeightFormat::kInt4;
    const char* name = format == WeightFormat::kFp16          ? "fp16"
                       : format == WeightFormat::kBf16          ? "bf16"
                       : format == WeightFormat::kInt8         ? "int8"
                       : format == WeightFormat::kInt4         ? "int4"
                       : format == WeightFormat::kInt8Weights ? "int8-weights"
                                                                  : "int4-weights";
    MoeWeights w = pack_moe_weights(c, router, opt(rb), w1, opt(b1), w2, opt(b2), opt(w3), opt(b3));
    std::vector<char> scratch(moe_scratch_bytes(c, p.T) + 64);
    void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63});
    std::vector<float> y(static_cast<size_t>(p.T * p.H));
    std::vector<int64_t> counts(static_cast<size_t>(p.E));
    ThreadPool pool(p.threads);
    moe_forward(c, w, x.data<float>(), p.T, y.data(), counts.data(), aligned, pool);
    double scale = 1e-6, err = 0, dot = 0, nr = 0, ny = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
      err = std::max(err, std::fabs(static_cast<double>(ref[i]) - y[i]));
      dot += ref[i] * static_cast<double>(y[i]);
      nr += static_cast<double>(ref[i]) * ref[i];
      ny += static_cast<double>(y[i]) * y[i];
    }
    if (bf16) {
      EXPECT_LE(err, (int4 ? 0.25 : 2e-2) * scale) << name;
      if (nr > 0) EXPECT_GE(dot / std::sqrt(nr * ny), int4 ? 0.99 : 0.9995) << name;
    } else {
      EXPECT_LE(err, 1e-5 * scale * std::sqrt(static_cast<double>(p.H + p.I)));
    }
    int64_t total = 0;
    for (auto n : counts) total += n;
    EXPECT_EQ(total, p.T * p.k);  // dropless: every (token, slot) pair reaches an expert
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MoeLayer,
    ::testing::Values(Case{8, 2, 16, 16, 64, MoeActivation::kRelu, MoeScoring::kSoftmax, MoeNormalize::kSoftmax, false, true, 2},
                      Case{8, 2, 16, 16, 1, MoeActivation::kRelu, MoeScoring::kSoftmax, MoeNormalize::kSoftmax, false, true, 1},
                      Case{4, 1, 32, 48, 33, MoeActivation::kGelu, MoeScoring::kSoftmax, MoeNormalize::kNone, false, true, 2},
                      Case{16, 4, 24, 40, 100, MoeActivation::kSilu, MoeScoring::kSigmoid, MoeNormalize::kSum, true, false, 2},
                      Case{8, 2, 64, 96, 7, MoeActivation::kSilu, MoeScoring::kSoftmax, MoeNormalize::kSum, true, true, 2},
                      Case{64, 8, 32, 16, 256, MoeActivation::kSilu, MoeScoring::kSoftmax, MoeNormalize::kSum, true, false, 2},
                      // Several weight panels with column tails, and ~150 rows per expert (many row groups).
                      Case{4, 2, 100, 130, 300, MoeActivation::kSilu, MoeScoring::kSoftmax, MoeNormalize::kSum, true, true, 2},
                      Case{3, 3, 5, 7, 9, MoeActivation::kIdentity, MoeScoring::kSoftmax, MoeNormalize::kNone, false, false, 1}));

// DeepSeek / Qwen-MoE parts against a plain double-precision reference: sigmoid scores with a
// selection-only bias, grouped top-k (group score = best expert or sum of the best two), weights
// renormalised and scaled, plus a gated shared expert with and without its sigmoid gate.
TEST(MoeLayer, GroupedTopKSelectionBiasAndSharedExperts) {
  for (int variant = 0; variant < 4; ++variant) {
    const int64_t E = 16, k = 4, H = 24, I = 20, Is = 36, T = 70;
    MoeConfig c{E, k, H, I, MoeActivation::kSilu, MoeScoring::kSigmoid, MoeNormalize::kSum, true};
    c.n_group = 4;
    c.topk_group = 2;
    c.group_top2 = variant % 2 == 1;
    c.routed_scaling = 2.5f;
    c.shared_inter = Is;
    const bool gate = variant >= 2;
    std::mt19937 rng(static_cast<unsigned>(variant + 11));
    Tensor x = randn({T, H}, rng), router = randn({E, H}, rng), w1 = randn({E, I, H}, rng, 0.3f), w2 = randn({E, H, I}, rng, 0.3f),
           w3 = randn({E, I, H}, rng, 0.3f), bias = randn({E}, rng, 0.2f), s1 = randn({Is, H}, rng, 0.3f),
           s2 = randn({H, Is}, rng, 0.3f), s3 = randn({Is, H}, rng, 0.3f), g = randn({H}, rng, 0.3f);
    MoeWeights w = pack_moe_weights(c, router, nullptr, w1, nullptr, w2, nullptr, &w3, nullptr);
    pack_moe_extras(c, w, &bias, &s1, &s2, &s3, gate ? &g : nullptr);
    std::vector<char> scratch(moe_scratch_bytes(c, T) + 64);
    void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63});
    std::vector<float> y(static_cast<size_t>(T * H));
    ThreadPool pool(2);
    moe_forward(c, w, x.data<float>(), T, y.data(), nullptr, aligned, pool);
    auto silu = [](double v) { return v / (1.0 + std::exp(-v)); };
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x.data<float>() + t * H;
      std::vector<double> p(E), choice(E);
      for (int64_t e = 0; e < E; ++e) {
        double l = 0;
        for (int64_t h = 0; h < H; ++h) l += static_cast<double>(router.data<float>()[e * H + h]) * xt[h];
        p[static_cast<size_t>(e)] = 1.0 / (1.0 + std::exp(-l));
        choice[static_cast<size_t>(e)] = p[static_cast<size_t>(e)] + bias.data<float>()[e];
      }
      std::vector<std::pair<double, int64_t>> groups;
      for (int64_t gi = 0; gi < 4; ++gi) {
        std::vector<double> v(choice.begin() + gi * 4, choice.begin() + gi * 4 + 4);
        std::sort(v.rbegin(), v.rend());
        groups.push_back({c.group_top2 ? v[0] + v[1] : v[0], gi});
      }
      std::stable_sort(groups.begin(), groups.end(), [](auto& a, auto& b) { return a.first > b.first; });
      std::vector<int64_t> order;
      for (int64_t e = 0; e < E; ++e)
        if (e / 4 == groups[0].second || e / 4 == groups[1].second) order.push_back(e);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return choice[static_cast<size_t>(a)] > choice[static_cast<size_t>(b)]; });
      double sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += p[static_cast<size_t>(order[static_cast<size_t>(j)])];
      std::vector<double> ref(H, 0.0);
      auto mlp = [&](const float* a, const float* b, const float* cc, int64_t n, double scale) {  // fc1 [n,H], fc2 [H,n], fc3
        std::vector<double> hid(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          double g1 = 0, u = 0;
          for (int64_t h = 0; h < H; ++h) {
            g1 += static_cast<double>(a[i * H + h]) * xt[h];
            u += static_cast<double>(cc[i * H + h]) * xt[h];
          }
          hid[static_cast<size_t>(i)] = silu(g1) * u;
        }
        for (int64_t o = 0; o < H; ++o) {
          double v = 0;
          for (int64_t i = 0; i < n; ++i) v += static_cast<double>(b[o * n + i]) * hid[static_cast<size_t>(i)];
          ref[static_cast<size_t>(o)] += scale * v;
        }
      };
      for (int64_t j = 0; j < k; ++j) {
        const int64_t e = order[static_cast<size_t>(j)];
        mlp(w1.data<float>() + e * I * H, w2.data<float>() + e * H * I, w3.data<float>() + e * I * H, I,
            2.5 * p[static_cast<size_t>(e)] / sum);
      }
      double gs = 1.0;
      if (gate) {
        double dot = 0;
        for (int64_t h = 0; h < H; ++h) dot += static_cast<double>(g.data<float>()[h]) * xt[h];
        gs = 1.0 / (1.0 + std::exp(-dot));
      }
      mlp(s1.data<float>(), s2.data<float>(), s3.data<float>(), Is, gs);
      for (int64_t o = 0; o < H; ++o)
        ASSERT_NEAR(y[static_cast<size_t>(t * H + o)], ref[static_cast<size_t>(o)], 1e-4 * (1 + std::fabs(ref[static_cast<size_t>(o)])))
            << "variant " << variant << " token " << t << " dim " << o;
    }
  }
}

// Top-k as PyTorch's topk: ties go to the lower expert index, NaN ranks above every number.
TEST(Routing, TiesToLowerIndexAndNaNFirst) {
  MoeConfig c{5, 2, 1, 1, MoeActivation::kRelu, MoeScoring::kSigmoid, MoeNormalize::kNone, false};
  const float nan = std::nanf("");
  const float logits[] = {1.f, 3.f, 3.f, 0.f, 3.f,     // tie of three: experts 1 and 2
                          -1.f, -2.f, nan, 5.f, nan,   // both NaNs before 5, the lower index first
                          0.f, -0.f, 0.f, -0.f, 0.f};  // all equal (-0 == +0): experts 0 and 1
  int32_t ids[6];
  float w[6];
  route_tokens(c, logits, 3, ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_EQ(ids[2], 2);
  EXPECT_EQ(ids[3], 4);
  EXPECT_EQ(ids[4], 0);
  EXPECT_EQ(ids[5], 1);
}

// Blocks of 16 tokens take the expert-major path (routing.cpp): ties to the lower index as above, for
// every scoring, across block boundaries and a partial last block.
TEST(Routing, BlockPathTiesToLowerIndex) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> level(-2, 2);  // few distinct values: ties everywhere
  for (MoeScoring scoring : {MoeScoring::kNone, MoeScoring::kSigmoid, MoeScoring::kSoftmax}) {
    const int64_t T = 37, E = 12, k = 3;
    MoeConfig c{E, k, 1, 1, MoeActivation::kRelu, scoring, MoeNormalize::kNone, false};
    std::vector<float> logits(static_cast<size_t>(T * E));
    for (float& v : logits) v = static_cast<float>(level(rng));
    std::vector<int32_t> ids(static_cast<size_t>(T * k));
    std::vector<float> w(static_cast<size_t>(T * k));
    route_tokens(c, logits.data(), T, ids.data(), w.data());
    for (int64_t t = 0; t < T; ++t) {
      std::vector<bool> taken(static_cast<size_t>(E), false);
      for (int64_t j = 0; j < k; ++j) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; ++e)
          if (!taken[static_cast<size_t>(e)] && (best < 0 || logits[static_cast<size_t>(t * E + e)] > logits[static_cast<size_t>(t * E + best)]))
            best = e;
        taken[static_cast<size_t>(best)] = true;
        ASSERT_EQ(ids[static_cast<size_t>(t * k + j)], best) << "token " << t << " slot " << j;
      }
    }
  }
}

// Dense layers folded around the layer (moe_block.h): y = Out(MoE(In(x))) against the reference,
// for row counts around the 32-row tile and both with and without each projection.
TEST(MoeBlock, FoldedDenseLayersMatchReference) {
  for (int threads : {1, 2})
    for (int64_t T : {0, 1, 5, 31, 32, 33, 64, 100})
      for (int mode = 0; mode < 3; ++mode) {  // 0: both projections, 1: input only, 2: output only
        std::mt19937 rng(static_cast<unsigned>(T * 7 + mode));
        const int64_t Kin = 50, E = 8, H = 16, I = 16, N = 10;
        MoeConfig c{E, 2, H, I, MoeActivation::kRelu, MoeScoring::kSoftmax, MoeNormalize::kSoftmax, false};
        Tensor router = randn({E, H}, rng), rb = randn({E}, rng), w1 = randn({E, I, H}, rng, 0.3f), b1 = randn({E, I}, rng),
               w2 = randn({E, H, I}, rng, 0.3f), b2 = randn({E, H}, rng);
        Tensor win = randn({H, Kin}, rng, 0.2f), bin = randn({H}, rng), wout = randn({N, H}, rng, 0.3f), bout = randn({N}, rng);
        const bool use_in = mode != 2, use_out = mode != 1;
        MoeWeights w = pack_moe_weights(c, router, &rb, w1, &b1, w2, &b2, nullptr, nullptr);
        DenseProjection in = use_in ? pack_dense_projection(win, &bin, "in") : DenseProjection{};
        DenseProjection out = use_out ? pack_dense_projection(wout, &bout, "out") : DenseProjection{};
        const int64_t x_cols = use_in ? Kin : H, y_cols = use_out ? N : H;
        Tensor x = randn({T, x_cols}, rng);
        // Reference: the dense layers in double, the MoE layer by the reference above.
        Tensor h(DType::kFloat32, {T, H});
        for (int64_t t = 0; t < T; ++t)
          for (int64_t o = 0; o < H; ++o) {
            double s = use_in ? bin.data<float>()[o] : 0.0;
            if (use_in)
              for (int64_t i = 0; i < Kin; ++i) s += static_cast<double>(win.data<float>()[o * Kin + i]) * x.data<float>()[t * Kin + i];
            else s = x.data<float>()[t * H + o];
            h.data<float>()[t * H + o] = static_cast<float>(s);
          }
        auto z = reference(c, h, router, rb, w1, b1, w2, b2, Tensor(), Tensor());
        std::vector<double> ref(static_cast<size_t>(T * y_cols));
        for (int64_t t = 0; t < T; ++t)
          for (int64_t o = 0; o < y_cols; ++o) {
            double s = use_out ? bout.data<float>()[o] : 0.0;
            if (use_out)
              for (int64_t i = 0; i < H; ++i) s += static_cast<double>(wout.data<float>()[o * H + i]) * z[static_cast<size_t>(t * H + i)];
            else s = z[static_cast<size_t>(t * H + o)];
            ref[static_cast<size_t>(t * y_cols + o)] = s;
          }
        ThreadPool pool(threads);
        std::vector<char> scratch(moe_block_scratch_bytes(c, in, out, T, threads) + 64);
        void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63});
        std::vector<float> y(static_cast<size_t>(T * y_cols));
        std::vector<int64_t> counts(static_cast<size_t>(E), -1);
        moe_block_forward(c, w, in, out, x.data<float>(), T, y.data(), counts.data(), aligned, pool);
        for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << "T=" << T << " mode " << mode;
        int64_t total = 0;
        for (auto n : counts) total += n;
        EXPECT_EQ(total, T * 2);
      }
}

// The tiny-expert kernel of every ISA this CPU runs (AVX-512, AVX2) against the generic tile path,
// over every size it covers, with and without biases and an output projection.
TEST(MoeBlock, TinyExpertKernelMatchesGenericPath) {
  const Isa before = active_isa();
  for (Isa isa : runnable_isas()) {
  if (!moe_kernel_table(isa).tiny_moe) continue;
  set_isa_cap(isa);
  for (int64_t H : {16, 32, 64})
    for (int64_t I : {16, 32, 64})
      for (int variant = 0; variant < 4; ++variant) {
        const int64_t E = variant == 0 ? 16 : 3 + 2 * variant, k = 1 + variant % 3, N = variant % 2 ? 7 : 0, T = 45;
        const MoeNormalize norm = variant == 1 ? MoeNormalize::kNone : (variant == 2 ? MoeNormalize::kSum : MoeNormalize::kSoftmax);
        MoeConfig c{E, k, H, I, variant == 3 ? MoeActivation::kIdentity : MoeActivation::kRelu, MoeScoring::kSoftmax, norm, false};
        std::mt19937 rng(static_cast<unsigned>(H * 100 + I * 10 + variant));
        Tensor router = randn({E, H}, rng), rb = randn({E}, rng), w1 = randn({E, I, H}, rng, 0.3f), b1 = randn({E, I}, rng),
               w2 = randn({E, H, I}, rng, 0.3f), b2 = randn({E, H}, rng), wout = randn({7, H}, rng, 0.3f), bout = randn({7}, rng);
        const bool biases = variant != 2;
        MoeWeights w = pack_moe_weights(c, router, biases ? &rb : nullptr, w1, biases ? &b1 : nullptr, w2,
                                        biases ? &b2 : nullptr, nullptr, nullptr);
        DenseProjection in, out = N ? pack_dense_projection(wout, biases ? &bout : nullptr, "out") : DenseProjection{};
        Tensor x = randn({T, H}, rng);
        const int64_t cols = N ? N : H;
        ThreadPool pool(2);
        std::vector<char> scratch(moe_block_scratch_bytes(c, in, out, T, 2) + 64);
        void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63});
        std::vector<float> fast(static_cast<size_t>(T * cols)), generic(fast.size());
        std::vector<int64_t> fast_counts(static_cast<size_t>(E)), generic_counts(static_cast<size_t>(E));
        moe_block_forward(c, w, in, out, x.data<float>(), T, fast.data(), fast_counts.data(), aligned, pool);
        disable_tiny_kernel() = true;
        moe_block_forward(c, w, in, out, x.data<float>(), T, generic.data(), generic_counts.data(), aligned, pool);
        disable_tiny_kernel() = false;
        EXPECT_EQ(fast_counts, generic_counts) << "H=" << H << " I=" << I << " variant " << variant;
        for (size_t i = 0; i < fast.size(); ++i)
          ASSERT_NEAR(fast[i], generic[i], 1e-4 * (1 + std::fabs(generic[i])))
              << isa_name(isa) << " H=" << H << " I=" << I << " variant " << variant;
      }
  }
  set_isa_cap(before);
}

std::vector<std::string> moe_fixtures() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fs::path(SWITCHYARD_SOURCE_DIR) / "tests" / "fixtures"))
    if (e.path().extension() == ".onnx" && (e.path().stem().string().rfind("seed", 0) == 0 ||
                                            e.path().stem().string().rfind("mixtral", 0) == 0))
      names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

class FusedVsUnfused : public ::testing::TestWithParam<std::string> {};

TEST_P(FusedVsUnfused, AgreeAndFuse) {
  const fs::path dir = fs::path(SWITCHYARD_SOURCE_DIR) / "tests" / "fixtures";
  Engine engine;
  CompiledModel fused = engine.compile((dir / (GetParam() + ".onnx")).string(), {2, true});
  CompiledModel unfused = engine.compile((dir / (GetParam() + ".onnx")).string(), {2, false});
  ASSERT_FALSE(fused.compile_notes().empty());
  EXPECT_EQ(fused.compile_notes()[0].rfind("fused MoE layer", 0), 0u) << fused.compile_notes()[0];
  if (GetParam().rfind("seed", 0) == 0) {  // the seed classifiers also fold their embedding and head
    ASSERT_GE(fused.compile_notes().size(), 2u);
    EXPECT_EQ(fused.compile_notes()[1].rfind("folded dense layers into MoE", 0), 0u) << fused.compile_notes()[1];
  }
  auto inputs = read_npz((dir / (GetParam() + ".inputs.npz")).string());
  // Fixture inputs, and fresh random ones with more tokens (other routing).
  std::mt19937 rng(7);
  for (int variant = 0; variant < 2; ++variant) {
    std::map<std::string, Tensor> feeds;
    for (const auto& [n, t] : inputs) {
      Shape s = t.shape();
      if (variant == 1) s[0] = 97;
      feeds[n] = variant == 0 ? t : randn(s, rng);
    }
    auto a = fused.run(feeds), b = unfused.run(feeds);
    for (const auto& [n, ta] : a) {
      const Tensor& tb = b.at(n);
      ASSERT_EQ(ta.shape(), tb.shape());
      for (int64_t i = 0; i < ta.numel(); ++i)
        ASSERT_NEAR(ta.data<float>()[i], tb.data<float>()[i], 1e-5 * std::max(1.0f, std::fabs(tb.data<float>()[i]))) << n << "[" << i << "]";
    }
  }
  auto request = fused.create_infer_request();
  for (const auto& [n, t] : inputs) request.set_input(n, t);
  request.infer();
  auto counts = request.expert_counts();
  ASSERT_EQ(counts.size(), 1u);
  int64_t total = 0;
  for (int64_t e = 0; e < counts[0].second.numel(); ++e) total += counts[0].second.data<int64_t>()[e];
  EXPECT_GT(total, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FusedVsUnfused, ::testing::ValuesIn(moe_fixtures()),
                         [](const auto& info) { return info.param; });

}  // namespace
