#include "kernels/dense_linear.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/gemm_kernel.h"
#include "kernels/gemm_panel.h"
#include "core/thread_pool.h"

namespace switchyard {

namespace {

// Best of 3 timed runs (after one warm-up) of fn, in seconds.
template <typename F>
double best_time(F&& fn) {
  fn();
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

std::optional<DenseLinear> DenseLinear::make(const Tensor* b, bool trans_b, Precision precision, int64_t group) {
  const WeightFormat format = weight_format_for(precision);
  if (!b || b->dtype() != DType::kFloat32 || b->rank() != 2) return std::nullopt;
  const int64_t N = trans_b ? b->dim(0) : b->dim(1), K = trans_b ? b->dim(1) : b->dim(0);
  if (N == 0 || K == 0) return std::nullopt;
  // FP32: worth measuring only where oneDNN runs (sgemm's M >= 8 path) and the layer is not tiny.
  if (format == WeightFormat::kFp32 && (!sgemm_uses_library() || N * K < 4096)) return std::nullopt;
  Tensor linear = trans_b ? *b : Tensor(DType::kFloat32, {N, K});  // nn.Linear layout [N, K]
  if (!trans_b) transpose_matrix(b->data<float>(), K, N, linear.data<float>());
  DenseLinear d;
  d.w_ = pack_linear(linear, 1, N, K, format, group, "dense weight");
  if (format != WeightFormat::kFp32) return d;
  // SWITCHYARD_DENSE_GEMM=library | panels | panels-few-rows forces the choice (benchmarks, bisecting,
  // tests); otherwise layers of one shape are measured once per process and ISA.
  const char* force = std::getenv("SWITCHYARD_DENSE_GEMM");
  if (force && std::string(force) == "library") return std::nullopt;
  if (force && std::string(force) == "panels") return d;
  if (force && std::string(force) == "panels-few-rows") {
    d.panels_many_ = false;
    return d;
  }
  static std::mutex mutex;
  static std::map<std::tuple<int64_t, int64_t, int>, std::pair<bool, bool>> measured;
  const auto key = std::make_tuple(N, K, static_cast<int>(active_isa()));
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = measured.find(key); it != measured.end()) {
      std::tie(d.panels_few_, d.panels_many_) = it->second;
      return d.panels_few_ || d.panels_many_ ? std::optional<DenseLinear>(std::move(d)) : std::nullopt;
    }
  }
  // Row-major [K, N] for sgemm and a fixed input; few rows and many (64..256, at most about 256 M
  // multiply-adds, so that compiling stays quick); on the machine's cores, as the layer will run
  // (oneDNN and the panels scale differently).
  Tensor kn = trans_b ? Tensor(DType::kFloat32, {K, N}) : *b;
  if (trans_b) transpose_matrix(b->data<float>(), N, K, kn.data<float>());
  ThreadPool pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  auto panels_win = [&](int64_t M) {
    std::vector<float> A(static_cast<size_t>(M * K)), C(static_cast<size_t>(M * N));
    for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>(i % 7) * 0.25f - 0.75f;
    std::vector<char> scratch(d.scratch_bytes(M) + 64);
    const double library = best_time([&] { sgemm(false, M, N, K, 1.f, A.data(), K, kn.data<float>(), N, 0.f, C.data(), N, &pool); });
    const double panels = best_time([&] { d.run(M, A.data(), C.data(), scratch.data(), pool); });
    return panels < 0.9 * library;
  };
  d.panels_few_ = panels_win(16);
  d.panels_many_ = panels_win(std::clamp<int64_t>((int64_t{1} << 28) / (N * K), kManyRows, 256));
  {
    std::lock_guard<std::mutex> lock(mutex);
    measured[key] = {d.panels_few_, d.panels_many_};
  }
  if (!d.panels_few_ && !d.panels_many_) return std::nullopt;
  return d;
}

std::string DenseLinear::choice() const {
  if (w_.format != WeightFormat::kFp32) return "";  // no choice: the precision's panels
  return std::string("dense FP32 GEMM measured at compile time: ") + (panels_few_ ? "panels" : "oneDNN") + " below " +
         std::to_string(kManyRows) + " rows, " + (panels_many_ ? "panels" : "oneDNN") + " from there";
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
