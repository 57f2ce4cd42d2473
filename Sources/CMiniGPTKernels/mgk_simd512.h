#ifndef MGK_SIMD512_H
#define MGK_SIMD512_H
// Private to the kernel sources: the AVX-512 e^x and softmax bodies that fp32.c (the decode softmax)
// and kv.c (the prefill block attention's row softmax) share, so both compile the same operations.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include "mgk_target.h"

// e^x for 16 lanes: x = n·ln2 + r, degree-6 Taylor polynomial for e^r, 2^n in the exponent bits
// (Cephes-style; the same constants as exp16 in Kernels.swift).
T_AVX512 static inline __attribute__((always_inline)) __m512 exp512(__m512 v) {
    const __m512 x = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.7f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // Explicit FMAs (the -ffp-contract=off build flag does not apply to intrinsics).
    const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.4286068e-6f), _mm512_fnmadd_ps(n, _mm512_set1_ps(0.69314575f), x));
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

// Softmax of NR ≤ 4 rows x[j] (n[j] values each) at once, row by row exactly fp32.c's decode
// softmax: max over whole blocks of 16 then the tail in scalar, e^(x − max) block by block summed
// in one vector in block order (the tail masked), one reciprocal of the lanes' sum, one multiply per
// value. The rows are only interleaved (NR independent dependency chains instead of one), so each
// row's bits do not depend on NR. NR = 1 is the decode softmax.
T_AVX512 static inline __attribute__((always_inline)) void softmax_rows512(float *const *x, const int *n, const int NR) {
    __m512 mv[4], mb[4], acc[4], inv[4];
    int nf[4], nmax = 0;
    for (int j = 0; j < NR; j++) {
        nf[j] = n[j] > 0 ? n[j] / 16 * 16 : 0;
        if (nf[j] > nmax) nmax = nf[j];
        mv[j] = _mm512_set1_ps(-INFINITY);
        mb[j] = acc[j] = inv[j] = _mm512_setzero_ps();  // (assigned below for every row with n > 0)
    }
    for (int i = 0; i < nmax; i += 16)
        for (int j = 0; j < NR; j++)
            if (i < nf[j]) mv[j] = _mm512_max_ps(mv[j], _mm512_loadu_ps(x[j] + i));
    for (int j = 0; j < NR; j++) {
        if (n[j] <= 0) continue;
        float m = _mm512_reduce_max_ps(mv[j]);
        for (int i = nf[j]; i < n[j]; i++) if (x[j][i] > m) m = x[j][i];
        mb[j] = _mm512_set1_ps(m);
        acc[j] = _mm512_setzero_ps();
    }
    for (int i = 0; i < nmax; i += 16)
        for (int j = 0; j < NR; j++)
            if (i < nf[j]) {
                const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x[j] + i), mb[j]));
                _mm512_storeu_ps(x[j] + i, e);
                acc[j] = _mm512_add_ps(acc[j], e);
            }
    for (int j = 0; j < NR; j++) {
        if (n[j] <= 0) continue;
        if (nf[j] < n[j]) {
            const __mmask16 k = (__mmask16)((1u << (n[j] - nf[j])) - 1);
            const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x[j] + nf[j]), mb[j]));
            _mm512_mask_storeu_ps(x[j] + nf[j], k, e);
            acc[j] = _mm512_add_ps(acc[j], _mm512_maskz_mov_ps(k, e));
        }
        inv[j] = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(acc[j]));
    }
    for (int i = 0; i < nmax; i += 16)
        for (int j = 0; j < NR; j++)
            if (i < nf[j]) _mm512_storeu_ps(x[j] + i, _mm512_mul_ps(_mm512_loadu_ps(x[j] + i), inv[j]));
    for (int j = 0; j < NR; j++) {
        if (n[j] <= 0) continue;
        const float v = _mm512_cvtss_f32(inv[j]);
        for (int i = nf[j]; i < n[j]; i++) x[j][i] *= v;
    }
}

#endif
#endif
