#ifndef CMINIGPT_KERNELS_H
#define CMINIGPT_KERNELS_H
#include <stdint.h>
/// Returns a bit set of the SIMD features this CPU offers at run time (see kernels.c):
/// 1 = AVX2, 2 = AVX-512F, 4 = AVX-512 VNNI (with BW/VL).
uint32_t mgk_cpu_features(void);
#include "mgk_fp32.h"
#include "mgk_int8.h"
#include "mgk_kv.h"
#endif
