#ifndef MGK_TARGET_H
#define MGK_TARGET_H
// Private to the kernel sources: the per-function target attributes that let one translation unit
// hold kernels for several instruction sets without -march (clang / GCC "target" attribute). Each
// set lists what its intrinsics need (Intel Intrinsics Guide "CPUID flags", Arm ACLE features);
// kernels.c checks the same features at run time before any of these functions is called.
#if defined(__x86_64__)
#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define T_VNNI512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define T_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#elif defined(__aarch64__)
// sdot is an Armv8.2 extension (ACLE __ARM_FEATURE_DOTPROD). GCC wants the architecture with it, so
// that its arm_neon.h intrinsics (declared under "arch=armv8.2-a+dotprod") inline; clang names the
// feature alone.
#if defined(__clang__)
#define T_DOTPROD __attribute__((target("dotprod")))
#else
#define T_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
#endif

// Generic bodies: always inlined into each instance, which compiles them for its own target.
#define GENERIC static inline __attribute__((always_inline))
typedef void (*mgk_softmax_fn)(float *x, int n);
#endif
