// W4A8 GEMM on INT4 VNNI-layout panels (kernels/gemm_panel_s8.h, S4Panels) for CPUs without VNNI. The
// unsigned operand is the weight nibble (0..15) and the signed one the activation code (-127..127), so
// vpmaddubsw's int16 pair sums are at most 2 x 15 x 127 = 3810 and never saturate; eight of them (a
// group of 32 k) still fit int16, so the pair sums add in int16 over up to 8 quads and widen to int32
// (vpmaddwd by 1) once per 8 quads: 2 integer ops per 32 multiply-adds. Per group the int32 sums are
// scaled into FP32 sums (scale x sum + min x activation sum) kept in an L1 row. Up to 3 rows x the whole
// panel (4 vectors of 8 columns: 12 accumulators). Compiled with -mavx2 -mfma -mf16c; reached only
// through the kernel table.
#include "kernels/kernel_entries.h"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/x86/ymm_tail.h"

namespace switchyard::x86 {

namespace {

constexpr int64_t kPanel = 32;
constexpr int64_t kPrefetchAhead = 4096;

template <int R>
void panel_rows(int64_t K, int64_t group, const uint8_t* A, int64_t lda, const float* row_scales, const int32_t* group_sums,
                int64_t G, const uint8_t* P, const uint16_t* scales, const uint16_t* mins, float* C, int64_t ldc,
                int64_t cols) {
  const int64_t quads = (K + 3) / 4;
  const __m256i low = _mm256_set1_epi8(15), flip = _mm256_set1_epi8(static_cast<char>(0x80)), ones = _mm256_set1_epi16(1);
  alignas(32) float out[R][kPanel] = {};
  for (int64_t g = 0; g < G; ++g) {
    __m256i i32[R][4];
#pragma GCC unroll 3
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) i32[r][v] = _mm256_setzero_si256();
    const int64_t q1 = std::min(quads, (g + 1) * group / 4);
    for (int64_t q0 = g * group / 4; q0 < q1; q0 += 8) {
      __m256i i16[R][4];
#pragma GCC unroll 3
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) i16[r][v] = _mm256_setzero_si256();
      for (int64_t q = q0; q < std::min(q1, q0 + 8); ++q) {
        _mm_prefetch(reinterpret_cast<const char*>(P + q * 64 + kPrefetchAhead), _MM_HINT_T0);
        const __m256i c0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(P + q * 64));
        const __m256i c1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(P + q * 64 + 32));
        // Columns 0..7, 8..15 (low nibbles) and 16..23, 24..31 (high nibbles).
        const __m256i w[4] = {_mm256_and_si256(c0, low), _mm256_and_si256(c1, low),
                              _mm256_and_si256(_mm256_srli_epi16(c0, 4), low), _mm256_and_si256(_mm256_srli_epi16(c1, 4), low)};
#pragma GCC unroll 3
        for (int r = 0; r < R; ++r) {
          int32_t quad;
          std::memcpy(&quad, A + r * lda + 4 * q, 4);
          const __m256i a = _mm256_xor_si256(_mm256_set1_epi32(quad), flip);  // signed activation codes
#pragma GCC unroll 4
          for (int v = 0; v < 4; ++v) i16[r][v] = _mm256_add_epi16(i16[r][v], _mm256_maddubs_epi16(w[v], a));
        }
      }
#pragma GCC unroll 3
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) i32[r][v] = _mm256_add_epi32(i32[r][v], _mm256_madd_epi16(i16[r][v], ones));
    }
#pragma GCC unroll 3
    for (int r = 0; r < R; ++r) {
      const __m256 gs = _mm256_set1_ps(static_cast<float>(group_sums[r * G + g]));
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        __m256 o = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32[r][v]), half8(scales + g * kPanel + 8 * v), _mm256_load_ps(out[r] + 8 * v));
        o = _mm256_fmadd_ps(gs, half8(mins + g * kPanel + 8 * v), o);
        _mm256_store_ps(out[r] + 8 * v, o);
      }
    }
  }
#pragma GCC unroll 3
  for (int r = 0; r < R; ++r) {
    const __m256 rs = _mm256_set1_ps(row_scales[r]);
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) store_lanes(C + r * ldc + 8 * v, _mm256_mul_ps(_mm256_load_ps(out[r] + 8 * v), rs), cols - 8 * v);
  }
}

using PanelRows = void (*)(int64_t, int64_t, const uint8_t*, int64_t, const float*, const int32_t*, int64_t,
                           const uint8_t*, const uint16_t*, const uint16_t*, float*, int64_t, int64_t);
constexpr PanelRows kPanelRows[4] = {nullptr, panel_rows<1>, panel_rows<2>, panel_rows<3>};

}  // namespace

void s4_gemm_panel_avx2(int64_t M, int64_t K, int64_t group, const uint8_t* A, int64_t lda, const float* row_scales,
                        const int32_t* group_sums, const uint8_t* packed, const uint16_t* scales, const uint16_t* mins,
                        int64_t N, int64_t p0, int64_t p1, float* C, int64_t ldc) {
  const int64_t quads = (K + 3) / 4, G = (K + group - 1) / group, row_groups = (M + 2) / 3;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t cols = std::min(kPanel, N - p * kPanel);
    for (int64_t rg = 0; rg < row_groups; ++rg) {
      const int64_t r0 = M * rg / row_groups, r1 = M * (rg + 1) / row_groups;
      kPanelRows[r1 - r0](K, group, A + r0 * lda, lda, row_scales + r0, group_sums + r0 * G, G, packed + p * quads * 64,
                          scales + p * G * kPanel, mins + p * G * kPanel, C + r0 * ldc + p * kPanel, ldc, cols);
    }
  }
}

}  // namespace switchyard::x86
