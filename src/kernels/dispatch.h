// The kernel table: every ISA-specific entry point of the GEMM family, filled once from the CPU probe
// and capped by SWITCHYARD_ISA (portable | avx2 | avx512 | native) or CompileOptions::isa. Operators,
// layers and the GEMM front ends (gemm_panel.h, gemm_kernel.h, ...) call through kernels(); nothing
// outside src/kernels/ tests CPU features. The MoE layer's own kernels (routing, activations, the
// tiny-expert kernel) sit in moe/moe_kernels.h, chosen by the same active_isa().
//
// Entry names carry the contract <dtype>_<op>_<isa>: f32_gemm_panel_avx512 and f32_gemm_panel_avx2
// (hand-written, x86/), f32_gemm_panel_portable (plain C++, the oracle; isa_clones.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace switchyard {

struct QuantPanels;

// Ordered: a cap keeps every ISA at or below it.
enum class Isa : int { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };
const char* isa_name(Isa isa);
// "portable", "avx2", "avx512"; "native" or "" = the best this CPU runs. Throws on anything else.
Isa parse_isa(const std::string& name);

struct CpuFeatures {
  bool avx2_fma = false;     // AVX2 + FMA + F16C: the avx2 kernels
  bool avx512 = false;       // AVX-512 F/BW/DQ/VL: the avx512 kernels
  bool avx512_vnni = false;  // AVX512-VNNI: INT8 dot products
  bool avx512_bf16 = false;  // AVX512-BF16: BF16 dot products
};
const CpuFeatures& cpu_features();  // probed once
Isa machine_isa();                  // the best ISA this CPU runs
std::vector<Isa> runnable_isas();   // portable up to machine_isa(), for tests and benchmarks

// 32-column packed panels (gemm_panel.h): C[:, panels p0..p1) = A [M, K] x panels.
using F32GemmPanelFn = void (*)(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed,
                                int64_t p0, int64_t p1, float* C, int64_t ldc);
using Bf16GemmPanelFn = void (*)(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* packed,
                                 int64_t p0, int64_t p1, float* C, int64_t ldc);
using F16GemmPanelFn = void (*)(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed,
                                int64_t p0, int64_t p1, float* C, int64_t ldc);
// Unpacked small-M rows i0..i1, columns j0..j1 of C = alpha A B + beta C (gemm_kernel.h).
using F32GemmRowsFn = void (*)(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, float alpha, const float* A,
                               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// C [M, N] = alpha A[:, k0..k1) B[k0..k1, :] + beta C, streaming B once (decode GEMVs).
using F32GemmStreamFn = void (*)(int64_t M, int64_t N, int64_t k0, int64_t k1, float alpha, const float* A, int64_t lda,
                                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// Weight-only INT8 / INT4 panels (gemm_panel_quant.h): few rows dequantised in registers, and one panel
// dequantised to FP32 for many rows.
using F32GemmQuantPanelFn = void (*)(int64_t M, const float* A, int64_t lda, const QuantPanels& q, int64_t index,
                                     int64_t p0, int64_t p1, float* C, int64_t ldc);
using F32DequantizePanelFn = void (*)(const QuantPanels& q, int64_t index, int64_t p, float* out);
// INT8 x INT8 VNNI-layout panels (gemm_panel_s8.h) and INT4 weights with INT8 rows.
using S8GemmPanelFn = void (*)(int64_t M, int64_t K, const uint8_t* A, int64_t lda, const float* row_scales,
                               const uint8_t* packed, const float* scales, const int32_t* comp, int64_t N, int64_t p0,
                               int64_t p1, float* C, int64_t ldc);
using S4GemmPanelFn = void (*)(int64_t M, int64_t K, int64_t group, const uint8_t* A, int64_t lda, const float* row_scales,
                               const int32_t* group_sums, const uint8_t* packed, const uint16_t* scales,
                               const uint16_t* mins, int64_t N, int64_t p0, int64_t p1, float* C, int64_t ldc);
using QuantizeRowsU8Fn = void (*)(const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo,
                                  float* scales);

// Direct NHWC convolution for at most 16 output channels (conv_nhwc.h).
using F32ConvNhwc16Fn = void (*)(int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w,
                                 const float* bias, int64_t cout, bool relu, float* out, int64_t ldo);

struct KernelTable {
  Isa isa = Isa::kPortable;
  bool native_bf16 = false;  // bf16_gemm_panel multiplies in BF16 hardware (AVX512-BF16)
  bool native_vnni = false;  // s8 / s4 panels use VNNI dot products
  F32GemmPanelFn f32_gemm_panel = nullptr;
  Bf16GemmPanelFn bf16_gemm_panel = nullptr;
  F16GemmPanelFn f16_gemm_panel = nullptr;
  F32GemmRowsFn f32_gemm_rows = nullptr;
  F32GemmStreamFn f32_gemm_stream = nullptr;
  F32GemmQuantPanelFn f32_gemm_quant_panel = nullptr;
  F32DequantizePanelFn f32_dequantize_panel = nullptr;
  S8GemmPanelFn s8_gemm_panel = nullptr;
  S4GemmPanelFn s4_gemm_panel = nullptr;
  QuantizeRowsU8Fn quantize_rows_u8 = nullptr;
  F32ConvNhwc16Fn f32_conv_nhwc16 = nullptr;
};

// The active table (an atomic pointer load: cheap enough per call).
const KernelTable& kernels();
// The table of one ISA (capped to what this CPU runs): the portable one is the tests' oracle.
const KernelTable& kernel_table(Isa isa);
Isa active_isa();
// Caps the active ISA (never above machine_isa()); returns the ISA now active. Process-wide: call it
// before compiling and running, not while requests run. SWITCHYARD_ISA sets the first cap.
Isa set_isa_cap(Isa cap);

}  // namespace switchyard
