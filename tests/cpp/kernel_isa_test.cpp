// Every entry of every ISA's kernel table this CPU runs (AVX-512, AVX2) against the portable table, the
// oracle, in one process: sweeps of rows, columns and depth that cover every register-tile remainder
// (rows 1..14 and past two groups, columns around 8 / 16 / 32, odd depths) and the INT8 paths bit for
// bit. (ctest also reruns every test under SWITCHYARD_ISA=avx2 and portable.)
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/gemm_panel.h"
#include "kernels/gemm_panel_quant.h"
#include "kernels/gemm_panel_s8.h"

namespace switchyard {
namespace {

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<Isa> fast_isas() {
  std::vector<Isa> out;
  for (Isa isa : runnable_isas())
    if (isa != Isa::kPortable) out.push_back(isa);
  return out;
}

const std::vector<int64_t> kRows = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 17, 25, 40};
const std::vector<int64_t> kCols = {1, 7, 8, 9, 16, 17, 31, 32, 33, 45, 64, 100};
const std::vector<int64_t> kDepths = {1, 2, 3, 5, 8, 31, 64, 129};

void expect_close(const std::vector<float>& fast, const std::vector<float>& ref, int64_t K, const std::string& what) {
  ASSERT_EQ(fast.size(), ref.size());
  const double tol = 2e-5 * (1 + std::sqrt(static_cast<double>(K)));
  for (size_t i = 0; i < fast.size(); ++i)
    ASSERT_NEAR(fast[i], ref[i], tol * (1 + std::fabs(ref[i]))) << what << " at " << i;
}

std::string label(Isa isa, int64_t M, int64_t N, int64_t K) {
  return std::string(isa_name(isa)) + " " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
}

// Calls fn(table, isa, M, N, K) for every ISA above portable and every shape of the sweep.
template <typename F>
void for_each_isa_and_shape(F&& fn) {
  for (Isa isa : fast_isas())
    for (int64_t M : kRows)
      for (int64_t N : kCols)
        for (int64_t K : kDepths) fn(kernel_table(isa), isa, M, N, K);
}

TEST(KernelIsa, F32F16Bf16PanelsMatchPortable) {
  const KernelTable& portable = kernel_table(Isa::kPortable);
  std::mt19937 rng(1);
  for_each_isa_and_shape([&](const KernelTable& t, Isa isa, int64_t M, int64_t N, int64_t K) {
    const std::string what = label(isa, M, N, K);
    const auto w = random_floats(static_cast<size_t>(N * K), rng), A = random_floats(static_cast<size_t>(M * K), rng);
    const int64_t panels = panel_count(N), ldc = N + 3;
    std::vector<float> fast(static_cast<size_t>(M * ldc), 7.f), ref(fast);
    const Tensor f32 = pack_panels_from_linear(w.data(), 1, N, K);
    t.f32_gemm_panel(M, N, K, A.data(), K, f32.data<float>(), 0, panels, fast.data(), ldc);
    portable.f32_gemm_panel(M, N, K, A.data(), K, f32.data<float>(), 0, panels, ref.data(), ldc);
    expect_close(fast, ref, K, "f32 " + what);
    const Tensor f16 = pack_panels_fp16_from_linear(w.data(), 1, N, K);
    const auto* h = static_cast<const uint16_t*>(f16.raw());
    t.f16_gemm_panel(M, N, K, A.data(), K, h, 0, panels, fast.data(), ldc);
    portable.f16_gemm_panel(M, N, K, A.data(), K, h, 0, panels, ref.data(), ldc);
    expect_close(fast, ref, K, "f16 " + what);
    const Tensor b16 = pack_panels_bf16_from_linear(w.data(), 1, N, K);
    const int64_t ldb = (K + 1) / 2 * 2;
    std::vector<uint16_t> Ab(static_cast<size_t>(M * ldb));
    round_rows_to_bf16(A.data(), M, K, K, Ab.data(), ldb);
    const auto* b = static_cast<const uint16_t*>(b16.raw());
    t.bf16_gemm_panel(M, N, K, Ab.data(), ldb, b, 0, panels, fast.data(), ldc);
    portable.bf16_gemm_panel(M, N, K, Ab.data(), ldb, b, 0, panels, ref.data(), ldc);
    expect_close(fast, ref, K, "bf16 " + what);
  });
}

TEST(KernelIsa, RowsAndStreamMatchPortable) {
  const KernelTable& portable = kernel_table(Isa::kPortable);
  std::mt19937 rng(2);
  for_each_isa_and_shape([&](const KernelTable& t, Isa isa, int64_t M, int64_t N, int64_t K) {
    const std::string what = label(isa, M, N, K);
    const int64_t lda = K + 1, ldb = N + 2, ldc = N + 5;
    const auto A = random_floats(static_cast<size_t>(M * lda), rng), B = random_floats(static_cast<size_t>(K * ldb), rng);
    const auto C0 = random_floats(static_cast<size_t>(M * ldc), rng);
    // A sub-block of rows and columns, alpha and beta.
    const int64_t i0 = M > 2 ? 1 : 0, j0 = N > 3 ? 2 : 0;
    std::vector<float> fast(C0), ref(C0);
    t.f32_gemm_rows(i0, M, j0, N, K, 0.75f, A.data(), lda, B.data(), ldb, -0.5f, fast.data(), ldc);
    portable.f32_gemm_rows(i0, M, j0, N, K, 0.75f, A.data(), lda, B.data(), ldb, -0.5f, ref.data(), ldc);
    expect_close(fast, ref, K, "rows " + what);
    fast = ref = C0;
    t.f32_gemm_rows(0, M, 0, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, fast.data(), ldc);
    portable.f32_gemm_rows(0, M, 0, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, ref.data(), ldc);
    expect_close(fast, ref, K, "rows beta 0 " + what);
    if (M <= 4) {  // the streaming kernel's contract: a few rows over a k range
      fast = ref = C0;
      const int64_t k0 = K / 3;
      t.f32_gemm_stream(M, N, k0, K, 1.25f, A.data(), lda, B.data(), ldb, 0.5f, fast.data(), ldc);
      portable.f32_gemm_stream(M, N, k0, K, 1.25f, A.data(), lda, B.data(), ldb, 0.5f, ref.data(), ldc);
      expect_close(fast, ref, K, "stream " + what);
    }
  });
}

TEST(KernelIsa, WeightOnlyQuantizedPanelsMatchPortable) {
  const KernelTable& portable = kernel_table(Isa::kPortable);
  std::mt19937 rng(3);
  for (Isa isa : fast_isas())
    for (int bits : {8, 4})
      for (int64_t group : {32, 7})
        for (int64_t M : {1, 2, 3, 4})
          for (int64_t N : {1, 9, 17, 32, 45})
            for (int64_t K : {1, 5, 31, 64, 100}) {
              const KernelTable& t = kernel_table(isa);
              const std::string what = std::string(isa_name(isa)) + " int" + std::to_string(bits) + " g" +
                                       std::to_string(group) + " " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                                       std::to_string(K);
              const auto w = random_floats(static_cast<size_t>(2 * N * K), rng), A = random_floats(static_cast<size_t>(M * K), rng);
              const QuantPanels q = quantize_panels_from_linear(w.data(), 2, N, K, bits, group);
              const int64_t panels = panel_count(N), ldc = N + 1;
              std::vector<float> fast(static_cast<size_t>(M * ldc), 3.f), ref(fast);
              t.f32_gemm_quant_panel(M, A.data(), K, q, 1, 0, panels, fast.data(), ldc);
              portable.f32_gemm_quant_panel(M, A.data(), K, q, 1, 0, panels, ref.data(), ldc);
              expect_close(fast, ref, K, "quant " + what);
              Tensor pf(DType::kFloat32, {K * kPanelWidth}), pr(DType::kFloat32, {K * kPanelWidth});  // 64-byte aligned
              t.f32_dequantize_panel(q, 1, panels - 1, pf.data<float>());
              portable.f32_dequantize_panel(q, 1, panels - 1, pr.data<float>());
              expect_close(std::vector<float>(pf.data<float>(), pf.data<float>() + pf.numel()),
                           std::vector<float>(pr.data<float>(), pr.data<float>() + pr.numel()), 1, "dequantize " + what);
            }
}

TEST(KernelIsa, Int8RowsAndPanelsEqualPortableBitForBit) {
  const KernelTable& portable = kernel_table(Isa::kPortable);
  std::mt19937 rng(4);
  for (Isa isa : fast_isas())
    for (int64_t M : kRows)
      for (int64_t N : {1, 9, 17, 32, 45, 64})
        for (int64_t K : {1, 3, 4, 7, 64, 129}) {
          const KernelTable& t = kernel_table(isa);
          const std::string what = label(isa, M, N, K);
          auto A = random_floats(static_cast<size_t>(M * K), rng);
          if (M > 3) A[static_cast<size_t>(K)] = NAN;  // row 1: a NaN (code 0) and an infinity (clamped)
          if (M > 3 && K > 1) A[static_cast<size_t>(K + 1)] = INFINITY;
          const int64_t ldq = s8_row_ld(K);
          std::vector<uint8_t> qa(static_cast<size_t>(M * ldq)), qr(qa.size());
          std::vector<float> sa(static_cast<size_t>(M)), sr(sa.size());
          t.quantize_rows_u8(A.data(), M, K, K, qa.data(), ldq, sa.data());
          portable.quantize_rows_u8(A.data(), M, K, K, qr.data(), ldq, sr.data());
          ASSERT_EQ(qa, qr) << "quantize " << what;
          ASSERT_EQ(sa, sr) << "quantize scales " << what;
          const auto w = random_floats(static_cast<size_t>(N * K), rng);
          const S8Panels s8 = quantize_panels_s8_from_linear(w.data(), 1, N, K);
          const int64_t ldc = N + 2;
          std::vector<float> fast(static_cast<size_t>(M * ldc), 5.f), ref(fast);
          t.s8_gemm_panel(M, K, qr.data(), ldq, sr.data(), s8.codes.data<uint8_t>(), s8.scales.data<float>(),
                          s8.comp.data<int32_t>(), N, 0, s8.panels(), fast.data(), ldc);
          portable.s8_gemm_panel(M, K, qr.data(), ldq, sr.data(), s8.codes.data<uint8_t>(), s8.scales.data<float>(),
                                 s8.comp.data<int32_t>(), N, 0, s8.panels(), ref.data(), ldc);
          ASSERT_EQ(fast, ref) << "s8 " << what;
        }
}

TEST(KernelIsa, W4A8PanelsMatchPortable) {
  const KernelTable& portable = kernel_table(Isa::kPortable);
  std::mt19937 rng(5);
  for (Isa isa : fast_isas())
    for (int64_t group : {32, 8})
      for (int64_t M : {1, 2, 3, 4, 5, 7, 13})
        for (int64_t N : {1, 9, 17, 32, 45})
          for (int64_t K : {1, 6, 31, 64, 100}) {
            const KernelTable& t = kernel_table(isa);
            const std::string what = std::string(isa_name(isa)) + " g" + std::to_string(group) + " " + std::to_string(M) +
                                     "x" + std::to_string(N) + "x" + std::to_string(K);
            const auto A = random_floats(static_cast<size_t>(M * K), rng), w = random_floats(static_cast<size_t>(N * K), rng);
            const S4Panels s4 = relayout_int4_for_vnni(quantize_panels_from_linear(w.data(), 1, N, K, 4, group));
            const int64_t ldq = s8_row_ld(K), G = s4.groups();
            std::vector<uint8_t> qa(static_cast<size_t>(M * ldq));
            std::vector<float> sa(static_cast<size_t>(M));
            std::vector<int32_t> sums(static_cast<size_t>(M * G));
            portable.quantize_rows_u8(A.data(), M, K, K, qa.data(), ldq, sa.data());
            activation_group_sums(M, K, group, qa.data(), ldq, sums.data());
            const int64_t ldc = N + 2;
            std::vector<float> fast(static_cast<size_t>(M * ldc), 5.f), ref(fast);
            t.s4_gemm_panel(M, K, group, qa.data(), ldq, sa.data(), sums.data(), s4.codes.data<uint8_t>(),
                            s4.scales.data<uint16_t>(), s4.mins.data<uint16_t>(), N, 0, s4.panels(), fast.data(), ldc);
            portable.s4_gemm_panel(M, K, group, qa.data(), ldq, sa.data(), sums.data(), s4.codes.data<uint8_t>(),
                                   s4.scales.data<uint16_t>(), s4.mins.data<uint16_t>(), N, 0, s4.panels(), ref.data(), ldc);
            expect_close(fast, ref, K, "s4 " + what);
          }
}

}  // namespace
}  // namespace switchyard

namespace switchyard {
namespace {

// The direct NHWC convolution: pixel counts over every block remainder (AVX-512 blocks of 16, AVX2 of 6),
// every output width 1..16, 1 / 3 / 9 / 25 taps, some taps reading the zero row, ReLU on and off.
TEST(KernelIsa, ConvNhwc16MatchesPortable) {
  const KernelTable& portable = kernel_table(Isa::kPortable);
  std::mt19937 rng(7);
  for (Isa isa : fast_isas())
    for (int64_t taps : {1, 3, 9, 25})
      for (int64_t cin : {1, 3, 16, 19})
        for (int64_t cout : {1, 5, 8, 9, 15, 16})
          for (int64_t P : {1, 2, 5, 6, 7, 12, 15, 16, 17, 33, 64}) {
            const std::vector<float> image = random_floats(static_cast<size_t>(80 * cin), rng);
            const std::vector<float> zeros(static_cast<size_t>(cin), 0.f);
            std::vector<float> w = random_floats(static_cast<size_t>(taps * cin * 16), rng);
            std::vector<float> bias = random_floats(16, rng);
            std::vector<const float*> rows(static_cast<size_t>(taps * P));
            for (size_t i = 0; i < rows.size(); ++i)
              rows[i] = i % 7 == 3 ? zeros.data() : image.data() + static_cast<int64_t>((i * 13) % 80) * cin;
            for (bool relu : {false, true}) {
              std::vector<float> ref(static_cast<size_t>(P * 17), -3.f), fast(ref);
              portable.f32_conv_nhwc16(P, taps, cin, rows.data(), w.data(), bias.data(), cout, relu, ref.data(), 17);
              kernel_table(isa).f32_conv_nhwc16(P, taps, cin, rows.data(), w.data(), bias.data(), cout, relu, fast.data(), 17);
              expect_close(fast, ref, taps * cin, label(isa, P, cout, taps * cin) + (relu ? " relu" : ""));
            }
          }
}

}  // namespace
}  // namespace switchyard
