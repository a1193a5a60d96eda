#include "kernels/dispatch.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "kernels/kernel_entries.h"
#include "switchyard/error.h"

#ifdef SWITCHYARD_WITH_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace switchyard {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return "portable";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "portable";
}

Isa parse_isa(const std::string& name) {
  if (name.empty() || name == "native") return machine_isa();
  if (name == "portable") return Isa::kPortable;
  if (name == "avx2") return Isa::kAvx2;
  if (name == "avx512") return Isa::kAvx512;
  throw Error("ISA '" + name + "' is not one of portable, avx2, avx512, native");
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__)
    __builtin_cpu_init();
    // F16C and BMI2 from cpuid itself (clang's __builtin_cpu_supports does not know them).
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    const bool bmi2 = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_BMI2);
    f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c && bmi2;
    f.avx512 = f.avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    f.avx512_vnni = f.avx512 && __builtin_cpu_supports("avx512vnni");
    f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
    return f;
  }();
  return features;
}

Isa machine_isa() {
  const CpuFeatures& f = cpu_features();
  return f.avx512 ? Isa::kAvx512 : f.avx2_fma ? Isa::kAvx2 : Isa::kPortable;
}

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  for (int i = 0; i <= static_cast<int>(machine_isa()); ++i) out.push_back(static_cast<Isa>(i));
  return out;
}

namespace {

KernelTable portable_table() {
  KernelTable t;
  t.isa = Isa::kPortable;
  t.f32_gemm_panel = f32_gemm_panel_portable;
  t.bf16_gemm_panel = bf16_gemm_panel_portable;
  t.f16_gemm_panel = f16_gemm_panel_portable;
  t.f32_gemm_rows = f32_gemm_rows_portable;
  t.f32_gemm_stream = f32_gemm_stream_portable;
  t.f32_gemm_quant_panel = f32_gemm_quant_panel_portable;
  t.f32_dequantize_panel = f32_dequantize_panel_portable;
  t.s8_gemm_panel = s8_gemm_panel_portable;
  t.s4_gemm_panel = s4_gemm_panel_portable;
  t.quantize_rows_u8 = quantize_rows_u8_portable;
  t.f32_conv_nhwc16 = f32_conv_nhwc16_portable;
  return t;
}

// The hand-written AVX2 + FMA kernels (x86/*_avx2.cpp).
KernelTable avx2_table() {
  KernelTable t;
  t.isa = Isa::kAvx2;
  t.f32_gemm_panel = x86::f32_gemm_panel_avx2;
  t.bf16_gemm_panel = x86::bf16_gemm_panel_avx2;
  t.f16_gemm_panel = x86::f16_gemm_panel_avx2;
  t.f32_gemm_rows = x86::f32_gemm_rows_avx2;
  t.f32_gemm_stream = x86::f32_gemm_stream_avx2;
  t.f32_gemm_quant_panel = f32_gemm_quant_panel_avx2;
  t.f32_dequantize_panel = f32_dequantize_panel_avx2;
  t.s8_gemm_panel = x86::s8_gemm_panel_avx2;
  t.s4_gemm_panel = x86::s4_gemm_panel_avx2;
  t.quantize_rows_u8 = x86::quantize_rows_u8_avx2;
  t.f32_conv_nhwc16 = x86::f32_conv_nhwc16_avx2;
  return t;
}

// AVX-512 kernels where they are written; the BF16 and VNNI ones only where the CPU has those
// extensions (else the AVX2 clone of the same contract).
KernelTable avx512_table(const CpuFeatures& f) {
  KernelTable t = avx2_table();
  t.isa = Isa::kAvx512;
  t.f32_gemm_panel = x86::f32_gemm_panel_avx512;
  t.f16_gemm_panel = x86::f16_gemm_panel_avx512;
  t.f32_gemm_rows = x86::f32_gemm_rows_avx512;
  t.f32_gemm_stream = x86::f32_gemm_stream_avx512;
  t.f32_gemm_quant_panel = f32_gemm_quant_panel_avx512;
  t.f32_dequantize_panel = f32_dequantize_panel_avx512;
  t.quantize_rows_u8 = x86::quantize_rows_u8_avx512;
  t.f32_conv_nhwc16 = x86::f32_conv_nhwc16_avx512;
  if (f.avx512_bf16) {
    t.bf16_gemm_panel = x86::bf16_gemm_panel_avx512bf16;
    t.native_bf16 = true;
  }
  if (f.avx512_vnni) {
    t.s8_gemm_panel = x86::s8_gemm_panel_avx512vnni;
    t.s4_gemm_panel = x86::s4_gemm_panel_avx512vnni;
    t.native_vnni = true;
  }
  return t;
}

struct Tables {
  KernelTable by_isa[3];
  Tables() {
    by_isa[0] = portable_table();
    by_isa[1] = cpu_features().avx2_fma ? avx2_table() : by_isa[0];
    by_isa[2] = cpu_features().avx512 ? avx512_table(cpu_features()) : by_isa[1];
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

// SWITCHYARD_ISA caps the first table; a bad value is refused loudly rather than ignored.
Isa initial_isa() {
  const char* env = std::getenv("SWITCHYARD_ISA");
  Isa isa = machine_isa();
  if (env && *env) isa = std::min(isa, parse_isa(env));
  return isa;
}

// oneDNN (the dense sgemm of gemm_kernel.cpp) JITs for the best ISA it finds; capped with ours so that a
// run under SWITCHYARD_ISA=avx2 is an AVX2 run throughout. oneDNN takes the cap only before its first
// JIT (later calls are refused, and ignored here): SWITCHYARD_ISA, read at start-up, always applies.
void cap_library_isa(Isa isa) {
#ifdef SWITCHYARD_WITH_DNNL
  if (isa == machine_isa()) return;
  dnnl_set_max_cpu_isa(isa == Isa::kAvx512 ? dnnl_cpu_isa_all : isa == Isa::kAvx2 ? dnnl_cpu_isa_avx2 : dnnl_cpu_isa_sse41);
#else
  (void)isa;
#endif
}

std::atomic<const KernelTable*>& active() {
  static std::atomic<const KernelTable*> table{[] {
    const Isa isa = initial_isa();
    cap_library_isa(isa);
    return &tables().by_isa[static_cast<int>(isa)];
  }()};
  return table;
}

}  // namespace

const KernelTable& kernels() { return *active().load(std::memory_order_relaxed); }

const KernelTable& kernel_table(Isa isa) {
  return tables().by_isa[static_cast<int>(std::min(isa, machine_isa()))];
}

Isa active_isa() { return kernels().isa; }

Isa set_isa_cap(Isa cap) {
  const KernelTable& t = kernel_table(cap);
  cap_library_isa(t.isa);
  active().store(&t, std::memory_order_relaxed);
  return t.isa;
}

}  // namespace switchyard
