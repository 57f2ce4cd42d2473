// Reduced-precision KV cache: FP16 and INT8 attention kernels that dequantize on the fly, and the
// store / load / re-rotate helpers of one cached position. Contracts: include/mgk_kv.h.
// Built -O3 -march=native (Package.swift): with AVX-512 F+BW+VL the intrinsic paths below mirror
// fp32.c's kernels load for load (an FP16 row is one vcvtph2ps, an INT8 row one vpmovsxbd +
// vcvtdq2ps); otherwise plain C loops with the same contracts.
#include "mgk_kv.h"
#include "mgk_fp32.h"
#include <math.h>
#include <stddef.h>
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#define MGK_KV_AVX512 1
#endif

enum { KV_F16 = 1, KV_I8 = 2 };

// MARK: store / load (one position's hd values; strided for transposed keys)

void mgk_kv_store_f16(uint16_t *out, int stride, const float *x, int n) {
    for (int i = 0; i < n; i++) {
        _Float16 h = (_Float16)x[i];
        uint16_t bits;
        __builtin_memcpy(&bits, &h, 2);
        out[(size_t)i * stride] = bits;
    }
}

float mgk_kv_store_i8(int8_t *out, int stride, const float *x, int n) {
    float amax = 0;
    for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    if (!(amax > 0) || !isfinite(amax)) {  // all zero (or non-finite input: store zeros, scale 0)
        for (int i = 0; i < n; i++) out[(size_t)i * stride] = 0;
        return 0;
    }
    const float inv = 127.0f / amax;
    for (int i = 0; i < n; i++) {
        float q = nearbyintf(x[i] * inv);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        out[(size_t)i * stride] = (int8_t)q;
    }
    return amax / 127.0f;
}

static inline float f16_to_f32(uint16_t bits) {
    _Float16 h;
    __builtin_memcpy(&h, &bits, 2);
    return (float)h;
}

void mgk_kv_load_f16(float *out, const uint16_t *x, int stride, int n) {
    for (int i = 0; i < n; i++) out[i] = f16_to_f32(x[(size_t)i * stride]);
}

void mgk_kv_load_i8(float *out, const int8_t *x, int stride, float scale, int n) {
    for (int i = 0; i < n; i++) out[i] = (float)x[(size_t)i * stride] * scale;
}

// MARK: re-rotation after eviction (rotate by −θ: cos(−θ) = cos θ, sin(−θ) = −sin θ)

void mgk_kv_rotate_back_f16(uint16_t *k, int kstride, int n, const float *cos, const float *sin, int hd) {
    const int half = hd / 2;
    for (int i = 0; i < half; i++) {
        uint16_t *ra = k + (size_t)i * kstride, *rb = k + (size_t)(i + half) * kstride;
        const float cs = cos[i], sn = sin[i];
        for (int s = 0; s < n; s++) {
            const float a = f16_to_f32(ra[s]), b = f16_to_f32(rb[s]);
            const float na = a * cs + b * sn, nb = b * cs - a * sn;
            mgk_kv_store_f16(ra + s, 1, &na, 1);
            mgk_kv_store_f16(rb + s, 1, &nb, 1);
        }
    }
}

void mgk_kv_rotate_back_i8(int8_t *k, float *ks, int kstride, int n, const float *cos, const float *sin, int hd) {
    const int half = hd / 2;
    float col[hd];  // one position's key, on the stack (hd ≤ a few hundred): no heap allocation
    for (int s = 0; s < n; s++) {
        mgk_kv_load_i8(col, k + s, kstride, ks[s], hd);
        for (int i = 0; i < half; i++) {
            const float a = col[i], b = col[i + half];
            col[i] = a * cos[i] + b * sin[i];
            col[i + half] = b * cos[i] - a * sin[i];
        }
        ks[s] = mgk_kv_store_i8(k + s, kstride, col, hd);
    }
}

#if defined(MGK_KV_AVX512)

// 16 cached elements at base[idx...] (masked) as floats.
static inline __attribute__((always_inline)) __m512 kv_load(const void *base, size_t idx, __mmask16 m, const int dt) {
    if (dt == KV_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + idx));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, (const int8_t *)base + idx)));
}

static inline __mmask16 lanes(int left) {
    return left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

// fp32.c's attention_group with dequantizing loads: G (≤ 4) query heads share each K and V load.
static inline __attribute__((always_inline)) void
group_kv(float *out, float *p, int pstride, const float *q, const void *k, const float *ks, const void *v, const float *vs,
         const int G, int n, int hd, int kstride, float scale, const int dt) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int s = 0; s < n; s += 32) {  // 32 positions × G heads per pass
        const __mmask16 m0 = lanes(n - s), m1 = lanes(n - s - 16);
        __m512 a[4][2];
        for (int g = 0; g < G; g++) a[g][0] = a[g][1] = _mm512_setzero_ps();
        for (int i = 0; i < hd; i++) {
            const size_t row = (size_t)i * kstride + s;
            const __m512 k0 = kv_load(k, row, m0, dt), k1 = kv_load(k, row + 16, m1, dt);
            for (int g = 0; g < G; g++) {
                const __m512 qi = _mm512_set1_ps(q[g * hd + i]);
                a[g][0] = _mm512_fmadd_ps(qi, k0, a[g][0]);
                a[g][1] = _mm512_fmadd_ps(qi, k1, a[g][1]);
            }
        }
        __m512 f0 = sc, f1 = sc;  // INT8: scale · ks[s], one multiply per 16 scores
        if (dt == KV_I8) { f0 = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(m0, ks + s)); f1 = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(m1, ks + s + 16)); }
        for (int g = 0; g < G; g++) {
            _mm512_mask_storeu_ps(p + (size_t)g * pstride + s, m0, _mm512_mul_ps(a[g][0], f0));
            _mm512_mask_storeu_ps(p + (size_t)g * pstride + s + 16, m1, _mm512_mul_ps(a[g][1], f1));
        }
    }
    for (int g = 0; g < G; g++) mgk_softmax_f32(p + (size_t)g * pstride, n);
    for (int c = 0; c < hd; c += 16) {
        const __mmask16 m = lanes(hd - c);
        __m512 a[4][2];
        for (int g = 0; g < G; g++) a[g][0] = a[g][1] = _mm512_setzero_ps();
        for (int t = 0; t < n; t += 2) {
            const int two = t + 1 < n;
            const float w0 = dt == KV_I8 ? vs[t] : 1.0f, w1 = two ? (dt == KV_I8 ? vs[t + 1] : 1.0f) : 0.0f;
            const __m512 v0 = kv_load(v, (size_t)t * hd + c, m, dt);
            const __m512 v1 = two ? kv_load(v, (size_t)(t + 1) * hd + c, m, dt) : _mm512_setzero_ps();
            for (int g = 0; g < G; g++) {
                const float *pg = p + (size_t)g * pstride;
                a[g][0] = _mm512_fmadd_ps(_mm512_set1_ps(pg[t] * w0), v0, a[g][0]);
                if (two) a[g][1] = _mm512_fmadd_ps(_mm512_set1_ps(pg[t + 1] * w1), v1, a[g][1]);
            }
        }
        for (int g = 0; g < G; g++) _mm512_mask_storeu_ps(out + (size_t)g * hd + c, m, _mm512_add_ps(a[g][0], a[g][1]));
    }
}

static void group_dispatch(float *out, float *p, int pstride, const float *q, const void *k, const float *ks, const void *v,
                           const float *vs, int G, int n, int hd, int kstride, float scale, const int dt) {
    for (int g = 0; g < G; g += 4) {
        const int gg = G - g < 4 ? G - g : 4;
        float *o = out + (size_t)g * hd, *pg = p + (size_t)g * pstride;
        const float *qg = q + (size_t)g * hd;
        if (dt == KV_F16) {
            switch (gg) {
            case 1: group_kv(o, pg, pstride, qg, k, ks, v, vs, 1, n, hd, kstride, scale, KV_F16); break;
            case 2: group_kv(o, pg, pstride, qg, k, ks, v, vs, 2, n, hd, kstride, scale, KV_F16); break;
            case 3: group_kv(o, pg, pstride, qg, k, ks, v, vs, 3, n, hd, kstride, scale, KV_F16); break;
            default: group_kv(o, pg, pstride, qg, k, ks, v, vs, 4, n, hd, kstride, scale, KV_F16); break;
            }
        } else {
            switch (gg) {
            case 1: group_kv(o, pg, pstride, qg, k, ks, v, vs, 1, n, hd, kstride, scale, KV_I8); break;
            case 2: group_kv(o, pg, pstride, qg, k, ks, v, vs, 2, n, hd, kstride, scale, KV_I8); break;
            case 3: group_kv(o, pg, pstride, qg, k, ks, v, vs, 3, n, hd, kstride, scale, KV_I8); break;
            default: group_kv(o, pg, pstride, qg, k, ks, v, vs, 4, n, hd, kstride, scale, KV_I8); break;
            }
        }
    }
}

// fp32.c's mgk_attention_block_f32 with dequantizing loads.
static inline __attribute__((always_inline)) void
block_kv(float *out, int ldo, float *p, int pstride, const float *q, int ldq, const void *k, const float *ks,
         const void *v, const float *vs, int T, int G, int n0, int hd, int kstride, float scale, const int dt) {
    const int R = T * G, nmax = n0 + T;
    const __m512 sc = _mm512_set1_ps(scale);
    for (int s = 0; s < nmax; s += 32) {  // scores: 32 positions × 4 query rows per pass
        const __mmask16 m0 = lanes(nmax - s), m1 = lanes(nmax - s - 16);
        __m512 f0 = sc, f1 = sc;
        if (dt == KV_I8) { f0 = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(m0, ks + s)); f1 = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(m1, ks + s + 16)); }
        for (int r0 = 0; r0 < R; r0 += 4) {
            const int nr = R - r0 < 4 ? R - r0 : 4;
            const float *qr[4];
            for (int j = 0; j < 4; j++) {
                const int r = r0 + (j < nr ? j : 0);
                qr[j] = q + (size_t)(r / G) * ldq + (size_t)(r % G) * hd;
            }
            __m512 a[4][2];
            for (int j = 0; j < 4; j++) a[j][0] = a[j][1] = _mm512_setzero_ps();
            for (int i = 0; i < hd; i++) {
                const size_t row = (size_t)i * kstride + s;
                const __m512 k0 = kv_load(k, row, m0, dt), k1 = kv_load(k, row + 16, m1, dt);
                for (int j = 0; j < 4; j++) {
                    const __m512 qi = _mm512_set1_ps(qr[j][i]);
                    a[j][0] = _mm512_fmadd_ps(qi, k0, a[j][0]);
                    a[j][1] = _mm512_fmadd_ps(qi, k1, a[j][1]);
                }
            }
            for (int j = 0; j < nr; j++) {
                float *pr = p + (size_t)(r0 + j) * pstride + s;
                _mm512_mask_storeu_ps(pr, m0, _mm512_mul_ps(a[j][0], f0));
                _mm512_mask_storeu_ps(pr + 16, m1, _mm512_mul_ps(a[j][1], f1));
            }
        }
    }
    for (int r = 0; r < R; r++) {  // causal: row (t, g) keeps n0 + t + 1 positions
        const int n = n0 + r / G + 1;
        float *pr = p + (size_t)r * pstride;
        mgk_softmax_f32(pr, n);
        for (int s = n; s < nmax; s++) pr[s] = 0;
    }
    for (int r0 = 0; r0 < R; r0 += 4) {  // weighted sums: 4 query rows × 16 dims per pass
        const int nr = R - r0 < 4 ? R - r0 : 4;
        const int n = n0 + (r0 + nr - 1) / G + 1;
        const float *pr[4];
        for (int j = 0; j < 4; j++) pr[j] = p + (size_t)(r0 + (j < nr ? j : 0)) * pstride;
        for (int c = 0; c < hd; c += 16) {
            const __mmask16 m = lanes(hd - c);
            __m512 a[4];
            for (int j = 0; j < 4; j++) a[j] = _mm512_setzero_ps();
            for (int t = 0; t < n; t++) {
                const __m512 v0 = kv_load(v, (size_t)t * hd + c, m, dt);
                const float w = dt == KV_I8 ? vs[t] : 1.0f;
                for (int j = 0; j < 4; j++) a[j] = _mm512_fmadd_ps(_mm512_set1_ps(pr[j][t] * w), v0, a[j]);
            }
            for (int j = 0; j < nr; j++) {
                const int r = r0 + j;
                _mm512_mask_storeu_ps(out + (size_t)(r / G) * ldo + (size_t)(r % G) * hd + c, m, a[j]);
            }
        }
    }
}

void mgk_attention_group_f16(float *out, float *p, int pstride, const float *q, const uint16_t *k, const uint16_t *v,
                             int G, int n, int hd, int kstride, float scale) {
    group_dispatch(out, p, pstride, q, k, NULL, v, NULL, G, n, hd, kstride, scale, KV_F16);
}
void mgk_attention_group_i8(float *out, float *p, int pstride, const float *q, const int8_t *k, const float *ks,
                            const int8_t *v, const float *vs, int G, int n, int hd, int kstride, float scale) {
    group_dispatch(out, p, pstride, q, k, ks, v, vs, G, n, hd, kstride, scale, KV_I8);
}
void mgk_attention_block_f16(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                             const uint16_t *k, const uint16_t *v, int T, int G, int n0, int hd, int kstride, float scale) {
    block_kv(out, ldo, p, pstride, q, ldq, k, NULL, v, NULL, T, G, n0, hd, kstride, scale, KV_F16);
}
void mgk_attention_block_i8(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                            const int8_t *k, const float *ks, const int8_t *v, const float *vs,
                            int T, int G, int n0, int hd, int kstride, float scale) {
    block_kv(out, ldo, p, pstride, q, ldq, k, ks, v, vs, T, G, n0, hd, kstride, scale, KV_I8);
}

#else  // portable C: the same contracts, plain loops.

static inline float kv_get(const void *base, size_t idx, int dt) {
    return dt == KV_F16 ? f16_to_f32(((const uint16_t *)base)[idx]) : (float)((const int8_t *)base)[idx];
}

// One query head over n positions; ks/vs are the INT8 scales (NULL for FP16).
static void head_kv(float *out, float *p, const float *q, const void *k, const float *ks, const void *v, const float *vs,
                    int n, int hd, int kstride, float scale, int dt) {
    for (int s = 0; s < n; s++) {
        float acc = 0;
        for (int i = 0; i < hd; i++) acc += q[i] * kv_get(k, (size_t)i * kstride + s, dt);
        p[s] = acc * scale * (dt == KV_I8 ? ks[s] : 1.0f);
    }
    mgk_softmax_f32(p, n);
    for (int c = 0; c < hd; c++) out[c] = 0;
    for (int s = 0; s < n; s++) {
        const float w = p[s] * (dt == KV_I8 ? vs[s] : 1.0f);
        for (int c = 0; c < hd; c++) out[c] += w * kv_get(v, (size_t)s * hd + c, dt);
    }
}

static void block_kv(float *out, int ldo, float *p, int pstride, const float *q, int ldq, const void *k, const float *ks,
                     const void *v, const float *vs, int T, int G, int n0, int hd, int kstride, float scale, int dt) {
    for (int t = 0; t < T; t++)
        for (int g = 0; g < G; g++) {
            float *pr = p + (size_t)(t * G + g) * pstride;
            const int n = n0 + t + 1;
            head_kv(out + (size_t)t * ldo + (size_t)g * hd, pr, q + (size_t)t * ldq + (size_t)g * hd, k, ks, v, vs, n, hd, kstride, scale, dt);
            for (int s = n; s < n0 + T; s++) pr[s] = 0;
        }
}

void mgk_attention_group_f16(float *out, float *p, int pstride, const float *q, const uint16_t *k, const uint16_t *v,
                             int G, int n, int hd, int kstride, float scale) {
    for (int g = 0; g < G; g++)
        head_kv(out + (size_t)g * hd, p + (size_t)g * pstride, q + (size_t)g * hd, k, NULL, v, NULL, n, hd, kstride, scale, KV_F16);
}
void mgk_attention_group_i8(float *out, float *p, int pstride, const float *q, const int8_t *k, const float *ks,
                            const int8_t *v, const float *vs, int G, int n, int hd, int kstride, float scale) {
    for (int g = 0; g < G; g++)
        head_kv(out + (size_t)g * hd, p + (size_t)g * pstride, q + (size_t)g * hd, k, ks, v, vs, n, hd, kstride, scale, KV_I8);
}
void mgk_attention_block_f16(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                             const uint16_t *k, const uint16_t *v, int T, int G, int n0, int hd, int kstride, float scale) {
    block_kv(out, ldo, p, pstride, q, ldq, k, NULL, v, NULL, T, G, n0, hd, kstride, scale, KV_F16);
}
void mgk_attention_block_i8(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                            const int8_t *k, const float *ks, const int8_t *v, const float *vs,
                            int T, int G, int n0, int hd, int kstride, float scale) {
    block_kv(out, ldo, p, pstride, q, ldq, k, ks, v, vs, T, G, n0, hd, kstride, scale, KV_I8);
}
#endif
