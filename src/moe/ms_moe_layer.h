// What ONNX Runtime's two contrib MoE operators share (com.microsoft::MoE with FP32 expert weights,
// com.microsoft::QMoE with INT8 / INT4 ones, dequantized at compile time): mapping the attributes and
// expert weights onto a MoeConfig, prepacking them, and running the layer on the given router logits.
#pragma once

#include "moe/moe_kernel.h"

namespace switchyard {

// The expert weights and biases as FP32 tensors, in ONNX Runtime's layout (see ms_moe.cpp); null
// where the operator has no such input.
struct OrtMoeWeights {
  const Tensor *fc1 = nullptr, *b1 = nullptr, *fc2 = nullptr, *b2 = nullptr, *fc3 = nullptr, *b3 = nullptr;
};

class OrtMoeLayer final : public Kernel {
 public:
  OrtMoeLayer(const KernelBuildInfo& info, const OrtMoeWeights& weights);
  void compute(KernelContext& ctx) const override;

 private:
  const Node& node_;
  MoeConfig cfg_;
  MoeWeights weights_;
};

}  // namespace switchyard
