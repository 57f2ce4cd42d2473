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
#include "mgk_simd512.h"
#endif

enum { KV_F16 = 1, KV_I8 = 2, KV_F32 = 3 };  // KV_F32: the AVX2 block kernel's keys / values converted to floats once per call

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
        out[(size_t)i * stride] = q == q ? (int8_t)q : 0;  // a NaN element (fmaxf skipped it) stores 0, as x86's conversion gave
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

// T positions at once (mgk_kv_store_block_i8): each key quantized contiguously into a stack block,
// then written into its column; the same bytes and scales as 2·T single stores of the same path.
enum { KV_BLOCK_BYTES = 8192 };
#define STORE_BLOCK_I8_BODY(STORE)                                                                              \
    if (hd > KV_BLOCK_BYTES / 16) { /* a very wide head: position by position */                              \
        for (int j = 0; j < T; j++) {                                                                         \
            ks[j] = STORE(k + j, kstride, kin + (size_t)j * ld, hd);                                           \
            vs[j] = STORE(v + (size_t)j * hd, 1, vin + (size_t)j * ld, hd);                                    \
        }                                                                                                     \
        return;                                                                                               \
    }                                                                                                         \
    int8_t tmp[KV_BLOCK_BYTES];                                                                               \
    for (int j0 = 0; j0 < T; j0 += 16) {                                                                      \
        const int nt = T - j0 < 16 ? T - j0 : 16;                                                             \
        for (int j = 0; j < nt; j++) {                                                                        \
            ks[j0 + j] = STORE(tmp + (size_t)j * hd, 1, kin + (size_t)(j0 + j) * ld, hd);                      \
            vs[j0 + j] = STORE(v + (size_t)(j0 + j) * hd, 1, vin + (size_t)(j0 + j) * ld, hd);                 \
        }                                                                                                     \
        for (int i = 0; i < hd; i++) {                                                                        \
            int8_t *row = k + (size_t)i * kstride + j0;                                                       \
            for (int j = 0; j < nt; j++) row[j] = tmp[(size_t)j * hd + i];                                    \
        }                                                                                                     \
    }

// One instance of the generic loops per target: SUFFIX names it, ATTR is its target attribute, PATH
// picks the FP32 softmax of the same path (fp32.c's table, looked up once per call) and GROUP is the
// decode-step group kernel and BLOCK the prefill block kernel (the generic loops, or explicit ones).
#define KV_INSTANCE(SUFFIX, ATTR, PATH, GROUP, BLOCK, STOREI8, ROTI8)                                                                     \
    ATTR static void store_f16_##SUFFIX(uint16_t *out, int stride, const float *x, int n) {                       \
        store_f16_generic(out, stride, x, n);                                                                     \
    }                                                                                                             \
    ATTR static float store_i8_##SUFFIX(int8_t *out, int stride, const float *x, int n) {                         \
        return STOREI8(out, stride, x, n);                                                                        \
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
        ROTI8(k, ks, kstride, n, cos, sin, hd);                                                                   \
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
    ATTR static void store_block_i8_##SUFFIX(int8_t *k, float *ks, int8_t *v, float *vs, int kstride,            \
                                             const float *kin, const float *vin, int ld, int T, int hd) {        \
        STORE_BLOCK_I8_BODY(STOREI8)                                                                              \
    }                                                                                                             \
    static const mgk_kv_kernels kv_##SUFFIX = {                                                                   \
        store_f16_##SUFFIX, store_i8_##SUFFIX, load_f16_##SUFFIX, load_i8_##SUFFIX,                               \
        rotate_back_f16_##SUFFIX, rotate_back_i8_##SUFFIX,                                                        \
        attention_group_f16_##SUFFIX, attention_group_i8_##SUFFIX,                                                \
        attention_block_f16_##SUFFIX, attention_block_i8_##SUFFIX, store_block_i8_##SUFFIX,                       \
    };

KV_INSTANCE(portable, , MGK_PATH_PORTABLE, group_kv_generic, block_kv_generic, store_i8_generic, rotate_back_i8_generic)

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

// store_i8_generic on 8 lanes, byte for byte (as store_i8_avx512 below): vector max |x| and
// quantization of whole blocks of 8, the generic per-element operations for the last n mod 8; an
// input holding a NaN takes the generic loop.
T_AVX2 static inline __attribute__((always_inline)) float store_i8_vec_avx2(int8_t *out, int stride, const float *x, int n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mv = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        mv = _mm256_max_ps(mv, _mm256_and_ps(v, absmask));
    }
    int anynan = _mm256_movemask_ps(nan) != 0;
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float amax = _mm_cvtss_f32(m4);
    for (int j = i; j < n; j++) { anynan |= isnan(x[j]); amax = fmaxf(amax, fabsf(x[j])); }
    if (anynan) return store_i8_generic(out, stride, x, n);
    if (!(amax > 0) || !isfinite(amax)) {
        for (i = 0; i < n; i++) out[(size_t)i * stride] = 0;
        return 0;
    }
    const float inv = 127.0f / amax;
    const __m256 vi = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 q = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
        const __m256i d = _mm256_cvtps_epi32(q);  // −127…127: the saturating packs below change nothing
        const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
        const __m128i b = _mm_packs_epi16(w, w);
        if (stride == 1) { _mm_storel_epi64((__m128i *)(out + i), b); continue; }
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, b);
        for (int j = 0; j < 8; j++) out[(size_t)(i + j) * stride] = tmp[j];
    }
    for (; i < n; i++) {
        float q = nearbyintf(x[i] * inv);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        out[(size_t)i * stride] = (int8_t)q;
    }
    return amax / 127.0f;
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

// The last n mod 16 scores of one row from the converted keys (kf: hd rows of npad floats, zero
// past the chunk): score_avx2's operations lane by lane — a multiply then an add over i = 0, 1, …
// from 0, then · scale · ks (ksp: the scales, zero past the chunk) — for the 16 positions from
// s0 = 16·⌊n/16⌋ at once; the lanes past n are dropped.
T_AVX2 static inline __attribute__((always_inline)) void
tail_scores_avx2(float *prow, const float *qr, const float *kf, const float *ksp, int s0, int n, int hd, int npad, float scale,
                 const int dt) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int i = 0; i < hd; i++) {
        const __m256 qi = _mm256_broadcast_ss(qr + i);
        const float *kr = kf + (size_t)i * npad + s0;
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(qi, _mm256_loadu_ps(kr)));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(qi, _mm256_loadu_ps(kr + 8)));
    }
    const __m256 sc = _mm256_set1_ps(scale);
    a0 = _mm256_mul_ps(a0, sc);
    a1 = _mm256_mul_ps(a1, sc);
    if (dt == KV_I8) { a0 = _mm256_mul_ps(a0, _mm256_loadu_ps(ksp + s0)); a1 = _mm256_mul_ps(a1, _mm256_loadu_ps(ksp + s0 + 8)); }
    float tmp[16];
    _mm256_storeu_ps(tmp, a0);
    _mm256_storeu_ps(tmp + 8, a1);
    for (int t = s0; t < n; t++) prow[t] = tmp[t - s0];
}

// scores_avx2's fused lanes from the converted keys (kf: hd rows of kstride floats) for NR ≤ 6 rows
// × 16 positions from s (12 chains): per lane the same FMAs over i = 0, 1, … from 0, then the same
// multiply by scale · ks[s] (INT8) or scale (FP16), so the same bits as scores_avx2.
T_AVX2 static inline __attribute__((always_inline)) void
scores_tile_avx2(float *const *prow, const float *const *qr, const float *kf, const float *ks, int s, int hd, int kstride,
                 float scale, const int NR, const int dt) {
    __m256 a[6][2];
    for (int j = 0; j < NR; j++) a[j][0] = a[j][1] = _mm256_setzero_ps();
    for (int i = 0; i < hd; i++) {
        const float *kr = kf + (size_t)i * kstride + s;
        const __m256 k0 = _mm256_loadu_ps(kr), k1 = _mm256_loadu_ps(kr + 8);
        for (int j = 0; j < NR; j++) {
            const __m256 qi = _mm256_broadcast_ss(qr[j] + i);
            a[j][0] = _mm256_fmadd_ps(qi, k0, a[j][0]);
            a[j][1] = _mm256_fmadd_ps(qi, k1, a[j][1]);
        }
    }
    const __m256 sc = _mm256_set1_ps(scale);
    const __m256 f0 = dt == KV_I8 ? _mm256_mul_ps(sc, _mm256_loadu_ps(ks + s)) : sc;
    const __m256 f1 = dt == KV_I8 ? _mm256_mul_ps(sc, _mm256_loadu_ps(ks + s + 8)) : sc;
    for (int j = 0; j < NR; j++) {
        _mm256_storeu_ps(prow[j] + s, _mm256_mul_ps(a[j][0], f0));
        _mm256_storeu_ps(prow[j] + s + 8, _mm256_mul_ps(a[j][1], f1));
    }
}

// values_avx2's sums from the converted value rows (vf, n × hd floats) and weights formed once per
// call (wr: p·vs for INT8, p for FP16), for NR ≤ 3 rows × ND ≤ 2 slices of 8 dims from dim c: the
// same even / odd fused chains per (row, slice), added at the end, so the same bits; up to 12
// chains, each value slice loaded once for all NR rows.
T_AVX2 static inline __attribute__((always_inline)) void
values_tile_avx2(float *const *outr, const float *const *wr, const float *vf, int n, int hd, int c, const int NR, const int ND) {
    __m256 a[3][2][2];  // [row][slice][even, odd]
    for (int j = 0; j < NR; j++)
        for (int d = 0; d < ND; d++) a[j][d][0] = a[j][d][1] = _mm256_setzero_ps();
    int t = 0;
    for (; t + 2 <= n; t += 2) {
        for (int e = 0; e < 2; e++) {
            __m256 vv[2];
            for (int d = 0; d < ND; d++) vv[d] = _mm256_loadu_ps(vf + (size_t)(t + e) * hd + c + 8 * d);
            for (int j = 0; j < NR; j++) {
                const __m256 w = _mm256_broadcast_ss(wr[j] + t + e);
                for (int d = 0; d < ND; d++) a[j][d][e] = _mm256_fmadd_ps(w, vv[d], a[j][d][e]);
            }
        }
    }
    if (t < n)  // the last position, an even one
        for (int d = 0; d < ND; d++) {
            const __m256 v0 = _mm256_loadu_ps(vf + (size_t)t * hd + c + 8 * d);
            for (int j = 0; j < NR; j++) a[j][d][0] = _mm256_fmadd_ps(_mm256_broadcast_ss(wr[j] + t), v0, a[j][d][0]);
        }
    for (int j = 0; j < NR; j++)
        for (int d = 0; d < ND; d++) _mm256_storeu_ps(outr[j] + c + 8 * d, _mm256_add_ps(a[j][d][0], a[j][d][1]));
}

// Batched prefill: causal attention of T tokens × G heads (rows r = t·G + g; row r sees the first
// n0 + t + 1 positions). Each block of 16 keys and each value row is loaded once per four query
// rows instead of once per row. Per row the arithmetic is group_kv_avx2_g's operation for
// operation: the same fused score lanes (score_avx2's unfused sums for the row's last n mod 16),
// the same softmax over the row's own length, and the same weighted-sum chains (values_avx2;
// positions past a row's length carry probability 0 and add exactly nothing). So a prefilled
// token's attention output and probabilities are bit-identical to a decode step's.
// LT = KV_F32 (more than 4 rows): the keys and values were converted to floats once per call (kf, vf;
// the conversion is exact, so the products are the same) instead of once per 4-row tile (6 times for
// the model's 12 tokens × 2 heads); scores then run 6 rows × 16 positions per pass (12 chains), the
// score tails 16 positions per pass, the weights p·vs are formed once per row and the weighted sums
// run 3 rows × 16 dims per pass (12 chains). LT = dt: the cache directly, 4-row tiles as before.
T_AVX2 static inline __attribute__((always_inline)) void
block_kv_avx2_body(float *out, int ldo, float *p, int pstride, const float *q, int ldq, const void *k, const float *ks,
                   const void *v, const float *vs, int T, int G, int n0, int hd, int kstride, float scale, const int dt,
                   mgk_softmax_fn softmax, const int LT, const float *ksp, float *wbuf) {
    const int R = T * G, nmax = n0 + T;
    if (LT == KV_F32)
        for (int r0 = 0; r0 < R; r0 += 6) {  // scores from the converted keys: 16 positions × 6 rows per pass
            const int nr = R - r0 < 6 ? R - r0 : 6;
            const int nlong = n0 + (r0 + nr - 1) / G + 1;  // the longest row of this tile
            float *prow[6];
            const float *qr[6];
            for (int j = 0; j < nr; j++) {
                const int r = r0 + j;
                qr[j] = q + (size_t)(r / G) * ldq + (size_t)(r % G) * hd;
                prow[j] = p + (size_t)r * pstride;
            }
            const float *kf = (const float *)k;
            for (int s = 0; s + 16 <= nlong; s += 16) switch (nr) {
                case 1: scores_tile_avx2(prow, qr, kf, ks, s, hd, kstride, scale, 1, dt); break;
                case 2: scores_tile_avx2(prow, qr, kf, ks, s, hd, kstride, scale, 2, dt); break;
                case 3: scores_tile_avx2(prow, qr, kf, ks, s, hd, kstride, scale, 3, dt); break;
                case 4: scores_tile_avx2(prow, qr, kf, ks, s, hd, kstride, scale, 4, dt); break;
                case 5: scores_tile_avx2(prow, qr, kf, ks, s, hd, kstride, scale, 5, dt); break;
                default: scores_tile_avx2(prow, qr, kf, ks, s, hd, kstride, scale, 6, dt); break;
                }
            for (int j = 0; j < nr; j++) {  // each row's last n mod 16 positions as the decode kernel does them
                const int n = n0 + (r0 + j) / G + 1;
                if (n % 16) tail_scores_avx2(prow[j], qr[j], kf, ksp, n / 16 * 16, n, hd, kstride, scale, dt);
            }
        }
    else
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
    if (LT == KV_F32) {  // weighted sums from the converted values, the weights p·vs formed once
        const float *wbase = p;
        int wld = pstride;
        if (dt == KV_I8) {
            for (int r = 0; r < R; r++) {
                const float *pr = p + (size_t)r * pstride;
                float *wj = wbuf + (size_t)r * nmax;
                const int n = n0 + r / G + 1;
                int t = 0;
                for (; t + 8 <= n; t += 8) _mm256_storeu_ps(wj + t, _mm256_mul_ps(_mm256_loadu_ps(pr + t), _mm256_loadu_ps(vs + t)));
                for (; t < nmax; t++) wj[t] = t < n ? pr[t] * vs[t] : 0.0f;  // p = 0 past the row's end
            }
            wbase = wbuf;
            wld = nmax;
        }
        for (int r0 = 0; r0 < R; r0 += 3) {  // 3 rows × 16 dims per pass (12 chains)
            const int nr = R - r0 < 3 ? R - r0 : 3;
            const int n = n0 + (r0 + nr - 1) / G + 1;  // the tile's longest row; shorter ones carry weight 0 past their end
            float *outr[3];
            const float *wr[3];
            for (int j = 0; j < nr; j++) {
                const int r = r0 + j;
                outr[j] = out + (size_t)(r / G) * ldo + (size_t)(r % G) * hd;
                wr[j] = wbase + (size_t)r * wld;
            }
            const float *vf = (const float *)v;
            for (int c = 0; c < hd; c += 16) {
                const int nd = hd - c >= 16 ? 2 : 1;
                switch (nr * 2 + nd) {
                case 3: values_tile_avx2(outr, wr, vf, n, hd, c, 1, 1); break;
                case 4: values_tile_avx2(outr, wr, vf, n, hd, c, 1, 2); break;
                case 5: values_tile_avx2(outr, wr, vf, n, hd, c, 2, 1); break;
                case 6: values_tile_avx2(outr, wr, vf, n, hd, c, 2, 2); break;
                case 7: values_tile_avx2(outr, wr, vf, n, hd, c, 3, 1); break;
                default: values_tile_avx2(outr, wr, vf, n, hd, c, 3, 2); break;
                }
            }
        }
        return;
    }
    for (int r0 = 0; r0 < R; r0 += 4) {  // weighted sums: 4 rows per pass, each value slice loaded once
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

enum { KV2_MAX_K = 6144, KV2_MAX_V = 6144, KV2_MAX_W = 6144 };  // converted keys (hd × npad), values (n × hd), weights (T·G × n): floats, 72 KB of stack

T_AVX2 static inline __attribute__((always_inline)) void
block_kv_avx2(float *out, int ldo, float *p, int pstride, const float *q, int ldq, const void *k, const float *ks,
              const void *v, const float *vs, int T, int G, int n0, int hd, int kstride, float scale, const int dt,
              mgk_softmax_fn softmax) {
    if (hd % 8 != 0) { block_kv_generic(out, ldo, p, pstride, q, ldq, k, ks, v, vs, T, G, n0, hd, kstride, scale, dt, softmax); return; }
    const int nmax = n0 + T, npad = (nmax + 15) / 16 * 16;
    // One tile of ≤ 4 rows (the last layer's single token) converts each key block and value row once
    // anyway: the cache directly. Likewise where the scratch would not fit.
    if (T * G <= 4 || (long)hd * npad > KV2_MAX_K || (long)nmax * hd > KV2_MAX_V || (long)nmax * T * G > KV2_MAX_W) {
        block_kv_avx2_body(out, ldo, p, pstride, q, ldq, k, ks, v, vs, T, G, n0, hd, kstride, scale, dt, softmax, dt, NULL, NULL);
        return;
    }
    float kf[KV2_MAX_K], vf[KV2_MAX_V], ksp[KV2_MAX_K / 8], wbuf[KV2_MAX_W];  // npad ≤ KV2_MAX_K / 8 (hd ≥ 8)
    const int nfull = nmax / 8 * 8;
    for (int i = 0; i < hd; i++) {  // keys: row i of npad floats, exact conversions, zeros past the chunk
        const size_t row = (size_t)i * kstride;
        float *kr = kf + (size_t)i * npad;
        int s = 0;
        for (; s < nfull; s += 8) _mm256_storeu_ps(kr + s, kv_load_avx2(k, row + s, dt));
        for (; s < nmax; s++) kr[s] = kv_get(k, row + s, dt);
        for (; s < npad; s++) kr[s] = 0;
    }
    for (int t = 0; t < nmax; t++)  // values: the same layout as the cache (hd a multiple of 8)
        for (int c = 0; c < hd; c += 8) _mm256_storeu_ps(vf + (size_t)t * hd + c, kv_load_avx2(v, (size_t)t * hd + c, dt));
    if (dt == KV_I8) {
        for (int s = 0; s < nmax; s++) ksp[s] = ks[s];
        for (int s = nmax; s < npad; s++) ksp[s] = 0;
    }
    block_kv_avx2_body(out, ldo, p, pstride, q, ldq, kf, ks, vf, vs, T, G, n0, hd, npad, scale, dt, softmax, KV_F32, ksp, wbuf);
}

// rotate_back_i8_generic on 8 positions at a time, byte for byte: a position's key is one lane, so
// its dequantization, the unfused rotation, max |x| over the head dimensions and the requantization
// (one multiply by inv = 127 / amax, round half to even, clamp) are the generic operations in the
// generic order, done for 8 positions at once from the cache's position-contiguous rows (the generic
// loop walks one position down hd strided rows). A block whose rotated key holds a NaN or an
// infinity or whose 127 / amax overflows, and the last n mod 8 positions, take the generic loop; nothing is written before a
// block is known to be ordinary, so the generic loop sees the original bytes.
T_AVX2 static void rotate_back_i8_vec_avx2(int8_t *k, float *ks, int kstride, int n, const float *cos, const float *sin, int hd) {
    const int half = hd / 2;
    float col[hd * 8];  // 8 positions' keys, dimension-major, on the stack (hd ≤ a few hundred)
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f), c127 = _mm256_set1_ps(127.0f);
    const __m256 inf = _mm256_set1_ps(INFINITY), zero = _mm256_setzero_ps();
    int s = 0;
    for (; s + 8 <= n; s += 8) {
        const __m256 scale = _mm256_loadu_ps(ks + s);
        __m256 amax = zero, bad = zero;
        for (int i = 0; i < half; i++) {
            const __m256 a = _mm256_mul_ps(kv_load_avx2(k, (size_t)i * kstride + s, KV_I8), scale);
            const __m256 b = _mm256_mul_ps(kv_load_avx2(k, (size_t)(i + half) * kstride + s, KV_I8), scale);
            const __m256 cs = _mm256_set1_ps(cos[i]), sn = _mm256_set1_ps(sin[i]);
            const __m256 na = _mm256_add_ps(_mm256_mul_ps(a, cs), _mm256_mul_ps(b, sn));
            const __m256 nb = _mm256_sub_ps(_mm256_mul_ps(b, cs), _mm256_mul_ps(a, sn));
            _mm256_storeu_ps(col + (size_t)i * 8, na);
            _mm256_storeu_ps(col + (size_t)(i + half) * 8, nb);
            const __m256 fa = _mm256_and_ps(na, absmask), fb = _mm256_and_ps(nb, absmask);
            // !(|x| < ∞) is true for an infinity and for a NaN
            bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(fa, inf, _CMP_NLT_UQ), _mm256_cmp_ps(fb, inf, _CMP_NLT_UQ)));
            amax = _mm256_max_ps(amax, fa);
            amax = _mm256_max_ps(amax, fb);
        }
        for (int i = 2 * half; i < hd; i++) {  // odd hd: the last dimension is not rotated
            const __m256 x = _mm256_mul_ps(kv_load_avx2(k, (size_t)i * kstride + s, KV_I8), scale);
            _mm256_storeu_ps(col + (size_t)i * 8, x);
            const __m256 fx = _mm256_and_ps(x, absmask);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(fx, inf, _CMP_NLT_UQ));
            amax = _mm256_max_ps(amax, fx);
        }
        if (_mm256_movemask_ps(bad)) {
            rotate_back_i8_generic(k + s, ks + s, kstride, 8, cos, sin, hd);
            continue;
        }
        const __m256 zeroLane = _mm256_cmp_ps(amax, zero, _CMP_EQ_OQ);  // an all-zero key: zeros, scale 0
        const __m256 inv = _mm256_div_ps(c127, amax);
        if (_mm256_movemask_ps(_mm256_andnot_ps(zeroLane, _mm256_cmp_ps(inv, inf, _CMP_NLT_UQ)))) {
            rotate_back_i8_generic(k + s, ks + s, kstride, 8, cos, sin, hd);  // a subnormal amax: 127 / amax overflows
            continue;
        }
        for (int i = 0; i < hd; i++) {
            __m256 q = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(col + (size_t)i * 8), inv),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
            q = _mm256_andnot_ps(zeroLane, q);
            const __m256i d = _mm256_cvtps_epi32(q);  // −127…127: the saturating packs change nothing
            const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
            _mm_storel_epi64((__m128i *)(k + (size_t)i * kstride + s), _mm_packs_epi16(w, w));
        }
        _mm256_storeu_ps(ks + s, _mm256_andnot_ps(zeroLane, _mm256_div_ps(amax, c127)));
    }
    if (s < n) rotate_back_i8_generic(k + s, ks + s, kstride, n - s, cos, sin, hd);
}

KV_INSTANCE(avx2, T_AVX2, MGK_PATH_AVX2, group_kv_avx2, block_kv_avx2, store_i8_vec_avx2, rotate_back_i8_vec_avx2)

// ---- AVX-512F/BW/VL ------------------------------------------------------------------------------
// The store / load / re-rotation helpers are the generic loops compiled for AVX-512 (F16C is
// implied); the attention kernels are explicit intrinsics.
#define softmax512() mgk_fp32_kernels_for(MGK_PATH_AVX512)->softmax
T_AVX512 static void store_f16_avx512(uint16_t *out, int stride, const float *x, int n) { store_f16_generic(out, stride, x, n); }
// store_i8_generic in vectors, byte for byte: max |x| (exact in any order), one multiply by
// inv = 127 / amax, round half to even, clamp to ±127. An input holding a NaN takes the generic loop
// (fmaxf skips NaNs, vmaxps does not), so every input stores the generic bytes and scale.
T_AVX512 static inline __attribute__((always_inline)) float store_i8_body512(int8_t *out, int stride, const float *x, int n) {
    __m512 mv = _mm512_setzero_ps();
    __mmask16 nan = 0;
    int i = 0;
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        mv = _mm512_max_ps(mv, _mm512_abs_ps(v));
    }
    if (nan) return store_i8_generic(out, stride, x, n);
    const float amax = _mm512_reduce_max_ps(mv);
    if (!(amax > 0) || !isfinite(amax)) {
        for (i = 0; i < n; i++) out[(size_t)i * stride] = 0;
        return 0;
    }
    const __m512 vi = _mm512_set1_ps(127.0f / amax), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (i = 0; i < n; i += 16) {
        const int left = n - i;
        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
        const __m128i b = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(q));  // vpmovdb: values fit
        if (stride == 1) { _mm_mask_storeu_epi8(out + i, m, b); continue; }
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, b);
        for (int j = 0; j < (left < 16 ? left : 16); j++) out[(size_t)(i + j) * stride] = tmp[j];
    }
    return amax / 127.0f;
}
T_AVX512 static float store_i8_avx512(int8_t *out, int stride, const float *x, int n) { return store_i8_body512(out, stride, x, n); }
T_AVX512 static void load_f16_avx512(float *out, const uint16_t *x, int stride, int n) { load_f16_generic(out, x, stride, n); }
T_AVX512 static void load_i8_avx512(float *out, const int8_t *x, int stride, float scale, int n) { load_i8_generic(out, x, stride, scale, n); }
T_AVX512 static void rotate_back_f16_avx512(uint16_t *k, int kstride, int n, const float *cos, const float *sin, int hd) {
    rotate_back_f16_generic(k, kstride, n, cos, sin, hd);
}
T_AVX512 static void rotate_back_i8_avx512(int8_t *k, float *ks, int kstride, int n, const float *cos, const float *sin, int hd) {
    rotate_back_i8_vec_avx2(k, ks, kstride, n, cos, sin, hd);
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

// ---- AVX-512 prefill block attention (batched prefill, issue 11) --------------------------------
// block_kv_avx512's arithmetic per row with the shared work done once per call instead of once per
// four rows: each 32-position block of keys is converted to floats once (kf, hd × 32, L1) and
// scored against 8 query rows per pass (16 chains); the rows' softmaxes run 4 at a time
// (softmax_rows512: the decode softmax's operations per row, interleaved); the value rows are
// converted to floats once per call (vf) and the weights p·vs are formed with one vector multiply
// per 16 positions, so the weighted-sum loop is loads and FMAs with broadcast weights (4 rows × 2
// slices × even/odd positions = 16 chains). A converted element is the exact value kv_load_avx512
// gives, p·vs is the same IEEE product as the decode kernel's scalar one, and every lane keeps the
// decode kernel's chains (scores: fused over i from 0, then · scale·ks; sums: even and odd
// positions, added at the end), so the outputs and probabilities stay bit-identical to a decode
// step's (the C tests and PrefillTests check it).
enum { KV_FAST_MAX_HD = 128, KV_FAST_MAX_V = 6144, KV_FAST_MAX_W = 6144 };  // the fast kernel's stack scratch bounds (floats)

T_AVX512 static inline __attribute__((always_inline)) void
scores_tile512(float *const *prow, const float *const *qr, const float *kf, int hd, __mmask16 m0, __mmask16 m1,
               __m512 f0, __m512 f1, const int NR, const int NB) {
    __m512 a[8][2];
    for (int j = 0; j < NR; j++) a[j][0] = a[j][1] = _mm512_setzero_ps();
    for (int i = 0; i < hd; i++) {
        const __m512 k0 = _mm512_loadu_ps(kf + (size_t)i * 32);
        const __m512 k1 = NB > 1 ? _mm512_loadu_ps(kf + (size_t)i * 32 + 16) : k0;
        for (int j = 0; j < NR; j++) {
            const __m512 qi = _mm512_set1_ps(qr[j][i]);
            a[j][0] = _mm512_fmadd_ps(qi, k0, a[j][0]);
            if (NB > 1) a[j][1] = _mm512_fmadd_ps(qi, k1, a[j][1]);
        }
    }
    for (int j = 0; j < NR; j++) {
        _mm512_mask_storeu_ps(prow[j], m0, _mm512_mul_ps(a[j][0], f0));
        if (NB > 1) _mm512_mask_storeu_ps(prow[j] + 16, m1, _mm512_mul_ps(a[j][1], f1));
    }
}

T_AVX512 static inline __attribute__((always_inline)) void
values_tile512(float *const *outr, const float *const *wr, const float *vf, int n, int hd, int c, const int NR, const int ND) {
    __m512 a[4][2][2];  // [row][slice][even, odd]
    for (int j = 0; j < NR; j++)
        for (int d = 0; d < ND; d++) a[j][d][0] = a[j][d][1] = _mm512_setzero_ps();
    int t = 0;
    for (; t + 2 <= n; t += 2) {
        __m512 v0[2], v1[2];
        for (int d = 0; d < ND; d++) {
            v0[d] = _mm512_loadu_ps(vf + (size_t)t * hd + c + 16 * d);
            v1[d] = _mm512_loadu_ps(vf + (size_t)(t + 1) * hd + c + 16 * d);
        }
        for (int j = 0; j < NR; j++) {
            const __m512 w0 = _mm512_set1_ps(wr[j][t]), w1 = _mm512_set1_ps(wr[j][t + 1]);
            for (int d = 0; d < ND; d++) {
                a[j][d][0] = _mm512_fmadd_ps(w0, v0[d], a[j][d][0]);
                a[j][d][1] = _mm512_fmadd_ps(w1, v1[d], a[j][d][1]);
            }
        }
    }
    if (t < n)  // the last position, an even one (no odd partner: the decode kernel skips its FMA too)
        for (int d = 0; d < ND; d++) {
            const __m512 v0 = _mm512_loadu_ps(vf + (size_t)t * hd + c + 16 * d);
            for (int j = 0; j < NR; j++) a[j][d][0] = _mm512_fmadd_ps(_mm512_set1_ps(wr[j][t]), v0, a[j][d][0]);
        }
    for (int j = 0; j < NR; j++)
        for (int d = 0; d < ND; d++) _mm512_storeu_ps(outr[j] + c + 16 * d, _mm512_add_ps(a[j][d][0], a[j][d][1]));
}

#define SCORES_CASE(NR) \
    case NR: if (nb > 1) scores_tile512(prow, qr, kf, hd, m0, m1, f0, f1, NR, 2); else scores_tile512(prow, qr, kf, hd, m0, m1, f0, f1, NR, 1); break;
#define VALUES_CASE(NR) \
    case NR: if (nd > 1) values_tile512(outr, wr, vf, n, hd, c, NR, 2); else values_tile512(outr, wr, vf, n, hd, c, NR, 1); break;

T_AVX512 static inline __attribute__((always_inline)) void
block_kv_fast512(float *out, int ldo, float *p, int pstride, const float *q, int ldq, const void *k, const float *ks,
                 const void *v, const float *vs, int T, int G, int n0, int hd, int kstride, float scale, const int dt) {
    const int R = T * G, nmax = n0 + T;
    float kf[KV_FAST_MAX_HD * 32], vf[KV_FAST_MAX_V], w[KV_FAST_MAX_W];
    const __m512 sc = _mm512_set1_ps(scale);
    for (int s = 0; s < nmax; s += 32) {  // scores: one converted K block, 8 query rows per pass
        const __mmask16 m0 = lanes_avx512(nmax - s), m1 = lanes_avx512(nmax - s - 16);
        const int nb = nmax - s > 16 ? 2 : 1;
        for (int i = 0; i < hd; i++) {
            const size_t row = (size_t)i * kstride + s;
            _mm512_storeu_ps(kf + (size_t)i * 32, kv_load_avx512(k, row, m0, dt));
            if (nb > 1) _mm512_storeu_ps(kf + (size_t)i * 32 + 16, kv_load_avx512(k, row + 16, m1, dt));
        }
        __m512 f0 = sc, f1 = sc;
        if (dt == KV_I8) { f0 = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(m0, ks + s)); f1 = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(m1, ks + s + 16)); }
        for (int r0 = 0; r0 < R; r0 += 8) {
            const int nr = R - r0 < 8 ? R - r0 : 8;
            float *prow[8];
            const float *qr[8];
            for (int j = 0; j < nr; j++) {
                const int r = r0 + j;
                prow[j] = p + (size_t)r * pstride + s;
                qr[j] = q + (size_t)(r / G) * ldq + (size_t)(r % G) * hd;
            }
            switch (nr) { SCORES_CASE(1) SCORES_CASE(2) SCORES_CASE(3) SCORES_CASE(4) SCORES_CASE(5) SCORES_CASE(6) SCORES_CASE(7) default: SCORES_CASE(8) }
        }
    }
    for (int r0 = 0; r0 < R; r0 += 4) {  // causal softmax, 4 rows at a time: row (t, g) keeps n0 + t + 1 positions
        const int nr = R - r0 < 4 ? R - r0 : 4;
        float *rows[4];
        int nn[4];
        for (int j = 0; j < nr; j++) { rows[j] = p + (size_t)(r0 + j) * pstride; nn[j] = n0 + (r0 + j) / G + 1; }
        switch (nr) {
        case 1: softmax_rows512(rows, nn, 1); break;
        case 2: softmax_rows512(rows, nn, 2); break;
        case 3: softmax_rows512(rows, nn, 3); break;
        default: softmax_rows512(rows, nn, 4); break;
        }
        for (int j = 0; j < nr; j++)  // zeros past the row's end (masked stores: a memset call per row cost more)
            for (int s = nn[j]; s < nmax; s += 16) _mm512_mask_storeu_ps(rows[j] + s, lanes_avx512(nmax - s), _mm512_setzero_ps());
    }
    for (int t = 0; t < nmax; t++)  // the value rows as floats, once
        for (int c = 0; c < hd; c += 16) _mm512_storeu_ps(vf + (size_t)t * hd + c, kv_load_avx512(v, (size_t)t * hd + c, 0xFFFF, dt));
    if (dt == KV_I8)  // the weights p·vs of every row, before the sums read them
        for (int r = 0; r < R; r++) {
            const float *pr = p + (size_t)r * pstride;
            float *wj = w + (size_t)r * nmax;
            const int n = n0 + r / G + 1;
            int t = 0;
            for (; t + 16 <= n; t += 16) _mm512_storeu_ps(wj + t, _mm512_mul_ps(_mm512_loadu_ps(pr + t), _mm512_loadu_ps(vs + t)));
            for (; t < nmax; t++) wj[t] = t < n ? pr[t] * vs[t] : 0.0f;  // p = 0 past the row's end
        }
    for (int r0 = 0; r0 < R; r0 += 4) {  // weighted sums: 4 rows × 32 dims per pass
        const int nr = R - r0 < 4 ? R - r0 : 4;
        const int n = n0 + (r0 + nr - 1) / G + 1;  // the tile's longest row; shorter ones carry p = 0 past their end
        float *outr[4];
        const float *wr[4];
        for (int j = 0; j < nr; j++) {
            const int r = r0 + j;
            outr[j] = out + (size_t)(r / G) * ldo + (size_t)(r % G) * hd;
            wr[j] = dt == KV_I8 ? w + (size_t)r * nmax : p + (size_t)r * pstride;
        }
        for (int c = 0; c < hd; c += 32) {
            const int nd = hd - c >= 32 ? 2 : 1;
            switch (nr) { VALUES_CASE(1) VALUES_CASE(2) VALUES_CASE(3) default: VALUES_CASE(4) }
        }
    }
}
#undef SCORES_CASE
#undef VALUES_CASE

// The fast kernel where its scratch fits (head size a multiple of 16 up to 128, the value rows of the
// chunk's positions ≤ 32 KB as floats), else block_kv_avx512.
T_AVX512 static inline __attribute__((always_inline)) int
block_kv_fast512_fits(int T, int G, int n0, int hd) {
    return hd % 16 == 0 && hd <= KV_FAST_MAX_HD && (long)(n0 + T) * hd <= KV_FAST_MAX_V && (long)(n0 + T) * T * G <= KV_FAST_MAX_W;
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
    if (block_kv_fast512_fits(T, G, n0, hd)) block_kv_fast512(out, ldo, p, pstride, q, ldq, k, NULL, v, NULL, T, G, n0, hd, kstride, scale, KV_F16);
    else block_kv_avx512(out, ldo, p, pstride, q, ldq, k, NULL, v, NULL, T, G, n0, hd, kstride, scale, KV_F16, softmax512());
}
T_AVX512 static void attention_block_i8_avx512(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                            const int8_t *k, const float *ks, const int8_t *v, const float *vs,
                            int T, int G, int n0, int hd, int kstride, float scale) {
    if (block_kv_fast512_fits(T, G, n0, hd)) block_kv_fast512(out, ldo, p, pstride, q, ldq, k, ks, v, vs, T, G, n0, hd, kstride, scale, KV_I8);
    else block_kv_avx512(out, ldo, p, pstride, q, ldq, k, ks, v, vs, T, G, n0, hd, kstride, scale, KV_I8, softmax512());
}

// T positions at once, 16 per pass, in vectors across positions: the keys of 16 positions are
// transposed into kt (hd × 16 floats, one scatter per 16 dims of a position) and each value's max |x|
// is one row reduction, so every position's max |x|, 127 / max and scale are one vector operation
// each (lane j = position j: the same IEEE operations as store_i8_generic's scalar ones), and a key
// column's 16 bytes go to their row of the transposed cache in one masked store (the per-position
// stores wrote them one byte at a time). Values are quantized row by row with their position's factor. An input
// holding a NaN takes the per-position path (store_i8_generic's fmaxf semantics); an all-zero or
// non-finite position stores zeros with scale 0, as store_i8_generic does.
T_AVX512 static void store_block_i8_avx512(int8_t *k, float *ks, int8_t *v, float *vs, int kstride, const float *kin, const float *vin,
                                           int ld, int T, int hd) {
    enum { MAX_HD = 128 };
    if (hd > MAX_HD) { STORE_BLOCK_I8_BODY(store_i8_body512) return; }
    float kt[MAX_HD * 16], invv[16];
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f), c127 = _mm512_set1_ps(127.0f), inf = _mm512_set1_ps(INFINITY);
    const __m512i col16 = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(16));
    for (int j0 = 0; j0 < T; j0 += 16) {
        const int nt = T - j0 < 16 ? T - j0 : 16;
        const __mmask16 m = lanes_avx512(nt);
        const float *kb = kin + (size_t)j0 * ld, *vb = vin + (size_t)j0 * ld;
        __m512 amk = _mm512_setzero_ps(), amv = amk;
        __mmask16 nan = 0;
        float amvs[16];
        for (int j = 0; j < nt; j++) {  // each position's key into column j of kt; its value's max |x|
            const float *kr = kb + (size_t)j * ld, *vr = vb + (size_t)j * ld;
            __m512 mvj = _mm512_setzero_ps();
            for (int c = 0; c < hd; c += 16) {
                const __mmask16 mc = lanes_avx512(hd - c);
                const __m512 ck = _mm512_maskz_loadu_ps(mc, kr + c), cv = _mm512_maskz_loadu_ps(mc, vr + c);
                nan |= _mm512_cmp_ps_mask(ck, ck, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(cv, cv, _CMP_UNORD_Q);
                _mm512_mask_i32scatter_ps(kt + 16 * c + j, mc, col16, ck, 4);  // dims c.. of position j → kt[c + l][j]
                mvj = _mm512_max_ps(mvj, _mm512_abs_ps(cv));
            }
            amvs[j] = _mm512_reduce_max_ps(mvj);
        }
        for (int j = nt; j < 16; j++) amvs[j] = 0;
        amv = _mm512_loadu_ps(amvs);
        for (int i = 0; i < hd; i++) amk = _mm512_max_ps(amk, _mm512_abs_ps(_mm512_maskz_loadu_ps(m, kt + 16 * i)));
        if (nan) {  // rare: the per-position stores
            for (int j = j0; j < j0 + nt; j++) {
                ks[j] = store_i8_body512(k + j, kstride, kin + (size_t)j * ld, hd);
                vs[j] = store_i8_body512(v + (size_t)j * hd, 1, vin + (size_t)j * ld, hd);
            }
            continue;
        }
        // !(amax > 0) || !isfinite(amax) → zeros, scale 0 (amax ≥ 0 and not NaN here).
        const __mmask16 okk = _mm512_cmp_ps_mask(amk, _mm512_setzero_ps(), _CMP_GT_OQ) & _mm512_cmp_ps_mask(amk, inf, _CMP_LT_OQ) & m;
        const __mmask16 okv = _mm512_cmp_ps_mask(amv, _mm512_setzero_ps(), _CMP_GT_OQ) & _mm512_cmp_ps_mask(amv, inf, _CMP_LT_OQ) & m;
        const __m512 invk = _mm512_div_ps(c127, amk);
        _mm512_mask_storeu_ps(ks + j0, m, _mm512_maskz_div_ps(okk, amk, c127));
        _mm512_mask_storeu_ps(vs + j0, m, _mm512_maskz_div_ps(okv, amv, c127));
        _mm512_storeu_ps(invv, _mm512_div_ps(c127, amv));
        for (int i = 0; i < hd; i++) {  // key column i of the 16 positions: one row of the cache
            __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(kt + 16 * i), invk), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
            _mm_mask_storeu_epi8(k + (size_t)i * kstride + j0, m, _mm512_cvtepi32_epi8(_mm512_maskz_cvtps_epi32(okk, q)));
        }
        for (int j = 0; j < nt; j++) {  // value rows, each with its position's factor
            int8_t *out = v + (size_t)(j0 + j) * hd;
            const float *xr = vin + (size_t)(j0 + j) * ld;
            if (!((okv >> j) & 1)) { for (int c = 0; c < hd; c++) out[c] = 0; continue; }
            const __m512 vi = _mm512_set1_ps(invv[j]);
            for (int c = 0; c < hd; c += 16) {
                const __mmask16 mc = lanes_avx512(hd - c);
                __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mc, xr + c), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
                _mm_mask_storeu_epi8(out + c, mc, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(q)));
            }
        }
    }
}

static const mgk_kv_kernels kv_avx512 = {
    store_f16_avx512, store_i8_avx512, load_f16_avx512, load_i8_avx512, rotate_back_f16_avx512, rotate_back_i8_avx512,
    attention_group_f16_avx512, attention_group_i8_avx512, attention_block_f16_avx512, attention_block_i8_avx512,
    store_block_i8_avx512,
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
void mgk_kv_store_block_i8(int8_t *k, float *ks, int8_t *v, float *vs, int kstride, const float *kin, const float *vin,
                           int ld, int T, int hd) {
    kv()->store_block_i8(k, ks, v, vs, kstride, kin, vin, ld, T, hd);
}
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
