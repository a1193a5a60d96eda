// FP32 dense layers: Switchyard's panels or oneDNN, chosen per shape at compile time
// (kernels/dense_linear.h). Whatever is chosen, every row count gives sgemm's result.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/dense_linear.h"
#include "kernels/gemm_kernel.h"

namespace switchyard {
namespace {

struct EnvGuard {
  explicit EnvGuard(const char* value) {
    if (value) setenv("SWITCHYARD_DENSE_GEMM", value, 1);
    else unsetenv("SWITCHYARD_DENSE_GEMM");
  }
  ~EnvGuard() { unsetenv("SWITCHYARD_DENSE_GEMM"); }
};

void expect_matches_sgemm(const DenseLinear& d, const Tensor& b, bool trans_b) {
  const int64_t K = d.K(), N = d.N();
  std::vector<float> kn(static_cast<size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      kn[static_cast<size_t>(k * N + n)] = trans_b ? b.data<float>()[n * K + k] : b.data<float>()[k * N + n];
  ThreadPool pool(2);
  std::mt19937 rng(3);
  std::normal_distribution<float> dist;
  for (int64_t M : {1, 3, 16, 63, 64, 100}) {
    std::vector<float> A(static_cast<size_t>(M * K)), got(static_cast<size_t>(M * N)), want(got.size());
    for (auto& x : A) x = dist(rng);
    std::vector<char> scratch(d.scratch_bytes(M) + 64);
    d.run(M, A.data(), got.data(), scratch.data(), pool);
    sgemm(false, M, N, K, 1.f, A.data(), K, kn.data(), N, 0.f, want.data(), N, &pool);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << "M " << M;
  }
}

Tensor random_matrix(int64_t rows, int64_t cols) {
  Tensor t(DType::kFloat32, {rows, cols});
  std::mt19937 rng(static_cast<unsigned>(rows * 31 + cols));
  std::normal_distribution<float> dist(0.f, 0.1f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

TEST(DenseGemmChoice, ForcedPanelsMatchSgemmAndLibraryKeepsSgemm) {
  const Tensor b = random_matrix(200, 96);  // [K, N]
  {
    EnvGuard env("panels");
    auto d = DenseLinear::make(&b, false, Precision::kFp32, 32);
    ASSERT_TRUE(d.has_value());
    EXPECT_TRUE(d->always());
    expect_matches_sgemm(*d, b, false);
  }
  {
    EnvGuard env("library");
    EXPECT_FALSE(DenseLinear::make(&b, false, Precision::kFp32, 32).has_value());
  }
}

TEST(DenseGemmChoice, MeasuredChoiceMatchesSgemmAtEveryRowCount) {
  EnvGuard env(nullptr);
  const Tensor b = random_matrix(512, 512);  // [N, K] (transposed, as nn.Linear exports)
  auto d = DenseLinear::make(&b, true, Precision::kFp32, 32);
  if (!sgemm_uses_library()) {
    EXPECT_FALSE(d.has_value());  // nothing to choose between
    return;
  }
  if (!d) return;  // oneDNN won at every row count on this machine: the layer calls sgemm, nothing else to check
  EXPECT_FALSE(d->choice().empty());
  expect_matches_sgemm(*d, b, true);
  // Tiny layers are not measured.
  const Tensor tiny = random_matrix(16, 16);
  EXPECT_FALSE(DenseLinear::make(&tiny, false, Precision::kFp32, 32).has_value());
}

}  // namespace
}  // namespace switchyard
