// INT8 GEMM with dynamically quantized activations: the expert weights of precision "int8".
//
// Weights are quantized once, symmetric per output column (w ~ scale_j * code, codes -127..127), and
// packed in the operand layout of AVX512-VNNI's vpdpbusd: 32-column panels as before, each holding
// ceil(K/4) quads of rows, element (k, j) at [(k/4) * 128 + 4j + k % 4] (K padded with zero codes).
// Activations are quantized per row at run time, symmetric (a ~ row_scale * code), and stored as
// unsigned bytes code + 128, because vpdpbusd multiplies unsigned by signed bytes. The +128 is
// undone exactly by starting each column's int32 sum at -128 * sum_k(code_kj) (precomputed), so
//   C[r, j] = float(sum_k a_code[r,k] * w_code[k,j]) * scale_j * row_scale_r.
// One vpdpbusd does 4 k steps of 16 columns: 4x the FP32 FMA rate, and a quarter of its weight bytes.
#pragma once

#include <cstdint>

#include "kernels/gemm_panel_quant.h"
#include "switchyard/tensor.h"

namespace switchyard {

struct S8Panels {
  Tensor codes;   // int8 codes stored as uint8 [count, panels * quads * 128]
  Tensor scales;  // float [count, panels * 32]: per column (0 for padding columns)
  Tensor comp;    // int32 [count, panels * 32]: -128 * sum of the column's codes
  int64_t K = 0, N = 0;
  int64_t quads() const { return (K + 3) / 4; }
  int64_t panels() const { return (N + 31) / 32; }
  int64_t codes_per_matrix() const { return panels() * quads() * 128; }
  size_t bytes() const { return codes.nbytes() + scales.nbytes() + comp.nbytes(); }
};

// Leading dimension of quantized activation rows of K values (whole quads).
inline int64_t s8_row_ld(int64_t K) { return (K + 3) / 4 * 4; }

// Quantizes count matrices in nn.Linear layout (each [N, K], one after another).
S8Panels quantize_panels_s8_from_linear(const float* w, int64_t count, int64_t N, int64_t K);

// Quantizes rows of A [M, K] (leading dimension lda) into out [M, ldo] (ldo = s8_row_ld(K); code + 128,
// padding 128) and scales [M] (max|a| / 127; a row of zeros gets scale 0). Non-finite values are
// clamped to the row's finite range.
void quantize_rows_u8(const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo, float* scales);
void quantize_rows_u8_portable(const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo,
                               float* scales);  // the oracle of the AVX2 / AVX-512 ones

// C[M, 32*p0 .. min(N, 32*p1)) = A W for matrix `index` of w, A given by quantize_rows_u8 (leading
// dimension lda, per-row scales). AVX512-VNNI where the CPU has it, else AVX2's vpmaddubsw (exact, see
// x86/s8_gemm_panel_avx2.cpp); the portable loop with the same integer arithmetic is the test oracle.
void gemm_panels_s8(int64_t M, const uint8_t* A, int64_t lda, const float* row_scales, const S8Panels& w, int64_t index,
                    int64_t p0, int64_t p1, float* C, int64_t ldc);
void gemm_panels_s8_portable(int64_t M, const uint8_t* A, int64_t lda, const float* row_scales, const S8Panels& w,
                             int64_t index, int64_t p0, int64_t p1, float* C, int64_t ldc);

// INT4 weights with INT8 activations (precision "int4"): the weights of int4-weights (asymmetric
// codes 0..15 with an FP16 scale and minimum per `group` rows and column, kernels/gemm_panel_quant.h),
// re-laid for vpdpbusd: panel p, quad q holds 64 bytes, byte 4j + i = code(4q + i, j) in the low
// nibble and code(4q + i, j + 16) in the high nibble. Activations come from quantize_rows_u8. Per
// group the integer sums of codes x activation codes are scaled in FP32:
//   C[r, j] = row_scale_r * sum_g (scale_gj * sum_k a_code[r,k] code[k,j] + min_gj * sum_k a_code[r,k])
// The unsigned operand of vpdpbusd is the weights here (codes 0..15), the signed one the activations.
struct S4Panels {
  Tensor codes;         // uint8 [count, panels * quads * 64]
  Tensor scales, mins;  // FP16 bits [count, panels, groups, 32]
  int64_t K = 0, N = 0, group = 32;
  int64_t quads() const { return (K + 3) / 4; }
  int64_t panels() const { return (N + 31) / 32; }
  int64_t groups() const { return (K + group - 1) / group; }
  int64_t codes_per_matrix() const { return panels() * quads() * 64; }
  int64_t scales_per_matrix() const { return panels() * groups() * 32; }
  size_t bytes() const { return codes.nbytes() + scales.nbytes() + mins.nbytes(); }
};

// Re-lays INT4 weight-only panels (bits 4, group a multiple of 4) for the W4A8 kernel.
S4Panels relayout_int4_for_vnni(const QuantPanels& q);

// Per row of quantize_rows_u8's output and group of `group` k, the sum of the activation codes (the
// minimums' term): sums [M, ceil(K / group)]. Computed once per row, beside the quantization.
void activation_group_sums(int64_t M, int64_t K, int64_t group, const uint8_t* A, int64_t lda, int32_t* sums);

// C[M, 32*p0 .. min(N, 32*p1)) = A W for matrix `index` of w, A as for gemm_panels_s8, group_sums
// from activation_group_sums with w.group ([M, w.groups()]).
void gemm_panels_s4(int64_t M, const uint8_t* A, int64_t lda, const float* row_scales, const int32_t* group_sums,
                    const S4Panels& w, int64_t index, int64_t p0, int64_t p1, float* C, int64_t ldc);
void gemm_panels_s4_portable(int64_t M, const uint8_t* A, int64_t lda, const float* row_scales, const int32_t* group_sums,
                             const S4Panels& w, int64_t index, int64_t p0, int64_t p1, float* C, int64_t ldc);

}  // namespace switchyard
