// SY_MULTIVERSION: compile a portable kernel for AVX-512, AVX2+FMA and baseline x86-64; the loader
// picks one at start-up (an ifunc). ThreadSanitizer builds cannot run ifunc resolvers (they run before
// the sanitizer's runtime), so there it compiles the baseline version only.
#pragma once

namespace switchyard {

#if defined(SWITCHYARD_NO_IFUNC)
#define SY_MULTIVERSION(...)
#else
#define SY_MULTIVERSION(...) __attribute__((target_clones(__VA_ARGS__)))
#endif

// The CPU's features that pick the hand-written x86 kernels (src/kernels/x86/), probed once.
struct CpuFeatures {
  bool avx512 = false;       // AVX-512 F
  bool avx512_vnni = false;  // AVX512-VNNI (with BW): INT8 dot products
  bool avx512_bf16 = false;  // AVX512-BF16 (with BW)
};

inline const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__)
    __builtin_cpu_init();
    const bool bw = __builtin_cpu_supports("avx512bw");
    f.avx512 = __builtin_cpu_supports("avx512f");
    f.avx512_vnni = bw && __builtin_cpu_supports("avx512vnni");
    f.avx512_bf16 = bw && __builtin_cpu_supports("avx512bf16");
#endif
    return f;
  }();
  return features;
}

// The x86 kernel `fast` where the CPU has `feature` (a CpuFeatures member) and this build compiled the
// x86 kernels, else `portable`: chosen once, into a function pointer, so operators never test cpuid.
#ifdef SWITCHYARD_X86_KERNELS
#define SY_PICK_KERNEL(feature, fast, portable) (::switchyard::cpu_features().feature ? &(fast) : &(portable))
#else
#define SY_PICK_KERNEL(feature, fast, portable) (&(portable))
#endif
}  // namespace switchyard
