// INT8 weight × quantized-activation kernels with run-time CPU dispatch: AVX-512 VNNI
// (vpdpbusd), AVX2 (vpmaddwd on sign-extended int16) and portable C. All three compute the
// same int32 sums bit for bit (no saturating instruction is used). Contracts: include/mgk_int8.h.
#include "mgk_int8.h"
#include <math.h>
#include <stddef.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

long mgk_panel_i8_count(int rows, int cols) { return (long)((rows + 15) / 16) * 16 * ((cols + 3) / 4 * 4); }

void mgk_pack_panel_i8(int8_t *wp, int32_t *bias, const int8_t *q, int rows, int cols) {
    const int nb = (rows + 15) / 16, k4 = (cols + 3) / 4;
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < 16; i++) {
            const int r = 16 * b + i;
            int32_t s = 0;
            for (int k = 0; k < k4; k++)
                for (int j = 0; j < 4; j++) {
                    const int c = 4 * k + j;
                    const int8_t v = (r < rows && c < cols) ? q[(size_t)r * cols + c] : 0;
                    wp[(((size_t)b * k4 + k) * 16 + i) * 4 + j] = v;
                    s += v;
                }
            bias[r] = 128 * s;
        }
}

float mgk_quantize_activation(uint8_t *xu, const float *x, int n, int npad) {
    int i = 0;
    float amax = 0;
#if defined(__AVX512F__)
    __m512 mv = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    amax = _mm512_reduce_max_ps(mv);  // max is exact in any order: same value as the scalar loop
#endif
    for (; i < n; i++) { const float a = fabsf(x[i]); if (a > amax) amax = a; }
    if (!(amax > 0) || !isfinite(amax)) {  // all zero (or non-finite: fail soft to zero output)
        memset(xu, 128, (size_t)npad);
        return 0;
    }
    const float inv = 127.0f / amax;
    i = 0;
#if defined(__AVX512F__)
    // The same IEEE operations as the scalar loop below (multiply, round half to even, clamp).
    const __m512 vi = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(128));
        _mm_storeu_si128((__m128i *)(xu + i), _mm512_cvtepi32_epi8(q));
    }
#endif
    for (; i < n; i++) {
        float v = nearbyintf(x[i] * inv);  // round half to even (default FP environment)
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        xu[i] = (uint8_t)((int)v + 128);
    }
    for (i = n; i < npad; i++) xu[i] = 128;
    return amax / 127.0f;
}

// ---- portable --------------------------------------------------------------------------------

static void acc_portable(int32_t *acc, const int8_t *wp, const uint8_t *xu, int b0, int b1, int cols4) {
    const int k4 = cols4 / 4;
    for (int b = b0; b < b1; b++) {
        int32_t a[16] = {0};
        const int8_t *p = wp + (size_t)b * k4 * 64;
        for (int k = 0; k < k4; k++)
            for (int i = 0; i < 16; i++)
                for (int j = 0; j < 4; j++) a[i] += (int32_t)p[(k * 16 + i) * 4 + j] * ((int32_t)xu[4 * k + j] - 128);
        memcpy(acc + 16 * (b - b0), a, sizeof a);
    }
}

// ---- AVX2 ------------------------------------------------------------------------------------
#if defined(__x86_64__)
__attribute__((target("avx2")))
static void acc_avx2(int32_t *acc, const int8_t *wp, const uint8_t *xu, int b0, int b1, int cols4) {
    const int k4 = cols4 / 4;
    const __m256i bias = _mm256_set1_epi16(128);
    const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    for (int b = b0; b < b1; b++) {
        const int8_t *p = wp + (size_t)b * k4 * 64;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < k4; k++) {
            int32_t x4;
            memcpy(&x4, xu + 4 * k, 4);
            // (xq[4k..4k+3]) as int16, repeated: pairs line up with (row i, cols 4k..4k+3).
            const __m256i xv = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_set1_epi32(x4)), bias);
            const int8_t *q = p + (size_t)k * 64;
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + 0))), xv));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + 16))), xv));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + 32))), xv));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + 48))), xv));
        }
        // a_g lanes: (r, c01), (r, c23) for rows 4g..4g+3; add the pairs and restore row order.
        const __m256i lo = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(a0, a1), order);
        const __m256i hi = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(a2, a3), order);
        _mm256_storeu_si256((__m256i *)(acc + 16 * (b - b0)), lo);
        _mm256_storeu_si256((__m256i *)(acc + 16 * (b - b0) + 8), hi);
    }
}

// ---- AVX-512 VNNI ----------------------------------------------------------------------------
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

VNNI_TARGET static inline __m512i xbcast(const uint8_t *xu, int k) {
    int32_t v;
    memcpy(&v, xu + 4 * k, 4);
    return _mm512_set1_epi32(v);
}

// Σ q·xu − 128·Σq for panels b0..<b1, four panels per pass sharing each activation broadcast.
VNNI_TARGET static inline void acc_vnni_block(__m512i *out, const int8_t *wp, const int32_t *bias,
                                              const uint8_t *xu, int b, int nb, int k4) {
    const int8_t *p0 = wp + (size_t)b * k4 * 64;
    if (nb == 4) {
        const size_t ps = (size_t)k4 * 64;
        // Eight accumulator chains (four panels × even/odd column groups) hide vpdpbusd's latency.
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
        int k = 0;
        for (; k + 2 <= k4; k += 2) {
            const __m512i x = xbcast(xu, k), y = xbcast(xu, k + 1);
            const size_t o = (size_t)k * 64;
            a0 = _mm512_dpbusd_epi32(a0, x, _mm512_load_si512(p0 + o));
            a1 = _mm512_dpbusd_epi32(a1, x, _mm512_load_si512(p0 + ps + o));
            a2 = _mm512_dpbusd_epi32(a2, x, _mm512_load_si512(p0 + 2 * ps + o));
            a3 = _mm512_dpbusd_epi32(a3, x, _mm512_load_si512(p0 + 3 * ps + o));
            e0 = _mm512_dpbusd_epi32(e0, y, _mm512_load_si512(p0 + o + 64));
            e1 = _mm512_dpbusd_epi32(e1, y, _mm512_load_si512(p0 + ps + o + 64));
            e2 = _mm512_dpbusd_epi32(e2, y, _mm512_load_si512(p0 + 2 * ps + o + 64));
            e3 = _mm512_dpbusd_epi32(e3, y, _mm512_load_si512(p0 + 3 * ps + o + 64));
        }
        if (k < k4) {
            const __m512i x = xbcast(xu, k);
            const size_t o = (size_t)k * 64;
            a0 = _mm512_dpbusd_epi32(a0, x, _mm512_load_si512(p0 + o));
            a1 = _mm512_dpbusd_epi32(a1, x, _mm512_load_si512(p0 + ps + o));
            a2 = _mm512_dpbusd_epi32(a2, x, _mm512_load_si512(p0 + 2 * ps + o));
            a3 = _mm512_dpbusd_epi32(a3, x, _mm512_load_si512(p0 + 3 * ps + o));
        }
        a0 = _mm512_add_epi32(a0, e0); a1 = _mm512_add_epi32(a1, e1);
        a2 = _mm512_add_epi32(a2, e2); a3 = _mm512_add_epi32(a3, e3);
        out[0] = _mm512_sub_epi32(a0, _mm512_loadu_si512(bias + 16 * b));
        out[1] = _mm512_sub_epi32(a1, _mm512_loadu_si512(bias + 16 * b + 16));
        out[2] = _mm512_sub_epi32(a2, _mm512_loadu_si512(bias + 16 * b + 32));
        out[3] = _mm512_sub_epi32(a3, _mm512_loadu_si512(bias + 16 * b + 48));
    } else {
        __m512i a0 = _mm512_setzero_si512(), a1 = a0;
        int k = 0;
        for (; k + 2 <= k4; k += 2) {
            a0 = _mm512_dpbusd_epi32(a0, xbcast(xu, k), _mm512_load_si512(p0 + (size_t)k * 64));
            a1 = _mm512_dpbusd_epi32(a1, xbcast(xu, k + 1), _mm512_load_si512(p0 + (size_t)k * 64 + 64));
        }
        if (k < k4) a0 = _mm512_dpbusd_epi32(a0, xbcast(xu, k), _mm512_load_si512(p0 + (size_t)k * 64));
        out[0] = _mm512_sub_epi32(_mm512_add_epi32(a0, a1), _mm512_loadu_si512(bias + 16 * b));
    }
}

VNNI_TARGET static void acc_vnni(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int b0, int b1, int cols4) {
    const int k4 = cols4 / 4;
    for (int b = b0; b < b1;) {
        const int nb = b + 4 <= b1 ? 4 : 1;
        __m512i v[4];
        acc_vnni_block(v, wp, bias, xu, b, nb, k4);
        for (int j = 0; j < nb; j++) _mm512_storeu_si512(acc + 16 * (b - b0 + j), v[j]);
        b += nb;
    }
}

VNNI_TARGET static void matvec_vnni(float *out, const int8_t *wp, const float *wscale, const int32_t *bias,
                                    const uint8_t *xu, float xscale, int rows, int cols4, int accumulate) {
    const int nbt = (rows + 15) / 16, k4 = cols4 / 4;
    const __m512 xs = _mm512_set1_ps(xscale);
    for (int b = 0; b < nbt;) {
        const int nb = b + 4 <= nbt ? 4 : 1;
        __m512i v[4];
        acc_vnni_block(v, wp, bias, xu, b, nb, k4);
        for (int j = 0; j < nb; j++) {
            const int r0 = 16 * (b + j), n = rows - r0;
            if (n <= 0) break;
            const __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
            __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v[j]), _mm512_maskz_loadu_ps(m, wscale + r0)), xs);
            if (accumulate) y = _mm512_add_ps(_mm512_maskz_loadu_ps(m, out + r0), y);
            _mm512_mask_storeu_ps(out + r0, m, y);
        }
        b += nb;
    }
}

// One panel against TT tokens: the panel's 64-byte groups are loaded once per tile.
VNNI_TARGET static inline __attribute__((always_inline)) void
matmul_vnni_tile(float *out, int ldo, const int8_t *p, const float *wscale, const int32_t *bias,
                 const uint8_t *xu, const float *xscale, int cols4, int n, int TT, int accumulate) {
    const int k4 = cols4 / 4;
    __m512i acc[8];
    for (int t = 0; t < TT; t++) acc[t] = _mm512_setzero_si512();
    for (int k = 0; k < k4; k++) {
        const __m512i w = _mm512_load_si512(p + (size_t)k * 64);
        for (int t = 0; t < TT; t++) acc[t] = _mm512_dpbusd_epi32(acc[t], xbcast(xu + (size_t)t * cols4, k), w);
    }
    const __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    const __m512i bv = _mm512_loadu_si512(bias);
    const __m512 ws = _mm512_maskz_loadu_ps(m, wscale);
    for (int t = 0; t < TT; t++) {
        __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[t], bv)), ws), _mm512_set1_ps(xscale[t]));
        float *o = out + (size_t)t * ldo;
        if (accumulate) y = _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), y);
        _mm512_mask_storeu_ps(o, m, y);
    }
}

VNNI_TARGET static void matmul_vnni(float *out, int ldo, const int8_t *wp, const float *wscale, const int32_t *bias,
                                    const uint8_t *xu, const float *xscale, int T, int rows, int cols4, int accumulate) {
    const int nbt = (rows + 15) / 16, k4 = cols4 / 4;
    for (int b = 0; b < nbt; b++) {
        const int8_t *p = wp + (size_t)b * k4 * 64;
        const int r0 = 16 * b, n = rows - r0;
        int t = 0;
        for (; t + 8 <= T; t += 8)
            matmul_vnni_tile(out + (size_t)t * ldo + r0, ldo, p, wscale + r0, bias + r0, xu + (size_t)t * cols4, xscale + t, cols4, n, 8, accumulate);
        for (; t + 4 <= T; t += 4)
            matmul_vnni_tile(out + (size_t)t * ldo + r0, ldo, p, wscale + r0, bias + r0, xu + (size_t)t * cols4, xscale + t, cols4, n, 4, accumulate);
        for (; t < T; t++)
            matmul_vnni_tile(out + (size_t)t * ldo + r0, ldo, p, wscale + r0, bias + r0, xu + (size_t)t * cols4, xscale + t, cols4, n, 1, accumulate);
    }
}
#endif

// ---- dispatch --------------------------------------------------------------------------------

int mgk_i8_path_supported(int path) {
    switch (path) {
    case MGK_I8_AUTO: case MGK_I8_PORTABLE: return 1;
#if defined(__x86_64__)
    case MGK_I8_AVX2: __builtin_cpu_init(); return __builtin_cpu_supports("avx2");
    case MGK_I8_VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
    default: return 0;
    }
}

static int best_path = -1;  // resolved once; every thread computes the same value (relaxed atomics)

int mgk_i8_best_path(void) {
    int p = __atomic_load_n(&best_path, __ATOMIC_RELAXED);
    if (p < 0) {
        p = mgk_i8_path_supported(MGK_I8_VNNI) ? MGK_I8_VNNI
          : mgk_i8_path_supported(MGK_I8_AVX2) ? MGK_I8_AVX2 : MGK_I8_PORTABLE;
        __atomic_store_n(&best_path, p, __ATOMIC_RELAXED);
    }
    return p;
}

static inline int resolve(int path) { return (path == MGK_I8_AUTO || !mgk_i8_path_supported(path)) ? mgk_i8_best_path() : path; }

static void acc_blocks(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int b0, int b1, int cols4, int path) {
    switch (path) {
#if defined(__x86_64__)
    case MGK_I8_VNNI: acc_vnni(acc, wp, bias, xu, b0, b1, cols4); return;
    case MGK_I8_AVX2: acc_avx2(acc, wp, xu, b0, b1, cols4); return;
#endif
    default: acc_portable(acc, wp, xu, b0, b1, cols4); return;
    }
}

void mgk_matvec_i8_acc(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int rows, int cols4, int path) {
    acc_blocks(acc, wp, bias, xu, 0, (rows + 15) / 16, cols4, resolve(path));
}

void mgk_matvec_i8(float *out, const int8_t *wp, const float *wscale, const int32_t *bias,
                   const uint8_t *xu, float xscale, int rows, int cols4, int accumulate, int path) {
    path = resolve(path);
#if defined(__x86_64__)
    if (path == MGK_I8_VNNI) { matvec_vnni(out, wp, wscale, bias, xu, xscale, rows, cols4, accumulate); return; }
#endif
    const int nbt = (rows + 15) / 16;
    int32_t acc[64];
    for (int b = 0; b < nbt; b += 4) {
        const int b1 = b + 4 < nbt ? b + 4 : nbt;
        acc_blocks(acc, wp, bias, xu, b, b1, cols4, path);
        for (int r = 16 * b; r < 16 * b1 && r < rows; r++) {
            const float y = (float)acc[r - 16 * b] * wscale[r] * xscale;
            out[r] = accumulate ? out[r] + y : y;
        }
    }
}

void mgk_matmul_i8(float *out, int ldo, const int8_t *wp, const float *wscale, const int32_t *bias,
                   const uint8_t *xu, const float *xscale, int T, int rows, int cols4, int accumulate, int path) {
    path = resolve(path);
#if defined(__x86_64__)
    if (path == MGK_I8_VNNI) { matmul_vnni(out, ldo, wp, wscale, bias, xu, xscale, T, rows, cols4, accumulate); return; }
#endif
    for (int t = 0; t < T; t++)
        mgk_matvec_i8(out + (size_t)t * ldo, wp, wscale, bias, xu + (size_t)t * cols4, xscale[t], rows, cols4, accumulate, path);
}
