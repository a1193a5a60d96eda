// Linear-layer weights prepacked at compile time in one of the execution precisions, and the GEMM
// that multiplies rows by them: the one kernel API that the MoE experts (src/moe/moe_layer.cpp) and
// the dense MatMul / Gemm layers (src/kernels/dense_linear.cpp) call for every precision.
//
//   kFp32: 32-column FP32 panels (kernels/gemm_panel.h);
//   kFp16: FP16 weights widened in the kernel, everything else FP32;
//   kBf16: BF16 weights, rows rounded to BF16 on the way in, FP32 accumulation;
//   kInt8: INT8 weights (symmetric per column) and rows quantized to INT8 per row, INT32 sums
//          (kernels/gemm_panel_s8.h); kInt4: INT4 weights of kInt4Weights, rows and sums as kInt8 (W4A8);
//   kInt8Weights / kInt4Weights: weight-only, FP16 scales per `group` rows and column, dequantized in
//          the kernel (rows and sums FP32; kernels/gemm_panel_quant.h).
#pragma once

#include <cstdint>

#include "kernels/gemm_panel_quant.h"
#include "kernels/gemm_panel_s8.h"
#include "core/precision.h"
#include "switchyard/tensor.h"

namespace switchyard {

enum class WeightFormat { kFp32, kFp16, kBf16, kInt8, kInt4, kInt8Weights, kInt4Weights };

WeightFormat weight_format_for(Precision p);
inline bool bf16_rows(WeightFormat f) { return f == WeightFormat::kBf16; }
inline bool int8_rows(WeightFormat f) { return f == WeightFormat::kInt8 || f == WeightFormat::kInt4; }
inline bool weight_only(WeightFormat f) { return f == WeightFormat::kInt8Weights || f == WeightFormat::kInt4Weights; }

// `count` matrices in nn.Linear layout ([N, K] each: N outputs of K inputs), in one format; only that
// format's member is defined.
struct PackedLinear {
  WeightFormat format = WeightFormat::kFp32;
  int64_t count = 0, N = 0, K = 0, group = 32;
  Tensor panels;      // FP32, FP16 or BF16 panels [count, ...]
  QuantPanels quant;  // weight-only INT8 / INT4
  S8Panels s8;        // INT8 weights for INT8 rows
  S4Panels s4;        // INT4 weights for INT8 rows
};

// Packs w (float32, count x N x K); `what` names the weight in error messages.
PackedLinear pack_linear(const Tensor& w, int64_t count, int64_t N, int64_t K, WeightFormat format, int64_t group,
                         const std::string& what);

// Leading dimension of a BF16 copy of rows of n values: rounded up to whole pairs.
inline int64_t bf16_ld(int64_t n) { return (n + 1) / 2 * 2; }
// INT4 x INT8: weight groups per row of n values (one activation code sum each).
inline int64_t activation_groups(int64_t n, int64_t group) { return (n + group - 1) / group; }

// Rows to multiply, in every form the formats take: FP32, BF16 (rounded once) or INT8 codes with a
// scale per row (quantized once), plus the INT4 group sums of those codes. Unused forms are null.
struct LinearRows {
  float* f32 = nullptr;
  int64_t ld = 0;  // of f32: the row length
  uint16_t* bf16 = nullptr;
  uint8_t* u8 = nullptr;
  float* u8_scale = nullptr;
  int32_t* group_sums = nullptr;
  int64_t groups = 0;  // per row, in group_sums
  LinearRows from(int64_t r) const {  // the same rows starting at row r
    return {f32 + r * ld, ld, bf16 ? bf16 + r * bf16_ld(ld) : nullptr, u8 ? u8 + r * s8_row_ld(ld) : nullptr,
            u8_scale ? u8_scale + r : nullptr, group_sums ? group_sums + r * groups : nullptr, groups};
  }
};

// Scratch bytes for the converted forms of M rows of n values, and the rows over FP32 rows f32 with
// those forms carved from scratch (64-byte aligned pieces).
size_t linear_rows_bytes(WeightFormat format, int64_t M, int64_t n, int64_t group);
LinearRows linear_rows(WeightFormat format, float* f32, int64_t M, int64_t n, int64_t group, void* scratch);

// Rounds (BF16) or quantizes (INT8, and the INT4 group sums) rows [r0, r1) once for the format.
void convert_linear_rows(WeightFormat format, const LinearRows& rows, int64_t r0, int64_t r1, int64_t group);

// out[n rows, panels q0..q1) = a W_index (32 columns per panel; out row-major, leading dimension ldc).
void linear_gemm(const PackedLinear& w, int64_t index, int64_t n, const LinearRows& a, int64_t q0, int64_t q1, float* out,
                 int64_t ldc);

}  // namespace switchyard
