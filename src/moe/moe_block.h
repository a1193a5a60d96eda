// An MoE layer with the dense layers around it folded in (src/compiler/passes/fuse_dense_around_moe.cpp):
//
//   y = Out( MoE( In(x) ) ),   In(x) = x Win^T + bin,   Out(z) = z Wout^T + bout   (each optional)
//
// For small experts (the seed classifier: 784 -> 16, eight 16x16 experts, 16 -> 10) every piece is a
// few microseconds, so running them as separate nodes costs more in dispatch, thread wake-ups and
// round trips through memory than in arithmetic. Here each thread takes a contiguous share of the
// rows and runs the whole chain one row tile at a time, with the tile's activations in L1.
#pragma once

#include "moe/moe_layer.h"

namespace switchyard {

// A dense layer prepacked for the small-M GEMM: weight [in, out] row-major, bias [out] or undefined.
struct DenseProjection {
  Tensor w_t, b;
  int64_t in = 0, out = 0;
  bool defined() const { return w_t.defined(); }
};

// From nn.Linear layout: weight [out, in], bias [out] (optional).
DenseProjection pack_dense_projection(const Tensor& weight, const Tensor* bias, const char* name);

// Scratch bytes for `tokens` rows on a pool of `threads`.
size_t moe_block_scratch_bytes(const MoeConfig& cfg, const DenseProjection& in, const DenseProjection& out,
                               int64_t tokens, int threads);

// Tests set this to compare the AVX-512 tiny-expert kernel with the generic tile path.
bool& disable_tiny_kernel();

// y[T, out.out (or H)] from x[T, in.in (or H)].
void moe_block_forward(const MoeConfig& cfg, const MoeWeights& w, const DenseProjection& in, const DenseProjection& out,
                       const float* x, int64_t tokens, float* y, int64_t* expert_counts, void* scratch, ThreadPool& pool);

}  // namespace switchyard
