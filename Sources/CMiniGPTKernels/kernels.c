// Run-time CPU dispatch: feature detection, path names, MINIGPT_KERNELS. Contracts:
// include/mgk_dispatch.h. No kernel here; int8.c, fp32.c and kv.c ask mgk_selected_path().
#include "mgk_dispatch.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)    // Linux arch/arm64/include/uapi/asm/hwcap.h
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20) // the Armv8.2 dot product (SDOT/UDOT)
#endif
#endif

enum { F_AVX2 = 1, F_AVX512 = 2, F_VNNI512 = 4, F_AVXVNNI = 8, F_F16C = 16, F_NEON = 32, F_SDOT = 64 };

uint32_t mgk_cpu_features(void) {
    uint32_t f = 0;
#if defined(__x86_64__)
    // __builtin_cpu_supports reads cpuid once (libgcc / compiler-rt) and also checks that the OS
    // saves the YMM / ZMM state (XGETBV), so a "yes" means the instructions can really run.
    __builtin_cpu_init();
    // The AVX2 family also uses FMA and F16C (every AVX2 CPU so far has both; we check anyway).
    if (__builtin_cpu_supports("f16c")) f |= F_F16C;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && (f & F_F16C)) f |= F_AVX2;
    if ((f & F_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl")) f |= F_AVX512;
    if ((f & F_AVX512) && __builtin_cpu_supports("avx512vnni")) f |= F_VNNI512;
    if ((f & F_AVX2) && __builtin_cpu_supports("avxvnni")) f |= F_AVXVNNI;
#elif defined(__aarch64__)
    f |= F_NEON;  // Advanced SIMD is mandatory in AArch64
#if defined(__linux__)
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) f |= F_SDOT;
#elif defined(__ARM_FEATURE_DOTPROD)
    f |= F_SDOT;
#endif
#endif
    return f;
}

static const char *const names[MGK_PATH_COUNT] = {"auto", "portable", "avx2", "vnni", "avx512", "avxvnni", "neon", "dotprod"};

const char *mgk_path_name(int path) { return path >= 0 && path < MGK_PATH_COUNT ? names[path] : "?"; }

int mgk_path_from_name(const char *name) {
    for (int p = 0; p < MGK_PATH_COUNT; p++) if (strcmp(name, names[p]) == 0) return p;
    return -1;
}

int mgk_path_supported(int path) {
    static uint32_t features = UINT32_MAX;  // cpuid once; every thread computes the same value
    uint32_t f = __atomic_load_n(&features, __ATOMIC_RELAXED);
    if (f == UINT32_MAX) { f = mgk_cpu_features(); __atomic_store_n(&features, f, __ATOMIC_RELAXED); }
    switch (path) {
    case MGK_PATH_AUTO: case MGK_PATH_PORTABLE: return 1;
    case MGK_PATH_AVX2: return (f & F_AVX2) != 0;
    case MGK_PATH_AVX512: return (f & F_AVX512) != 0;
    case MGK_PATH_VNNI: return (f & F_VNNI512) != 0;
    case MGK_PATH_AVXVNNI: return (f & F_AVXVNNI) != 0;
    case MGK_PATH_NEON: return (f & F_NEON) != 0;
    case MGK_PATH_DOTPROD: return (f & F_SDOT) != 0;
    default: return 0;
    }
}

// Best first. AVX-512 VNNI before AVX-VNNI: same instruction, twice the width.
static const int preference[] = {MGK_PATH_VNNI, MGK_PATH_AVX512, MGK_PATH_AVXVNNI, MGK_PATH_AVX2,
                                 MGK_PATH_DOTPROD, MGK_PATH_NEON, MGK_PATH_PORTABLE};

int mgk_best_path(void) {
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++)
        if (mgk_path_supported(preference[i])) return preference[i];
    return MGK_PATH_PORTABLE;
}

void mgk_supported_paths(char *buf, int len) {
    if (len <= 0) return;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++)
        if (mgk_path_supported(preference[i])) {
            const size_t used = strlen(buf);
            snprintf(buf + used, (size_t)len - used, "%s%s", used ? "," : "", names[preference[i]]);
        }
}

int mgk_kernels_parse(const char *value, char *err, int errlen) {
    char supported[96];
    mgk_supported_paths(supported, sizeof supported);
    if (value == NULL || value[0] == 0 || strcmp(value, "auto") == 0) return mgk_best_path();
    const int p = mgk_path_from_name(value);
    if (p < 0) {
        if (err && errlen > 0)
            snprintf(err, (size_t)errlen, "MINIGPT_KERNELS=%s: unknown kernel path (names: portable, avx2, avx512, vnni, "
                     "avxvnni, neon, dotprod, auto); this CPU supports %s", value, supported);
        return -1;
    }
    if (!mgk_path_supported(p)) {
        if (err && errlen > 0)
            snprintf(err, (size_t)errlen, "MINIGPT_KERNELS=%s: this CPU lacks the %s instructions; it supports %s",
                     value, value, supported);
        return -1;
    }
    return p;
}

// The process-wide choice: -1 not read yet, 0 refused, else the path. The first caller wins;
// concurrent first callers compute the same value (getenv and cpuid do not change).
static int selected = -1;
static char refusal[256];

int mgk_kernels_init(char *err, int errlen) {
    int p = __atomic_load_n(&selected, __ATOMIC_ACQUIRE);
    if (p < 0) {
        p = mgk_kernels_parse(getenv("MINIGPT_KERNELS"), refusal, sizeof refusal);
        if (p < 0) p = 0;
        __atomic_store_n(&selected, p, __ATOMIC_RELEASE);
    }
    if (p == 0) {
        if (err && errlen > 0) snprintf(err, (size_t)errlen, "%s", refusal);
        return -1;
    }
    return 0;
}

uint64_t mgk_touch(const void *p, size_t bytes) {
    const volatile uint8_t *b = p;  // volatile: every line is read, none is skipped by the optimiser
    uint64_t s = 0;
    for (size_t i = 0; i < bytes; i += 64) s += b[i];
    if (bytes) s += b[bytes - 1];
    return s;
}

int mgk_selected_path(void) {
    const int p = __atomic_load_n(&selected, __ATOMIC_ACQUIRE);
    if (p > 0) return p;
    char err[256];
    if (mgk_kernels_init(err, sizeof err) != 0) {
        // A library user that never asked mgk_kernels_init: refuse loudly rather than run a path
        // the user did not ask for (the CLIs call mgk_kernels_init first and exit 78 themselves).
        fprintf(stderr, "minigpt: error: %s\n", err);
        exit(78);
    }
    return __atomic_load_n(&selected, __ATOMIC_ACQUIRE);
}
