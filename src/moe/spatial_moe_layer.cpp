#include "moe/spatial_moe_layer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/thread_pool.h"
#include "kernels/conv_nhwc.h"
#include "kernels/gemm_kernel.h"
#include "kernels/gemm_panel.h"
#include "moe/moe_kernels.h"

namespace switchyard {
namespace {

constexpr int64_t kRunPixels = 64;  // GEMM rows per task: the im2col rows (64 x 145 floats) stay in L1/L2
constexpr int64_t kMaxLayers = 64;  // deeper experts take the layer-by-layer path

// A run of pixels [x0, x1) of image row y that one layer computes.
struct Run {
  int32_t y, x0, x1;
};

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

struct Layout {
  size_t xin = 0, buf0 = 0, buf1 = 0, weights = 0, runs = 0, tasks = 0, colsel = 0, written = 0, zeros = 0, slots = 0,
         slot_bytes = 0, a_bytes = 0, forms_bytes = 0, tmp_bytes = 0, total = 0;
  // per thread when whole experts run on one thread: each layer's runs, column selection, two activation buffers
  size_t own = 0, own_bytes = 0, own_colsel = 0, own_buf0 = 0, own_buf1 = 0;
  int64_t max_runs = 0, kmax = 0, cmax = 0, cin_max = 0, taps_max = 0;
};

Layout layout(const SpatialMoeConfig& c, const SpatialMoeWeights& w, int64_t H, int64_t W, int threads) {
  Layout l;
  const int64_t hb = H / c.block, wb = W / c.block;
  int64_t cmid = 1;
  for (size_t i = 0; i + 1 < w.layers.size(); ++i) cmid = std::max(cmid, w.layers[i].cout);
  for (const SpatialConv& s : w.layers) {
    l.kmax = std::max(l.kmax, s.k());
    l.cmax = std::max(l.cmax, s.cout);
    l.cin_max = std::max(l.cin_max, s.cin);
    l.taps_max = std::max(l.taps_max, s.kh * s.kw);
  }
  // A row holds at most one span per tile column (spans of neighbouring tiles merge) plus the splits
  // into runs of kRunPixels.
  l.max_runs = H * (wb + 1 + W / kRunPixels + 1);
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
  l.runs = take(static_cast<size_t>(l.max_runs) * sizeof(Run));
  l.tasks = take(static_cast<size_t>(l.max_runs + 1) * sizeof(int32_t));
  l.colsel = take(static_cast<size_t>(wb));
  l.written = take(static_cast<size_t>(hb * wb));
  l.zeros = take(static_cast<size_t>(l.cin_max) * 4);
  l.a_bytes = align64(static_cast<size_t>(kRunPixels * l.kmax) * 4);
  l.forms_bytes = align64(linear_rows_bytes(c.weight_format, kRunPixels, l.kmax, c.weight_group));
  l.tmp_bytes = align64(static_cast<size_t>(kRunPixels * l.cmax) * 4);
  // per thread: im2col rows (or the direct convolution's row pointers), their converted forms, the last layer's output
  l.slot_bytes = std::max(l.a_bytes, align64(static_cast<size_t>(l.taps_max * kRunPixels) * sizeof(float*))) + l.forms_bytes +
                 l.tmp_bytes;
  l.slots = take(l.slot_bytes * static_cast<size_t>(threads));
  const size_t act = align64(static_cast<size_t>(H * W * cmid) * 4);
  l.own_colsel = align64(static_cast<size_t>(l.max_runs * static_cast<int64_t>(w.layers.size())) * sizeof(Run));
  l.own_buf0 = l.own_colsel + align64(static_cast<size_t>(wb));
  l.own_buf1 = l.own_buf0 + act;
  l.own_bytes = l.own_buf1 + act;
  l.own = threads > 1 ? take(l.own_bytes * static_cast<size_t>(threads)) : 0;
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

// The runs of the pixels within `radius` (Chebyshev) of expert e's tiles, row by row. Rows whose window
// of tile rows is the same share one column selection.
int64_t build_runs(const SpatialMoeConfig& c, const float* weights_e, int64_t H, int64_t W, int64_t ry, int64_t rx,
                   uint8_t* colsel, Run* out) {
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
      for (int64_t s = x0; s < x1; s += kRunPixels)
        out[n++] = {static_cast<int32_t>(y), static_cast<int32_t>(s), static_cast<int32_t>(std::min(x1, s + kRunPixels))};
      bx = end_bx + 1;
    }
  }
  return n;
}

// Short copies inline: most im2col pieces are a few floats (kw x cin), where a memcpy call costs more
// than the copy.
inline void copy_floats(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) __builtin_memcpy(dst + i, src + i, 64);  // fixed size: inlined as vector moves
  for (; i + 4 <= n; i += 4) __builtin_memcpy(dst + i, src + i, 16);
  for (; i < n; ++i) dst[i] = src[i];
}

// im2col rows of the pixels of run r, followed by a 1 (the bias column): per pixel, kh x kw pieces of
// cin floats of the NHWC input, zeros outside the image (the dense convolution's zero padding).
void im2col_rows(const SpatialConv& s, const float* in, int64_t H,
                 int64_t W, const Run& r, float* a) {
  const int64_t cin = s.cin, K = s.k(), ry = s.radius_y(), rx = s.radius_x(), piece = s.kw * cin;
  for (int64_t x = r.x0; x < r.x1; ++x) {
    float* row = a + (x - r.x0) * K;
    for (int64_t ky = 0; ky < s.kh; ++ky) {
      const int64_t iy = r.y + ky - ry;
      float* dst = row + ky * piece;
      if (iy < 0 || iy >= H) {
        for (int64_t i = 0; i < piece; ++i) dst[i] = 0.f;
        continue;
      }
      const int64_t ix0 = x - rx;
      if (ix0 >= 0 && ix0 + s.kw <= W) {  // interior: one contiguous piece of kw * cin floats
        copy_floats(dst, in + (iy * W + ix0) * cin, piece);
        continue;
      }
      for (int64_t kx = 0; kx < s.kw; ++kx) {
        const int64_t ix = ix0 + kx;
        if (ix < 0 || ix >= W)
          for (int64_t i = 0; i < cin; ++i) dst[kx * cin + i] = 0.f;
        else
          copy_floats(dst + kx * cin, in + (iy * W + ix) * cin, cin);
      }
    }
    row[K - 1] = 1.f;
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
  const int64_t E = c.num_experts, K = s.k();
  if (bias)
    SY_CHECK(bias->dtype() == DType::kFloat32 && bias->numel() == E * s.cout,
             what + " bias must be float32 [" + std::to_string(E) + ", " + std::to_string(s.cout) + "], got " +
                 shape_str(bias->shape()));
  // [E, Cout, Cin, kh, kw] + bias -> nn.Linear layout [E, Cout, (ky, kx, ci) + 1], the im2col row order
  Tensor linear(DType::kFloat32, {E, s.cout, K});
  const float* src = w.data<float>();
  float* dst = linear.data<float>();
  for (int64_t e = 0; e < E; ++e)
    for (int64_t o = 0; o < s.cout; ++o) {
      for (int64_t ci = 0; ci < s.cin; ++ci)
        for (int64_t ky = 0; ky < s.kh; ++ky)
          for (int64_t kx = 0; kx < s.kw; ++kx)
            dst[(e * s.cout + o) * K + (ky * s.kw + kx) * s.cin + ci] =
                src[(((e * s.cout + o) * s.cin + ci) * s.kh + ky) * s.kw + kx];
      dst[(e * s.cout + o) * K + K - 1] = bias ? bias->data<float>()[e * s.cout + o] : 0.f;
    }
  s.weight = pack_linear(linear, E, s.cout, K, c.weight_format, c.weight_group, what);
  if (c.weight_format == WeightFormat::kFp32 && s.cout <= kConvNarrowWidth) {
    const int64_t taps_cin = K - 1;
    s.direct = Tensor(DType::kFloat32, {E, taps_cin, kConvNarrowWidth});
    s.direct_bias = Tensor(DType::kFloat32, {E, kConvNarrowWidth});
    std::memset(s.direct.raw(), 0, s.direct.nbytes());
    std::memset(s.direct_bias.raw(), 0, s.direct_bias.nbytes());
    for (int64_t e = 0; e < E; ++e)
      for (int64_t o = 0; o < s.cout; ++o) {
        for (int64_t k = 0; k < taps_cin; ++k)
          s.direct.data<float>()[(e * taps_cin + k) * kConvNarrowWidth + o] = dst[(e * s.cout + o) * K + k];
        s.direct_bias.data<float>()[e * kConvNarrowWidth + o] = dst[(e * s.cout + o) * K + K - 1];
      }
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
  auto* runs = reinterpret_cast<Run*>(base + l.runs);
  auto* tasks = reinterpret_cast<int32_t*>(base + l.tasks);
  auto* colsel = reinterpret_cast<uint8_t*>(base + l.colsel);
  auto* written = reinterpret_cast<uint8_t*>(base + l.written);  // tiles an expert already wrote (this image)
  // reach[l]: how far beyond the tiles layer l's output is needed (the receptive radius of the layers after it)
  std::vector<int64_t> reach_y(static_cast<size_t>(L), 0), reach_x(static_cast<size_t>(L), 0);
  for (int64_t i = L - 2; i >= 0; --i) {
    reach_y[static_cast<size_t>(i)] = reach_y[static_cast<size_t>(i + 1)] + w.layers[static_cast<size_t>(i + 1)].radius_y();
    reach_x[static_cast<size_t>(i)] = reach_x[static_cast<size_t>(i + 1)] + w.layers[static_cast<size_t>(i + 1)].radius_x();
  }
  int64_t max_radius_y = 0;
  for (const SpatialConv& conv : w.layers) max_radius_y = std::max(max_radius_y, conv.radius_y());
  if (expert_counts) std::memset(expert_counts, 0, static_cast<size_t>(E) * 8);
  const auto* zeros = reinterpret_cast<const float*>(base + l.zeros);
  std::memset(base + l.zeros, 0, static_cast<size_t>(l.cin_max) * 4);
  const size_t a_region = std::max(l.a_bytes, align64(static_cast<size_t>(l.taps_max * kRunPixels) * sizeof(float*)));

  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x + n * cin0 * H * W;
    float* yn = y + n * cimg * Hs * Ws;
    // NCHW -> NHWC once per image, shared by all experts
    pool.parallel_for(H, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t px = 0; px < W; ++px)
          for (int64_t ch = 0; ch < cin0; ++ch) xin[(r * W + px) * cin0 + ch] = xn[(ch * H + r) * W + px];
    });
    route_tiles(c, gate + n * E * tiles, tiles, weights);
    std::memset(written, 0, static_cast<size_t>(tiles));
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

    // One task of layer li of expert e: runs [r0, r1) from `in` into `out` (the last layer into the image).
    // `slot` owns a thread's scratch (im2col rows or row pointers, converted rows, the last layer's rows).
    auto task = [&](int64_t e, int64_t li, const Run* r0, const Run* r1, const float* in, float* out, int64_t slot) {
      const float* we = weights + e * tiles;
      const SpatialConv& conv = w.layers[static_cast<size_t>(li)];
      const bool last = li + 1 == L;
      const int64_t K = conv.k(), cout = conv.cout;
      char* mine = base + l.slots + static_cast<size_t>(slot) * l.slot_bytes;
      auto* a = reinterpret_cast<float*>(mine);  // im2col rows, or the direct path's row pointers
      auto** rows = reinterpret_cast<const float**>(mine);
      void* forms = mine + a_region;
      auto* tmp = reinterpret_cast<float*>(mine + a_region + l.forms_bytes);
      auto scatter = [&, cout](const Run* r0, const Run* r1, const float* v) {
        const int64_t ss = s, ci_n = cimg, hs = Hs, ws = Ws, bb = B, wbb = wb;
        const bool dcr = c.dcr;
        for (const Run* r = r0; r < r1; ++r) {
          const int64_t P = r->x1 - r->x0;
          for (int64_t ci = 0; ci < ci_n; ++ci)
            for (int64_t dy = 0; dy < ss; ++dy) {
              float* orow = yn + (ci * hs + r->y * ss + dy) * ws + r->x0 * ss;
              const float* src = v + (dcr ? dy * ss * ci_n + ci : (ci * ss + dy) * ss);
              const int64_t step = dcr ? ci_n : 1;  // between the dx values of one pixel
              for (int64_t p = 0; p < P;) {
                // one tile at a time: one weight, one write-or-add decision
                const int64_t tile = (r->y / bb) * wbb + (r->x0 + p) / bb;
                const int64_t end = std::min<int64_t>(P, (tile % wbb + 1) * bb - r->x0);
                const float wt = we[tile];
                const bool add = written[tile] != 0;
                if (ss == 4 && step == 1) {  // the x4 PixelShuffle: one 4-float vector per pixel and row
                  using v4 = float __attribute__((vector_size(16)));
                  const v4 w4 = {wt, wt, wt, wt};
                  for (; p < end; ++p) {
                    v4 a, o;
                    __builtin_memcpy(&a, src + p * cout, 16);
                    if (add) {
                      __builtin_memcpy(&o, orow + p * 4, 16);
                      a = o + w4 * a;
                    } else {
                      a = w4 * a;
                    }
                    __builtin_memcpy(orow + p * 4, &a, 16);
                  }
                } else if (add) {
                  for (; p < end; ++p)
                    for (int64_t dx = 0; dx < ss; ++dx) orow[p * ss + dx] += wt * src[p * cout + dx * step];
                } else {
                  for (; p < end; ++p)
                    for (int64_t dx = 0; dx < ss; ++dx) orow[p * ss + dx] = wt * src[p * cout + dx * step];
                }
              }
            }
          v += P * cout;
        }
      };
      if (conv.direct.defined()) {  // one run at a time, straight from and into the NHWC buffers
        const bool relu = c.activation == MoeActivation::kRelu && !last;
        const int64_t kh = conv.kh, kw = conv.kw, cin = conv.cin, taps = kh * kw;
        for (const Run* r = r0; r < r1; ++r) {
          const int64_t P = r->x1 - r->x0;
          conv_tap_rows(in, H, W, cin, r->y, r->x0, P, kh, kw, conv.radius_y(), conv.radius_x(), zeros, rows);
          float* dst = last ? tmp : out + (r->y * W + r->x0) * cout;
          conv_nhwc16(P, taps, conv.cin, rows, conv.direct.data<float>() + e * (K - 1) * kConvNarrowWidth,
                      conv.direct_bias.data<float>() + e * kConvNarrowWidth, cout, relu, dst, cout);
          if (!last && !relu && c.activation != MoeActivation::kIdentity)
            moe_kernels().activate_row(c.activation, dst, P * cout);
          if (last) scatter(r, r + 1, tmp);
        }
        return;
      }
      int64_t P = 0;
      for (const Run* r = r0; r < r1; ++r) {
        im2col_rows(conv, in, H, W, *r, a + P * K);
        P += r->x1 - r->x0;
      }
      const LinearRows lr = linear_rows(c.weight_format, a, P, K, c.weight_group, forms);
      convert_linear_rows(c.weight_format, lr, 0, P, c.weight_group);
      linear_gemm(conv.weight, e, P, lr, 0, panel_count(cout), tmp, cout);
      if (!last) {
        moe_kernels().activate_row(c.activation, tmp, P * cout);
        const float* src = tmp;
        for (const Run* r = r0; r < r1; ++r) {
          const int64_t p = r->x1 - r->x0;
          std::memcpy(out + (r->y * W + r->x0) * cout, src, static_cast<size_t>(p * cout) * 4);
          src += p * cout;
        }
        return;
      }
      scatter(r0, r1, tmp);
    };
    // Layer li of expert e: its runs, grouped into tasks of up to kRunPixels pixels. Returns the task count.
    auto plan = [&](int64_t e, int64_t li, Run* runs, int32_t* tasks, uint8_t* colsel) {
      const int64_t count = build_runs(c, weights + e * tiles, H, W, reach_y[static_cast<size_t>(li)],
                                       reach_x[static_cast<size_t>(li)], colsel, runs);
      int64_t ntasks = 0;
      for (int64_t i = 0, pixels = 0; i < count; ++i) {
        const int64_t p = runs[i].x1 - runs[i].x0;
        if (i == 0 || pixels + p > kRunPixels) {
          tasks[ntasks++] = static_cast<int32_t>(i);
          pixels = 0;
        }
        pixels += p;
      }
      tasks[ntasks] = static_cast<int32_t>(count);
      return ntasks;
    };
    bool exclusive = true;  // every tile has at most one expert (top-1): experts never share output pixels
    for (int64_t t = 0; t < tiles && exclusive; ++t) {
      int64_t n_e = 0;
      for (int64_t e = 0; e < E; ++e) n_e += weights[e * tiles + t] != 0.f;
      exclusive = n_e <= 1;
    }
    if (exclusive && threads > 1 && L <= kMaxLayers) {
      // Whole experts per thread, no barrier between layers: each thread plans and runs its expert's
      // layers in its own buffers (the experts' tiles, and so their output pixels, are disjoint). The layers
      // advance as a wavefront over bands of image rows — layer l on band b, then layer l + 1 on band b - 1 —
      // so what a layer reads was written moments before and is still in cache, however large the image.
      // Two buffers suffice: a band is overwritten (by layer l + 2) only after its last reader (layer l + 1
      // on the band below) ran earlier in the same step.
      const int64_t band = B * std::max<int64_t>(1, (max_radius_y + B - 1) / B);
      const int64_t bands = (H + band - 1) / band;
      std::atomic<int64_t> next_expert{0};
      pool.parallel_for(threads, 1, [&](int64_t s0, int64_t s1) {
        for (int64_t slot = s0; slot < s1; ++slot) {
          char* own = base + l.own + static_cast<size_t>(slot) * l.own_bytes;
          auto* colsel = reinterpret_cast<uint8_t*>(own + l.own_colsel);
          float* bufs[2] = {reinterpret_cast<float*>(own + l.own_buf0), reinterpret_cast<float*>(own + l.own_buf1)};
          for (int64_t e = next_expert.fetch_add(1); e < E; e = next_expert.fetch_add(1)) {
            Run* runs[kMaxLayers];
            int64_t count[kMaxLayers], cursor[kMaxLayers];
            for (int64_t li = 0; li < L; ++li) {
              runs[li] = reinterpret_cast<Run*>(own) + li * l.max_runs;
              count[li] = build_runs(c, weights + e * tiles, H, W, reach_y[static_cast<size_t>(li)],
                                     reach_x[static_cast<size_t>(li)], colsel, runs[li]);
              cursor[li] = 0;
            }
            if (count[0] == 0) continue;  // the expert has no tile in this image
            for (int64_t step = 0; step < bands + L - 1; ++step)
              for (int64_t li = 0; li < L; ++li) {
                const int64_t b = step - li;
                if (b < 0 || b >= bands) continue;
                const int64_t row_end = (b + 1) * band;
                const Run* r = runs[li] + cursor[li];
                const Run* end = runs[li] + count[li];
                while (r < end && r->y < row_end) {  // tasks of up to kRunPixels pixels within the band
                  const Run* first = r;
                  int64_t pixels = 0;
                  do {
                    pixels += r->x1 - r->x0;
                    ++r;
                  } while (r < end && r->y < row_end && pixels + (r->x1 - r->x0) <= kRunPixels);
                  task(e, li, first, r, li == 0 ? xin : bufs[(li - 1) % 2], bufs[li % 2], slot);
                }
                cursor[li] = r - runs[li];
              }
          }
        }
      });
      for (int64_t t = 0; t < tiles; ++t)
        for (int64_t e = 0; e < E; ++e) written[t] |= weights[e * tiles + t] != 0.f;
    } else {
      // Expert after expert; the threads share each layer's tasks (one barrier per layer).
      for (int64_t e = 0; e < E; ++e) {
        const float* in = xin;
        for (int64_t li = 0; li < L; ++li) {
          const int64_t ntasks = plan(e, li, runs, tasks, colsel);
          if (ntasks == 0) break;  // the expert has no tile in this image
          float* out = bufs[li % 2];
          std::atomic<int64_t> next{0};
          pool.parallel_for(std::min<int64_t>(threads, ntasks), 1, [&](int64_t s0, int64_t s1) {
            for (int64_t slot = s0; slot < s1; ++slot)
              for (int64_t t = next.fetch_add(1); t < ntasks; t = next.fetch_add(1))
                task(e, li, runs + tasks[t], runs + tasks[t + 1], in, out, slot);
          });
          in = out;
        }
        for (int64_t t = 0; t < tiles; ++t) written[t] |= weights[e * tiles + t] != 0.f;
      }
    }
    // Tiles no expert took are zero, as in the dense sum.
    for (int64_t t = 0; t < tiles; ++t) {
      if (written[t]) continue;
      const int64_t ty = t / wb, tx = t % wb;
      for (int64_t ci = 0; ci < cimg; ++ci)
        for (int64_t row = ty * B * s; row < (ty + 1) * B * s; ++row)
          std::memset(yn + (ci * Hs + row) * Ws + tx * B * s, 0, static_cast<size_t>(B * s) * 4);
    }
  }
}

}  // namespace switchyard
