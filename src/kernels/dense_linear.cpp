#include "kernels/dense_linear.h"

#include <algorithm>

#include "kernels/gemm_kernel.h"
#include "kernels/gemm_panel.h"
#include "core/thread_pool.h"

namespace switchyard {

std::optional<DenseLinear> DenseLinear::make(const Tensor* b, bool trans_b, Precision precision, int64_t group) {
  const WeightFormat format = weight_format_for(precision);
  if (format == WeightFormat::kFp32 || !b || b->dtype() != DType::kFloat32 || b->rank() != 2) return std::nullopt;
  const int64_t N = trans_b ? b->dim(0) : b->dim(1), K = trans_b ? b->dim(1) : b->dim(0);
  if (N == 0 || K == 0) return std::nullopt;
  Tensor linear = trans_b ? *b : Tensor(DType::kFloat32, {N, K});  // nn.Linear layout [N, K]
  if (!trans_b) transpose_matrix(b->data<float>(), K, N, linear.data<float>());
  DenseLinear d;
  d.w_ = pack_linear(linear, 1, N, K, format, group, "dense weight");
  return d;
}

void DenseLinear::run(int64_t M, const float* A, float* C, void* scratch, ThreadPool& pool) const {
  if (M == 0) return;
  const int64_t K = w_.K, N = w_.N, panels = panel_count(N);
  // The kernels only read the FP32 rows.
  const LinearRows rows = linear_rows(w_.format, const_cast<float*>(A), M, K, w_.group, scratch);
  if (rows.bf16 || rows.u8)
    pool.parallel_for(M, 16, [&](int64_t r0, int64_t r1) { convert_linear_rows(w_.format, rows, r0, r1, w_.group); });
  // Tasks: blocks of rows x ranges of panels (each task streams its panels once per row block).
  constexpr int64_t kRowBlock = 128;
  const int64_t row_blocks = (M + kRowBlock - 1) / kRowBlock;
  const int64_t per_task = std::max<int64_t>(1, panels * row_blocks / (pool.size() * 4));
  const int64_t ranges = (panels + per_task - 1) / per_task;
  pool.parallel_for(row_blocks * ranges, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = (t / ranges) * kRowBlock, r1 = std::min(M, r0 + kRowBlock);
      const int64_t q0 = (t % ranges) * per_task, q1 = std::min(panels, q0 + per_task);
      linear_gemm(w_, 0, r1 - r0, rows.from(r0), q0, q1, C + r0 * N, N);
    }
  });
}

}  // namespace switchyard
