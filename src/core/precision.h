// Compute precisions: what a compiled model stores and multiplies its weights in.
#pragma once

#include <string>

namespace switchyard {

// Compute precision of a compiled model (CompileOptions::precision): how the weights of the MoE experts
// and of MatMul / Gemm layers with constant weights are stored and multiplied (MoeConfig::weight_format,
// kernels/dense_linear.h); routers and all other arithmetic stay FP32.
//   bf16: BF16 weights and products, FP32 sums; int8: INT8 weights (per column) and activations
//   quantized per row at run time, INT32 sums (VNNI); int8-weights / int4-weights: weight-only INT8 /
//   INT4 with group-wise FP16 scales (CompileOptions::weight_group), dequantized in the kernel.
//   int4: INT4 weights as int4-weights, activations and sums as int8 (W4A8, VNNI).
//   fp16: FP16 weight storage, FP32 arithmetic.
enum class Precision { kFp32, kFp16, kBf16, kInt8, kInt4, kInt8Weights, kInt4Weights };
// "fp32", "fp16", "bf16", "int8", "int4", "int8-weights", "int4-weights" ("" = fp32); throws otherwise.
Precision parse_precision(const std::string& name);
// The name parse_precision accepts for p.
const char* precision_name(Precision p);

}  // namespace switchyard
