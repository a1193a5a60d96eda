// GEMM on weights prepacked once into 32-column panels: the layout of the MoE experts.
//
// A weight matrix B[K,N] becomes ceil(N/32) panels, panel p = columns [32p, 32p+32) as K rows of 32
// contiguous floats (the last panel zero-padded). Any range of panels is one contiguous block, so a
// task that owns some output columns streams exactly its slice of the weights, in order, with no
// packing per call (oneDNN's sgemm re-packs B on every call, which dominates for the few rows an
// expert of a many-expert layer gets).
#pragma once

#include <cstdint>

#include "switchyard/tensor.h"

namespace switchyard {

constexpr int64_t kPanelWidth = 32;

inline int64_t panel_count(int64_t N) { return (N + kPanelWidth - 1) / kPanelWidth; }
// Floats of one packed K x N matrix (panels padded to 32 columns).
inline int64_t panel_floats(int64_t K, int64_t N) { return panel_count(N) * K * kPanelWidth; }

// Packs count matrices given in nn.Linear layout (each [N,K], contiguous one after another) into
// panels: out is [count, panel_floats(K, N)], 64-byte aligned.
Tensor pack_panels_from_linear(const float* w, int64_t count, int64_t N, int64_t K);

// C[M, 32*p0 .. min(N, 32*p1)) = A[M,K] B for the panels [p0, p1) of packed B (row-major A and C,
// leading dimensions lda, ldc; C written, not accumulated). Runs on the calling thread.
void gemm_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, int64_t p0, int64_t p1,
                 float* C, int64_t ldc);

// The portable kernel (the test oracle of the AVX2 and AVX-512 ones, and the path on CPUs without AVX2).
void gemm_panels_portable(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, int64_t p0,
                          int64_t p1, float* C, int64_t ldc);

// BF16 panels (the operand layout of AVX512-BF16's vdpbf16ps): panel p holds columns 32p..32p+31 as
// ceil(K/2) pairs of rows, element (k, j) at [(k/2) * 64 + 2j + k % 2]; K padded to even with zeros.
inline int64_t panel_bf16_elems(int64_t K, int64_t N) { return panel_count(N) * ((K + 1) / 2) * 2 * kPanelWidth; }

// As pack_panels_from_linear, rounded to BF16 (nearest even): out is [count, panel_bf16_elems(K, N)] of
// dtype kBFloat16.
Tensor pack_panels_bf16_from_linear(const float* w, int64_t count, int64_t N, int64_t K);

// Rounds rows of A [M, K] (leading dimension lda) to BF16 (nearest even; NaN stays NaN) into out
// [M, ldo], ldo >= K rounded up to even; the padding column of an odd K is zeroed.
void round_rows_to_bf16(const float* A, int64_t M, int64_t K, int64_t lda, uint16_t* out, int64_t ldo);

// C[M, 32*p0 .. min(N, 32*p1)) = A B, A already BF16 ([M, K] with even leading dimension lda),
// products in BF16 and sums in FP32. AVX512-BF16 where the CPU has it; on AVX2 the BF16 values are
// widened to FP32 in the kernel (exact products, FP32 sums); the portable loop is the test oracle.
void gemm_panels_bf16(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* packed, int64_t p0,
                      int64_t p1, float* C, int64_t ldc);
void gemm_panels_bf16_portable(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* packed,
                               int64_t p0, int64_t p1, float* C, int64_t ldc);

// FP16 weight storage (precision "fp16"): the FP32 panel layout with FP16 elements (round to nearest
// even), widened in the kernel; A, C and the sums stay FP32. out: [count, panel_floats(K, N)] kFloat16.
Tensor pack_panels_fp16_from_linear(const float* w, int64_t count, int64_t N, int64_t K);
void gemm_panels_fp16(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed, int64_t p0,
                      int64_t p1, float* C, int64_t ldc);
void gemm_panels_fp16_portable(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed,
                               int64_t p0, int64_t p1, float* C, int64_t ldc);

}  // namespace switchyard
