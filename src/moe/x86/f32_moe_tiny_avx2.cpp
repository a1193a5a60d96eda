// The whole MoE chain for tiny experts, row by row, in ymm registers (AVX2 + FMA): router logits, softmax,
// top-k, the k experts (Linear - ReLU - Linear) and the output projection, for the shapes of
// tiny_moe_supported() (the seed classifier: E=8, H=I=16, 10 logits). The same steps and the same exp
// as the AVX-512 kernel (f32_moe_tiny_avx512.cpp) with 8-lane vectors; the router and output weights,
// whose widths (E, out_n) need not be multiples of 8, are copied once per call into 16-wide zero-padded
// rows on the stack, so the per-row loops use plain loads. Rows with a NaN score are routed by the
// portable code, which orders NaN as PyTorch does. Compiled with -mavx2 -mfma; reached only through
// the MoE kernel table (moe/moe_kernels.cpp).
#include "moe/x86/tiny_moe.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moe/routing.h"

namespace switchyard::x86 {

namespace {

// exp(x) for x <= 0, the same reduction and polynomial as the portable router (moe/routing.cpp).
inline __m256 exp_nonpositive(__m256 x) {
  const __m256 v = _mm256_max_ps(x, _mm256_set1_ps(-87.f));
  const __m256 magic = _mm256_set1_ps(12582912.f);
  const __m256 shifted = _mm256_fmadd_ps(v, _mm256_set1_ps(1.44269504088896341f), magic);
  const __m256 fn = _mm256_sub_ps(shifted, magic);
  const __m256i k = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(magic));
  __m256 r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(0.693359375f), v);
  r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.f));
  const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
  const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.f), _CMP_GE_OQ);  // below -87: 0
  return _mm256_and_ps(_mm256_mul_ps(e, scale), keep);
}

inline float hsum(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

inline float hmax(__m256 v) {
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

// acc[0..V) += sum over d < D of a[d] * B[d, 8v .. 8v+8); two partial sums against FMA latency where
// the registers allow it.
template <int V>
inline void matvec(const float* a, int64_t D, const float* B, int64_t ldb, __m256* acc) {
  if constexpr (V <= 4) {
    __m256 odd[V];
    for (int v = 0; v < V; ++v) odd[v] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 2) {  // D is a multiple of 16
      const __m256 a0 = _mm256_broadcast_ss(a + d), a1 = _mm256_broadcast_ss(a + d + 1);
      for (int v = 0; v < V; ++v) {
        acc[v] = _mm256_fmadd_ps(a0, _mm256_loadu_ps(B + d * ldb + 8 * v), acc[v]);
        odd[v] = _mm256_fmadd_ps(a1, _mm256_loadu_ps(B + (d + 1) * ldb + 8 * v), odd[v]);
      }
    }
    for (int v = 0; v < V; ++v) acc[v] = _mm256_add_ps(acc[v], odd[v]);
  } else {
    for (int64_t d = 0; d < D; ++d) {
      const __m256 a0 = _mm256_broadcast_ss(a + d);
      for (int v = 0; v < V; ++v) acc[v] = _mm256_fmadd_ps(a0, _mm256_loadu_ps(B + d * ldb + 8 * v), acc[v]);
    }
  }
}

template <int HV, int IV>
void rows(const TinyMoe& m, const float* x, int64_t R, float* y, int64_t ldy, int64_t* counts) {
  constexpr int64_t H = 8 * HV, I = 8 * IV;
  const int64_t E = m.cfg->num_experts, k = m.cfg->k, out_n = m.out_t ? m.out_n : 0;
  const bool relu = m.cfg->activation == MoeActivation::kRelu;
  // Router and output projection as [H, 16] rows, zero-padded (padding experts masked out below).
  alignas(32) float router[H][16] = {}, router_b[16] = {}, out_w[H][16] = {}, out_b[16] = {};
  for (int64_t h = 0; h < H; ++h) std::memcpy(router[h], m.router_t + h * E, static_cast<size_t>(E) * 4);
  if (m.router_b) std::memcpy(router_b, m.router_b, static_cast<size_t>(E) * 4);
  if (m.out_t) {
    for (int64_t h = 0; h < H; ++h) std::memcpy(out_w[h], m.out_t + h * out_n, static_cast<size_t>(out_n) * 4);
    if (m.out_b) std::memcpy(out_b, m.out_b, static_cast<size_t>(out_n) * 4);
  }
  alignas(32) int32_t lane_index[16];
  for (int i = 0; i < 16; ++i) lane_index[i] = i;
  const __m256 valid_lo = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(E)), _mm256_load_si256(reinterpret_cast<const __m256i*>(lane_index))));
  const __m256 valid_hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(E)), _mm256_load_si256(reinterpret_cast<const __m256i*>(lane_index + 8))));
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x + r * H;
    // Router: logits of experts 0..7 and 8..15.
    __m256 lo = _mm256_load_ps(router_b), hi = _mm256_load_ps(router_b + 8);
    for (int64_t h = 0; h < H; ++h) {
      const __m256 a = _mm256_broadcast_ss(xr + h);
      lo = _mm256_fmadd_ps(a, _mm256_load_ps(router[h]), lo);
      if (E > 8) hi = _mm256_fmadd_ps(a, _mm256_load_ps(router[h] + 8), hi);
    }
    int32_t ids[16];
    float w[16];
    alignas(32) float p[16];
    _mm256_store_ps(p, lo);
    _mm256_store_ps(p + 8, hi);
    const __m256 nan_lo = _mm256_and_ps(_mm256_cmp_ps(lo, lo, _CMP_UNORD_Q), valid_lo);
    const __m256 nan_hi = _mm256_and_ps(_mm256_cmp_ps(hi, hi, _CMP_UNORD_Q), valid_hi);
    if (_mm256_movemask_ps(_mm256_or_ps(nan_lo, nan_hi))) {
      route_tokens(*m.cfg, p, 1, ids, w);  // NaN: the portable order
    } else {
      const __m256 lowest = _mm256_set1_ps(-INFINITY);
      const float mx = hmax(_mm256_max_ps(_mm256_blendv_ps(lowest, lo, valid_lo), _mm256_blendv_ps(lowest, hi, valid_hi)));
      const __m256 vmx = _mm256_set1_ps(mx);
      const __m256 e_lo = _mm256_and_ps(exp_nonpositive(_mm256_sub_ps(lo, vmx)), valid_lo);
      const __m256 e_hi = _mm256_and_ps(exp_nonpositive(_mm256_sub_ps(hi, vmx)), valid_hi);
      const __m256 inv = _mm256_set1_ps(1.f / hsum(_mm256_add_ps(e_lo, e_hi)));
      _mm256_store_ps(p, _mm256_mul_ps(e_lo, inv));
      _mm256_store_ps(p + 8, _mm256_mul_ps(e_hi, inv));
      // Top-k over at most 16 probabilities (>= 0): ties go to the lower expert index.
      unsigned taken = 0;
      for (int64_t j = 0; j < k; ++j) {
        int best = -1;
        for (int e = 0; e < E; ++e)
          if (!(taken >> e & 1u) && (best < 0 || p[e] > p[best])) best = e;
        taken |= 1u << best;
        ids[j] = best;
        w[j] = p[best];
      }
      normalize_selected(*m.cfg, w, k);
    }
    // Experts, combined as they finish.
    __m256 moe[HV];
    for (int v = 0; v < HV; ++v) moe[v] = _mm256_setzero_ps();
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = ids[j];
      ++counts[e];
      __m256 h[IV];
      for (int v = 0; v < IV; ++v) h[v] = m.b1 ? _mm256_loadu_ps(m.b1 + e * I + 8 * v) : _mm256_setzero_ps();
      matvec<IV>(xr, H, m.w1_t + e * H * I, I, h);
      alignas(32) float hidden[I];
      for (int v = 0; v < IV; ++v) _mm256_store_ps(hidden + 8 * v, relu ? _mm256_max_ps(h[v], _mm256_setzero_ps()) : h[v]);
      __m256 o[HV];
      for (int v = 0; v < HV; ++v) o[v] = m.b2 ? _mm256_loadu_ps(m.b2 + e * H + 8 * v) : _mm256_setzero_ps();
      matvec<HV>(hidden, I, m.w2_t + e * I * H, H, o);
      const __m256 wj = _mm256_set1_ps(w[j]);
      for (int v = 0; v < HV; ++v) moe[v] = _mm256_fmadd_ps(wj, o[v], moe[v]);
    }
    // Output projection, or the MoE output itself.
    if (m.out_t) {
      alignas(32) float z[H];
      for (int v = 0; v < HV; ++v) _mm256_store_ps(z + 8 * v, moe[v]);
      __m256 o0 = _mm256_load_ps(out_b), o1 = _mm256_load_ps(out_b + 8);
      for (int64_t h = 0; h < H; ++h) {
        const __m256 a = _mm256_broadcast_ss(z + h);
        o0 = _mm256_fmadd_ps(a, _mm256_load_ps(out_w[h]), o0);
        o1 = _mm256_fmadd_ps(a, _mm256_load_ps(out_w[h] + 8), o1);
      }
      alignas(32) float out[16];
      _mm256_store_ps(out, o0);
      _mm256_store_ps(out + 8, o1);
      std::memcpy(y + r * ldy, out, static_cast<size_t>(out_n) * 4);
    } else {
      for (int v = 0; v < HV; ++v) _mm256_storeu_ps(y + r * ldy + 8 * v, moe[v]);
    }
  }
}

}  // namespace

void f32_moe_tiny_avx2(const TinyMoe& m, const float* x, int64_t rows_n, float* y, int64_t ldy, int64_t* counts) {
  const int64_t hv = m.cfg->hidden / 8, iv = m.cfg->inter / 8;
#define SY_TINY_CASE(HV, IV) \
  if (hv == HV && iv == IV) return rows<HV, IV>(m, x, rows_n, y, ldy, counts);
  SY_TINY_CASE(2, 2) SY_TINY_CASE(2, 4) SY_TINY_CASE(2, 8) SY_TINY_CASE(4, 2) SY_TINY_CASE(4, 4) SY_TINY_CASE(4, 8)
  SY_TINY_CASE(8, 2) SY_TINY_CASE(8, 4) SY_TINY_CASE(8, 8)
#undef SY_TINY_CASE
  rows<2, 2>(m, x, rows_n, y, ldy, counts);  // unreachable: tiny_moe_supported() admits only the sizes above
}

}  // namespace switchyard::x86
