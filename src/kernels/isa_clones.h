// One C++ kernel body compiled once per ISA: SY_ISA_CLONES(void, f32_gemm_panel, (params), (args))
// defines f32_gemm_panel_avx512, f32_gemm_panel_avx2 and f32_gemm_panel_portable from the always-inline
// function f32_gemm_panel_body (SY_CLONE_BODY). The compiler inlines the body into each target function
// and vectorises it for that ISA; the kernel table (dispatch.h) picks one. SY_ISA_CLONES_AVX2 defines the
// avx2 and portable clones only (where a hand-written AVX-512 kernel exists), SY_PORTABLE_KERNEL the
// portable one only (where hand-written AVX2 and AVX-512 kernels exist: it is their test oracle and the
// path of CPUs without AVX2).
#pragma once

#define SY_CLONE_BODY static inline __attribute__((always_inline))
#define SY_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2")))
#define SY_TARGET_AVX2 __attribute__((target("avx2,fma,f16c,bmi,bmi2")))

#define SY_PORTABLE_KERNEL(ret, name, params, args) \
  ret name##_portable params { return name##_body args; }

#define SY_ISA_CLONES_AVX2(ret, name, params, args)                              \
  SY_TARGET_AVX2 ret name##_avx2 params { return name##_body args; }            \
  ret name##_portable params { return name##_body args; }

#define SY_ISA_CLONES(ret, name, params, args)                                   \
  SY_TARGET_AVX512 ret name##_avx512 params { return name##_body args; }        \
  SY_ISA_CLONES_AVX2(ret, name, params, args)
