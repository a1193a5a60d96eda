// The MoE layer's ISA-specific entry points: routing, activations and the tiny-expert kernel, one table
// per ISA, chosen by the same active_isa() as the GEMM kernel table (kernels/dispatch.h). The layer calls
// through moe_kernels() and never tests CPU features.
#pragma once

#include <cstdint>

#include "kernels/dispatch.h"
#include "moe/moe_layer.h"
#include "moe/x86/tiny_moe.h"

namespace switchyard {

using RouteTokensFn = void (*)(const MoeConfig& cfg, const float* logits, int64_t tokens, int32_t* expert_ids,
                               float* weights, const float* selection_bias);
using ActivateRowFn = void (*)(MoeActivation a, float* h, int64_t n);
using GatedActivationFn = void (*)(const MoeConfig& c, float* h, const float* u, int64_t n);
using TinyMoeFn = void (*)(const x86::TinyMoe& m, const float* x, int64_t rows, float* y, int64_t ldy, int64_t* counts);

struct MoeKernelTable {
  Isa isa = Isa::kPortable;
  RouteTokensFn route_tokens = nullptr;
  ActivateRowFn activate_row = nullptr;
  GatedActivationFn gated_activation = nullptr;
  TinyMoeFn tiny_moe = nullptr;  // nullptr where this ISA has no tiny-expert kernel
};

const MoeKernelTable& moe_kernels();            // for active_isa()
const MoeKernelTable& moe_kernel_table(Isa isa);  // one ISA's (capped to the machine)

// The clones behind the tables (routing.cpp, moe_layer.cpp), by contract name.
#define SY_DECLARE_MOE_CLONES(ret, name, params) \
  ret name##_avx512 params;                      \
  ret name##_avx2 params;                        \
  ret name##_portable params;
SY_DECLARE_MOE_CLONES(void, f32_route_tokens, (const MoeConfig& cfg, const float* logits, int64_t tokens,
                                              int32_t* expert_ids, float* weights, const float* selection_bias))
SY_DECLARE_MOE_CLONES(void, f32_activate_row, (MoeActivation a, float* h, int64_t n))
SY_DECLARE_MOE_CLONES(void, f32_gated_activation, (const MoeConfig& c, float* h, const float* u, int64_t n))
#undef SY_DECLARE_MOE_CLONES

}  // namespace switchyard
