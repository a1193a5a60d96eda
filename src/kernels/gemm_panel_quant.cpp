#include "kernels/gemm_panel_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/isa_clones.h"
#include "kernels/kernel_entries.h"
#include "kernels/gemm_panel.h"

namespace switchyard {


namespace {

constexpr int64_t kFusedRows = 4;  // up to this many rows, dequantize in registers


[[gnu::always_inline]] inline int code_at(const uint8_t* row, int bits, int64_t j) {
  if (bits == 8) return static_cast<int8_t>(row[j]);
  const uint8_t b = row[j % 16];
  return j < 16 ? (b & 15) : (b >> 4);
}

// Scales and mins are stored as FP16 (the kernels widen them with vcvtph2ps); the portable
// conversions of tensor.h keep this file free of _Float16, which older clang targets lack.
inline uint16_t to_half(float f) { return float_to_half(f); }
[[gnu::always_inline]] inline float from_half(uint16_t u) { return half_to_float(u); }

// The matrix `index`'s panel p: codes, scales and mins (null for INT8).
struct PanelView {
  const uint8_t* codes;
  const uint16_t* scales;
  const uint16_t* mins;
};
PanelView panel_view(const QuantPanels& q, int64_t index, int64_t p) {
  const int64_t panels = panel_count(q.N), at = index * panels + p;
  return {q.codes.data<uint8_t>() + at * q.K * q.row_bytes(), q.scales.data<uint16_t>() + at * q.groups() * kPanelWidth,
          q.mins.defined() ? q.mins.data<uint16_t>() + at * q.groups() * kPanelWidth : nullptr};
}

}  // namespace

QuantPanels quantize_panels_from_linear(const float* w, int64_t count, int64_t N, int64_t K, int bits, int64_t group) {
  SY_CHECK(bits == 8 || bits == 4, "weight quantization: bits must be 8 or 4");
  SY_CHECK(group >= 1, "weight quantization: group must be positive");  // > K: one scale per column
  QuantPanels q;
  q.bits = bits;
  q.group = group;
  q.K = K;
  q.N = N;
  const int64_t panels = panel_count(N), G = q.groups(), rb = q.row_bytes();
  q.codes = Tensor(DType::kUInt8, {count, panels, K, rb});
  q.scales = Tensor(DType::kUInt16, {count, panels, G, kPanelWidth});
  std::memset(q.codes.raw(), 0, static_cast<size_t>(q.codes.nbytes()));
  std::memset(q.scales.raw(), 0, static_cast<size_t>(q.scales.nbytes()));
  if (bits == 4) {
    q.mins = Tensor(DType::kUInt16, {count, panels, G, kPanelWidth});
    std::memset(q.mins.raw(), 0, static_cast<size_t>(q.mins.nbytes()));
  }
  std::vector<int> codes(static_cast<size_t>(std::min(group, K))), best(static_cast<size_t>(std::min(group, K)));
  for (int64_t e = 0; e < count; ++e)
    for (int64_t n = 0; n < N; ++n) {
      const float* wn = w + (e * N + n) * K;  // row n of matrix e: the K weights of output column n
      const int64_t p = n / kPanelWidth, j = n % kPanelWidth, at = e * panels + p;
      uint8_t* pc = q.codes.data<uint8_t>() + at * K * rb;
      for (int64_t g = 0; g < G; ++g) {
        const int64_t k0 = g * group, k1 = std::min(K, k0 + group), len = k1 - k0;
        float lo = 0.f, hi = 0.f, amax = 0.f;
        for (int64_t k = k0; k < k1; ++k) {
          lo = std::min(lo, wn[k]);
          hi = std::max(hi, wn[k]);
          amax = std::max(amax, std::fabs(wn[k]));
        }
        float scale = 0.f, minimum = 0.f;
        if (bits == 8) {
          scale = from_half(to_half(amax / 127.f));
          const float inv = scale > 0.f ? 1.f / scale : 0.f;
          for (int64_t i = 0; i < len; ++i)
            best[static_cast<size_t>(i)] = static_cast<int>(std::clamp(std::nearbyint(wn[k0 + i] * inv), -127.f, 127.f));
        } else {
          // Asymmetric 16 levels over [lo, hi] shrunk by the factor with the least squared error, then
          // refined by least squares (the best (min, scale) for these codes, codes re-rounded): on
          // Gaussian weights, group 32: 7.6% RMS error from the clip search, 7.25% after refinement.
          double best_err = -1;
          auto consider = [&](float s, float m) {
            s = from_half(to_half(s));
            m = from_half(to_half(m));
            const float inv = s > 0.f ? 1.f / s : 0.f;
            double err = 0;
            for (int64_t i = 0; i < len; ++i) {
              const int c = static_cast<int>(std::clamp(std::nearbyint((wn[k0 + i] - m) * inv), 0.f, 15.f));
              codes[static_cast<size_t>(i)] = c;
              const double d = static_cast<double>(m) + static_cast<double>(s) * c - wn[k0 + i];
              err += d * d;
            }
            if (best_err < 0 || err < best_err) {
              best_err = err;
              scale = s;
              minimum = m;
              std::copy(codes.begin(), codes.begin() + len, best.begin());
            }
          };
          for (int step = 0; step <= 8; ++step) {
            const float f = 1.f - 0.05f * static_cast<float>(step);
            consider((hi - lo) * f / 15.f, lo * f);
          }
          // Weights that are already symmetric INT4 (q * s, q in -8..7: ONNX Runtime's QMoE, GPTQ)
          // lie exactly on the grid min = -8 s for s = max|w| / |q| of the largest code: found here.
          for (int q = 1; q <= 8 && amax > 0.f; ++q) consider(amax / static_cast<float>(q), -8.f * amax / static_cast<float>(q));
          for (int iteration = 0; iteration < 3 && len > 1; ++iteration) {
            double cm = 0, wm = 0;
            for (int64_t i = 0; i < len; ++i) {
              cm += best[static_cast<size_t>(i)];
              wm += wn[k0 + i];
            }
            cm /= static_cast<double>(len);
            wm /= static_cast<double>(len);
            double var = 0, cov = 0;
            for (int64_t i = 0; i < len; ++i) {
              const double dc = best[static_cast<size_t>(i)] - cm;
              var += dc * dc;
              cov += dc * (wn[k0 + i] - wm);
            }
            if (var <= 0 || cov <= 0) break;
            const double s = cov / var;
            consider(static_cast<float>(s), static_cast<float>(wm - s * cm));
          }
          q.mins.data<uint16_t>()[(at * G + g) * kPanelWidth + j] = to_half(minimum);
        }
        q.scales.data<uint16_t>()[(at * G + g) * kPanelWidth + j] = to_half(scale);
        for (int64_t i = 0; i < len; ++i) {
          const int c = best[static_cast<size_t>(i)];
          uint8_t* row = pc + (k0 + i) * rb;
          if (bits == 8) {
            row[j] = static_cast<uint8_t>(static_cast<int8_t>(c));
          } else {
            const auto u = static_cast<uint8_t>(c);
            row[j % 16] = j < 16 ? static_cast<uint8_t>((row[j % 16] & 0xf0) | u) : static_cast<uint8_t>((row[j % 16] & 0x0f) | (u << 4));
          }
        }
      }
    }
  return q;
}

SY_CLONE_BODY void f32_dequantize_panel_body(const QuantPanels& q, int64_t index, int64_t p, float* out) {
  const PanelView v = panel_view(q, index, p);
  const int64_t rb = q.row_bytes();
  for (int64_t k = 0; k < q.K; ++k) {
    const int64_t g = (k / q.group) * kPanelWidth;
    for (int64_t j = 0; j < kPanelWidth; ++j)
      out[k * kPanelWidth + j] = (v.mins ? from_half(v.mins[g + j]) : 0.f) +
                                 from_half(v.scales[g + j]) * static_cast<float>(code_at(v.codes + k * rb, q.bits, j));
  }
}

SY_PORTABLE_KERNEL(void, f32_dequantize_panel, (const QuantPanels& q, int64_t index, int64_t p, float* out),
                   (q, index, p, out))

void dequantize_panel(const QuantPanels& q, int64_t index, int64_t p, float* out) {
  f32_dequantize_panel_portable(q, index, p, out);
}

SY_CLONE_BODY void f32_gemm_quant_panel_body(int64_t M, const float* A, int64_t lda, const QuantPanels& q, int64_t index,
                                             int64_t p0, int64_t p1, float* C, int64_t ldc) {
  const int64_t K = q.K, rb = q.row_bytes();
  for (int64_t p = p0; p < p1; ++p) {
    const PanelView v = panel_view(q, index, p);
    const int64_t cols = std::min(kPanelWidth, q.N - p * kPanelWidth);
    for (int64_t r = 0; r < M; ++r) {
      float acc[kPanelWidth] = {};
      for (int64_t g = 0; g < q.groups(); ++g) {
        // sum a * (min + scale * code) = scale * sum a * code + min * sum a, per group.
        float part[kPanelWidth] = {}, asum = 0.f;
        for (int64_t k = g * q.group; k < std::min(K, (g + 1) * q.group); ++k) {
          const float a = A[r * lda + k];
          asum += a;
          for (int64_t j = 0; j < kPanelWidth; ++j) part[j] += a * static_cast<float>(code_at(v.codes + k * rb, q.bits, j));
        }
        for (int64_t j = 0; j < kPanelWidth; ++j)
          acc[j] += from_half(v.scales[g * kPanelWidth + j]) * part[j] +
                    (v.mins ? from_half(v.mins[g * kPanelWidth + j]) * asum : 0.f);
      }
      std::memcpy(C + r * ldc + p * kPanelWidth, acc, static_cast<size_t>(cols) * 4);
    }
  }
}

SY_PORTABLE_KERNEL(void, f32_gemm_quant_panel, (int64_t M, const float* A, int64_t lda, const QuantPanels& q,
                                                int64_t index, int64_t p0, int64_t p1, float* C, int64_t ldc),
                   (M, A, lda, q, index, p0, p1, C, ldc))

void gemm_quant_panels_portable(int64_t M, const float* A, int64_t lda, const QuantPanels& q, int64_t index, int64_t p0,
                                int64_t p1, float* C, int64_t ldc) {
  f32_gemm_quant_panel_portable(M, A, lda, q, index, p0, p1, C, ldc);
}

#define SY_QUANT_PANEL_ADAPTERS(ISA)                                                                              \
  void f32_gemm_quant_panel_##ISA(int64_t M, const float* A, int64_t lda, const QuantPanels& q, int64_t index,          \
                                  int64_t p0, int64_t p1, float* C, int64_t ldc) {                                     \
    const PanelView v = panel_view(q, index, 0);                                                                       \
    x86::f32_gemm_quant_panel_##ISA(M, A, lda, v.codes, v.scales, v.mins, q.bits, q.group, q.K, q.N, p0, p1, C, ldc);  \
  }                                                                                                                    \
  void f32_dequantize_panel_##ISA(const QuantPanels& q, int64_t index, int64_t p, float* out) {                         \
    const PanelView v = panel_view(q, index, p);                                                                       \
    x86::f32_dequantize_panel_##ISA(v.codes, v.scales, v.mins, q.bits, q.group, q.K, out);                             \
  }
SY_QUANT_PANEL_ADAPTERS(avx512)
SY_QUANT_PANEL_ADAPTERS(avx2)
#undef SY_QUANT_PANEL_ADAPTERS

void gemm_quant_panels(int64_t M, const float* A, int64_t lda, const QuantPanels& q, int64_t index, int64_t p0, int64_t p1,
                       float* C, int64_t ldc) {
  if (M <= 0 || p1 <= p0) return;
  const KernelTable& kt = kernels();
  if (M <= kFusedRows) {
    kt.f32_gemm_quant_panel(M, A, lda, q, index, p0, p1, C, ldc);
    return;
  }
  // Many rows: the dequantization is paid once per panel, then the rows run at the FP32 kernel's pace.
  static thread_local std::vector<float> panel;
  if (panel.size() < static_cast<size_t>(q.K * kPanelWidth) + 16) panel.resize(static_cast<size_t>(q.K * kPanelWidth) + 16);
  float* buf = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(panel.data()) + 63) & ~uintptr_t{63});
  for (int64_t p = p0; p < p1; ++p) {
    kt.f32_dequantize_panel(q, index, p, buf);
    gemm_panels(M, std::min(kPanelWidth, q.N - p * kPanelWidth), q.K, A, lda, buf, 0, 1, C + p * kPanelWidth, ldc);
  }
}

}  // namespace switchyard
