// f32 GEMM for small M (decode GEMVs, tiny experts, batch-1 layers): C[M,N] = alpha A[M,K] B[K,N] + beta C,
// row-major, B read straight (no packing). Tiles of up to 4 rows x 64 columns keep 16 zmm accumulators
// across the whole K loop; a lone 1 x 16 tile splits K over 4 accumulators so FMA latency does not
// bound it. Column tails use masked loads/stores. Compiled with -mavx512f; called only when the CPU
// has AVX-512F (see gemm_kernel.cpp).
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace switchyard::x86 {

namespace {

template <int ROWS, int VECS>
inline void tile(int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc, int64_t width) {
  __m512 acc[ROWS][VECS];
  __mmask16 mask[VECS];
  for (int v = 0; v < VECS; ++v) {
    const int64_t left = width - 16 * v;
    mask[v] = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << std::max<int64_t>(left, 0)) - 1);
    for (int r = 0; r < ROWS; ++r) acc[r][v] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < K; ++k) {
    __m512 b[VECS];
    for (int v = 0; v < VECS; ++v) b[v] = _mm512_maskz_loadu_ps(mask[v], B + k * ldb + 16 * v);
    for (int r = 0; r < ROWS; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * lda + k]);
      for (int v = 0; v < VECS; ++v) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int r = 0; r < ROWS; ++r)
    for (int v = 0; v < VECS; ++v) {
      float* c = C + r * ldc + 16 * v;
      __m512 out = _mm512_mul_ps(va, acc[r][v]);
      if (beta != 0.f) out = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask[v], c), out);
      _mm512_mask_storeu_ps(c, mask[v], out);
    }
}

// 1 x 16 with K split over four accumulators.
inline void row16(int64_t K, float alpha, const float* a, const float* B, int64_t ldb, float beta, float* c, int64_t width) {
  const __mmask16 mask = width >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << width) - 1);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    acc0 = _mm512_fmadd_ps(_mm512_set1_ps(a[k]), _mm512_maskz_loadu_ps(mask, B + k * ldb), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_set1_ps(a[k + 1]), _mm512_maskz_loadu_ps(mask, B + (k + 1) * ldb), acc1);
    acc2 = _mm512_fmadd_ps(_mm512_set1_ps(a[k + 2]), _mm512_maskz_loadu_ps(mask, B + (k + 2) * ldb), acc2);
    acc3 = _mm512_fmadd_ps(_mm512_set1_ps(a[k + 3]), _mm512_maskz_loadu_ps(mask, B + (k + 3) * ldb), acc3);
  }
  for (; k < K; ++k) acc0 = _mm512_fmadd_ps(_mm512_set1_ps(a[k]), _mm512_maskz_loadu_ps(mask, B + k * ldb), acc0);
  __m512 out = _mm512_mul_ps(_mm512_set1_ps(alpha), _mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
  if (beta != 0.f) out = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, c), out);
  _mm512_mask_storeu_ps(c, mask, out);
}

template <int ROWS>
void rows_block(int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                int64_t ldc, int64_t j0, int64_t j1) {
  int64_t j = j0;
  for (; j + 64 <= j1; j += 64) tile<ROWS, 4>(K, alpha, A, lda, B + j, ldb, beta, C + j, ldc, 64);
  if (j < j1) {
    const int64_t width = j1 - j;
    if (ROWS == 1 && width <= 16) row16(K, alpha, A, B + j, ldb, beta, C + j, width);
    else if (width <= 16) tile<ROWS, 1>(K, alpha, A, lda, B + j, ldb, beta, C + j, ldc, width);
    else if (width <= 32) tile<ROWS, 2>(K, alpha, A, lda, B + j, ldb, beta, C + j, ldc, width);
    else tile<ROWS, 4>(K, alpha, A, lda, B + j, ldb, beta, C + j, ldc, width);
  }
}

// R rows x one vector of up to 16 columns (narrow layers such as 784 -> 16): R independent
// accumulators hide the FMA latency, and each B row loaded serves R rows. The fully unrolled row
// loop keeps the accumulators in registers (the generic tile above does not reach this: ~2.8 vs
// ~7 M rows/s per core on 784 -> 16, measured).
template <int R>
void narrow_tile(int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc, int64_t width) {
  const __mmask16 mask = width >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << width) - 1);
  __m512 acc[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  if (width == 16) {
    for (int64_t k = 0; k < K; ++k) {
      const __m512 b = _mm512_loadu_ps(B + k * ldb);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(A[r * lda + k]), b, acc[r]);
    }
  } else {
    for (int64_t k = 0; k < K; ++k) {
      const __m512 b = _mm512_maskz_loadu_ps(mask, B + k * ldb);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(A[r * lda + k]), b, acc[r]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    __m512 out = _mm512_mul_ps(va, acc[r]);
    if (beta != 0.f) out = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask, C + r * ldc), out);
    _mm512_mask_storeu_ps(C + r * ldc, mask, out);
  }
}

// R <= 4 rows x one vector, K split over four accumulators per row: few rows (a handful of
// stacked batch-1 requests) would otherwise be bound by the FMA latency of one chain per row.
template <int R>
void narrow_splitk(int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                   int64_t ldc, int64_t width) {
  const __mmask16 mask = width >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << width) - 1);
  __m512 acc[R][4];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    __m512 b[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) b[j] = _mm512_maskz_loadu_ps(mask, B + (k + j) * ldb);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_fmadd_ps(_mm512_set1_ps(A[r * lda + k + j]), b[j], acc[r][j]);
  }
  for (; k < K; ++k) {
    const __m512 b = _mm512_maskz_loadu_ps(mask, B + k * ldb);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][0] = _mm512_fmadd_ps(_mm512_set1_ps(A[r * lda + k]), b, acc[r][0]);
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    __m512 out = _mm512_mul_ps(va, _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3])));
    if (beta != 0.f) out = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask, C + r * ldc), out);
    _mm512_mask_storeu_ps(C + r * ldc, mask, out);
  }
}

}  // namespace

// Rows [i0, i1) x columns [j0, j1) of C.
void f32_gemm_rows_avx512(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, float alpha, const float* A,
                           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  int64_t i = i0;
  // Narrow products: column strips of 16, 16 rows at a time (16 accumulators + B + broadcast fit the
  // 32 registers; 12 and 16 rows measured alike, 8 rows ~5% slower, 4 rows ~35% slower).
  if (j1 - j0 <= 32 && i1 - i0 >= 8) {
    for (int64_t j = j0; j < j1; j += 16) {
      const int64_t width = std::min<int64_t>(16, j1 - j);
      int64_t r = i0;
      for (; r + 16 <= i1; r += 16) narrow_tile<16>(K, alpha, A + r * lda, lda, B + j, ldb, beta, C + r * ldc + j, ldc, width);
      for (; r + 8 <= i1; r += 8) narrow_tile<8>(K, alpha, A + r * lda, lda, B + j, ldb, beta, C + r * ldc + j, ldc, width);
      for (; r + 4 <= i1; r += 4) narrow_tile<4>(K, alpha, A + r * lda, lda, B + j, ldb, beta, C + r * ldc + j, ldc, width);
      for (; r < i1; ++r) rows_block<1>(K, alpha, A + r * lda, lda, B, ldb, beta, C + r * ldc, ldc, j, j + width);
    }
    return;
  }
  // A few rows of one vector with a long K (stacked batch-1 requests through an embedding).
  if (j1 - j0 <= 16 && K >= 64) {
    const int64_t width = j1 - j0;
    A += i * lda;
    C += i * ldc + j0;
    B += j0;
    for (; i + 4 <= i1; i += 4, A += 4 * lda, C += 4 * ldc) narrow_splitk<4>(K, alpha, A, lda, B, ldb, beta, C, ldc, width);
    switch (i1 - i) {
      case 3: narrow_splitk<3>(K, alpha, A, lda, B, ldb, beta, C, ldc, width); break;
      case 2: narrow_splitk<2>(K, alpha, A, lda, B, ldb, beta, C, ldc, width); break;
      case 1: narrow_splitk<1>(K, alpha, A, lda, B, ldb, beta, C, ldc, width); break;
      default: break;
    }
    return;
  }
  for (; i + 4 <= i1; i += 4) rows_block<4>(K, alpha, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc, j0, j1);
  for (; i < i1; ++i) rows_block<1>(K, alpha, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc, j0, j1);
}

}  // namespace switchyard::x86

namespace switchyard::x86 {

// Streaming product for M <= 4 rows: C[M,N] = alpha A[:, k0:k1] B[k0:k1, :] + beta C, reading B's rows
// k0..k1 in order (one contiguous block), so memory-bound GEMVs stream at the DRAM's pace; the M x N
// rows of C stay in L1/L2 while they accumulate. Split-K callers give each thread its own k range.
void f32_gemm_stream_avx512(int64_t M, int64_t N, int64_t k0, int64_t k1, float alpha, const float* A, int64_t lda,
                            const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t r = 0; r < M; ++r)
    for (int64_t j = 0; j < N; ++j) C[r * ldc + j] = beta == 0.f ? 0.f : beta * C[r * ldc + j];
  int64_t k = k0;
  for (; k + 4 <= k1; k += 4) {
    const float* b0 = B + k * ldb;
    const float* b1 = b0 + ldb;
    const float* b2 = b1 + ldb;
    const float* b3 = b2 + ldb;
    for (int64_t r = 0; r < M; ++r) {
      const __m512 a0 = _mm512_set1_ps(alpha * A[r * lda + k]), a1 = _mm512_set1_ps(alpha * A[r * lda + k + 1]);
      const __m512 a2 = _mm512_set1_ps(alpha * A[r * lda + k + 2]), a3 = _mm512_set1_ps(alpha * A[r * lda + k + 3]);
      float* o = C + r * ldc;
      int64_t j = 0;
      for (; j + 16 <= N; j += 16) {
        __m512 acc = _mm512_loadu_ps(o + j);
        acc = _mm512_fmadd_ps(a0, _mm512_loadu_ps(b0 + j), acc);
        acc = _mm512_fmadd_ps(a1, _mm512_loadu_ps(b1 + j), acc);
        acc = _mm512_fmadd_ps(a2, _mm512_loadu_ps(b2 + j), acc);
        acc = _mm512_fmadd_ps(a3, _mm512_loadu_ps(b3 + j), acc);
        _mm512_storeu_ps(o + j, acc);
      }
      if (j < N) {
        const __mmask16 m = static_cast<__mmask16>((1u << (N - j)) - 1);
        __m512 acc = _mm512_maskz_loadu_ps(m, o + j);
        acc = _mm512_fmadd_ps(a0, _mm512_maskz_loadu_ps(m, b0 + j), acc);
        acc = _mm512_fmadd_ps(a1, _mm512_maskz_loadu_ps(m, b1 + j), acc);
        acc = _mm512_fmadd_ps(a2, _mm512_maskz_loadu_ps(m, b2 + j), acc);
        acc = _mm512_fmadd_ps(a3, _mm512_maskz_loadu_ps(m, b3 + j), acc);
        _mm512_mask_storeu_ps(o + j, m, acc);
      }
    }
  }
  for (; k < k1; ++k)
    for (int64_t r = 0; r < M; ++r) {
      const float a = alpha * A[r * lda + k];
      for (int64_t j = 0; j < N; ++j) C[r * ldc + j] += a * B[k * ldb + j];
    }
}

}  // namespace switchyard::x86
