// The FP32 GEMM entry points (sgemm, sgemm_small) against a double-precision reference, sweeping the
// shapes that select different kernels: every row remainder of the 16/8/4/1-row narrow tiles, column
// tails below one vector, K = 1, alpha/beta, one thread and a pool.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm_kernel.h"
#include "kernels/gemm_panel.h"
#include "kernels/gemm_panel_quant.h"
#include "kernels/gemm_panel_s8.h"
#include "core/thread_pool.h"

using namespace switchyard;

namespace {

// C [M, ldc] against sum_k a(i, k) * w(k, j) in double, within 1e-5 of the sum of |terms|, in its
// first N columns; the padding columns must still hold the 7 they were filled with.
template <typename FA, typename FW>
void expect_product(int64_t M, int64_t N, int64_t K, const std::vector<float>& C, int64_t ldc, FA a, FW w,
                    const std::string& label) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const float got = C[static_cast<size_t>(i * ldc + j)];
      if (j >= N) {
        ASSERT_EQ(got, 7.f) << label;
        continue;
      }
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double t = a(i, k) * w(k, j);
        ref += t;
        mag += std::fabs(t);
      }
      ASSERT_NEAR(got, ref, 1e-5 * (1 + mag)) << label << " at " << i << "," << j;
    }
}

}  // namespace

namespace {

void check(int64_t M, int64_t N, int64_t K, float alpha, float beta, bool small, ThreadPool* pool) {
  std::mt19937 rng(static_cast<unsigned>(M * 1000003 + N * 1009 + K));
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  const int64_t lda = K + 3, ldb = N + 5, ldc = N + 2;  // leading dimensions wider than the matrices
  std::vector<float> A(static_cast<size_t>(M * lda)), B(static_cast<size_t>(K * ldb)), C(static_cast<size_t>(M * ldc));
  for (auto& v : A) v = d(rng);
  for (auto& v : B) v = d(rng);
  for (auto& v : C) v = d(rng);
  std::vector<float> C0 = C;
  if (small) sgemm_small(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc);
  else sgemm(false, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, pool);
  if (small) alpha = 1.f, beta = 0.f;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const float got = C[static_cast<size_t>(i * ldc + j)];
      if (j >= N) {  // padding between rows is never written
        ASSERT_EQ(got, C0[static_cast<size_t>(i * ldc + j)]) << M << "x" << N << "x" << K << " wrote padding";
        continue;
      }
      double ref = 0;
      for (int64_t k = 0; k < K; ++k) ref += static_cast<double>(A[static_cast<size_t>(i * lda + k)]) * B[static_cast<size_t>(k * ldb + j)];
      ref = alpha * ref + (beta == 0.f ? 0.0 : beta * static_cast<double>(C0[static_cast<size_t>(i * ldc + j)]));
      ASSERT_NEAR(got, ref, 1e-5 * (1 + std::sqrt(static_cast<double>(K)))) << M << "x" << N << "x" << K << " at " << i << "," << j;
    }
}

TEST(Gemm, NarrowAndSmallShapesMatchReference) {
  ThreadPool pool(2);
  for (int64_t M : {1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 16, 24, 25, 32, 37})
    for (int64_t N : {1, 5, 15, 16, 17, 31, 32, 33, 64, 70})
      for (int64_t K : {1, 9, 67, 130}) {
        check(M, N, K, 1.f, 0.f, true, nullptr);
        check(M, N, K, 0.5f, 0.f, false, nullptr);
        check(M, N, K, 1.5f, -0.25f, false, &pool);
      }
}

TEST(Gemm, LargeShapesMatchReference) {
  ThreadPool pool(2);
  check(64, 16, 784, 1.f, 0.f, true, nullptr);  // the seed classifier's embedding
  check(64, 16, 784, 1.f, 1.f, false, &pool);
  check(96, 200, 300, 1.f, 0.f, false, &pool);
  check(3, 512, 1024, 1.f, 0.f, false, &pool);  // streaming small-M path, split over the pool
}

}  // namespace

// The panel GEMM of the MoE experts (weights prepacked into 32-column panels): the dispatched kernel
// (AVX-512 here) and the portable one against a double reference, over every row-group size (1..12
// and the balanced splits above), column tails of the last panel, panel sub-ranges and K = 1.
namespace {

void check_panels(int64_t M, int64_t N, int64_t K, bool portable) {
  std::mt19937 rng(static_cast<unsigned>(M * 7919 + N * 31 + K));
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  const int64_t lda = K + 3, ldc = N + 7;
  std::vector<float> A(static_cast<size_t>(M * lda)), W(static_cast<size_t>(2 * N * K));  // two matrices [N, K]
  for (auto& v : A) v = d(rng);
  for (auto& v : W) v = d(rng);
  const Tensor packed = pack_panels_from_linear(W.data(), 2, N, K);
  ASSERT_EQ(packed.numel(), 2 * panel_floats(K, N));
  const float* second = packed.data<float>() + panel_floats(K, N);  // the second matrix
  const int64_t panels = panel_count(N);
  // Panels in two calls ([0, split) and [split, panels)) as two tasks would run them.
  const int64_t split = panels / 2;
  std::vector<float> C(static_cast<size_t>(M * ldc), 7.f);
  auto run = portable ? gemm_panels_portable : gemm_panels;
  run(M, N, K, A.data(), lda, second, 0, split, C.data(), ldc);
  run(M, N, K, A.data(), lda, second, split, panels, C.data(), ldc);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const float got = C[static_cast<size_t>(i * ldc + j)];
      if (j >= N) {
        ASSERT_EQ(got, 7.f) << M << "x" << N << "x" << K << " wrote past the columns";
        continue;
      }
      double ref = 0;
      for (int64_t k = 0; k < K; ++k)
        ref += static_cast<double>(A[static_cast<size_t>(i * lda + k)]) * W[static_cast<size_t>(N * K + j * K + k)];
      ASSERT_NEAR(got, ref, 1e-5 * (1 + std::sqrt(static_cast<double>(K))))
          << (portable ? "portable " : "") << M << "x" << N << "x" << K << " at " << i << "," << j;
    }
}

TEST(GemmPanels, EveryRowGroupAndColumnTailMatchesReference) {
  for (bool portable : {false, true})
    for (int64_t M = 1; M <= 40; M += (M < 14 ? 1 : 9))
      for (int64_t N : {1, 16, 17, 32, 45, 64, 100})
        for (int64_t K : {1, 7, 64, 129}) check_panels(M, N, K, portable);
}

}  // namespace

// BF16 panels: the dispatched kernel (AVX512-BF16 here) and the portable one against a double
// reference on the BF16-rounded operands (what both compute exactly up to FP32 summation order), and
// the rounding itself within BF16's half-ulp of the FP32 operands.
namespace {

double bf16_value(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void check_panels_bf16(int64_t M, int64_t N, int64_t K, bool portable) {
  std::mt19937 rng(static_cast<unsigned>(M * 7919 + N * 31 + K + 5));
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  const int64_t lda = K + 3, ldab = (K + 1) / 2 * 2 + 2, ldc = N + 7;
  std::vector<float> A(static_cast<size_t>(M * lda)), W(static_cast<size_t>(N * K));
  for (auto& v : A) v = d(rng);
  for (auto& v : W) v = d(rng);
  const Tensor packed = pack_panels_bf16_from_linear(W.data(), 1, N, K);
  ASSERT_EQ(packed.numel(), panel_bf16_elems(K, N));
  std::vector<uint16_t> Ab(static_cast<size_t>(M * ldab), 0xffff);
  round_rows_to_bf16(A.data(), M, K, lda, Ab.data(), ldab);
  std::vector<float> C(static_cast<size_t>(M * ldc), 7.f);
  const int64_t panels = panel_count(N), split = panels / 2;
  auto run = portable ? gemm_panels_bf16_portable : gemm_panels_bf16;
  const auto* P = static_cast<const uint16_t*>(packed.raw());
  run(M, N, K, Ab.data(), ldab, P, 0, split, C.data(), ldc);
  run(M, N, K, Ab.data(), ldab, P, split, panels, C.data(), ldc);
  // The packed weight (k, n) of the BF16 layout, for the reference.
  auto weight = [&](int64_t k, int64_t n) {
    return bf16_value(P[(n / kPanelWidth) * ((K + 1) / 2) * 2 * kPanelWidth + (k / 2) * 2 * kPanelWidth + 2 * (n % kPanelWidth) + k % 2]);
  };
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t k = 0; k < K; ++k)
      ASSERT_NEAR(bf16_value(Ab[static_cast<size_t>(i * ldab + k)]), A[static_cast<size_t>(i * lda + k)],
                  std::fabs(A[static_cast<size_t>(i * lda + k)]) * (1.0 / 256));
    for (int64_t j = 0; j < ldc; ++j) {
      const float got = C[static_cast<size_t>(i * ldc + j)];
      if (j >= N) {
        ASSERT_EQ(got, 7.f);
        continue;
      }
      double ref = 0;
      for (int64_t k = 0; k < K; ++k) ref += bf16_value(Ab[static_cast<size_t>(i * ldab + k)]) * weight(k, j);
      ASSERT_NEAR(got, ref, 1e-5 * (1 + std::sqrt(static_cast<double>(K))))
          << (portable ? "portable " : "") << M << "x" << N << "x" << K << " at " << i << "," << j;
    }
  }
}

TEST(GemmPanelsBf16, EveryRowGroupColumnTailAndOddDepthMatchesReference) {
  for (bool portable : {false, true})
    for (int64_t M = 1; M <= 40; M += (M < 14 ? 1 : 9))
      for (int64_t N : {1, 17, 32, 45, 64})
        for (int64_t K : {1, 2, 7, 64, 129}) check_panels_bf16(M, N, K, portable);
}

}  // namespace

// Weight-only INT8 / INT4 panels: the dispatched path (AVX-512 in-register dequantization up to 4
// rows, dequantize-then-FP32-kernel above) and the portable kernel against a double reference on the
// dequantized weights, over row counts, column tails, groups that do not divide K and panel ranges;
// and the quantization error itself (INT8 ~0.3%, INT4 ~9% RMS of Gaussian weights).
namespace {

void check_quant_panels(int bits, int64_t group, int64_t M, int64_t N, int64_t K, bool portable) {
  std::mt19937 rng(static_cast<unsigned>(M * 7919 + N * 31 + K + bits));
  std::normal_distribution<float> d(0.f, 1.f);
  const int64_t lda = K + 3, ldc = N + 7;
  std::vector<float> A(static_cast<size_t>(M * lda)), W(static_cast<size_t>(2 * N * K));
  for (auto& v : A) v = d(rng);
  for (auto& v : W) v = d(rng);
  const QuantPanels q = quantize_panels_from_linear(W.data(), 2, N, K, bits, group);
  const int64_t panels = panel_count(N), split = panels / 2;
  std::vector<float> deq(static_cast<size_t>(panels * K * kPanelWidth));
  for (int64_t p = 0; p < panels; ++p) dequantize_panel(q, 1, p, deq.data() + p * K * kPanelWidth);
  double err2 = 0, w2 = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const double e = deq[static_cast<size_t>((n / kPanelWidth) * K * kPanelWidth + k * kPanelWidth + n % kPanelWidth)] -
                       W[static_cast<size_t>(N * K + n * K + k)];
      err2 += e * e;
      w2 += static_cast<double>(W[static_cast<size_t>(N * K + n * K + k)]) * W[static_cast<size_t>(N * K + n * K + k)];
    }
  if (K * N >= 1024) EXPECT_LE(std::sqrt(err2 / w2), bits == 8 ? 0.006 : 0.12) << bits << "-bit quantization error";
  std::vector<float> C(static_cast<size_t>(M * ldc), 7.f);
  auto run = portable ? gemm_quant_panels_portable : gemm_quant_panels;
  run(M, A.data(), lda, q, 1, 0, split, C.data(), ldc);
  run(M, A.data(), lda, q, 1, split, panels, C.data(), ldc);
  expect_product(
      M, N, K, C, ldc, [&](int64_t i, int64_t k) { return static_cast<double>(A[static_cast<size_t>(i * lda + k)]); },
      [&](int64_t k, int64_t j) {
        return static_cast<double>(deq[static_cast<size_t>((j / kPanelWidth) * K * kPanelWidth + k * kPanelWidth + j % kPanelWidth)]);
      },
      std::string(portable ? "portable " : "") + std::to_string(bits) + "-bit group " + std::to_string(group) + " " +
          std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
}

TEST(GemmQuantPanels, Int8AndInt4MatchDequantizedReference) {
  for (int bits : {8, 4})
    for (bool portable : {false, true})
      for (int64_t M : {1, 2, 3, 4, 5, 13})
        for (int64_t N : {1, 17, 32, 45})
          for (int64_t K : {1, 31, 64, 100})
            for (int64_t group : {32, 7}) check_quant_panels(bits, group, M, N, K, portable);
  check_quant_panels(4, 32, 1, 256, 512, false);  // the error bounds on a larger matrix
  check_quant_panels(8, 32, 2, 256, 512, false);
}

}  // namespace

// INT8 with dynamic activations: the dispatched kernel (AVX512-VNNI) equals the portable one bit for
// bit (same integer sums, same two multiplies), and both equal an exact integer reference on the
// codes; the quantization error of a whole product is ~1% of its scale.
namespace {

void check_panels_s8(int64_t M, int64_t N, int64_t K) {
  std::mt19937 rng(static_cast<unsigned>(M * 131 + N * 17 + K));
  std::normal_distribution<float> d(0.f, 1.f);
  const int64_t lda = K + 5, ldq = s8_row_ld(K), ldc = N + 3;
  std::vector<float> A(static_cast<size_t>(M * lda)), W(static_cast<size_t>(2 * N * K));
  for (auto& v : A) v = d(rng);
  for (auto& v : W) v = d(rng);
  const S8Panels q = quantize_panels_s8_from_linear(W.data(), 2, N, K);
  std::vector<uint8_t> Aq(static_cast<size_t>(M * ldq));
  std::vector<float> row_scales(static_cast<size_t>(M));
  quantize_rows_u8(A.data(), M, K, lda, Aq.data(), ldq, row_scales.data());
  const int64_t panels = panel_count(N), split = panels / 2;
  std::vector<float> fast(static_cast<size_t>(M * ldc), 7.f), portable(fast);
  gemm_panels_s8(M, Aq.data(), ldq, row_scales.data(), q, 1, 0, split, fast.data(), ldc);
  gemm_panels_s8(M, Aq.data(), ldq, row_scales.data(), q, 1, split, panels, fast.data(), ldc);
  gemm_panels_s8_portable(M, Aq.data(), ldq, row_scales.data(), q, 1, 0, panels, portable.data(), ldc);
  const auto* codes = reinterpret_cast<const int8_t*>(q.codes.data<uint8_t>() + q.codes_per_matrix());
  const float* scales = q.scales.data<float>() + panels * kPanelWidth;
  double err2 = 0, ref2 = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      ASSERT_EQ(fast[at], portable[at]) << M << "x" << N << "x" << K << " at " << i << "," << j;
      if (j >= N) {
        ASSERT_EQ(fast[at], 7.f);
        continue;
      }
      int64_t sum = 0;
      double exact = 0;
      for (int64_t k = 0; k < K; ++k) {
        const int a = static_cast<int>(Aq[static_cast<size_t>(i * ldq + k)]) - 128;
        ASSERT_GE(a, -127);
        sum += a * codes[(j / kPanelWidth) * q.quads() * 128 + (k / 4) * 128 + 4 * (j % kPanelWidth) + k % 4];
        exact += static_cast<double>(A[static_cast<size_t>(i * lda + k)]) * W[static_cast<size_t>(N * K + j * K + k)];
      }
      const float expect = static_cast<float>(sum) * scales[j] * row_scales[static_cast<size_t>(i)];
      ASSERT_EQ(fast[at], expect) << M << "x" << N << "x" << K << " at " << i << "," << j;
      err2 += (fast[at] - exact) * (fast[at] - exact);
      ref2 += exact * exact;
    }
  if (K >= 64 && M * N >= 64) EXPECT_LE(std::sqrt(err2 / ref2), 0.02) << M << "x" << N << "x" << K;
}

TEST(GemmPanelsS8, VnniEqualsPortableAndIntegerReference) {
  for (int64_t M = 1; M <= 40; M += (M < 14 ? 1 : 9))
    for (int64_t N : {1, 17, 32, 45, 64})
      for (int64_t K : {1, 3, 4, 7, 64, 129}) check_panels_s8(M, N, K);
}

TEST(GemmPanelsS8, ZeroAndNonFiniteRowsQuantizeSafely) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> A = {0, 0, 0, 0, 0, 1, -2, nan, inf, -inf, 4, 0.5f};
  std::vector<uint8_t> q(16);
  std::vector<float> s(3);
  quantize_rows_u8(A.data(), 3, 4, 4, q.data(), 4, s.data());
  EXPECT_EQ(s[0], 0.f);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(q[static_cast<size_t>(k)], 128);
  EXPECT_FLOAT_EQ(s[1], 2.f / 127.f);
  EXPECT_EQ(q[5], 128 + 64);   // 1 -> 63.5 -> 64 (nearest even)
  EXPECT_EQ(q[6], 128 - 127);  // -2 -> -127
  EXPECT_EQ(q[7], 128);        // NaN -> 0
  EXPECT_FLOAT_EQ(s[2], 4.f / 127.f);
  EXPECT_EQ(q[8], 255);  // +inf -> 127
  EXPECT_EQ(q[9], 1);    // -inf -> -127
}

TEST(GemmPanelsS8, DispatchedRowQuantizationEqualsPortable) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.f, 3.f);
  for (int64_t K : {1, 5, 16, 17, 100, 1024}) {
    const int64_t M = 7, lda = K + 1, ldo = s8_row_ld(K);
    std::vector<float> A(static_cast<size_t>(M * lda));
    for (auto& v : A) v = d(rng);
    A[0] = std::numeric_limits<float>::quiet_NaN();
    A[static_cast<size_t>(lda)] = -std::numeric_limits<float>::infinity();
    A[static_cast<size_t>(2 * lda + K - 1)] = 0.5f * (A[static_cast<size_t>(2 * lda)] = 2.f);  // exact .5 ties
    std::vector<uint8_t> fast(static_cast<size_t>(M * ldo)), portable(fast.size());
    std::vector<float> sf(static_cast<size_t>(M)), sp(sf.size());
    quantize_rows_u8(A.data(), M, K, lda, fast.data(), ldo, sf.data());
    quantize_rows_u8_portable(A.data(), M, K, lda, portable.data(), ldo, sp.data());
    EXPECT_EQ(fast, portable) << "K " << K;
    EXPECT_EQ(sf, sp) << "K " << K;
  }
}

}  // namespace

// W4A8: INT4 weight panels re-laid for VNNI, times INT8 activation codes. The dispatched kernel and
// the portable one against a double reference computed from the codes, scales and minimums (the
// integer dot products are exact; only the FP32 scaling rounds), over row groups, column tails, K
// not a multiple of the group or of 4, and panel ranges.
namespace {

void check_panels_s4(int64_t M, int64_t N, int64_t K, int64_t group, bool portable) {
  std::mt19937 rng(static_cast<unsigned>(M * 31 + N * 7 + K * 3 + group));
  std::normal_distribution<float> d(0.f, 1.f);
  const int64_t lda = K + 2, ldq = s8_row_ld(K), ldc = N + 3;
  std::vector<float> A(static_cast<size_t>(M * lda)), W(static_cast<size_t>(2 * N * K));
  for (auto& v : A) v = d(rng);
  for (auto& v : W) v = d(rng);
  const QuantPanels q4 = quantize_panels_from_linear(W.data(), 2, N, K, 4, group);
  const S4Panels q = relayout_int4_for_vnni(q4);
  std::vector<uint8_t> Aq(static_cast<size_t>(M * ldq));
  std::vector<float> row_scales(static_cast<size_t>(M));
  quantize_rows_u8(A.data(), M, K, lda, Aq.data(), ldq, row_scales.data());
  const int64_t panels = panel_count(N), split = panels / 2;
  std::vector<float> C(static_cast<size_t>(M * ldc), 7.f);
  auto run = portable ? gemm_panels_s4_portable : gemm_panels_s4;
  std::vector<int32_t> sums(static_cast<size_t>(M * q.groups()));
  activation_group_sums(M, K, group, Aq.data(), ldq, sums.data());
  run(M, Aq.data(), ldq, row_scales.data(), sums.data(), q, 1, 0, split, C.data(), ldc);
  run(M, Aq.data(), ldq, row_scales.data(), sums.data(), q, 1, split, panels, C.data(), ldc);
  std::vector<float> deq(static_cast<size_t>(panels * K * kPanelWidth));  // the FP32 panels of matrix 1
  for (int64_t p = 0; p < panels; ++p) dequantize_panel(q4, 1, p, deq.data() + p * K * kPanelWidth);
  expect_product(
      M, N, K, C, ldc,
      [&](int64_t i, int64_t k) {
        return (static_cast<int>(Aq[static_cast<size_t>(i * ldq + k)]) - 128) * static_cast<double>(row_scales[static_cast<size_t>(i)]);
      },
      [&](int64_t k, int64_t j) {
        return static_cast<double>(deq[static_cast<size_t>((j / kPanelWidth) * K * kPanelWidth + k * kPanelWidth + j % kPanelWidth)]);
      },
      std::string(portable ? "portable " : "") + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) +
          " group " + std::to_string(group));
}

TEST(GemmPanelsS4, W4A8MatchesReferenceOnTheCodes) {
  for (bool portable : {false, true})
    for (int64_t M : {1, 2, 3, 4, 5, 9})
      for (int64_t N : {1, 17, 32, 45})
        for (int64_t K : {1, 6, 31, 64, 100})
          for (int64_t group : {32, 8}) check_panels_s4(M, N, K, group, portable);
}

TEST(GemmPanelsS4, GroupNotAMultipleOfFourIsRefused) {
  std::vector<float> W(64, 1.f);
  EXPECT_THROW(relayout_int4_for_vnni(quantize_panels_from_linear(W.data(), 1, 2, 32, 4, 7)), Error);
}

}  // namespace

// FP16 weight storage: the dispatched kernel and the portable one against a double reference on the
// FP16-rounded weights (FP32 arithmetic otherwise), over row groups, column tails and panel ranges.
namespace {

void check_panels_fp16(int64_t M, int64_t N, int64_t K, bool portable) {
  std::mt19937 rng(static_cast<unsigned>(M * 13 + N * 5 + K));
  std::normal_distribution<float> d(0.f, 1.f);
  const int64_t lda = K + 1, ldc = N + 2;
  std::vector<float> A(static_cast<size_t>(M * lda)), W(static_cast<size_t>(2 * N * K));
  for (auto& v : A) v = d(rng);
  for (auto& v : W) v = d(rng);
  const Tensor packed = pack_panels_fp16_from_linear(W.data(), 2, N, K);
  const auto* second = static_cast<const uint16_t*>(packed.raw()) + panel_floats(K, N);
  const int64_t panels = panel_count(N), split = panels / 2;
  std::vector<float> C(static_cast<size_t>(M * ldc), 7.f);
  auto run = portable ? gemm_panels_fp16_portable : gemm_panels_fp16;
  run(M, N, K, A.data(), lda, second, 0, split, C.data(), ldc);
  run(M, N, K, A.data(), lda, second, split, panels, C.data(), ldc);
  expect_product(
      M, N, K, C, ldc, [&](int64_t i, int64_t k) { return static_cast<double>(A[static_cast<size_t>(i * lda + k)]); },
      [&](int64_t k, int64_t j) { return static_cast<double>(half_to_float(float_to_half(W[static_cast<size_t>(N * K + j * K + k)]))); },
      std::string(portable ? "portable " : "") + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
}

TEST(GemmPanelsFp16, MatchesReferenceOnRoundedWeights) {
  for (bool portable : {false, true})
    for (int64_t M : {1, 3, 12, 13, 30})
      for (int64_t N : {1, 17, 32, 45})
        for (int64_t K : {1, 7, 64}) check_panels_fp16(M, N, K, portable);
}

}  // namespace
