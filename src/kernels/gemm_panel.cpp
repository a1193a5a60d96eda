#include "kernels/gemm_panel.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/bfloat16.h"
#include "kernels/dispatch.h"
#include "kernels/isa_clones.h"
#include "kernels/kernel_entries.h"

namespace switchyard {

float* kernel_thread_buffer(int slot, size_t count) {
  static thread_local std::vector<float> buffers[4];
  std::vector<float>& b = buffers[slot];
  if (b.size() < count) b.resize(count);
  return b.data();
}

namespace {

// R rows x one panel, accumulators in an array the compiler keeps in vector registers.
template <int R>
[[gnu::always_inline]] inline void panel_rows(int64_t K, const float* A, int64_t lda, const float* P, float* C, int64_t ldc, int64_t cols) {
  float acc[R][kPanelWidth] = {};
  for (int64_t k = 0; k < K; ++k) {
    const float* b = P + k * kPanelWidth;
    for (int r = 0; r < R; ++r) {
      const float a = A[r * lda + k];
      for (int j = 0; j < kPanelWidth; ++j) acc[r][j] += a * b[j];
    }
  }
  for (int r = 0; r < R; ++r) std::memcpy(C + r * ldc, acc[r], static_cast<size_t>(cols) * 4);
}

}  // namespace

SY_CLONE_BODY void f32_gemm_panel_body(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed,
                                       int64_t p0, int64_t p1, float* C, int64_t ldc) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* P = packed + p * K * kPanelWidth;
    const int64_t cols = std::min(kPanelWidth, N - p * kPanelWidth);
    float* c = C + p * kPanelWidth;
    int64_t r = 0;
    for (; r + 4 <= M; r += 4) panel_rows<4>(K, A + r * lda, lda, P, c + r * ldc, ldc, cols);
    for (; r < M; ++r) panel_rows<1>(K, A + r * lda, lda, P, c + r * ldc, ldc, cols);
  }
}

SY_PORTABLE_KERNEL(void, f32_gemm_panel, (int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed,
                                          int64_t p0, int64_t p1, float* C, int64_t ldc),
                   (M, N, K, A, lda, packed, p0, p1, C, ldc))

void gemm_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, int64_t p0, int64_t p1,
                 float* C, int64_t ldc) {
  if (M > 0 && p1 > p0) kernels().f32_gemm_panel(M, N, K, A, lda, packed, p0, p1, C, ldc);
}

void gemm_panels_portable(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, int64_t p0,
                          int64_t p1, float* C, int64_t ldc) {
  if (M > 0 && p1 > p0) f32_gemm_panel_portable(M, N, K, A, lda, packed, p0, p1, C, ldc);
}


SY_CLONE_BODY void bf16_gemm_panel_body(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
                                        const uint16_t* packed, int64_t p0, int64_t p1, float* C, int64_t ldc) {
  const int64_t pairs = (K + 1) / 2;
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t* P = packed + p * pairs * 2 * kPanelWidth;
    const int64_t cols = std::min(kPanelWidth, N - p * kPanelWidth);
    for (int64_t r = 0; r < M; ++r) {
      float acc[kPanelWidth] = {};
      for (int64_t q = 0; q < pairs; ++q) {
        const float a0 = bf16_to_float_inline(A[r * lda + 2 * q]), a1 = bf16_to_float_inline(A[r * lda + 2 * q + 1]);
        const uint16_t* b = P + q * 2 * kPanelWidth;
        for (int64_t j = 0; j < kPanelWidth; ++j) acc[j] += a0 * bf16_to_float_inline(b[2 * j]) + a1 * bf16_to_float_inline(b[2 * j + 1]);
      }
      std::memcpy(C + r * ldc + p * kPanelWidth, acc, static_cast<size_t>(cols) * 4);
    }
  }
}

SY_PORTABLE_KERNEL(void, bf16_gemm_panel, (int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
                                           const uint16_t* packed, int64_t p0, int64_t p1, float* C, int64_t ldc),
                   (M, N, K, A, lda, packed, p0, p1, C, ldc))

void gemm_panels_bf16(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* packed, int64_t p0,
                      int64_t p1, float* C, int64_t ldc) {
  if (M > 0 && p1 > p0) kernels().bf16_gemm_panel(M, N, K, A, lda, packed, p0, p1, C, ldc);
}

void gemm_panels_bf16_portable(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* packed,
                               int64_t p0, int64_t p1, float* C, int64_t ldc) {
  if (M > 0 && p1 > p0) bf16_gemm_panel_portable(M, N, K, A, lda, packed, p0, p1, C, ldc);
}

void round_rows_to_bf16(const float* A, int64_t M, int64_t K, int64_t lda, uint16_t* out, int64_t ldo) {
  for (int64_t r = 0; r < M; ++r) {
    for (int64_t k = 0; k < K; ++k) out[r * ldo + k] = float_to_bf16_inline(A[r * lda + k]);
    for (int64_t k = K; k < ldo; ++k) out[r * ldo + k] = 0;
  }
}

Tensor pack_panels_bf16_from_linear(const float* w, int64_t count, int64_t N, int64_t K) {
  const int64_t per = panel_bf16_elems(K, N), pairs = (K + 1) / 2;
  Tensor out(DType::kBFloat16, {count, per});
  auto* o = static_cast<uint16_t*>(out.raw());
  std::memset(o, 0, static_cast<size_t>(count * per) * 2);
  for (int64_t e = 0; e < count; ++e) {
    const float* we = w + e * N * K;
    uint16_t* oe = o + e * per;
    for (int64_t n = 0; n < N; ++n) {
      uint16_t* col = oe + (n / kPanelWidth) * pairs * 2 * kPanelWidth + 2 * (n % kPanelWidth);
      for (int64_t k = 0; k < K; ++k) col[(k / 2) * 2 * kPanelWidth + k % 2] = float_to_bf16_inline(we[n * K + k]);
    }
  }
  return out;
}

Tensor pack_panels_from_linear(const float* w, int64_t count, int64_t N, int64_t K) {
  const int64_t per = panel_floats(K, N);
  Tensor out(DType::kFloat32, {count, per});
  float* o = out.data<float>();
  std::memset(o, 0, static_cast<size_t>(count * per) * 4);
  for (int64_t e = 0; e < count; ++e) {
    const float* we = w + e * N * K;
    float* oe = o + e * per;
    for (int64_t n = 0; n < N; ++n) {
      float* col = oe + (n / kPanelWidth) * K * kPanelWidth + n % kPanelWidth;
      for (int64_t k = 0; k < K; ++k) col[k * kPanelWidth] = we[n * K + k];
    }
  }
  return out;
}

Tensor pack_panels_fp16_from_linear(const float* w, int64_t count, int64_t N, int64_t K) {
  const Tensor f32 = pack_panels_from_linear(w, count, N, K);
  Tensor out(DType::kFloat16, f32.shape());
  auto* o = static_cast<uint16_t*>(out.raw());
  for (int64_t i = 0; i < f32.numel(); ++i) o[i] = float_to_half(f32.data<float>()[i]);
  return out;
}

// Widens each panel row and runs the FP32 panel arithmetic (the oracle of the AVX2 / AVX-512 kernels).
SY_CLONE_BODY void f16_gemm_panel_body(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed,
                                       int64_t p0, int64_t p1, float* C, int64_t ldc) {
  static thread_local std::vector<float> panel;  // grows once per shape, no allocation after
  if (panel.size() < static_cast<size_t>(K * kPanelWidth)) panel.resize(static_cast<size_t>(K * kPanelWidth));
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t* P = packed + p * K * kPanelWidth;
    for (int64_t i = 0; i < K * kPanelWidth; ++i) panel[static_cast<size_t>(i)] = half_to_float(P[i]);
    // As one panel of an N-column matrix whose panel p starts at `panel`.
    f32_gemm_panel_body(M, N - p * kPanelWidth, K, A, lda, panel.data(), 0, 1, C + p * kPanelWidth, ldc);
  }
}

SY_PORTABLE_KERNEL(void, f16_gemm_panel, (int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                                          const uint16_t* packed, int64_t p0, int64_t p1, float* C, int64_t ldc),
                   (M, N, K, A, lda, packed, p0, p1, C, ldc))

void gemm_panels_fp16(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed, int64_t p0,
                      int64_t p1, float* C, int64_t ldc) {
  if (M > 0 && p1 > p0) kernels().f16_gemm_panel(M, N, K, A, lda, packed, p0, p1, C, ldc);
}

void gemm_panels_fp16_portable(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed,
                               int64_t p0, int64_t p1, float* C, int64_t ldc) {
  if (M > 0 && p1 > p0) f16_gemm_panel_portable(M, N, K, A, lda, packed, p0, p1, C, ldc);
}

}  // namespace switchyard
