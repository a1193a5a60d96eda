#include "kernels/gemm_panel_s8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/isa_clones.h"
#include "kernels/kernel_entries.h"
#include "switchyard/tensor.h"
#include "switchyard/error.h"

namespace switchyard {


namespace {

constexpr int64_t kWidth = 32;

// The portable kernel in the same integer arithmetic as vpdpbusd (exact), then the same two FP32
// multiplies in the same order: equal results bit for bit.
SY_CLONE_BODY void s8_gemm_panel_body(int64_t M, int64_t K, const uint8_t* A, int64_t lda, const float* row_scales,
                                      const uint8_t* packed, const float* scales, const int32_t* comp, int64_t N, int64_t p0,
                                      int64_t p1, float* C, int64_t ldc) {
  const int64_t quads = (K + 3) / 4;
  for (int64_t p = p0; p < p1; ++p) {
    const auto* P = reinterpret_cast<const int8_t*>(packed + p * quads * 128);
    const int64_t cols = std::min(kWidth, N - p * kWidth);
    for (int64_t r = 0; r < M; ++r) {
      int32_t acc[kWidth];
      for (int64_t j = 0; j < kWidth; ++j) acc[j] = comp[p * kWidth + j];
      const uint8_t* a = A + r * lda;
      for (int64_t q = 0; q < quads; ++q) {
        const int8_t* b = P + q * 128;
        for (int64_t j = 0; j < kWidth; ++j)
          for (int i = 0; i < 4; ++i) acc[j] += static_cast<int32_t>(a[4 * q + i]) * b[4 * j + i];
      }
      for (int64_t j = 0; j < cols; ++j)
        C[r * ldc + p * kWidth + j] = static_cast<float>(acc[j]) * scales[p * kWidth + j] * row_scales[r];
    }
  }
}

}  // namespace

SY_PORTABLE_KERNEL(void, s8_gemm_panel, (int64_t M, int64_t K, const uint8_t* A, int64_t lda, const float* row_scales,
                                         const uint8_t* packed, const float* scales, const int32_t* comp, int64_t N,
                                         int64_t p0, int64_t p1, float* C, int64_t ldc),
                   (M, K, A, lda, row_scales, packed, scales, comp, N, p0, p1, C, ldc))


S8Panels quantize_panels_s8_from_linear(const float* w, int64_t count, int64_t N, int64_t K) {
  SY_CHECK(count >= 1 && N >= 1 && K >= 1, "INT8 weight quantization: empty matrix");
  S8Panels q;
  q.K = K;
  q.N = N;
  const int64_t per = q.codes_per_matrix(), cols = q.panels() * kWidth;
  q.codes = Tensor(DType::kUInt8, {count, per});
  q.scales = Tensor(DType::kFloat32, {count, cols});
  q.comp = Tensor(DType::kInt32, {count, cols});
  std::memset(q.codes.raw(), 0, q.codes.nbytes());
  std::memset(q.scales.raw(), 0, q.scales.nbytes());
  std::memset(q.comp.raw(), 0, q.comp.nbytes());
  for (int64_t e = 0; e < count; ++e) {
    auto* codes = reinterpret_cast<int8_t*>(q.codes.data<uint8_t>() + e * per);
    float* scales = q.scales.data<float>() + e * cols;
    int32_t* comp = q.comp.data<int32_t>() + e * cols;
    for (int64_t n = 0; n < N; ++n) {
      const float* row = w + (e * N + n) * K;  // column n of B = row n of the nn.Linear weight
      float amax = 0.f;
      for (int64_t k = 0; k < K; ++k)
        if (std::isfinite(row[k])) amax = std::max(amax, std::fabs(row[k]));
      const float scale = amax / 127.f, inv = amax > 0.f ? 127.f / amax : 0.f;
      int8_t* col = codes + (n / kWidth) * q.quads() * 128 + 4 * (n % kWidth);
      int32_t sum = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float v = std::clamp(row[k] * inv, -127.f, 127.f);
        const auto c = static_cast<int8_t>(v == v ? std::nearbyint(v) : 0.f);
        col[(k / 4) * 128 + k % 4] = c;
        sum += c;
      }
      scales[n] = scale;
      comp[n] = -128 * sum;
    }
  }
  return q;
}

SY_CLONE_BODY void quantize_rows_u8_body(const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo,
                                         float* scales) {
  for (int64_t r = 0; r < M; ++r) {
    const float* a = A + r * lda;
    float amax = 0.f;
    for (int64_t k = 0; k < K; ++k) {
      const float v = std::fabs(a[k]);
      if (v <= 3.4028235e38f) amax = std::max(amax, v);  // finite values only
    }
    const float inv = amax > 0.f ? 127.f / amax : 0.f;
    scales[r] = amax / 127.f;
    uint8_t* o = out + r * ldo;
    for (int64_t k = 0; k < K; ++k) {
      float v = a[k] * inv;
      v = v == v ? std::clamp(v, -127.f, 127.f) : 0.f;
      o[k] = static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(v)) + 128);
    }
    for (int64_t k = K; k < ldo; ++k) o[k] = 128;
  }
}

SY_PORTABLE_KERNEL(void, quantize_rows_u8, (const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo,
                                            float* scales),
                   (A, M, K, lda, out, ldo, scales))

void quantize_rows_u8(const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo, float* scales) {
  kernels().quantize_rows_u8(A, M, K, lda, out, ldo, scales);
}

void gemm_panels_s8_portable(int64_t M, const uint8_t* A, int64_t lda, const float* row_scales, const S8Panels& w,
                             int64_t index, int64_t p0, int64_t p1, float* C, int64_t ldc) {
  if (M <= 0 || p1 <= p0) return;
  const int64_t cols = w.panels() * kWidth;
  s8_gemm_panel_portable(M, w.K, A, lda, row_scales, w.codes.data<uint8_t>() + index * w.codes_per_matrix(),
                   w.scales.data<float>() + index * cols, w.comp.data<int32_t>() + index * cols, w.N, p0, p1, C, ldc);
}

void gemm_panels_s8(int64_t M, const uint8_t* A, int64_t lda, const float* row_scales, const S8Panels& w, int64_t index,
                    int64_t p0, int64_t p1, float* C, int64_t ldc) {
  if (M <= 0 || p1 <= p0) return;
  const int64_t cols = w.panels() * kWidth;
  kernels().s8_gemm_panel(M, w.K, A, lda, row_scales, w.codes.data<uint8_t>() + index * w.codes_per_matrix(),
          w.scales.data<float>() + index * cols, w.comp.data<int32_t>() + index * cols, w.N, p0, p1, C, ldc);
}

S4Panels relayout_int4_for_vnni(const QuantPanels& q) {
  SY_CHECK(q.bits == 4, "W4A8: needs INT4 panels");
  SY_CHECK(q.group % 4 == 0, "precision int4: weight_group must be a multiple of 4, got " + std::to_string(q.group));
  S4Panels s;
  s.K = q.K;
  s.N = q.N;
  s.group = q.group;
  const int64_t count = q.codes.dim(0), panels = s.panels(), quads = s.quads();
  s.codes = Tensor(DType::kUInt8, {count, s.codes_per_matrix()});
  std::memset(s.codes.raw(), 0, s.codes.nbytes());
  for (int64_t e = 0; e < count; ++e)
    for (int64_t p = 0; p < panels; ++p) {
      const uint8_t* from = q.codes.data<uint8_t>() + (e * panels + p) * q.K * 16;  // K rows of 16 bytes
      uint8_t* to = s.codes.data<uint8_t>() + e * s.codes_per_matrix() + p * quads * 64;
      for (int64_t k = 0; k < q.K; ++k)
        for (int64_t j = 0; j < 16; ++j) to[(k / 4) * 64 + 4 * j + k % 4] = from[k * 16 + j];
    }
  s.scales = q.scales;
  s.mins = q.mins;
  return s;
}

void activation_group_sums(int64_t M, int64_t K, int64_t group, const uint8_t* A, int64_t lda, int32_t* sums) {
  const int64_t G = (K + group - 1) / group;
  for (int64_t r = 0; r < M; ++r)
    for (int64_t g = 0; g < G; ++g) {
      int32_t sum = 0;
      for (int64_t k = g * group; k < std::min(K, (g + 1) * group); ++k) sum += static_cast<int32_t>(A[r * lda + k]) - 128;
      sums[r * G + g] = sum;
    }
}

namespace {

SY_CLONE_BODY void s4_gemm_panel_body(int64_t M, int64_t K, int64_t group, const uint8_t* A, int64_t lda,
                                      const float* row_scales, const int32_t* group_sums, const uint8_t* packed,
                                      const uint16_t* scales, const uint16_t* mins, int64_t N, int64_t p0, int64_t p1,
                                      float* C, int64_t ldc) {
  const int64_t quads = (K + 3) / 4, G = (K + group - 1) / group;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* P = packed + p * quads * 64;
    const int64_t cols = std::min(kWidth, N - p * kWidth);
    for (int64_t r = 0; r < M; ++r) {
      float acc[kWidth] = {};
      for (int64_t g = 0; g < G; ++g) {
        int32_t dot[kWidth] = {};
        for (int64_t q = g * group / 4; q < std::min(quads, (g + 1) * group / 4); ++q)
          for (int64_t j = 0; j < 16; ++j)
            for (int i = 0; i < 4; ++i) {
              const int32_t a = static_cast<int32_t>(A[r * lda + 4 * q + i]) - 128;
              const uint8_t b = P[q * 64 + 4 * j + i];
              dot[j] += a * (b & 15);
              dot[j + 16] += a * (b >> 4);
            }
        const uint16_t* sg = scales + (p * G + g) * kWidth;
        const uint16_t* mg = mins + (p * G + g) * kWidth;
        const float gs = static_cast<float>(group_sums[r * G + g]);
        for (int64_t j = 0; j < kWidth; ++j)
          acc[j] += static_cast<float>(dot[j]) * half_to_float(sg[j]) + gs * half_to_float(mg[j]);
      }
      for (int64_t j = 0; j < cols; ++j) C[r * ldc + p * kWidth + j] = acc[j] * row_scales[r];
    }
  }
}

}  // namespace

SY_PORTABLE_KERNEL(void, s4_gemm_panel, (int64_t M, int64_t K, int64_t group, const uint8_t* A, int64_t lda,
                                         const float* row_scales, const int32_t* group_sums, const uint8_t* packed,
                                         const uint16_t* scales, const uint16_t* mins, int64_t N, int64_t p0, int64_t p1,
                                         float* C, int64_t ldc),
                   (M, K, group, A, lda, row_scales, group_sums, packed, scales, mins, N, p0, p1, C, ldc))

namespace {

void run_s4(S4GemmPanelFn kernel, int64_t M, const uint8_t* A, int64_t lda, const float* row_scales, const int32_t* group_sums,
            const S4Panels& w, int64_t index, int64_t p0, int64_t p1, float* C, int64_t ldc) {
  if (M <= 0 || p1 <= p0) return;
  kernel(M, w.K, w.group, A, lda, row_scales, group_sums, w.codes.data<uint8_t>() + index * w.codes_per_matrix(),
         w.scales.data<uint16_t>() + index * w.scales_per_matrix(), w.mins.data<uint16_t>() + index * w.scales_per_matrix(),
         w.N, p0, p1, C, ldc);
}

}  // namespace

void gemm_panels_s4(int64_t M, const uint8_t* A, int64_t lda, const float* row_scales, const int32_t* group_sums,
                    const S4Panels& w, int64_t index, int64_t p0, int64_t p1, float* C, int64_t ldc) {
  run_s4(kernels().s4_gemm_panel, M, A, lda, row_scales, group_sums, w, index, p0, p1, C, ldc);
}

void gemm_panels_s4_portable(int64_t M, const uint8_t* A, int64_t lda, const float* row_scales, const int32_t* group_sums,
                             const S4Panels& w, int64_t index, int64_t p0, int64_t p1, float* C, int64_t ldc) {
  run_s4(s4_gemm_panel_portable, M, A, lda, row_scales, group_sums, w, index, p0, p1, C, ldc);
}

}  // namespace switchyard
