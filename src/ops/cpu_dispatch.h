// SY_MULTIVERSION: compile a portable kernel for AVX-512, AVX2+FMA and baseline x86-64; the loader
// picks one at start-up (an ifunc). ThreadSanitizer builds cannot run ifunc resolvers (they run before
// the sanitizer's runtime), so there it compiles the baseline version only.
#pragma once

#if defined(SWITCHYARD_NO_IFUNC)
#define SY_MULTIVERSION(...)
#else
#define SY_MULTIVERSION(...) __attribute__((target_clones(__VA_ARGS__)))
#endif
