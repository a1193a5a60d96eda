// The whole MoE chain for tiny experts, row by row, in registers: router logits, softmax, top-k,
// the k experts (Linear - ReLU - Linear) and the output projection, for E <= 16 experts, hidden and
// inter sizes that are multiples of 16 up to 64, and at most 16 outputs (the seed classifier: E=8,
// H=I=16, 10 logits). The generic tile path (moe_forward on the tile: dispatch, gather, a GEMM call
// per expert) spends ~700 cycles per row on this; here it is ~200. Compiled with -mavx512f; called
// only when the CPU has AVX-512F (see src/moe/moe_block.cpp). Rows with a NaN score are routed by the
// portable code, which orders NaN as PyTorch does.
#include "moe/x86/tiny_moe.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "moe/routing.h"

namespace switchyard::x86 {

namespace {

// exp(x) for x <= 0, the same reduction and polynomial as the portable router (moe/routing.cpp).
inline __m512 exp_nonpositive(__m512 x) {
  const __m512 v = _mm512_max_ps(x, _mm512_set1_ps(-87.f));
  const __m512 magic = _mm512_set1_ps(12582912.f);
  const __m512 shifted = _mm512_fmadd_ps(v, _mm512_set1_ps(1.44269504088896341f), magic);
  const __m512 fn = _mm512_sub_ps(shifted, magic);
  const __m512i k = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_castps_si512(magic));
  __m512 r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(0.693359375f), v);
  r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.f));
  const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(127)), 23));
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.f), _CMP_LT_OQ);
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~under), _mm512_mul_ps(e, scale));
}

// acc[0..V) += sum over d < D of a[d] * B[d, 16v .. 16v+16), two partial sums against FMA latency.
template <int V>
inline void matvec(const float* a, int64_t D, const float* B, int64_t ldb, __m512* acc) {
  __m512 odd[V];
  for (int v = 0; v < V; ++v) odd[v] = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + 2 <= D; d += 2) {
    const __m512 a0 = _mm512_set1_ps(a[d]), a1 = _mm512_set1_ps(a[d + 1]);
    for (int v = 0; v < V; ++v) {
      acc[v] = _mm512_fmadd_ps(a0, _mm512_loadu_ps(B + d * ldb + 16 * v), acc[v]);
      odd[v] = _mm512_fmadd_ps(a1, _mm512_loadu_ps(B + (d + 1) * ldb + 16 * v), odd[v]);
    }
  }
  for (; d < D; ++d)
    for (int v = 0; v < V; ++v) acc[v] = _mm512_fmadd_ps(_mm512_set1_ps(a[d]), _mm512_loadu_ps(B + d * ldb + 16 * v), acc[v]);
  for (int v = 0; v < V; ++v) acc[v] = _mm512_add_ps(acc[v], odd[v]);
}

template <int HV, int IV>
void rows(const TinyMoe& m, const float* x, int64_t R, float* y, int64_t ldy, int64_t* counts) {
  constexpr int64_t H = 16 * HV, I = 16 * IV;
  const int64_t E = m.cfg->num_experts, k = m.cfg->k;
  const __mmask16 emask = static_cast<__mmask16>((1u << E) - 1);
  const __mmask16 nmask = static_cast<__mmask16>((1u << (m.out_t ? m.out_n : 16)) - 1);
  const bool relu = m.cfg->activation == MoeActivation::kRelu;
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x + r * H;
    // Router.
    __m512 logits = m.router_b ? _mm512_maskz_loadu_ps(emask, m.router_b) : _mm512_setzero_ps();
    {
      __m512 odd = _mm512_setzero_ps();
      for (int64_t h = 0; h < H; h += 2) {
        logits = _mm512_fmadd_ps(_mm512_set1_ps(xr[h]), _mm512_maskz_loadu_ps(emask, m.router_t + h * E), logits);
        odd = _mm512_fmadd_ps(_mm512_set1_ps(xr[h + 1]), _mm512_maskz_loadu_ps(emask, m.router_t + (h + 1) * E), odd);
      }
      logits = _mm512_add_ps(logits, odd);
    }
    int32_t ids[16];
    float w[16];
    if (_mm512_mask_cmp_ps_mask(emask, logits, logits, _CMP_UNORD_Q)) {
      alignas(64) float l[16];
      _mm512_store_ps(l, logits);
      route_tokens(*m.cfg, l, 1, ids, w);  // NaN: the portable order
    } else {
      const float mx = _mm512_mask_reduce_max_ps(emask, logits);
      const __m512 e = _mm512_maskz_mov_ps(emask, exp_nonpositive(_mm512_sub_ps(logits, _mm512_set1_ps(mx))));
      const float inv = 1.f / _mm512_reduce_add_ps(e);
      const __m512 p = _mm512_mul_ps(e, _mm512_set1_ps(inv));
      __m512 left = _mm512_mask_mov_ps(_mm512_set1_ps(-1.f), emask, p);  // probabilities are >= 0
      for (int64_t j = 0; j < k; ++j) {
        const float best = _mm512_reduce_max_ps(left);
        const unsigned lanes = _mm512_cmp_ps_mask(left, _mm512_set1_ps(best), _CMP_EQ_OQ);
        const int idx = __builtin_ctz(lanes);  // ties: the lower expert index
        ids[j] = idx;
        w[j] = best;
        left = _mm512_mask_mov_ps(left, static_cast<__mmask16>(1u << idx), _mm512_set1_ps(-1.f));
      }
      normalize_selected(*m.cfg, w, k);
    }
    // Experts, combined as they finish.
    __m512 moe[HV];
    for (int v = 0; v < HV; ++v) moe[v] = _mm512_setzero_ps();
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = ids[j];
      ++counts[e];
      __m512 h[IV];
      for (int v = 0; v < IV; ++v) h[v] = m.b1 ? _mm512_loadu_ps(m.b1 + e * I + 16 * v) : _mm512_setzero_ps();
      matvec<IV>(xr, H, m.w1_t + e * H * I, I, h);
      alignas(64) float hidden[I];
      for (int v = 0; v < IV; ++v) _mm512_store_ps(hidden + 16 * v, relu ? _mm512_max_ps(h[v], _mm512_setzero_ps()) : h[v]);
      __m512 o[HV];
      for (int v = 0; v < HV; ++v) o[v] = m.b2 ? _mm512_loadu_ps(m.b2 + e * H + 16 * v) : _mm512_setzero_ps();
      matvec<HV>(hidden, I, m.w2_t + e * I * H, H, o);
      const __m512 wj = _mm512_set1_ps(w[j]);
      for (int v = 0; v < HV; ++v) moe[v] = _mm512_fmadd_ps(wj, o[v], moe[v]);
    }
    // Output projection, or the MoE output itself.
    if (m.out_t) {
      alignas(64) float z[H];
      for (int v = 0; v < HV; ++v) _mm512_store_ps(z + 16 * v, moe[v]);
      __m512 out = m.out_b ? _mm512_maskz_loadu_ps(nmask, m.out_b) : _mm512_setzero_ps();
      __m512 odd = _mm512_setzero_ps();
      for (int64_t h = 0; h < H; h += 2) {
        out = _mm512_fmadd_ps(_mm512_set1_ps(z[h]), _mm512_maskz_loadu_ps(nmask, m.out_t + h * m.out_n), out);
        odd = _mm512_fmadd_ps(_mm512_set1_ps(z[h + 1]), _mm512_maskz_loadu_ps(nmask, m.out_t + (h + 1) * m.out_n), odd);
      }
      _mm512_mask_storeu_ps(y + r * ldy, nmask, _mm512_add_ps(out, odd));
    } else {
      for (int v = 0; v < HV; ++v) _mm512_storeu_ps(y + r * ldy + 16 * v, moe[v]);
    }
  }
}

}  // namespace

void f32_moe_tiny_avx512(const TinyMoe& m, const float* x, int64_t rows_n, float* y, int64_t ldy, int64_t* counts) {
  const int64_t hv = m.cfg->hidden / 16, iv = m.cfg->inter / 16;
#define SY_TINY_CASE(HV, IV) \
  if (hv == HV && iv == IV) return rows<HV, IV>(m, x, rows_n, y, ldy, counts);
  SY_TINY_CASE(1, 1) SY_TINY_CASE(1, 2) SY_TINY_CASE(1, 4) SY_TINY_CASE(2, 1) SY_TINY_CASE(2, 2) SY_TINY_CASE(2, 4)
  SY_TINY_CASE(4, 1) SY_TINY_CASE(4, 2) SY_TINY_CASE(4, 4)
#undef SY_TINY_CASE
  rows<1, 1>(m, x, rows_n, y, ldy, counts);  // unreachable: tiny_moe_supported() admits only the sizes above
}

}  // namespace switchyard::x86
