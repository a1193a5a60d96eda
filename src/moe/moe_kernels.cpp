#include "moe/moe_kernels.h"

#include <algorithm>

namespace switchyard {
namespace {

struct MoeTables {
  MoeKernelTable by_isa[3];
  MoeTables() {
    by_isa[0] = {Isa::kPortable, f32_route_tokens_portable, f32_activate_row_portable, f32_gated_activation_portable,
                 nullptr};
    by_isa[1] = {Isa::kAvx2, f32_route_tokens_avx2, f32_activate_row_avx2, f32_gated_activation_avx2,
                 x86::f32_moe_tiny_avx2};
    by_isa[2] = {Isa::kAvx512, f32_route_tokens_avx512, f32_activate_row_avx512, f32_gated_activation_avx512,
                 x86::f32_moe_tiny_avx512};
  }
};

const MoeTables& tables() {
  static const MoeTables t;
  return t;
}

}  // namespace

const MoeKernelTable& moe_kernel_table(Isa isa) {
  return tables().by_isa[static_cast<int>(std::min(isa, machine_isa()))];
}

const MoeKernelTable& moe_kernels() { return moe_kernel_table(active_isa()); }

}  // namespace switchyard
