// The sparse spatial MoE layer against a plain reference: every expert convolved over the whole image
// (zero padding), DepthToSpace, then each tile's weighted sum — over routing modes, kernel sizes, block
// sizes, image shapes that make tiles of one expert touch or stand alone, and every ISA the CPU runs.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <array>
#include <random>

#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "moe/spatial_moe_layer.h"

namespace switchyard {
namespace {

struct Case {
  int64_t experts, block, upscale, k;
  std::vector<std::array<int64_t, 3>> layers;  // cout, cin, kernel
  int64_t batch, height, width;
  bool dcr = false;
  MoeActivation act = MoeActivation::kRelu;
};

// Dense reference: conv stack of expert e over the whole image [cin, H, W] -> [cout_last, H, W].
std::vector<float> dense_expert(const Case& c, const std::vector<Tensor>& w, const std::vector<Tensor>& b, int64_t e,
                                const float* img, int64_t H, int64_t W) {
  std::vector<float> cur(img, img + c.layers[0][1] * H * W);
  for (size_t l = 0; l < c.layers.size(); ++l) {
    const int64_t co = c.layers[l][0], ci = c.layers[l][1], k = c.layers[l][2], r = k / 2;
    std::vector<float> next(static_cast<size_t>(co * H * W));
    const float* wl = w[l].data<float>() + e * co * ci * k * k;
    for (int64_t o = 0; o < co; ++o)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          double acc = b[l].data<float>()[e * co + o];
          for (int64_t i = 0; i < ci; ++i)
            for (int64_t ky = 0; ky < k; ++ky)
              for (int64_t kx = 0; kx < k; ++kx) {
                const int64_t iy = y + ky - r, ix = x + kx - r;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += static_cast<double>(wl[((o * ci + i) * k + ky) * k + kx]) * cur[static_cast<size_t>((i * H + iy) * W + ix)];
              }
          float v = static_cast<float>(acc);
          if (l + 1 < c.layers.size() && c.act == MoeActivation::kRelu) v = std::max(v, 0.f);
          next[static_cast<size_t>((o * H + y) * W + x)] = v;
        }
    cur.swap(next);
  }
  return cur;
}

void run_case(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  SpatialMoeConfig cfg;
  cfg.num_experts = c.experts;
  cfg.block = c.block;
  cfg.upscale = c.upscale;
  cfg.k = c.k;
  cfg.dcr = c.dcr;
  cfg.activation = c.act;
  SpatialMoeWeights weights;
  std::vector<Tensor> ws, bs;
  for (size_t l = 0; l < c.layers.size(); ++l) {
    const auto [co, ci, k] = c.layers[l];
    Tensor w(DType::kFloat32, {c.experts, co, ci, k, k}), b(DType::kFloat32, {c.experts, co});
    for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = uni(rng) * 0.5f;
    for (int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] = uni(rng) * 0.5f;
    weights.layers.push_back(pack_spatial_conv(cfg, w, &b, "layer"));
    ws.push_back(w);
    bs.push_back(b);
  }
  const int64_t N = c.batch, H = c.height, W = c.width, B = c.block, s = c.upscale, hb = H / B, wb = W / B;
  const int64_t cin = c.layers[0][1], clast = c.layers.back()[0], cimg = clast / (s * s);
  Tensor x(DType::kFloat32, {N, cin, H, W}), gate(DType::kFloat32, {N, c.experts, hb, wb});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = uni(rng);
  for (int64_t i = 0; i < gate.numel(); ++i) {
    float v = uni(rng);
    if (c.k == 0) v = v > 0.2f ? 0.f : v + 1.5f;  // weights with zeros: some tiles get no expert
    gate.data<float>()[i] = v;
  }
  // Combine weights the reference uses: given (k = 0) or softmax over the top-k logits.
  std::vector<float> cw(static_cast<size_t>(N * c.experts * hb * wb), 0.f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < hb * wb; ++t) {
      auto g = [&](int64_t e) { return gate.data<float>()[(n * c.experts + e) * hb * wb + t]; };
      auto& out = cw;
      auto at = [&](int64_t e) -> float& { return out[static_cast<size_t>((n * c.experts + e) * hb * wb + t)]; };
      if (c.k == 0) {
        for (int64_t e = 0; e < c.experts; ++e) at(e) = g(e);
        continue;
      }
      std::vector<int64_t> order(static_cast<size_t>(c.experts));
      for (int64_t e = 0; e < c.experts; ++e) order[static_cast<size_t>(e)] = e;
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b2) { return g(a) > g(b2); });
      double sum = 0;
      for (int64_t j = 0; j < c.k; ++j) sum += std::exp(static_cast<double>(g(order[static_cast<size_t>(j)]) - g(order[0])));
      for (int64_t j = 0; j < c.k; ++j) {
        const int64_t e = order[static_cast<size_t>(j)];
        at(e) = c.k == 1 ? 1.f : static_cast<float>(std::exp(static_cast<double>(g(e) - g(order[0]))) / sum);
      }
    }
  std::vector<float> want(static_cast<size_t>(N * cimg * H * s * W * s), 0.f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t e = 0; e < c.experts; ++e) {
      const std::vector<float> d = dense_expert(c, ws, bs, e, x.data<float>() + n * cin * H * W, H, W);
      for (int64_t ci = 0; ci < cimg; ++ci)
        for (int64_t Y = 0; Y < H * s; ++Y)
          for (int64_t X = 0; X < W * s; ++X) {
            const int64_t y = Y / s, xx = X / s, dy = Y % s, dx = X % s;
            const int64_t ch = c.dcr ? (dy * s + dx) * cimg + ci : (ci * s + dy) * s + dx;
            const float wt = cw[static_cast<size_t>((n * c.experts + e) * hb * wb + (y / B) * wb + xx / B)];
            if (wt != 0.f)
              want[static_cast<size_t>(((n * cimg + ci) * H * s + Y) * W * s + X)] += wt * d[static_cast<size_t>((ch * H + y) * W + xx)];
          }
    }
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    std::vector<char> scratch(spatial_moe_scratch_bytes(cfg, weights, H, W, threads) + 64);
    void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
    std::vector<float> got(want.size(), -7.f);
    std::vector<int64_t> counts(static_cast<size_t>(c.experts)), map(static_cast<size_t>(N * hb * wb));
    spatial_moe_forward(cfg, weights, x.data<float>(), N, H, W, gate.data<float>(), got.data(), counts.data(), map.data(),
                        aligned, pool);
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-4f * (1.f + std::fabs(want[i]))) << "element " << i << " threads " << threads;
    int64_t routed = 0;
    for (int64_t e = 0; e < c.experts; ++e) routed += counts[static_cast<size_t>(e)];
    int64_t nonzero = 0;
    for (float v : cw) nonzero += v != 0.f;
    EXPECT_EQ(routed, nonzero);
    for (int64_t t = 0; t < N * hb * wb; ++t) EXPECT_GE(map[static_cast<size_t>(t)], c.k == 0 ? -1 : 0);
  }
}

TEST(SpatialMoe, MatchesDenseReferenceOnEveryIsa) {
  const Isa before = active_isa();
  for (Isa isa : runnable_isas()) {
    set_isa_cap(isa);
    SCOPED_TRACE(static_cast<int>(isa));
    // The upsampler's shape, top-1 and top-2, one image and a batch of two.
    run_case({8, 8, 4, 1, {{{16, 1, 3}, {16, 16, 3}, {16, 16, 3}}}, 1, 24, 40}, 1);
    run_case({8, 8, 4, 2, {{{16, 1, 3}, {16, 16, 3}, {16, 16, 3}}}, 2, 16, 32}, 2);
    // Weight maps with zeros (k = 0), DCR head, 5x5 and 1x1 kernels, 3 input channels, small blocks whose
    // dilated halos bridge gaps, identity activation.
    run_case({3, 4, 2, 0, {{{6, 3, 5}, {5, 6, 1}, {8, 5, 3}}}, 1, 12, 20, true}, 3);
    run_case({4, 2, 1, 0, {{{4, 2, 3}, {3, 4, 3}}}, 2, 6, 10, false, MoeActivation::kIdentity}, 4);
    // One tile, one expert, one layer without upscale; wide layers (two GEMM panels), top-3.
    run_case({1, 8, 1, 1, {{{2, 1, 3}}}, 1, 8, 8}, 5);
    run_case({5, 8, 2, 3, {{{40, 3, 3}, {12, 40, 3}}}, 1, 32, 24}, 6);
  }
  set_isa_cap(before);
}

}  // namespace
}  // namespace switchyard
