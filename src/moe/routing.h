// Router: scores, top-k selection and weight normalisation for every token.
#pragma once

#include <cstdint>

#include "moe/moe_layer.h"

namespace switchyard {

// logits [T,E] -> expert ids [T,k] and combine weights [T,k], per token. selection_bias (optional,
// [E]) shifts the scores used to choose the experts, not the weights.
void route_tokens(const MoeConfig& cfg, const float* logits, int64_t tokens, int32_t* expert_ids, float* weights,
                  const float* selection_bias = nullptr);

}  // namespace switchyard
