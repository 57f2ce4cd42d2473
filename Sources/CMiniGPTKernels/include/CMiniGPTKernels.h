#ifndef CMINIGPT_KERNELS_H
#define CMINIGPT_KERNELS_H
#include <stdint.h>
/// Returns a bit set of the SIMD features this CPU offers at run time (see kernels.c).
uint32_t mgk_cpu_features(void);
#endif
