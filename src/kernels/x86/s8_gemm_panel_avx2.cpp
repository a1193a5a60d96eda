// INT8 GEMM on the VNNI-layout panels (kernels/gemm_panel_s8.h) for CPUs without VNNI, exact: AVX2 has no
// u8 x s8 dot product into int32 without saturation (vpmaddubsw saturates its int16 pair sums, and
// activation codes + 128 times weight codes reach 2 x 255 x 127). So the activation's sign moves onto
// the weight: with signed codes a (the stored byte xor 0x80) and b,
//   a * b = |a| * (sign(a) b),  |a| <= 127  =>  pair sums <= 2 x 127 x 127 < 32767,
// so vpsignb + vpmaddubsw + vpmaddwd(1) give the exact int32 sums of 4 k steps per column, and the
// +128 compensation is not needed (the sums are the same integers as the portable kernel's, then the
// same two FP32 multiplies: equal results bit for bit). Tiles: pairs of rows x the whole panel (measured
// ~4% faster than 4 rows x a 16-column half); decode streams each panel once, prefetched 8 KB ahead. Compiled with -mavx2; reached only through the kernel table.
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/x86/ymm_tail.h"

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;

// R <= 2 rows x V vectors of 8 columns (x 4 bytes) over every quad (V = 4: the whole panel, 8 int32
// accumulators for two rows). `prefetch` advances LINES 64-byte lines per quad.
template <int R, int V, int LINES>
void rows_tile(int64_t quads, const uint8_t* A, int64_t lda, const float* row_scales, const uint8_t* P,
               const float* scales, float* C, int64_t ldc, int64_t cols, const uint8_t* prefetch) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80)), ones = _mm256_set1_epi16(1);
  __m256i acc[R][V];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_si256();
  for (int64_t q = 0; q < quads; ++q) {
#pragma GCC unroll 2
    for (int l = 0; l < LINES; ++l) _mm_prefetch(reinterpret_cast<const char*>(prefetch + q * 128 + 64 * l), _MM_HINT_T0);
    __m256i b[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) b[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(P + q * 128 + 32 * v));
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      int32_t quad;
      std::memcpy(&quad, A + r * lda + 4 * q, 4);
      const __m256i a = _mm256_xor_si256(_mm256_set1_epi32(quad), flip);  // signed codes
      const __m256i magnitude = _mm256_abs_epi8(a);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v)
        acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(b[v], a)), ones));
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const __m256 rs = _mm256_set1_ps(row_scales[r]);
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v)
      store_lanes(C + r * ldc + 8 * v, _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][v]), _mm256_loadu_ps(scales + 8 * v)), rs),
                  cols - 8 * v);
  }
}

// Decode reads each panel once, fetching this far ahead of the stream.
constexpr int64_t kPrefetchAhead = 8192;

}  // namespace

void s8_gemm_panel_avx2(int64_t M, int64_t K, const uint8_t* A, int64_t lda, const float* row_scales, const uint8_t* packed,
                        const float* scales, const int32_t* /*comp: not needed, see above*/, int64_t N, int64_t p0,
                        int64_t p1, float* C, int64_t ldc) {
  const int64_t quads = (K + 3) / 4, panel = quads * 128;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* P = packed + p * panel;
    const int64_t cols = std::min(kPanel, N - p * kPanel);
    float* c = C + p * kPanel;
    if (M <= 2) {
      if (M == 1) rows_tile<1, 4, 2>(quads, A, lda, row_scales, P, scales + p * kPanel, c, ldc, cols, P + kPrefetchAhead);
      else rows_tile<2, 4, 2>(quads, A, lda, row_scales, P, scales + p * kPanel, c, ldc, cols, P + kPrefetchAhead);
      continue;
    }
    // Pairs of rows over the whole panel: the first pair brings the panel in, the others re-read it
    // from L1/L2.
    int64_t r = 0;
    for (; r + 2 <= M; r += 2)
      rows_tile<2, 4, 1>(quads, A + r * lda, lda, row_scales + r, P, scales + p * kPanel, c + r * ldc, ldc, cols,
                         P + kPrefetchAhead);
    if (r < M)
      rows_tile<1, 4, 1>(quads, A + r * lda, lda, row_scales + r, P, scales + p * kPanel, c + r * ldc, ldc, cols,
                         P + kPrefetchAhead);
  }
}

}  // namespace switchyard::x86
