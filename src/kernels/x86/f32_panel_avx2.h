// The many-row step of the AVX2 FP32 panel kernel (f32_gemm_panel_avx2.cpp), shared with the BF16 one,
// which widens each panel to FP32 and then runs this.
#pragma once

#include <cstdint>

namespace switchyard::x86 {

// C[M, cols) = A[M, K] P for one FP32 panel P (K rows of 32 floats), M >= 4. While it runs it prefetches
// next_bytes from next (the memory the caller reads next; null for none).
void f32_panel_many_rows_avx2(int64_t M, int64_t K, const float* A, int64_t lda, const float* P, int64_t cols, float* C,
                              int64_t ldc, const char* next, int64_t next_bytes);

}  // namespace switchyard::x86
