// The sparse spatial MoE layer: an image is cut into block x block tiles, each tile is routed to its
// top-k experts (or carries given combine weights), and every expert — a stack of stride-1 "same"
// convolutions with an activation between them and an optional DepthToSpace head — runs once over all
// of its tiles:
//
//   y[tile] = sum_e w[e, tile] * expert_e(x)[tile]          (experts with w = 0 are not run there)
//
// Exactness: expert_e(x) at a tile depends on x around it (the receptive field). Layer l of an expert is
// computed on the expert's tiles dilated by the radius of the layers after it — the union over the
// expert's tiles, so tiles of one expert that touch share their halo instead of recomputing it — and
// pixels outside the image are read as zeros at every layer, exactly the zero padding of the dense
// convolution. The result equals running every expert on the whole image and selecting.
//
// Layout: activations NHWC in two image-sized ping-pong buffers (a convolution row is then kh x kw pieces
// of Cin contiguous floats), weights prepacked at compile time as [Cout, kh*kw*Cin + 1] linear layers (the
// bias as a last column) in the GEMM panel format of the token MoE (kernels/packed_linear.h).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/packed_linear.h"
#include "moe/moe_layer.h"

namespace switchyard {

class ThreadPool;

struct SpatialConv {
  int64_t cin = 0, cout = 0, kh = 1, kw = 1;
  // count = experts, N = cout, K = kh * kw * cin + 1 ordered (ky, kx, ci) then the bias: the im2col rows
  // end in a 1, so the GEMM adds the bias.
  PackedLinear weight;
  // FP32 layers of at most 16 outputs run the direct convolution (kernels/conv_nhwc.h) instead: no im2col
  // copy, and whole 16-wide vectors where a 32-column panel would compute half zeros. Weights
  // [E, kh * kw * cin, 16] and bias [E, 16], zero past cout.
  Tensor direct, direct_bias;
  int64_t k() const { return kh * kw * cin + 1; }
  int64_t radius_y() const { return kh / 2; }
  int64_t radius_x() const { return kw / 2; }
};

struct SpatialMoeConfig {
  int64_t num_experts = 0;
  int64_t block = 8;    // tile edge in input pixels
  int64_t upscale = 1;  // DepthToSpace block size of the head (1: none)
  bool dcr = false;     // DepthToSpace mode: DCR (depth-column-row) instead of CRD
  // k >= 1: the gate input holds logits [N, E, Hb, Wb]; softmax, top-k (ties -> lower index) and the
  // selected probabilities renormalised (the softmax of the top-k logits; weight 1 for k = 1).
  // k = 0: the gate input holds the combine weights themselves; zero weights are not run.
  int64_t k = 1;
  MoeActivation activation = MoeActivation::kRelu;  // between the convolutions, not after the last
  WeightFormat weight_format = WeightFormat::kFp32;
  int64_t weight_group = 32;
};

struct SpatialMoeWeights {
  std::vector<SpatialConv> layers;
  int64_t in_channels() const { return layers.front().cin; }
  int64_t out_channels(const SpatialMoeConfig& c) const { return layers.back().cout / (c.upscale * c.upscale); }
};

// Packs one layer from the stacked ONNX weights w [E, Cout, Cin, kh, kw] and bias [E, Cout] (or null).
SpatialConv pack_spatial_conv(const SpatialMoeConfig& c, const Tensor& w, const Tensor* bias, const std::string& what);

size_t spatial_moe_scratch_bytes(const SpatialMoeConfig& c, const SpatialMoeWeights& w, int64_t height, int64_t width,
                                 int threads);

// x [N, Cin, H, W] -> y [N, Cout, H * upscale, W * upscale] (NCHW, H and W multiples of block).
// gate [N, E, H / block, W / block]. expert_counts [E] (optional): tiles per expert, over the batch.
// block_experts [N, H / block, W / block] (optional): each tile's highest-weighted expert (-1: none).
void spatial_moe_forward(const SpatialMoeConfig& c, const SpatialMoeWeights& w, const float* x, int64_t batch,
                         int64_t height, int64_t width, const float* gate, float* y, int64_t* expert_counts,
                         int64_t* block_experts, void* scratch, ThreadPool& pool);

}  // namespace switchyard
