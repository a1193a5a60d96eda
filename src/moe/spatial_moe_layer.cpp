#include "moe/spatial_moe_layer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/thread_pool.h"
#include "kernels/gemm_kernel.h"
#include "kernels/gemm_panel.h"
#include "moe/moe_kernels.h"

namespace switchyard {
namespace {

constexpr int64_t kChunkPixels = 64;  // GEMM rows per task: the im2col rows (64 x 144 floats) stay in L1/L2

// A run of pixels [x0, x1) of image row y that one layer computes.
struct Chunk {
  int32_t y, x0, x1;
};

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

struct Layout {
  size_t xin = 0, buf0 = 0, buf1 = 0, weights = 0, chunks = 0, colsel = 0, slots = 0, slot_bytes = 0, total = 0;
  int64_t max_chunks = 0, kmax = 0;
};

Layout layout(const SpatialMoeConfig& c, const SpatialMoeWeights& w, int64_t H, int64_t W, int threads) {
  Layout l;
  const int64_t hb = H / c.block, wb = W / c.block;
  int64_t cmid = 1;
  for (size_t i = 0; i + 1 < w.layers.size(); ++i) cmid = std::max(cmid, w.layers[i].cout);
  for (const SpatialConv& s : w.layers) l.kmax = std::max(l.kmax, s.kh * s.kw * s.cin);
  // A row holds at most one span per tile column (spans of neighbouring tiles merge) plus the splits
  // into chunks of kChunkPixels.
  l.max_chunks = H * (wb + 1 + W / kChunkPixels + 1);
  size_t at = 0;
  auto take = [&](size_t bytes) {
    size_t here = at;
    at += align64(bytes);
    return here;
  };
  l.xin = take(static_cast<size_t>(H * W * w.in_channels()) * 4);
  l.buf0 = take(static_cast<size_t>(H * W * cmid) * 4);
  l.buf1 = take(static_cast<size_t>(H * W * cmid) * 4);
  l.weights = take(static_cast<size_t>(c.num_experts * hb * wb) * 4);
  l.chunks = take(static_cast<size_t>(l.max_chunks) * sizeof(Chunk));
  l.colsel = take(static_cast<size_t>(wb));
  l.slot_bytes = align64(static_cast<size_t>(kChunkPixels * l.kmax) * 4) +
                 align64(linear_rows_bytes(c.weight_format, kChunkPixels, l.kmax, c.weight_group)) +
                 align64(static_cast<size_t>(kChunkPixels * w.layers.back().cout) * 4);
  l.slots = take(l.slot_bytes * static_cast<size_t>(threads));
  l.total = at;
  return l;
}

// Combine weights [E, hb * wb] of one image from its gate [E, hb, wb].
void route_tiles(const SpatialMoeConfig& c, const float* gate, int64_t tiles, float* weights) {
  const int64_t E = c.num_experts;
  if (c.k == 0) {
    std::memcpy(weights, gate, static_cast<size_t>(E * tiles) * 4);
    return;
  }
  std::memset(weights, 0, static_cast<size_t>(E * tiles) * 4);
  const int64_t k = std::min(c.k, E);
  int64_t chosen[64];
  for (int64_t t = 0; t < tiles; ++t) {
    // top-k of the logits (softmax keeps the order); ties and NaN -> lower index first
    for (int64_t j = 0; j < k; ++j) {
      int64_t best = -1;
      for (int64_t e = 0; e < E; ++e) {
        bool taken = false;
        for (int64_t i = 0; i < j; ++i) taken |= chosen[i] == e;
        if (taken) continue;
        if (best < 0 || gate[e * tiles + t] > gate[best * tiles + t]) best = e;
      }
      chosen[j] = best;
    }
    if (k == 1) {
      weights[chosen[0] * tiles + t] = 1.f;
      continue;
    }
    const float top = gate[chosen[0] * tiles + t];
    float sum = 0.f, p[64];
    for (int64_t j = 0; j < k; ++j) sum += p[j] = std::exp(gate[chosen[j] * tiles + t] - top);
    for (int64_t j = 0; j < k; ++j) weights[chosen[j] * tiles + t] = p[j] / sum;
  }
}

// The chunks of the pixels within `radius` (Chebyshev) of expert e's tiles, row by row. Rows whose window
// of tile rows is the same share one column selection.
int64_t build_chunks(const SpatialMoeConfig& c, const float* weights_e, int64_t H, int64_t W, int64_t ry, int64_t rx,
                     uint8_t* colsel, Chunk* out) {
  const int64_t B = c.block, hb = H / B, wb = W / B;
  int64_t n = 0, prev_lo = -1, prev_hi = -1;
  bool any = false;
  for (int64_t y = 0; y < H; ++y) {
    // tile rows by whose dilated rows [by*B - ry, by*B + B + ry) contain y
    const int64_t lo = std::max<int64_t>(0, floor_div(y - B - ry, B) + 1);
    const int64_t hi = std::min<int64_t>(hb - 1, floor_div(y + ry, B));
    if (lo != prev_lo || hi != prev_hi) {
      any = false;
      for (int64_t bx = 0; bx < wb; ++bx) {
        uint8_t s = 0;
        for (int64_t by = lo; by <= hi; ++by) s |= weights_e[by * wb + bx] != 0.f;
        colsel[bx] = s;
        any |= s != 0;
      }
      prev_lo = lo;
      prev_hi = hi;
    }
    if (!any) continue;
    for (int64_t bx = 0; bx < wb;) {
      if (!colsel[bx]) {
        ++bx;
        continue;
      }
      int64_t x0 = std::max<int64_t>(0, bx * B - rx), end_bx = bx;
      int64_t x1 = std::min<int64_t>(W, bx * B + B + rx);
      // merge the following selected tiles whose dilated spans touch this one
      for (int64_t nx = end_bx + 1; nx < wb; ++nx) {
        if (!colsel[nx]) continue;
        if (nx * B - rx > x1) break;
        end_bx = nx;
        x1 = std::min<int64_t>(W, nx * B + B + rx);
      }
      for (int64_t s = x0; s < x1; s += kChunkPixels)
        out[n++] = {static_cast<int32_t>(y), static_cast<int32_t>(s), static_cast<int32_t>(std::min(x1, s + kChunkPixels))};
      bx = end_bx + 1;
    }
  }
  return n;
}

// im2col rows of pixels [x0, x1) of row y: per pixel, kh x kw runs of cin floats of the NHWC input,
// zeros outside the image (the dense convolution's zero padding).
void im2col_rows(const SpatialConv& s, const float* in, int64_t H, int64_t W, const Chunk& ch, float* a) {
  const int64_t cin = s.cin, K = s.kh * s.kw * cin, ry = s.radius_y(), rx = s.radius_x();
  for (int64_t x = ch.x0; x < ch.x1; ++x) {
    float* row = a + (x - ch.x0) * K;
    for (int64_t ky = 0; ky < s.kh; ++ky) {
      const int64_t iy = ch.y + ky - ry;
      float* dst = row + ky * s.kw * cin;
      if (iy < 0 || iy >= H) {
        std::memset(dst, 0, static_cast<size_t>(s.kw * cin) * 4);
        continue;
      }
      const int64_t ix0 = x - rx;
      if (ix0 >= 0 && ix0 + s.kw <= W) {  // interior: one contiguous run of kw * cin floats
        std::memcpy(dst, in + (iy * W + ix0) * cin, static_cast<size_t>(s.kw * cin) * 4);
        continue;
      }
      for (int64_t kx = 0; kx < s.kw; ++kx) {
        const int64_t ix = ix0 + kx;
        if (ix < 0 || ix >= W)
          std::memset(dst + kx * cin, 0, static_cast<size_t>(cin) * 4);
        else
          std::memcpy(dst + kx * cin, in + (iy * W + ix) * cin, static_cast<size_t>(cin) * 4);
      }
    }
  }
}

}  // namespace

SpatialConv pack_spatial_conv(const SpatialMoeConfig& c, const Tensor& w, const Tensor* bias, const std::string& what) {
  SY_CHECK(w.dtype() == DType::kFloat32 && w.rank() == 5 && w.dim(0) == c.num_experts,
           what + " must be float32 [experts=" + std::to_string(c.num_experts) + ", Cout, Cin, kh, kw], got " +
               shape_str(w.shape()));
  SpatialConv s;
  s.cout = w.dim(1);
  s.cin = w.dim(2);
  s.kh = w.dim(3);
  s.kw = w.dim(4);
  SY_CHECK(s.cout > 0 && s.cin > 0 && s.kh % 2 == 1 && s.kw % 2 == 1,
           what + ": kernels must have odd sizes (centred 'same' convolutions), got " + shape_str(w.shape()));
  const int64_t E = c.num_experts, K = s.kh * s.kw * s.cin;
  // [E, Cout, Cin, kh, kw] -> nn.Linear layout [E, Cout, (ky, kx, ci)], the im2col row order
  Tensor linear(DType::kFloat32, {E, s.cout, K});
  const float* src = w.data<float>();
  float* dst = linear.data<float>();
  for (int64_t e = 0; e < E; ++e)
    for (int64_t o = 0; o < s.cout; ++o)
      for (int64_t ci = 0; ci < s.cin; ++ci)
        for (int64_t ky = 0; ky < s.kh; ++ky)
          for (int64_t kx = 0; kx < s.kw; ++kx)
            dst[(e * s.cout + o) * K + (ky * s.kw + kx) * s.cin + ci] =
                src[(((e * s.cout + o) * s.cin + ci) * s.kh + ky) * s.kw + kx];
  s.weight = pack_linear(linear, E, s.cout, K, c.weight_format, c.weight_group, what);
  if (c.weight_format == WeightFormat::kFp32 && s.cout <= 16) {
    s.narrow = Tensor(DType::kFloat32, {E, K, s.cout});
    float* b = s.narrow.data<float>();
    for (int64_t e = 0; e < E; ++e)
      for (int64_t o = 0; o < s.cout; ++o)
        for (int64_t k = 0; k < K; ++k) b[(e * K + k) * s.cout + o] = dst[(e * s.cout + o) * K + k];
  }
  s.bias = Tensor(DType::kFloat32, {E, s.cout});
  if (bias) {
    SY_CHECK(bias->dtype() == DType::kFloat32 && bias->numel() == E * s.cout,
             what + " bias must be float32 [" + std::to_string(E) + ", " + std::to_string(s.cout) + "], got " +
                 shape_str(bias->shape()));
    std::memcpy(s.bias.data<float>(), bias->data<float>(), static_cast<size_t>(E * s.cout) * 4);
  } else {
    std::memset(s.bias.data<float>(), 0, static_cast<size_t>(E * s.cout) * 4);
  }
  return s;
}

size_t spatial_moe_scratch_bytes(const SpatialMoeConfig& c, const SpatialMoeWeights& w, int64_t height, int64_t width,
                                 int threads) {
  return layout(c, w, height, width, threads).total;
}

void spatial_moe_forward(const SpatialMoeConfig& c, const SpatialMoeWeights& w, const float* x, int64_t batch,
                         int64_t H, int64_t W, const float* gate, float* y, int64_t* expert_counts,
                         int64_t* block_experts, void* scratch, ThreadPool& pool) {
  const int64_t E = c.num_experts, B = c.block, hb = H / B, wb = W / B, tiles = hb * wb, s = c.upscale;
  const int64_t L = static_cast<int64_t>(w.layers.size()), cin0 = w.in_channels();
  const int64_t cimg = w.out_channels(c), Hs = H * s, Ws = W * s;
  const int threads = pool.size();
  const Layout l = layout(c, w, H, W, threads);
  char* base = static_cast<char*>(scratch);
  auto* xin = reinterpret_cast<float*>(base + l.xin);
  float* bufs[2] = {reinterpret_cast<float*>(base + l.buf0), reinterpret_cast<float*>(base + l.buf1)};
  auto* weights = reinterpret_cast<float*>(base + l.weights);
  auto* chunks = reinterpret_cast<Chunk*>(base + l.chunks);
  auto* colsel = reinterpret_cast<uint8_t*>(base + l.colsel);
  // radius[l]: how far beyond the tiles layer l's output is needed (the receptive radius of the layers after it)
  std::vector<int64_t> reach_y(static_cast<size_t>(L), 0), reach_x(static_cast<size_t>(L), 0);
  for (int64_t i = L - 2; i >= 0; --i) {
    reach_y[static_cast<size_t>(i)] = reach_y[static_cast<size_t>(i + 1)] + w.layers[static_cast<size_t>(i + 1)].radius_y();
    reach_x[static_cast<size_t>(i)] = reach_x[static_cast<size_t>(i + 1)] + w.layers[static_cast<size_t>(i + 1)].radius_x();
  }
  if (expert_counts) std::memset(expert_counts, 0, static_cast<size_t>(E) * 8);

  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x + n * cin0 * H * W;
    float* yn = y + n * cimg * Hs * Ws;
    // NCHW -> NHWC once per image (shared by all experts); the output starts at zero (tiles no expert takes stay 0)
    pool.parallel_for(H, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t px = 0; px < W; ++px)
          for (int64_t ch = 0; ch < cin0; ++ch) xin[(r * W + px) * cin0 + ch] = xn[(ch * H + r) * W + px];
        for (int64_t ch = 0; ch < cimg; ++ch)
          std::memset(yn + (ch * Hs + r * s) * Ws, 0, static_cast<size_t>(s * Ws) * 4);
      }
    });
    route_tiles(c, gate + n * E * tiles, tiles, weights);
    if (expert_counts || block_experts)
      for (int64_t t = 0; t < tiles; ++t) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; ++e) {
          const float v = weights[e * tiles + t];
          if (v == 0.f) continue;
          if (expert_counts) ++expert_counts[e];
          if (best < 0 || v > weights[best * tiles + t]) best = e;
        }
        if (block_experts) block_experts[n * tiles + t] = best;
      }

    for (int64_t e = 0; e < E; ++e) {
      const float* we = weights + e * tiles;
      const float* in = xin;
      for (int64_t li = 0; li < L; ++li) {
        const SpatialConv& conv = w.layers[static_cast<size_t>(li)];
        const bool last = li + 1 == L;
        const int64_t count = build_chunks(c, we, H, W, reach_y[static_cast<size_t>(li)], reach_x[static_cast<size_t>(li)],
                                           colsel, chunks);
        if (count == 0) break;  // the expert has no tile in this image
        float* out = bufs[li % 2];
        const int64_t K = conv.kh * conv.kw * conv.cin, cout = conv.cout;
        const float* bias = conv.bias.data<float>() + e * cout;
        std::atomic<int64_t> next{0};
        const int slots = static_cast<int>(std::min<int64_t>(threads, count));
        pool.parallel_for(slots, 1, [&](int64_t s0, int64_t s1) {
          for (int64_t slot = s0; slot < s1; ++slot) {
            char* mine = base + l.slots + static_cast<size_t>(slot) * l.slot_bytes;
            auto* a = reinterpret_cast<float*>(mine);
            void* forms = mine + align64(static_cast<size_t>(kChunkPixels * l.kmax) * 4);
            auto* tmp = reinterpret_cast<float*>(mine + align64(static_cast<size_t>(kChunkPixels * l.kmax) * 4) +
                                                 align64(linear_rows_bytes(c.weight_format, kChunkPixels, l.kmax, c.weight_group)));
            for (int64_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
              const Chunk& ch = chunks[i];
              const int64_t P = ch.x1 - ch.x0;
              im2col_rows(conv, in, H, W, ch, a);
              float* dst = last ? tmp : out + (ch.y * W + ch.x0) * cout;
              if (conv.narrow.defined()) {
                sgemm_small(P, cout, K, a, K, conv.narrow.data<float>() + e * K * cout, cout, dst, cout);
              } else {
                const LinearRows rows = linear_rows(c.weight_format, a, P, K, c.weight_group, forms);
                convert_linear_rows(c.weight_format, rows, 0, P, c.weight_group);
                linear_gemm(conv.weight, e, P, rows, 0, panel_count(cout), dst, cout);
              }
              for (int64_t p = 0; p < P; ++p)
                for (int64_t o = 0; o < cout; ++o) dst[p * cout + o] += bias[o];
              if (!last) {
                moe_kernels().activate_row(c.activation, dst, P * cout);
                continue;
              }
              // DepthToSpace into the output, times the tile's weight (accumulated: top-k experts share tiles)
              for (int64_t p = 0; p < P; ++p) {
                const int64_t px = ch.x0 + p;
                const float wt = we[(ch.y / B) * wb + px / B];
                const float* v = tmp + p * cout;
                for (int64_t ci = 0; ci < cimg; ++ci)
                  for (int64_t dy = 0; dy < s; ++dy) {
                    float* orow = yn + (ci * Hs + ch.y * s + dy) * Ws + px * s;
                    for (int64_t dx = 0; dx < s; ++dx) {
                      const int64_t src = c.dcr ? (dy * s + dx) * cimg + ci : (ci * s + dy) * s + dx;
                      orow[dx] += wt * v[src];
                    }
                  }
              }
            }
          }
        });
        in = out;
      }
    }
  }
}

}  // namespace switchyard
