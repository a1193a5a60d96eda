// The kernel table: complete for every ISA this CPU runs, capped by set_isa_cap / SWITCHYARD_ISA.
#include <gtest/gtest.h>

#include "kernels/dispatch.h"
#include "moe/moe_kernels.h"
#include "switchyard/error.h"

namespace switchyard {
namespace {

// Restores the ISA the test binary started with (SWITCHYARD_ISA of the ctest run, or native).
struct IsaGuard {
  Isa saved = active_isa();
  ~IsaGuard() { set_isa_cap(saved); }
};

TEST(KernelDispatch, EveryRunnableIsaHasACompleteTable) {
  const std::vector<Isa> isas = runnable_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kPortable);
  EXPECT_EQ(isas.back(), machine_isa());
  for (Isa isa : isas) {
    SCOPED_TRACE(isa_name(isa));
    const KernelTable& t = kernel_table(isa);
    EXPECT_EQ(t.isa, isa);
    EXPECT_TRUE(t.f32_gemm_panel && t.bf16_gemm_panel && t.f16_gemm_panel && t.f32_gemm_rows && t.f32_gemm_stream &&
                t.f32_gemm_quant_panel && t.f32_dequantize_panel && t.s8_gemm_panel && t.s4_gemm_panel &&
                t.quantize_rows_u8 && t.f32_conv_nhwc16);
    const MoeKernelTable& m = moe_kernel_table(isa);
    EXPECT_EQ(m.isa, isa);
    EXPECT_TRUE(m.route_tokens && m.activate_row && m.gated_activation);
    EXPECT_EQ(m.tiny_moe != nullptr, isa >= Isa::kAvx2);
  }
  // The portable table never uses a hand-written ISA kernel.
  EXPECT_FALSE(kernel_table(Isa::kPortable).native_bf16);
  EXPECT_FALSE(kernel_table(Isa::kPortable).native_vnni);
}

TEST(KernelDispatch, CapSelectsTheTableAndNeverExceedsTheCpu) {
  IsaGuard guard;
  for (Isa isa : runnable_isas()) {
    EXPECT_EQ(set_isa_cap(isa), isa);
    EXPECT_EQ(active_isa(), isa);
    EXPECT_EQ(&kernels(), &kernel_table(isa));
    EXPECT_EQ(&moe_kernels(), &moe_kernel_table(isa));
  }
  EXPECT_EQ(set_isa_cap(Isa::kAvx512), machine_isa());
}

TEST(KernelDispatch, IsaNamesParseAndBadOnesAreRefused) {
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) EXPECT_EQ(parse_isa(isa_name(isa)), isa);
  EXPECT_EQ(parse_isa("native"), machine_isa());
  EXPECT_EQ(parse_isa(""), machine_isa());
  EXPECT_THROW(parse_isa("sse9"), Error);
}

}  // namespace
}  // namespace switchyard
