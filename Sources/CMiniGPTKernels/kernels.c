#include "CMiniGPTKernels.h"
uint32_t mgk_cpu_features(void) {
    uint32_t f = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) f |= 1u;
    if (__builtin_cpu_supports("avx512f")) f |= 2u;
    if (__builtin_cpu_supports("avx512vnni")) f |= 4u;
#endif
    return f;
}
