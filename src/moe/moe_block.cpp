#include "moe/moe_block.h"

#include "moe/moe_kernels.h"
#include "kernels/scratch_layout.h"

#include <algorithm>
#include <cstring>

#include "kernels/gemm_kernel.h"
#include "core/thread_pool.h"

namespace switchyard {

namespace {

// Rows per tile: the tile's input projection output, expert rows and MoE output stay in L1
// (32 rows x 16..64 floats), and a 64-row batch still splits evenly over two threads.
constexpr int64_t kTileRows = 32;

struct PartLayout {
  size_t hidden_in, moe_out, moe_scratch, counts, total;
};

PartLayout part_layout(const MoeConfig& c, const DenseProjection& in, const DenseProjection& out) {
  PartLayout l{};
  ScratchLayoutBuilder b;
  auto take = [&](size_t bytes) { return b.take(bytes); };
  const auto rows_h = static_cast<size_t>(kTileRows * c.hidden) * 4;
  l.hidden_in = in.defined() ? take(rows_h) : 0;
  l.moe_out = out.defined() ? take(rows_h) : 0;
  l.counts = take(static_cast<size_t>(c.num_experts) * 8);
  l.moe_scratch = take(moe_scratch_bytes(c, kTileRows));
  l.total = b.total();
  return l;
}

// One element per row: out[r] = bias (or 0) + x[r] W (the small-M register kernel, this thread only).
void dense_rows(const DenseProjection& p, const float* x, int64_t rows, float* y) {
  sgemm_small(rows, p.out, p.in, x, p.in, p.w_t.data<float>(), p.out, y, p.out);
  if (p.b.defined()) {
    const float* b = p.b.data<float>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < p.out; ++j) y[r * p.out + j] += b[j];
  }
}


}  // namespace

DenseProjection pack_dense_projection(const Tensor& weight, const Tensor* bias, const char* name) {
  SY_CHECK(weight.dtype() == DType::kFloat32 && weight.rank() == 2,
           std::string("MoE: ") + name + " weight must be float32 [out, in], got " + shape_str(weight.shape()));
  DenseProjection p;
  p.out = weight.dim(0);
  p.in = weight.dim(1);
  p.w_t = Tensor(DType::kFloat32, {p.in, p.out});
  transpose_matrix(weight.data<float>(), p.out, p.in, p.w_t.data<float>());
  if (bias) {
    SY_CHECK(bias->dtype() == DType::kFloat32 && bias->numel() == p.out,
             std::string("MoE: ") + name + " bias must be float32 with " + std::to_string(p.out) + " elements, got " +
                 shape_str(bias->shape()));
    p.b = bias->clone();
  }
  return p;
}

bool& disable_tiny_kernel() {
  static bool disabled = false;
  return disabled;
}

size_t moe_block_scratch_bytes(const MoeConfig& c, const DenseProjection& in, const DenseProjection& out, int64_t,
                               int threads) {
  return part_layout(c, in, out).total * static_cast<size_t>(std::max(threads, 1));
}

void moe_block_forward(const MoeConfig& c, const MoeWeights& w, const DenseProjection& in, const DenseProjection& out,
                       const float* x, int64_t T, float* y, int64_t* expert_counts, void* scratch, ThreadPool& pool) {
  const int64_t E = c.num_experts, H = c.hidden;
  const int64_t x_cols = in.defined() ? in.in : H, y_cols = out.defined() ? out.out : H;
  const PartLayout l = part_layout(c, in, out);
  // Contiguous shares of whole tiles, one per thread: the work per row is uniform (the experts are
  // tiny next to the projections), so no stealing is needed, and each share has its own scratch.
  const int64_t tiles = (T + kTileRows - 1) / kTileRows;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(pool.size(), tiles));
  static ThreadPool serial(1);  // the MoE layer inside a tile runs on this thread only
  // Tiny experts (the seed classifier): router, top-k, experts and output projection per row in
  // registers instead of the generic layer's dispatch and per-expert GEMM calls, where this ISA has it.
  const TinyMoeFn tiny_kernel = moe_kernels().tiny_moe;
  const bool tiny = tiny_kernel && !disable_tiny_kernel() && !w.selection_bias.defined() && w.w1_t.defined() &&
                    x86::tiny_moe_supported(c, out.defined() ? out.out : 0);
  auto ptr = [](const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; };
  x86::TinyMoe tm{&c, ptr(w.router_t), ptr(w.router_b), ptr(w.w1_t), ptr(w.b1), ptr(w.w2_t), ptr(w.b2)};
  if (out.defined()) {
    tm.out_t = out.w_t.data<float>();
    tm.out_b = out.b.defined() ? out.b.data<float>() : nullptr;
    tm.out_n = out.out;
  }
  pool.parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      char* base = static_cast<char*>(scratch) + static_cast<size_t>(p) * l.total;
      auto* counts = reinterpret_cast<int64_t*>(base + l.counts);
      std::memset(counts, 0, static_cast<size_t>(E) * 8);
      const int64_t t_begin = tiles * p / parts * kTileRows, t_end = std::min(T, tiles * (p + 1) / parts * kTileRows);
      for (int64_t r0 = t_begin; r0 < t_end; r0 += kTileRows) {
        const int64_t rows = std::min(kTileRows, t_end - r0);
        const float* moe_in = x + r0 * x_cols;
        if (in.defined()) {
          auto* h = reinterpret_cast<float*>(base + l.hidden_in);
          dense_rows(in, moe_in, rows, h);
          moe_in = h;
        }
        if (tiny) {
          tiny_kernel(tm, moe_in, rows, y + r0 * y_cols, y_cols, counts);
          continue;
        }
        float* moe_out = out.defined() ? reinterpret_cast<float*>(base + l.moe_out) : y + r0 * y_cols;
        int64_t tile_counts[1024];
        moe_forward(c, w, moe_in, rows, moe_out, tile_counts, base + l.moe_scratch, serial);
        for (int64_t e = 0; e < E; ++e) counts[e] += tile_counts[e];
        if (out.defined()) dense_rows(out, moe_out, rows, y + r0 * y_cols);
      }
    }
  });
  if (expert_counts) {
    std::memset(expert_counts, 0, static_cast<size_t>(E) * 8);
    for (int64_t p = 0; p < parts; ++p) {
      const auto* counts = reinterpret_cast<const int64_t*>(static_cast<char*>(scratch) + static_cast<size_t>(p) * l.total + l.counts);
      for (int64_t e = 0; e < E; ++e) expert_counts[e] += counts[e];
    }
  }
}

}  // namespace switchyard
