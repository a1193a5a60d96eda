// Every ISA-specific entry point of src/kernels/, declared once: the hand-written AVX-512 and AVX2
// kernels of x86/ (compiled with their ISA's flags) and the portable kernels (isa_clones.h).
// Only dispatch.cpp and the kernel tests call these by name; everything else goes through kernels().
#pragma once

#include <cstddef>
#include <cstdint>

namespace switchyard {

struct QuantPanels;

// A per-thread buffer of at least `count` floats, one per slot (0..3), that grows and is never freed:
// the scratch of kernels that need one. Defined in a baseline-compiled file: the x86 kernel files must
// not instantiate library templates (std::vector, ...), whose one copy the linker keeps could then be
// their ISA's, run by every caller (scripts/check_isa_objects.py checks this).
float* kernel_thread_buffer(int slot, size_t count);

namespace x86 {
void f32_gemm_panel_avx512(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, int64_t p0,
                           int64_t p1, float* C, int64_t ldc);
void bf16_gemm_panel_avx512bf16(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* packed,
                                int64_t p0, int64_t p1, float* C, int64_t ldc);
void f16_gemm_panel_avx512(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed,
                           int64_t p0, int64_t p1, float* C, int64_t ldc);
void f32_gemm_rows_avx512(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, float alpha, const float* A,
                          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void f32_gemm_stream_avx512(int64_t M, int64_t N, int64_t k0, int64_t k1, float alpha, const float* A, int64_t lda,
                            const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void f32_gemm_quant_panel_avx512(int64_t M, const float* A, int64_t lda, const uint8_t* codes, const uint16_t* scales,
                                 const uint16_t* mins, int bits, int64_t group, int64_t K, int64_t N, int64_t p0, int64_t p1,
                                 float* C, int64_t ldc);
void f32_dequantize_panel_avx512(const uint8_t* codes, const uint16_t* scales, const uint16_t* mins, int bits, int64_t group,
                                 int64_t K, float* out);
void s8_gemm_panel_avx512vnni(int64_t M, int64_t K, const uint8_t* A, int64_t lda, const float* row_scales,
                              const uint8_t* packed, const float* scales, const int32_t* comp, int64_t N, int64_t p0,
                              int64_t p1, float* C, int64_t ldc);
void s4_gemm_panel_avx512vnni(int64_t M, int64_t K, int64_t group, const uint8_t* A, int64_t lda, const float* row_scales,
                              const int32_t* group_sums, const uint8_t* packed, const uint16_t* scales,
                              const uint16_t* mins, int64_t N, int64_t p0, int64_t p1, float* C, int64_t ldc);
void quantize_rows_u8_avx512(const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo, float* scales);
void f32_conv_nhwc16_avx512(int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w, const float* bias,
                            int64_t cout, bool relu, float* out, int64_t ldo);

// Hand-written AVX2 + FMA + F16C kernels (16 ymm registers).
void f32_gemm_panel_avx2(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, int64_t p0,
                         int64_t p1, float* C, int64_t ldc);
void f16_gemm_panel_avx2(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed, int64_t p0,
                         int64_t p1, float* C, int64_t ldc);
void bf16_gemm_panel_avx2(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* packed,
                          int64_t p0, int64_t p1, float* C, int64_t ldc);
void f32_gemm_rows_avx2(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, float alpha, const float* A, int64_t lda,
                        const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void f32_gemm_stream_avx2(int64_t M, int64_t N, int64_t k0, int64_t k1, float alpha, const float* A, int64_t lda,
                          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void f32_gemm_quant_panel_avx2(int64_t M, const float* A, int64_t lda, const uint8_t* codes, const uint16_t* scales,
                               const uint16_t* mins, int bits, int64_t group, int64_t K, int64_t N, int64_t p0, int64_t p1,
                               float* C, int64_t ldc);
void f32_dequantize_panel_avx2(const uint8_t* codes, const uint16_t* scales, const uint16_t* mins, int bits, int64_t group,
                               int64_t K, float* out);
void s8_gemm_panel_avx2(int64_t M, int64_t K, const uint8_t* A, int64_t lda, const float* row_scales, const uint8_t* packed,
                        const float* scales, const int32_t* comp, int64_t N, int64_t p0, int64_t p1, float* C, int64_t ldc);
void s4_gemm_panel_avx2(int64_t M, int64_t K, int64_t group, const uint8_t* A, int64_t lda, const float* row_scales,
                        const int32_t* group_sums, const uint8_t* packed, const uint16_t* scales, const uint16_t* mins,
                        int64_t N, int64_t p0, int64_t p1, float* C, int64_t ldc);
void quantize_rows_u8_avx2(const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo, float* scales);
void f32_conv_nhwc16_avx2(int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w, const float* bias,
                          int64_t cout, bool relu, float* out, int64_t ldo);
}  // namespace x86

// The portable kernels (SY_PORTABLE_KERNEL): the path of CPUs without AVX2 and the test oracle of the
// hand-written ones.
#define SY_DECLARE_PORTABLE(ret, name, params) ret name##_portable params;
SY_DECLARE_PORTABLE(void, f32_gemm_panel, (int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed,
                                         int64_t p0, int64_t p1, float* C, int64_t ldc))
SY_DECLARE_PORTABLE(void, bf16_gemm_panel, (int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
                                          const uint16_t* packed, int64_t p0, int64_t p1, float* C, int64_t ldc))
SY_DECLARE_PORTABLE(void, f16_gemm_panel, (int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                                         const uint16_t* packed, int64_t p0, int64_t p1, float* C, int64_t ldc))
SY_DECLARE_PORTABLE(void, f32_gemm_rows, (int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, float alpha,
                                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                                        int64_t ldc))
SY_DECLARE_PORTABLE(void, f32_gemm_stream, (int64_t M, int64_t N, int64_t k0, int64_t k1, float alpha, const float* A,
                                          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc))
SY_DECLARE_PORTABLE(void, f32_gemm_quant_panel, (int64_t M, const float* A, int64_t lda, const QuantPanels& q, int64_t index,
                                               int64_t p0, int64_t p1, float* C, int64_t ldc))
SY_DECLARE_PORTABLE(void, f32_dequantize_panel, (const QuantPanels& q, int64_t index, int64_t p, float* out))
SY_DECLARE_PORTABLE(void, s8_gemm_panel, (int64_t M, int64_t K, const uint8_t* A, int64_t lda, const float* row_scales,
                                        const uint8_t* packed, const float* scales, const int32_t* comp, int64_t N,
                                        int64_t p0, int64_t p1, float* C, int64_t ldc))
SY_DECLARE_PORTABLE(void, s4_gemm_panel, (int64_t M, int64_t K, int64_t group, const uint8_t* A, int64_t lda,
                                        const float* row_scales, const int32_t* group_sums, const uint8_t* packed,
                                        const uint16_t* scales, const uint16_t* mins, int64_t N, int64_t p0, int64_t p1,
                                        float* C, int64_t ldc))
SY_DECLARE_PORTABLE(void, quantize_rows_u8, (const float* A, int64_t M, int64_t K, int64_t lda, uint8_t* out, int64_t ldo,
                                           float* scales))
SY_DECLARE_PORTABLE(void, f32_conv_nhwc16, (int64_t P, int64_t taps, int64_t cin, const float* const* rows, const float* w,
                                          const float* bias, int64_t cout, bool relu, float* out, int64_t ldo))
#undef SY_DECLARE_PORTABLE

// The x86 quantized-panel kernels take the panel's raw pointers; these adapt them to the table's
// QuantPanels signature (gemm_panel_quant.cpp).
void f32_gemm_quant_panel_avx512(int64_t M, const float* A, int64_t lda, const QuantPanels& q, int64_t index, int64_t p0,
                                 int64_t p1, float* C, int64_t ldc);
void f32_dequantize_panel_avx512(const QuantPanels& q, int64_t index, int64_t p, float* out);
void f32_gemm_quant_panel_avx2(int64_t M, const float* A, int64_t lda, const QuantPanels& q, int64_t index, int64_t p0,
                               int64_t p1, float* C, int64_t ldc);
void f32_dequantize_panel_avx2(const QuantPanels& q, int64_t index, int64_t p, float* out);

}  // namespace switchyard
