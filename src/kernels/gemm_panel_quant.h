// Weight-only quantized panels (INT8 or INT4 with group-wise scales) and the GEMM that dequantizes
// them in the kernel: the expert weights of precision "int8-weights" / "int4-weights".
//
// Same 32-column panels as kernels/gemm_panel.h. Per panel, row k of the weights is 32 codes (INT8: 32
// bytes, one signed code per column; INT4: 16 bytes, byte b = column b in the low nibble and column
// b + 16 in the high nibble, unsigned codes 0..15). Every `group` consecutive rows share, per column,
// an FP16 scale (INT8: symmetric, w ~ scale * code, scale = max|w| / 127) or, for INT4, an FP16 scale
// and an FP16 minimum (asymmetric, w ~ min + scale * code, with the [min, max] range clipped to the
// factor in 0.6..1 that minimises the group's squared error: 8% RMS error on Gaussian weights with
// group 32, against 11% for symmetric max/7 with group 64). Decode is bound by the bytes of the
// weights: INT8 (group 32) reads 3.8x fewer than FP32, INT4 (group 32) 6.4x.
#pragma once

#include <cstdint>

#include "switchyard/tensor.h"

namespace switchyard {

struct QuantPanels {
  Tensor codes;   // uint8 [count, panels, K, row_bytes]
  Tensor scales;  // FP16 bits (uint16) [count, panels, groups, 32]
  Tensor mins;    // FP16 bits (uint16) [count, panels, groups, 32]; INT4 only
  int bits = 8;   // 8 or 4
  int64_t group = 32, K = 0, N = 0;
  int64_t row_bytes() const { return bits == 8 ? 32 : 16; }
  int64_t groups() const { return (K + group - 1) / group; }
  int64_t codes_per_matrix() const { return (N + 31) / 32 * K * row_bytes(); }
  int64_t scales_per_matrix() const { return (N + 31) / 32 * groups() * 32; }
  size_t bytes() const { return codes.nbytes() + scales.nbytes() + (mins.defined() ? mins.nbytes() : 0); }
};

// Quantizes count matrices in nn.Linear layout (each [N, K], one after another).
QuantPanels quantize_panels_from_linear(const float* w, int64_t count, int64_t N, int64_t K, int bits, int64_t group);

// C[M, 32*p0 .. min(N, 32*p1)) = A[M,K] dequant(B) for matrix `index` of q (row-major A and C, C
// written). Few rows: one pass that dequantizes in registers; more: each panel dequantized once
// into a per-thread FP32 buffer, then the FP32 panel kernel.
void gemm_quant_panels(int64_t M, const float* A, int64_t lda, const QuantPanels& q, int64_t index, int64_t p0, int64_t p1,
                       float* C, int64_t ldc);

// The portable kernel (the oracle of the AVX2 / AVX-512 ones, the path without AVX2).
void gemm_quant_panels_portable(int64_t M, const float* A, int64_t lda, const QuantPanels& q, int64_t index, int64_t p0,
                                int64_t p1, float* C, int64_t ldc);

// Dequantizes one panel into out [K, 32] (the FP32 panel layout).
void dequantize_panel(const QuantPanels& q, int64_t index, int64_t p, float* out);

}  // namespace switchyard
