// Dense layers at the compile precisions (kernels/dense_linear.h) against the FP32 product: relative error
// within each format's tolerance over row counts that cross the row blocks, column tails, depths that
// are not whole weight groups; B given transposed or not gives the same packing; a pool of threads
// gives the same bits as one thread; FP32 stays with sgemm.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/dense_linear.h"
#include "core/thread_pool.h"

using namespace switchyard;

namespace {

struct Case {
  Precision precision;
  const char* name;
  double tolerance;  // error of C vs the FP32 product, relative to the size of the product's terms
};

const Case kCases[] = {{Precision::kFp16, "fp16", 1e-3},        {Precision::kBf16, "bf16", 1e-2},
                       {Precision::kInt8, "int8", 1.5e-2},        {Precision::kInt4, "int4", 0.15},
                       {Precision::kInt8Weights, "int8-weights", 1e-2}, {Precision::kInt4Weights, "int4-weights", 0.15}};

// ||got - ref|| / sqrt(sum of the squared terms a_ik b_kj): the weights' and rows' relative rounding,
// not inflated where a sum happens to cancel.
double relative_error(const std::vector<float>& got, const std::vector<double>& ref, double squared_terms) {
  double num = 0;
  for (size_t i = 0; i < got.size(); ++i) num += (got[i] - ref[i]) * (got[i] - ref[i]);
  return std::sqrt(num / std::max(squared_terms, 1e-30));
}

}  // namespace

TEST(DenseLinear, EveryPrecisionMatchesFp32WithinItsTolerance) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  ThreadPool one(1), two(2);
  for (int64_t M : {1, 5, 130, 300})
    for (int64_t N : {1, 45, 96})
      for (int64_t K : {64, 100}) {
        Tensor b(DType::kFloat32, {K, N}), bt(DType::kFloat32, {N, K});
        for (int64_t k = 0; k < K; ++k)
          for (int64_t n = 0; n < N; ++n) bt.data<float>()[n * K + k] = b.data<float>()[k * N + n] = normal(rng);
        std::vector<float> a(static_cast<size_t>(M * K));
        for (float& v : a) v = normal(rng);
        std::vector<double> ref(static_cast<size_t>(M * N), 0.0);
        double squared_terms = 0;
        for (int64_t i = 0; i < M; ++i)
          for (int64_t k = 0; k < K; ++k)
            for (int64_t n = 0; n < N; ++n) {
              const double t = double(a[i * K + k]) * b.data<float>()[k * N + n];
              ref[static_cast<size_t>(i * N + n)] += t;
              squared_terms += t * t;
            }
        for (const Case& c : kCases) {
          const std::string label = std::string(c.name) + " M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
          auto dense = DenseLinear::make(&b, false, c.precision, 32);
          auto dense_t = DenseLinear::make(&bt, true, c.precision, 32);
          ASSERT_TRUE(dense && dense_t) << label;
          std::vector<uint8_t> scratch(dense->scratch_bytes(M) + 64);
          std::vector<float> c1(static_cast<size_t>(M * N), 7.f), c2 = c1, c3 = c1;
          dense->run(M, a.data(), c1.data(), scratch.data(), one);
          dense->run(M, a.data(), c2.data(), scratch.data(), two);
          dense_t->run(M, a.data(), c3.data(), scratch.data(), two);
          EXPECT_LT(relative_error(c1, ref, squared_terms), c.tolerance) << label;
          EXPECT_EQ(c1, c2) << label << ": threads change the result";
          EXPECT_EQ(c2, c3) << label << ": transposed B packs differently";
        }
      }
}

TEST(DenseLinear, Fp32AndNonConstantWeightsStayWithSgemm) {
  Tensor b(DType::kFloat32, {4, 4});
  EXPECT_FALSE(DenseLinear::make(&b, false, Precision::kFp32, 32));
  EXPECT_FALSE(DenseLinear::make(nullptr, false, Precision::kBf16, 32));
  Tensor b3(DType::kFloat32, {2, 4, 4});
  EXPECT_FALSE(DenseLinear::make(&b3, false, Precision::kBf16, 32));
}
