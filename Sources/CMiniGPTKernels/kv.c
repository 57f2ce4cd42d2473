// Reduced-precision KV cache: FP16 and INT8 attention kernels that dequantize on the fly, and the
// store / load / re-rotate helpers of one cached position. Contracts: include/mgk_kv.h.
// Three instances chosen at run time like fp32.c's: AVX-512F/BW/VL intrinsics mirroring fp32.c's
// kernels load for load (an FP16 row is one vcvtph2ps, an INT8 row one vpmovsxbd + vcvtdq2ps),
// explicit AVX2 + FMA + F16C attention kernels (decode group and prefill block; the helpers are the
// generic loops compiled for AVX2), and the generic C loops for the baseline (portable). FP16 bits
// are converted with the compiler's _Float16 (round to nearest even on every path: F16C's
// vcvtps2ph with imm 0, or libgcc's __truncsfhf2 / the arm64 FCVT), so stored bits are identical
// across paths; attention results agree within fp32.c's stated rounding bounds across paths, and
// within one path the prefill block kernel equals the decode group kernel row by row, bit for bit.
#include "mgk_kv.h"
#include "mgk_fp32.h"
#include "mgk_dispatch.h"
#include "mgk_target.h"
#include <math.h>
#include <stddef.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { KV_F16 = 1, KV_I8 = 2 };

// ---- generic C ---------------------------------------------------------------------------------

GENERIC void store_f16_generic(uint16_t *out, int stride, const float *x, int n) {
    for (int i = 0; i < n; i++) {
        _Float16 h = (_Float16)x[i];
        uint16_t bits;
        __builtin_memcpy(&bits, &h, 2);
        out[(size_t)i * stride] = bits;
    }
}

GENERIC float store_i8_generic(int8_t *out, int stride, const float *x, int n) {
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

GENERIC float f16_to_f32(uint16_t bits) {
    _Float16 h;
    __builtin_memcpy(&h, &bits, 2);
    return (float)h;
}

GENERIC void load_f16_generic(float *out, const uint16_t *x, int stride, int n) {
    for (int i = 0; i < n; i++) out[i] = f16_to_f32(x[(size_t)i * stride]);
}

GENERIC void load_i8_generic(float *out, const int8_t *x, int stride, float scale, int n) {
    for (int i = 0; i < n; i++) out[i] = (float)x[(size_t)i * stride] * scale;
}

// Re-rotation after eviction (rotate by −θ: cos(−θ) = cos θ, sin(−θ) = −sin θ).
GENERIC void rotate_back_f16_generic(uint16_t *k, int kstride, int n, const float *cos, const float *sin, int hd) {
    const int half = hd / 2;
    for (int i = 0; i < half; i++) {
        uint16_t *ra = k + (size_t)i * kstride, *rb = k + (size_t)(i + half) * kstride;
        const float cs = cos[i], sn = sin[i];
        for (int s = 0; s < n; s++) {
            const float a = f16_to_f32(ra[s]), b = f16_to_f32(rb[s]);
            const float na = a * cs + b * sn, nb = b * cs - a * sn;
            store_f16_generic(ra + s, 1, &na, 1);
            store_f16_generic(rb + s, 1, &nb, 1);
        }
    }
}

GENERIC void rotate_back_i8_generic(int8_t *k, float *ks, int kstride, int n, const float *cos, const float *sin, int hd) {
    const int half = hd / 2;
    float col[hd];  // one position's key, on the stack (hd ≤ a few hundred): no heap allocation
    for (int s = 0; s < n; s++) {
        load_i8_generic(col, k + s, kstride, ks[s], hd);
        for (int i = 0; i < half; i++) {
            const float a = col[i], b = col[i + half];
            col[i] = a * cos[i] + b * sin[i];
            col[i + half] = b * cos[i] - a * sin[i];
        }
        ks[s] = store_i8_generic(k + s, kstride, col, hd);
    }
}

GENERIC float kv_get(const void *base, size_t idx, const int dt) {
    return dt == KV_F16 ? f16_to_f32(((const uint16_t *)base)[idx]) : (float)((const int8_t *)base)[idx];
}

// One query head over n positions; ks/vs are the INT8 scales (NULL for FP16). The score loop runs
// over positions innermost (independent lanes, so it vectorises); each p[s] still sums q[i]·k[i][s]
// in the order i = 0, 1, … as a dot product would.
GENERIC void head_kv(float *out, float *p, const float *q, const void *k, const float *ks, const void *v, const float *vs,
                     int n, int hd, int kstride, float scale, const int dt, mgk_softmax_fn softmax) {
    for (int s = 0; s < n; s++) p[s] = 0;
    for (int i = 0; i < hd; i++) {
        const float qi = q[i];
        for (int s = 0; s < n; s++) p[s] += qi * kv_get(k, (size_t)i * kstride + s, dt);
    }
    for (int s = 0; s < n; s++) p[s] = p[s] * scale * (dt == KV_I8 ? ks[s] : 1.0f);
    softmax(p, n);
    for (int c = 0; c < hd; c++) out[c] = 0;
    for (int s = 0; s < n; s++) {
        const float w = p[s] * (dt == KV_I8 ? vs[s] : 1.0f);
        for (int c = 0; c < hd; c++) out[c] += w * kv_get(v, (size_t)s * hd + c, dt);
    }
}

GENERIC void group_kv_generic(float *out, float *p, int pstride, const float *q, const void *k, const float *ks, const void *v,
                              const float *vs, int G, int n, int hd, int kstride, float scale, const int dt, mgk_softmax_fn softmax) {
    for (int g = 0; g < G; g++)
        head_kv(out + (size_t)g * hd, p + (size_t)g * pstride, q + (size_t)g * hd, k, ks, v, vs, n, hd, kstride, scale, dt, softmax);
}

GENERIC void block_kv_generic(float *out, int ldo, float *p, int pstride, const float *q, int ldq, const void *k, const float *ks,
                              const void *v, const float *vs, int T, int G, int n0, int hd, int kstride, float scale, const int dt,
                              mgk_softmax_fn softmax) {
    for (int t = 0; t < T; t++)
        for (int g = 0; g < G; g++) {
            float *pr = p + (size_t)(t * G + g) * pstride;
            const int n = n0 + t + 1;
            head_kv(out + (size_t)t * ldo + (size_t)g * hd, pr, q + (size_t)t * ldq + (size_t)g * hd, k, ks, v, vs, n, hd, kstride, scale, dt, softmax);
            for (int s = n; s < n0 + T; s++) pr[s] = 0;
        }
}

// One instance of the generic loops per target: SUFFIX names it, ATTR is its target attribute, PATH
// picks the FP32 softmax of the same path (fp32.c's table, looked up once per call) and GROUP is the
// decode-step group kernel and BLOCK the prefill block kernel (the generic loops, or explicit ones).
#define KV_INSTANCE(SUFFIX, ATTR, PATH, GROUP, BLOCK)                                                                        \
    ATTR static void store_f16_##SUFFIX(uint16_t *out, int stride, const float *x, int n) {                       \
        store_f16_generic(out, stride, x, n);                                                                     \
    }                                                                                                             \
    ATTR static float store_i8_##SUFFIX(int8_t *out, int stride, const float *x, int n) {                         \
        return store_i8_generic(out, stride, x, n);                                                               \
    }                                                                                                             \
    ATTR static void load_f16_##SUFFIX(float *out, const uint16_t *x, int stride, int n) {                        \
        load_f16_generic(out, x, stride, n);                                                                      \
    }                                                                                                             \
    ATTR static void load_i8_##SUFFIX(float *out, const int8_t *x, int stride, float scale, int n) {              \
        load_i8_generic(out, x, stride, scale, n);                                                                \
    }                                                                                                             \
    ATTR static void rotate_back_f16_##SUFFIX(uint16_t *k, int kstride, int n, const float *cos, const float *sin, \
                                              int hd) {                                                           \
        rotate_back_f16_generic(k, kstride, n, cos, sin, hd);                                                     \
    }                                                                                                             \
    ATTR static void rotate_back_i8_##SUFFIX(int8_t *k, float *ks, int kstride, int n, const float *cos,          \
                                             const float *sin, int hd) {                                          \
        rotate_back_i8_generic(k, ks, kstride, n, cos, sin, hd);                                                  \
    }                                                                                                             \
    ATTR static void attention_group_f16_##SUFFIX(float *out, float *p, int pstride, const float *q,              \
                                                  const uint16_t *k, const uint16_t *v, int G, int n, int hd,     \
                                                  int kstride, float scale) {                                     \
        GROUP(out, p, pstride, q, k, NULL, v, NULL, G, n, hd, kstride, scale, KV_F16,                             \
                         mgk_fp32_kernels_for(PATH)->softmax);                                                    \
    }                                                                                                             \
    ATTR static void attention_group_i8_##SUFFIX(float *out, float *p, int pstride, const float *q,               \
                                                 const int8_t *k, const float *ks, const int8_t *v,               \
                                                 const float *vs, int G, int n, int hd, int kstride, float scale) { \
        GROUP(out, p, pstride, q, k, ks, v, vs, G, n, hd, kstride, scale, KV_I8,                                  \
                         mgk_fp32_kernels_for(PATH)->softmax);                                                    \
    }                                                                                                             \
    ATTR static void attention_block_f16_##SUFFIX(float *out, int ldo, float *p, int pstride, const float *q,     \
                                                  int ldq, const uint16_t *k, const uint16_t *v, int T, int G,    \
                                                  int n0, int hd, int kstride, float scale) {                     \
        BLOCK(out, ldo, p, pstride, q, ldq, k, NULL, v, NULL, T, G, n0, hd, kstride, scale, KV_F16,               \
                         mgk_fp32_kernels_for(PATH)->softmax);                                                    \
    }                                                                                                             \
    ATTR static void attention_block_i8_##SUFFIX(float *out, int ldo, float *p, int pstride, const float *q,      \
                                                 int ldq, const int8_t *k, const float *ks, const int8_t *v,      \
                                                 const float *vs, int T, int G, int n0, int hd, int kstride,      \
                                                 float scale) {                                                   \
        BLOCK(out, ldo, p, pstride, q, ldq, k, ks, v, vs, T, G, n0, hd, kstride, scale, KV_I8,                    \
                         mgk_fp32_kernels_for(PATH)->softmax);                                                    \
    }                                                                                                             \
    static const mgk_kv_kernels kv_##SUFFIX = {                                                                   \
        store_f16_##SUFFIX, store_i8_##SUFFIX, load_f16_##SUFFIX, load_i8_##SUFFIX,                               \
        rotate_back_f16_##SUFFIX, rotate_back_i8_##SUFFIX,                                                        \
        attention_group_f16_##SUFFIX, attention_group_i8_##SUFFIX,                                                \
        attention_block_f16_##SUFFIX, attention_block_i8_##SUFFIX,                                                \
    };

KV_INSTANCE(portable, , MGK_PATH_PORTABLE, group_kv_generic, block_kv_generic)

#if defined(__x86_64__)
// ---- AVX2 + FMA + F16C ---------------------------------------------------------------------------
// The decode step's group kernel explicitly (the generic score loop reads K with a stride and was
// a third of an INT8 decode step): the AVX-512 kernel below on 8 lanes, without masks: full blocks
// of 16 positions in vectors, the last n mod 16 positions and a head size not a multiple of 8 by
// the generic loops. An FP16 row is one vcvtph2ps, an INT8 row vpmovsxbd + vcvtdq2ps.
T_AVX2 static inline __attribute__((always_inline)) __m256 kv_load_avx2(const void *base, size_t idx, const int dt) {
    if (dt == KV_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + idx)));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)base + idx))));
}

// The weighted sum of value rows for NR ≤ 4 query rows: out_j (hd) = Σ_t w_j[t] · v[t] with
// w_j[t] = p_j[t] · vs[t] (INT8; p_j[t] for FP16). Each (row, 8 dims) sums in two fused chains, even
// and odd positions in order, added at the end (the kernel's arithmetic before issue 11). A value
// row's slice is converted once for all NR rows, and the weights are formed once per chunk of
// positions in a stack buffer, so the inner loop is a shared conversion plus one broadcast load and
// one FMA per row and slice; two slices per pass when NR ≤ 2, so at least eight chains hide the FMA
// latency. The decode kernel (NR = G heads) and the prefill block kernel (NR = 4 rows of T·G) share
// it, so a row's sum has the same bits in both; a row shorter than n has probability 0 past its end
// and each 0-weight FMA adds exactly nothing.
enum { VW_CHUNK = 256 };  // even, so a position's chain (its parity) does not depend on the chunking
T_AVX2 static inline __attribute__((always_inline)) void
values_avx2(float *const *outr, const float *const *pr, const void *v, const float *vs, const int NR, int n, int hd, const int dt) {
    const int ND = NR <= 2 ? 2 : 1;
    float w[4][VW_CHUNK];
    for (int c = 0; c < hd; c += 8 * ND) {
        const int nd = (hd - c) / 8 < ND ? 1 : ND;  // hd is a multiple of 8
        __m256 a[4][2][2];  // [row][slice][even, odd]
        for (int j = 0; j < NR; j++)
            for (int d = 0; d < ND; d++) a[j][d][0] = a[j][d][1] = _mm256_setzero_ps();
        for (int t0 = 0; t0 < n; t0 += VW_CHUNK) {
            const int m = n - t0 < VW_CHUNK ? n - t0 : VW_CHUNK;
            const float *wr[4];
            for (int j = 0; j < NR; j++) {
                if (dt != KV_I8) { wr[j] = pr[j] + t0; continue; }
                int t = 0;
                for (; t + 8 <= m; t += 8)
                    _mm256_storeu_ps(w[j] + t, _mm256_mul_ps(_mm256_loadu_ps(pr[j] + t0 + t), _mm256_loadu_ps(vs + t0 + t)));
                for (; t < m; t++) w[j][t] = pr[j][t0 + t] * vs[t0 + t];
                wr[j] = w[j];
            }
            int t = 0;
            for (; t + 2 <= m; t += 2) {
                const size_t r0 = (size_t)(t0 + t) * hd + c, r1 = r0 + hd;
                __m256 v0[2], v1[2];
                for (int d = 0; d < ND; d++)
                    if (d < nd) { v0[d] = kv_load_avx2(v, r0 + 8 * d, dt); v1[d] = kv_load_avx2(v, r1 + 8 * d, dt); }
                for (int j = 0; j < NR; j++) {
                    const __m256 w0 = _mm256_broadcast_ss(wr[j] + t), w1 = _mm256_broadcast_ss(wr[j] + t + 1);
                    for (int d = 0; d < ND; d++)
                        if (d < nd) {
                            a[j][d][0] = _mm256_fmadd_ps(w0, v0[d], a[j][d][0]);
                            a[j][d][1] = _mm256_fmadd_ps(w1, v1[d], a[j][d][1]);
                        }
                }
            }
            if (t < m) {  // the last position (only in the last chunk): an even one
                const size_t r0 = (size_t)(t0 + t) * hd + c;
                for (int d = 0; d < ND; d++)
                    if (d < nd) {
                        const __m256 v0 = kv_load_avx2(v, r0 + 8 * d, dt);
                        for (int j = 0; j < NR; j++) a[j][d][0] = _mm256_fmadd_ps(_mm256_broadcast_ss(wr[j] + t), v0, a[j][d][0]);
                    }
            }
        }
        for (int j = 0; j < NR; j++)
            for (int d = 0; d < ND; d++)
                if (d < nd) _mm256_storeu_ps(outr[j] + c + 8 * d, _mm256_add_ps(a[j][d][0], a[j][d][1]));
    }
}

// The scores of NR ≤ 4 query rows qr[j] at positions s .. s + 8·NB − 1 (NB ≤ 4 ymm of 8 positions
// per row, NR·NB ≤ 8 chains): each lane sums q_i · k_i with fused multiply-adds over i = 0, 1, …
// from 0, then multiplies once by scale (FP16) or by the rounded scale · ks[s] (INT8). A lane's bits
// do not depend on NR, NB or s, so the decode and block kernels may tile positions differently.
T_AVX2 static inline __attribute__((always_inline)) void
scores_avx2(float *const *prow, const float *const *qr, const void *k, const float *ks, int s, int hd, int kstride,
            float scale, const int NR, const int NB, const int dt) {
    __m256 a[4][4];
    for (int j = 0; j < NR; j++)
        for (int b = 0; b < NB; b++) a[j][b] = _mm256_setzero_ps();
    for (int i = 0; i < hd; i++) {
        const size_t row = (size_t)i * kstride + s;
        __m256 kb[4];
        for (int b = 0; b < NB; b++) kb[b] = kv_load_avx2(k, row + 8 * b, dt);
        for (int j = 0; j < NR; j++) {
            const __m256 qi = _mm256_broadcast_ss(qr[j] + i);
            for (int b = 0; b < NB; b++) a[j][b] = _mm256_fmadd_ps(qi, kb[b], a[j][b]);
        }
    }
    const __m256 sc = _mm256_set1_ps(scale);
    for (int b = 0; b < NB; b++) {
        const __m256 f = dt == KV_I8 ? _mm256_mul_ps(sc, _mm256_loadu_ps(ks + s + 8 * b)) : sc;
        for (int j = 0; j < NR; j++) _mm256_storeu_ps(prow[j] + s + 8 * b, _mm256_mul_ps(a[j][b], f));
    }
}

// One position's score past the last full block of 16 positions, as the decode kernel has always
// computed it there: a multiply then an add over i = 0, 1, … (-ffp-contract=off), then · scale · ks.
// The vector lanes (positions below 16·⌊n/16⌋) use fused multiply-adds and the rounded scale · ks
// instead; both kernels split each row at 16·⌊n/16⌋ of its own length n, so every score has the
// same bits in the decode and the prefill kernel (and the same bits as before issue 11).
T_AVX2 static inline __attribute__((always_inline)) float
score_avx2(const float *q, const void *k, const float *ks, int s, int hd, int kstride, float scale, const int dt) {
    float acc = 0;
    for (int i = 0; i < hd; i++) acc += q[i] * kv_get(k, (size_t)i * kstride + s, dt);
    return acc * scale * (dt == KV_I8 ? ks[s] : 1.0f);
}

T_AVX2 static inline __attribute__((always_inline)) void
group_kv_avx2_g(float *out, float *p, int pstride, const float *q, const void *k, const float *ks, const void *v, const float *vs,
                const int G, int n, int hd, int kstride, float scale, const int dt, mgk_softmax_fn softmax) {
    float *prow[4];
    const float *qr[4];
    for (int g = 0; g < G; g++) { prow[g] = p + (size_t)g * pstride; qr[g] = q + (size_t)g * hd; }
    const int split = n / 16 * 16;  // vector lanes below, score_avx2 from here
    int s = 0;
    if (G <= 2)  // scores: 32 positions × G heads per pass (8 chains at G = 2), then 16
        for (; s + 32 <= split; s += 32) scores_avx2(prow, qr, k, ks, s, hd, kstride, scale, G, 4, dt);
    for (; s + 16 <= split; s += 16) scores_avx2(prow, qr, k, ks, s, hd, kstride, scale, G, 2, dt);
    for (; s < n; s++)  // the last n mod 16 positions: one dot product each
        for (int g = 0; g < G; g++) p[(size_t)g * pstride + s] = score_avx2(q + g * hd, k, ks, s, hd, kstride, scale, dt);
    for (int g = 0; g < G; g++) softmax(prow[g], n);
    float *outr[4];
    for (int g = 0; g < G; g++) outr[g] = out + (size_t)g * hd;
    values_avx2(outr, (const float *const *)prow, v, vs, G, n, hd, dt);
}

T_AVX2 static inline __attribute__((always_inline)) void
group_kv_avx2(float *out, float *p, int pstride, const float *q, const void *k, const float *ks, const void *v, const float *vs,
              int G, int n, int hd, int kstride, float scale, const int dt, mgk_softmax_fn softmax) {
    if (hd % 8 != 0) { group_kv_generic(out, p, pstride, q, k, ks, v, vs, G, n, hd, kstride, scale, dt, softmax); return; }
    for (int g = 0; g < G; g += 4) {  // G (≤ 4) heads share each K and V load; G a constant per call
        const int gg = G - g < 4 ? G - g : 4;
        float *o = out + (size_t)g * hd, *pg = p + (size_t)g * pstride;
        const float *qg = q + (size_t)g * hd;
        switch (gg) {
        case 1: group_kv_avx2_g(o, pg, pstride, qg, k, ks, v, vs, 1, n, hd, kstride, scale, dt, softmax); break;
        case 2: group_kv_avx2_g(o, pg, pstride, qg, k, ks, v, vs, 2, n, hd, kstride, scale, dt, softmax); break;
        case 3: group_kv_avx2_g(o, pg, pstride, qg, k, ks, v, vs, 3, n, hd, kstride, scale, dt, softmax); break;
        default: group_kv_avx2_g(o, pg, pstride, qg, k, ks, v, vs, 4, n, hd, kstride, scale, dt, softmax); break;
        }
    }
}

// Batched prefill: causal attention of T tokens × G heads (rows r = t·G + g; row r sees the first
// n0 + t + 1 positions). Each block of 16 keys and each value row is loaded and converted once per
// four query rows instead of once per row. Per row the arithmetic is group_kv_avx2_g's operation
// for operation: the same fused score lanes (score_avx2 for the row's last n mod 16), the same
// softmax over the row's own length, and the same weighted-sum chains (values_avx2; positions past a
// row's length carry probability 0 and add exactly nothing). So a prefilled
// token's attention output and probabilities are bit-identical to a decode step's.
T_AVX2 static inline __attribute__((always_inline)) void
block_kv_avx2(float *out, int ldo, float *p, int pstride, const float *q, int ldq, const void *k, const float *ks,
              const void *v, const float *vs, int T, int G, int n0, int hd, int kstride, float scale, const int dt,
              mgk_softmax_fn softmax) {
    if (hd % 8 != 0) { block_kv_generic(out, ldo, p, pstride, q, ldq, k, ks, v, vs, T, G, n0, hd, kstride, scale, dt, softmax); return; }
    const int R = T * G, nmax = n0 + T;
    for (int r0 = 0; r0 < R; r0 += 4) {  // scores: 16 positions × 4 rows per pass, 8 chains
        const int nr = R - r0 < 4 ? R - r0 : 4;
        const int nlong = n0 + (r0 + nr - 1) / G + 1;  // the longest row of this tile
        float *prow[4];
        const float *qr[4];
        for (int j = 0; j < 4; j++) {  // a short last tile repeats its first row (computed, not stored)
            const int r = r0 + (j < nr ? j : 0);
            qr[j] = q + (size_t)(r / G) * ldq + (size_t)(r % G) * hd;
            prow[j] = p + (size_t)r * pstride;
        }
        for (int s = 0; s + 16 <= nlong; s += 16) scores_avx2(prow, qr, k, ks, s, hd, kstride, scale, 4, 2, dt);
        for (int j = 0; j < nr; j++) {  // each row's last n mod 16 positions as the decode kernel does them
            const int r = r0 + j, n = n0 + r / G + 1;
            for (int t = n / 16 * 16; t < n; t++) p[(size_t)r * pstride + t] = score_avx2(qr[j], k, ks, t, hd, kstride, scale, dt);
        }
    }
    for (int r = 0; r < R; r++) {  // causal: row (t, g) keeps n0 + t + 1 positions
        const int n = n0 + r / G + 1;
        float *pr = p + (size_t)r * pstride;
        softmax(pr, n);
        for (int s = n; s < nmax; s++) pr[s] = 0;
    }
    for (int r0 = 0; r0 < R; r0 += 4) {  // weighted sums: 4 rows per pass, each value slice converted once
        const int nr = R - r0 < 4 ? R - r0 : 4;
        const int n = n0 + (r0 + nr - 1) / G + 1;  // the longest row of this tile
        float *outr[4];
        const float *pr[4];
        for (int j = 0; j < nr; j++) {
            const int r = r0 + j;
            outr[j] = out + (size_t)(r / G) * ldo + (size_t)(r % G) * hd;
            pr[j] = p + (size_t)r * pstride;
        }
        switch (nr) {
        case 1: values_avx2(outr, pr, v, vs, 1, n, hd, dt); break;
        case 2: values_avx2(outr, pr, v, vs, 2, n, hd, dt); break;
        case 3: values_avx2(outr, pr, v, vs, 3, n, hd, dt); break;
        default: values_avx2(outr, pr, v, vs, 4, n, hd, dt); break;
        }
    }
}

KV_INSTANCE(avx2, T_AVX2, MGK_PATH_AVX2, group_kv_avx2, block_kv_avx2)

// ---- AVX-512F/BW/VL ------------------------------------------------------------------------------
// The store / load / re-rotation helpers are the generic loops compiled for AVX-512 (F16C is
// implied); the attention kernels are explicit intrinsics.
#define softmax512() mgk_fp32_kernels_for(MGK_PATH_AVX512)->softmax
T_AVX512 static void store_f16_avx512(uint16_t *out, int stride, const float *x, int n) { store_f16_generic(out, stride, x, n); }
T_AVX512 static float store_i8_avx512(int8_t *out, int stride, const float *x, int n) { return store_i8_generic(out, stride, x, n); }
T_AVX512 static void load_f16_avx512(float *out, const uint16_t *x, int stride, int n) { load_f16_generic(out, x, stride, n); }
T_AVX512 static void load_i8_avx512(float *out, const int8_t *x, int stride, float scale, int n) { load_i8_generic(out, x, stride, scale, n); }
T_AVX512 static void rotate_back_f16_avx512(uint16_t *k, int kstride, int n, const float *cos, const float *sin, int hd) {
    rotate_back_f16_generic(k, kstride, n, cos, sin, hd);
}
T_AVX512 static void rotate_back_i8_avx512(int8_t *k, float *ks, int kstride, int n, const float *cos, const float *sin, int hd) {
    rotate_back_i8_generic(k, ks, kstride, n, cos, sin, hd);
}

// 16 cached elements at base[idx...] (masked) as floats.
T_AVX512 static inline __attribute__((always_inline)) __m512 kv_load_avx512(const void *base, size_t idx, __mmask16 m, const int dt) {
    if (dt == KV_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + idx));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, (const int8_t *)base + idx)));
}

T_AVX512 static inline __mmask16 lanes_avx512(int left) {
    return left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

// fp32.c's attention_group with dequantizing loads: G (≤ 4) query heads share each K and V load.
T_AVX512 static inline __attribute__((always_inline)) void
group_kv_avx512(float *out, float *p, int pstride, const float *q, const void *k, const float *ks, const void *v, const float *vs,
         const int G, int n, int hd, int kstride, float scale, const int dt, mgk_softmax_fn softmax) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int s = 0; s < n; s += 32) {  // 32 positions × G heads per pass
        const __mmask16 m0 = lanes_avx512(n - s), m1 = lanes_avx512(n - s - 16);
        __m512 a[4][2];
        for (int g = 0; g < G; g++) a[g][0] = a[g][1] = _mm512_setzero_ps();
        for (int i = 0; i < hd; i++) {
            const size_t row = (size_t)i * kstride + s;
            const __m512 k0 = kv_load_avx512(k, row, m0, dt), k1 = kv_load_avx512(k, row + 16, m1, dt);
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
    for (int g = 0; g < G; g++) softmax(p + (size_t)g * pstride, n);
    for (int c = 0; c < hd; c += 16) {
        const __mmask16 m = lanes_avx512(hd - c);
        __m512 a[4][2];
        for (int g = 0; g < G; g++) a[g][0] = a[g][1] = _mm512_setzero_ps();
        for (int t = 0; t < n; t += 2) {
            const int two = t + 1 < n;
            const float w0 = dt == KV_I8 ? vs[t] : 1.0f, w1 = two ? (dt == KV_I8 ? vs[t + 1] : 1.0f) : 0.0f;
            const __m512 v0 = kv_load_avx512(v, (size_t)t * hd + c, m, dt);
            const __m512 v1 = two ? kv_load_avx512(v, (size_t)(t + 1) * hd + c, m, dt) : _mm512_setzero_ps();
            for (int g = 0; g < G; g++) {
                const float *pg = p + (size_t)g * pstride;
                a[g][0] = _mm512_fmadd_ps(_mm512_set1_ps(pg[t] * w0), v0, a[g][0]);
                if (two) a[g][1] = _mm512_fmadd_ps(_mm512_set1_ps(pg[t + 1] * w1), v1, a[g][1]);
            }
        }
        for (int g = 0; g < G; g++) _mm512_mask_storeu_ps(out + (size_t)g * hd + c, m, _mm512_add_ps(a[g][0], a[g][1]));
    }
}

T_AVX512 static void group_dispatch_avx512(float *out, float *p, int pstride, const float *q, const void *k, const float *ks, const void *v,
                           const float *vs, int G, int n, int hd, int kstride, float scale, const int dt,
                                  mgk_softmax_fn softmax) {
    for (int g = 0; g < G; g += 4) {
        const int gg = G - g < 4 ? G - g : 4;
        float *o = out + (size_t)g * hd, *pg = p + (size_t)g * pstride;
        const float *qg = q + (size_t)g * hd;
        if (dt == KV_F16) {
            switch (gg) {
            case 1: group_kv_avx512(o, pg, pstride, qg, k, ks, v, vs, 1, n, hd, kstride, scale, KV_F16, softmax); break;
            case 2: group_kv_avx512(o, pg, pstride, qg, k, ks, v, vs, 2, n, hd, kstride, scale, KV_F16, softmax); break;
            case 3: group_kv_avx512(o, pg, pstride, qg, k, ks, v, vs, 3, n, hd, kstride, scale, KV_F16, softmax); break;
            default: group_kv_avx512(o, pg, pstride, qg, k, ks, v, vs, 4, n, hd, kstride, scale, KV_F16, softmax); break;
            }
        } else {
            switch (gg) {
            case 1: group_kv_avx512(o, pg, pstride, qg, k, ks, v, vs, 1, n, hd, kstride, scale, KV_I8, softmax); break;
            case 2: group_kv_avx512(o, pg, pstride, qg, k, ks, v, vs, 2, n, hd, kstride, scale, KV_I8, softmax); break;
            case 3: group_kv_avx512(o, pg, pstride, qg, k, ks, v, vs, 3, n, hd, kstride, scale, KV_I8, softmax); break;
            default: group_kv_avx512(o, pg, pstride, qg, k, ks, v, vs, 4, n, hd, kstride, scale, KV_I8, softmax); break;
            }
        }
    }
}

// fp32.c's mgk_attention_block_f32 with dequantizing loads; per row, group_kv_avx512's arithmetic.
T_AVX512 static inline __attribute__((always_inline)) void
block_kv_avx512(float *out, int ldo, float *p, int pstride, const float *q, int ldq, const void *k, const float *ks,
         const void *v, const float *vs, int T, int G, int n0, int hd, int kstride, float scale, const int dt,
                mgk_softmax_fn softmax) {
    const int R = T * G, nmax = n0 + T;
    const __m512 sc = _mm512_set1_ps(scale);
    for (int s = 0; s < nmax; s += 32) {  // scores: 32 positions × 4 query rows per pass
        const __mmask16 m0 = lanes_avx512(nmax - s), m1 = lanes_avx512(nmax - s - 16);
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
                const __m512 k0 = kv_load_avx512(k, row, m0, dt), k1 = kv_load_avx512(k, row + 16, m1, dt);
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
        softmax(pr, n);
        for (int s = n; s < nmax; s++) pr[s] = 0;
    }
    for (int r0 = 0; r0 < R; r0 += 4) {  // weighted sums: 4 query rows × 16 dims per pass
        const int nr = R - r0 < 4 ? R - r0 : 4;
        const int n = n0 + (r0 + nr - 1) / G + 1;
        const float *pr[4];
        for (int j = 0; j < 4; j++) pr[j] = p + (size_t)(r0 + (j < nr ? j : 0)) * pstride;
        for (int c = 0; c < hd; c += 16) {
            const __mmask16 m = lanes_avx512(hd - c);
            // group_kv_avx512's chains (even and odd positions, added at the end), so a row's sum
            // has the decode step's bits; positions past a row's length have probability 0.
            __m512 a[4][2];
            for (int j = 0; j < 4; j++) a[j][0] = a[j][1] = _mm512_setzero_ps();
            for (int t = 0; t < n; t += 2) {
                const int two = t + 1 < n;
                const float w0 = dt == KV_I8 ? vs[t] : 1.0f, w1 = two ? (dt == KV_I8 ? vs[t + 1] : 1.0f) : 0.0f;
                const __m512 v0 = kv_load_avx512(v, (size_t)t * hd + c, m, dt);
                const __m512 v1 = two ? kv_load_avx512(v, (size_t)(t + 1) * hd + c, m, dt) : _mm512_setzero_ps();
                for (int j = 0; j < 4; j++) {
                    a[j][0] = _mm512_fmadd_ps(_mm512_set1_ps(pr[j][t] * w0), v0, a[j][0]);
                    if (two) a[j][1] = _mm512_fmadd_ps(_mm512_set1_ps(pr[j][t + 1] * w1), v1, a[j][1]);
                }
            }
            for (int j = 0; j < nr; j++) {
                const int r = r0 + j;
                _mm512_mask_storeu_ps(out + (size_t)(r / G) * ldo + (size_t)(r % G) * hd + c, m, _mm512_add_ps(a[j][0], a[j][1]));
            }
        }
    }
}

T_AVX512 static void attention_group_f16_avx512(float *out, float *p, int pstride, const float *q, const uint16_t *k, const uint16_t *v,
                             int G, int n, int hd, int kstride, float scale) {
    group_dispatch_avx512(out, p, pstride, q, k, NULL, v, NULL, G, n, hd, kstride, scale, KV_F16, softmax512());
}
T_AVX512 static void attention_group_i8_avx512(float *out, float *p, int pstride, const float *q, const int8_t *k, const float *ks,
                            const int8_t *v, const float *vs, int G, int n, int hd, int kstride, float scale) {
    group_dispatch_avx512(out, p, pstride, q, k, ks, v, vs, G, n, hd, kstride, scale, KV_I8, softmax512());
}
T_AVX512 static void attention_block_f16_avx512(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                             const uint16_t *k, const uint16_t *v, int T, int G, int n0, int hd, int kstride, float scale) {
    block_kv_avx512(out, ldo, p, pstride, q, ldq, k, NULL, v, NULL, T, G, n0, hd, kstride, scale, KV_F16, softmax512());
}
T_AVX512 static void attention_block_i8_avx512(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                            const int8_t *k, const float *ks, const int8_t *v, const float *vs,
                            int T, int G, int n0, int hd, int kstride, float scale) {
    block_kv_avx512(out, ldo, p, pstride, q, ldq, k, ks, v, vs, T, G, n0, hd, kstride, scale, KV_I8, softmax512());
}

static const mgk_kv_kernels kv_avx512 = {
    store_f16_avx512, store_i8_avx512, load_f16_avx512, load_i8_avx512, rotate_back_f16_avx512, rotate_back_i8_avx512,
    attention_group_f16_avx512, attention_group_i8_avx512, attention_block_f16_avx512, attention_block_i8_avx512,
};
#endif

// ---- dispatch ------------------------------------------------------------------------------------

const mgk_kv_kernels *mgk_kv_kernels_for(int path) {
    if (path == MGK_PATH_AUTO) path = mgk_selected_path();
    if (!mgk_path_supported(path)) return NULL;
    switch (path) {
#if defined(__x86_64__)
    case MGK_PATH_AVX512: case MGK_PATH_VNNI: return &kv_avx512;
    case MGK_PATH_AVX2: case MGK_PATH_AVXVNNI: return &kv_avx2;
#endif
    default: return &kv_portable;
    }
}

static const mgk_kv_kernels *kv_selected;  // resolved once; every thread resolves the same table

static inline const mgk_kv_kernels *kv(void) {
    const mgk_kv_kernels *t = __atomic_load_n(&kv_selected, __ATOMIC_RELAXED);
    if (!t) { t = mgk_kv_kernels_for(MGK_PATH_AUTO); __atomic_store_n(&kv_selected, t, __ATOMIC_RELAXED); }
    return t;
}

void mgk_kv_store_f16(uint16_t *out, int stride, const float *x, int n) { kv()->store_f16(out, stride, x, n); }
float mgk_kv_store_i8(int8_t *out, int stride, const float *x, int n) { return kv()->store_i8(out, stride, x, n); }
void mgk_kv_load_f16(float *out, const uint16_t *x, int stride, int n) { kv()->load_f16(out, x, stride, n); }
void mgk_kv_load_i8(float *out, const int8_t *x, int stride, float scale, int n) { kv()->load_i8(out, x, stride, scale, n); }
void mgk_kv_rotate_back_f16(uint16_t *k, int kstride, int n, const float *cos, const float *sin, int hd) {
    kv()->rotate_back_f16(k, kstride, n, cos, sin, hd);
}
void mgk_kv_rotate_back_i8(int8_t *k, float *ks, int kstride, int n, const float *cos, const float *sin, int hd) {
    kv()->rotate_back_i8(k, ks, kstride, n, cos, sin, hd);
}
void mgk_attention_group_f16(float *out, float *p, int pstride, const float *q, const uint16_t *k, const uint16_t *v,
                             int G, int n, int hd, int kstride, float scale) {
    kv()->attention_group_f16(out, p, pstride, q, k, v, G, n, hd, kstride, scale);
}
void mgk_attention_group_i8(float *out, float *p, int pstride, const float *q, const int8_t *k, const float *ks,
                            const int8_t *v, const float *vs, int G, int n, int hd, int kstride, float scale) {
    kv()->attention_group_i8(out, p, pstride, q, k, ks, v, vs, G, n, hd, kstride, scale);
}
void mgk_attention_block_f16(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                             const uint16_t *k, const uint16_t *v, int T, int G, int n0, int hd, int kstride, float scale) {
    kv()->attention_block_f16(out, ldo, p, pstride, q, ldq, k, v, T, G, n0, hd, kstride, scale);
}
void mgk_attention_block_i8(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                            const int8_t *k, const float *ks, const int8_t *v, const float *vs,
                            int T, int G, int n0, int hd, int kstride, float scale) {
    kv()->attention_block_i8(out, ldo, p, pstride, q, ldq, k, ks, v, vs, T, G, n0, hd, kstride, scale);
}
