#ifndef MGK_DISPATCH_H
#define MGK_DISPATCH_H
#include <stddef.h>
#include <stdint.h>
// Run-time CPU dispatch (kernels.c). The C target is built without -march=native by default
// (Package.swift): every fast kernel carries its own __attribute__((target(...))) and is chosen at
// run time from cpuid (x86, via __builtin_cpu_supports) or getauxval(AT_HWCAP) (aarch64), so one
// binary runs on any x86-64 / arm64 machine and uses the best instructions the CPU has.
//
// A path names one instruction-set family for every kernel (INT8 products, activation quantizer,
// FP32 and KV-cache kernels):
//   path       INT8 products                      quantizer    FP32 / KV kernels
//   portable   plain C (the reference)            scalar C     plain C
//   avx2       vpmaddubsw + vpmaddwd (sign trick) AVX2         AVX2 + FMA (+ F16C)
//   avx512     AVX-512BW vpmaddubsw, no VNNI      AVX-512      AVX-512F/BW/VL
//   vnni       AVX-512 VNNI vpdpbusd              AVX-512      AVX-512F/BW/VL
//   avxvnni    AVX-VNNI vpdpbusd on ymm           AVX2         AVX2 + FMA (+ F16C)
//   neon       NEON vmull_s8 + vpadalq_s16        NEON         plain C (NEON is the arm64 baseline)
//   dotprod    NEON sdot (Armv8.2 vdotq_s32)      NEON         plain C
// Every path computes the same int32 sums and the same quantized activations bit for bit; FP32
// results agree within rounding (the summation order differs between vector widths).
//
// MINIGPT_KERNELS=<path> forces a path for the whole process (read once, on first use). An unknown
// name or a path this CPU lacks is refused: mgk_kernels_init reports it, and a kernel called
// without a prior successful mgk_kernels_init prints the message and exits with 78 (EX_CONFIG)
// rather than silently running something else.

/// Kernel paths. MGK_PATH_AUTO (0) means "the selected one" (MINIGPT_KERNELS, else the best).
enum {
    MGK_PATH_AUTO = 0, MGK_PATH_PORTABLE = 1, MGK_PATH_AVX2 = 2, MGK_PATH_VNNI = 3, MGK_PATH_AVX512 = 4,
    MGK_PATH_AVXVNNI = 5, MGK_PATH_NEON = 6, MGK_PATH_DOTPROD = 7, MGK_PATH_COUNT = 8
};

/// The path's MINIGPT_KERNELS name ("portable", "avx2", …), or "?" for an invalid number.
const char *mgk_path_name(int path);
/// The path named `name`, or -1 for an unknown name.
int mgk_path_from_name(const char *name);
/// Whether `path` can run on this CPU (MGK_PATH_AUTO and MGK_PATH_PORTABLE always can).
int mgk_path_supported(int path);
/// The fastest path this CPU supports (ignores MINIGPT_KERNELS).
int mgk_best_path(void);
/// The path MGK_PATH_AUTO resolves to: MINIGPT_KERNELS when set (and valid), else mgk_best_path().
int mgk_selected_path(void);
/// Reads one byte of every 64 in [p, p + bytes) and returns their sum: brings memory back into
/// the caches before it is needed (a real-time loop's weights between frames). Reads only.
uint64_t mgk_touch(const void *p, size_t bytes);
/// The path a MINIGPT_KERNELS value asks for (NULL, "" or "auto": the best), or -1 with the
/// refusal message in err: an unknown name, or a path this CPU lacks.
int mgk_kernels_parse(const char *value, char *err, int errlen);
/// Reads MINIGPT_KERNELS (once per process; later calls return the first answer). Returns 0, or
/// -1 with a one-line message in err (naming the variable, the value and the supported paths).
int mgk_kernels_init(char *err, int errlen);
/// Writes the supported paths, best first, comma separated ("vnni,avx512,avx2,portable") to buf.
void mgk_supported_paths(char *buf, int len);

/// Returns a bit set of the SIMD features this CPU offers at run time: 1 = AVX2 + FMA + F16C,
/// 2 = AVX-512F/BW/VL, 4 = AVX-512 VNNI, 8 = AVX-VNNI, 16 = F16C, 32 = NEON (arm64), 64 = sdot.
uint32_t mgk_cpu_features(void);
#endif
