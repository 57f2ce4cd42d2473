// FP32 decode kernels: panel-packed matrix–vector / matrix–matrix products, softmax, SwiGLU,
// attention. Three instances chosen at run time (mgk_dispatch.h): AVX-512F (explicit intrinsics),
// AVX2 + FMA (explicit products and e^x; attention from the generic loops compiled for AVX2), and
// the generic plain C loops (the portable reference; on arm64 the compiler vectorises them for
// NEON, the architecture's baseline). Each instance carries a target attribute, so the file
// builds without -march. Layout and contracts: include/mgk_fp32.h. Naive Swift twins live in
// Sources/MiniGPT/Kernels.swift.
//
// Agreement between instances: summation order differs (16 vs 8 lanes, chains, FMA vs separate
// multiply-add), so results differ by rounding only: |Δ| ≤ 1e-4·√cols for a product of unit
// Gaussians, ≤ 2e-6 relative for softmax / SwiGLU (the e^x polynomial vs libm), ≤ 1e-5 for
// attention outputs and probabilities (KernelTests check these bounds on every supported path).
#include "mgk_fp32.h"
#include "mgk_dispatch.h"
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "mgk_target.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include "mgk_simd512.h"
#endif

long mgk_panel_f32_count(int rows, int cols) { return (long)((rows + 15) / 16) * 16 * cols; }

void mgk_pack_panel_f32(float *wp, const float *w, int rows, int cols) {
    int nb = (rows + 15) / 16;
    for (int b = 0; b < nb; b++)
        for (int c = 0; c < cols; c++)
            for (int i = 0; i < 16; i++) {
                int r = 16 * b + i;
                wp[((size_t)b * cols + c) * 16 + i] = r < rows ? w[(size_t)r * cols + c] : 0.0f;
            }
}

// ---- generic C (the reference) -----------------------------------------------------------------
// always_inline bodies: each instance below inlines them into a function with its own target
// attribute, so the same loops are compiled once per instruction set. Loop orders are chosen so
// the innermost loop runs over independent lanes (rows, positions, dimensions) and vectorises
// without reassociating a float sum.

GENERIC void matvec_generic(float *out, const float *wp, const float *x, int rows, int cols, int accumulate) {
    const int nb = (rows + 15) / 16;
    for (int b = 0; b < nb; b++) {
        float acc[16] = {0};
        const float *p = wp + (size_t)b * cols * 16;
        for (int c = 0; c < cols; c++)
            for (int i = 0; i < 16; i++) acc[i] += p[(size_t)c * 16 + i] * x[c];
        for (int i = 0; i < 16 && 16 * b + i < rows; i++)
            out[16 * b + i] = accumulate ? out[16 * b + i] + acc[i] : acc[i];
    }
}

// Batched prefill: each 16-row panel against tiles of up to 4 tokens, so a panel column is loaded once
// per tile (L1-resident panels instead of one pass over the whole matrix per token). Every lane sums
// in matvec_generic's order (c = 0, 1, …, a multiply then an add), so the result equals T matvecs
// bit for bit.
GENERIC void matmul_generic(float *out, int ldo, const float *wp, const float *x, int ldx, int T, int rows, int cols, int accumulate) {
    const int nb = (rows + 15) / 16;
    for (int b = 0; b < nb; b++) {
        const float *p = wp + (size_t)b * cols * 16;
        for (int t0 = 0; t0 < T; t0 += 4) {
            const int tt = T - t0 < 4 ? T - t0 : 4;
            float acc[4][16] = {{0}};
            for (int c = 0; c < cols; c++)
                for (int t = 0; t < tt; t++) {
                    const float xc = x[(size_t)(t0 + t) * ldx + c];
                    for (int i = 0; i < 16; i++) acc[t][i] += p[(size_t)c * 16 + i] * xc;
                }
            for (int t = 0; t < tt; t++) {
                float *o = out + (size_t)(t0 + t) * ldo;
                for (int i = 0; i < 16 && 16 * b + i < rows; i++) o[16 * b + i] = accumulate ? o[16 * b + i] + acc[t][i] : acc[t][i];
            }
        }
    }
}

GENERIC void exp_generic(float *out, const float *x, int n) { for (int i = 0; i < n; i++) out[i] = expf(x[i]); }

// The scale and the products shared by every instance: out[i] = x[i] · scale · weight[i] (in that
// order), scale = 1 / √(ms + eps), from the sum of squares s of mgk_rmsnorm_f32's contract.
GENERIC void rmsnorm_finish(float *out, const float *x, const float *weight, int n, float eps, float s) {
    const float ms = s / (float)n;
    const float scale = 1.0f / sqrtf(ms + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
}

// Sum of squares as Swift's SIMD16 `dot` computes it: 16 fused lanes, lanes added in order.
GENERIC void rmsnorm_generic(float *out, const float *x, const float *weight, int n, float eps) {
    float lane[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lane[l] = fmaf(x[i + l], x[i + l], lane[l]);
    float s = -0.0f;
    for (int l = 0; l < 16; l++) s += lane[l];
    for (; i < n; i++) s += x[i] * x[i];
    rmsnorm_finish(out, x, weight, n, eps, s);
}

GENERIC void softmax_generic(float *x, int n) {
    if (n <= 0) return;
    float m = x[0], s = 0;
    for (int i = 1; i < n; i++) if (x[i] > m) m = x[i];
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - m); s += x[i]; }
    const float inv = 1.0f / s;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

GENERIC void swiglu_generic(float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

GENERIC void attention_generic(float *out, float *p, const float *q, const float *k, const float *v,
                               int n, int hd, int kstride, float scale, mgk_softmax_fn softmax) {
    for (int s = 0; s < n; s++) p[s] = 0;
    for (int i = 0; i < hd; i++)
        for (int s = 0; s < n; s++) p[s] += q[i] * k[(size_t)i * kstride + s];
    for (int s = 0; s < n; s++) p[s] *= scale;
    softmax(p, n);
    for (int c = 0; c < hd; c++) out[c] = 0;
    for (int s = 0; s < n; s++)
        for (int c = 0; c < hd; c++) out[c] += p[s] * v[(size_t)s * hd + c];
}

GENERIC void attention_group_generic(float *out, float *p, int pstride, const float *q, const float *k, const float *v,
                                     int G, int n, int hd, int kstride, float scale, mgk_softmax_fn softmax) {
    for (int g = 0; g < G; g++)
        attention_generic(out + (size_t)g * hd, p + (size_t)g * pstride, q + (size_t)g * hd, k, v, n, hd, kstride, scale, softmax);
}

GENERIC void attention_block_generic(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                                     const float *k, const float *v, int T, int G, int n0, int hd, int kstride, float scale,
                                     mgk_softmax_fn softmax) {
    for (int t = 0; t < T; t++)
        for (int g = 0; g < G; g++) {
            float *pr = p + (size_t)(t * G + g) * pstride;
            const int n = n0 + t + 1;
            attention_generic(out + (size_t)t * ldo + (size_t)g * hd, pr, q + (size_t)t * ldq + (size_t)g * hd, k, v, n, hd, kstride, scale, softmax);
            for (int s = n; s < n0 + T; s++) pr[s] = 0;
        }
}

// The portable instance: the generic loops for the build's baseline (SSE2 on x86-64, NEON on arm64).
static void matvec_portable(float *out, const float *wp, const float *x, int rows, int cols, int accumulate) { matvec_generic(out, wp, x, rows, cols, accumulate); }
static void matmul_portable(float *out, int ldo, const float *wp, const float *x, int ldx, int T, int rows, int cols, int accumulate) { matmul_generic(out, ldo, wp, x, ldx, T, rows, cols, accumulate); }
static void exp_portable(float *out, const float *x, int n) { exp_generic(out, x, n); }
static void rmsnorm_portable(float *out, const float *x, const float *weight, int n, float eps) { rmsnorm_generic(out, x, weight, n, eps); }
static void softmax_portable(float *x, int n) { softmax_generic(x, n); }
static void swiglu_portable(float *g, const float *u, int n) { swiglu_generic(g, u, n); }
static void attention_portable(float *out, float *p, const float *q, const float *k, const float *v, int n, int hd, int kstride, float scale) {
    attention_generic(out, p, q, k, v, n, hd, kstride, scale, softmax_portable);
}
static void attention_group_portable(float *out, float *p, int pstride, const float *q, const float *k, const float *v,
                                     int G, int n, int hd, int kstride, float scale) {
    attention_group_generic(out, p, pstride, q, k, v, G, n, hd, kstride, scale, softmax_portable);
}
static void attention_block_portable(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                                     const float *k, const float *v, int T, int G, int n0, int hd, int kstride, float scale) {
    attention_block_generic(out, ldo, p, pstride, q, ldq, k, v, T, G, n0, hd, kstride, scale, softmax_portable);
}

static const mgk_fp32_kernels fp32_portable = {
    matvec_portable, matmul_portable, attention_portable, attention_group_portable, attention_block_portable,
    softmax_portable, swiglu_portable, exp_portable, rmsnorm_portable,
};

#if defined(__x86_64__)
// ---- AVX2 + FMA ---------------------------------------------------------------------------------
// A 16-row panel column is two ymm. Eight accumulators (four panels × two halves) keep eight FMAs
// in flight, enough for a 4-cycle FMA on two ports; the sixteenth register holds the broadcast.

// out[0..n) (+)= (lo, hi), n ≤ 16 rows of one panel.
T_AVX2 static inline void store_rows_avx2(float *out, __m256 lo, __m256 hi, int n, int accumulate) {
    if (n >= 16) {
        if (accumulate) { lo = _mm256_add_ps(_mm256_loadu_ps(out), lo); hi = _mm256_add_ps(_mm256_loadu_ps(out + 8), hi); }
        _mm256_storeu_ps(out, lo);
        _mm256_storeu_ps(out + 8, hi);
        return;
    }
    float t[16];
    _mm256_storeu_ps(t, lo);
    _mm256_storeu_ps(t + 8, hi);
    for (int i = 0; i < n; i++) out[i] = accumulate ? out[i] + t[i] : t[i];
}

T_AVX2 static void matvec_avx2(float *out, const float *wp, const float *x, int rows, int cols, int accumulate) {
    const int nb = (rows + 15) / 16;
    const size_t ps = (size_t)cols * 16;
    int b = 0;
    for (; b + 4 <= nb; b += 4) {
        const float *p = wp + b * ps;
        __m256 a[4][2];
        for (int j = 0; j < 4; j++) a[j][0] = a[j][1] = _mm256_setzero_ps();
        for (int c = 0; c < cols; c++) {
            const __m256 xb = _mm256_broadcast_ss(x + c);
            for (int j = 0; j < 4; j++) {
                const float *w = p + j * ps + (size_t)c * 16;
                a[j][0] = _mm256_fmadd_ps(_mm256_loadu_ps(w), xb, a[j][0]);
                a[j][1] = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), xb, a[j][1]);
            }
        }
        for (int j = 0; j < 4; j++) store_rows_avx2(out + 16 * (b + j), a[j][0], a[j][1], rows - 16 * (b + j), accumulate);
    }
    for (; b < nb; b++) {  // leftover panels: even/odd columns in separate chains
        const float *p = wp + b * ps;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, e0 = a0, e1 = a0;
        int c = 0;
        for (; c + 2 <= cols; c += 2) {
            const __m256 x0 = _mm256_broadcast_ss(x + c), x1 = _mm256_broadcast_ss(x + c + 1);
            const float *w = p + (size_t)c * 16;
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), x0, a1);
            e0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 16), x1, e0);
            e1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 24), x1, e1);
        }
        if (c < cols) {
            const __m256 x0 = _mm256_broadcast_ss(x + c);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + (size_t)c * 16), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p + (size_t)c * 16 + 8), x0, a1);
        }
        store_rows_avx2(out + 16 * b, _mm256_add_ps(a0, e0), _mm256_add_ps(a1, e1), rows - 16 * b, accumulate);
    }
}

// One panel against TT ≤ 4 tokens: each panel column is loaded once for the tile.
T_AVX2 static inline __attribute__((always_inline)) void
matmul_tile_avx2(float *out, int ldo, const float *p, const float *x, int ldx, int cols, int n, const int TT, int accumulate) {
    __m256 a[4][2];
    for (int t = 0; t < TT; t++) a[t][0] = a[t][1] = _mm256_setzero_ps();
    for (int c = 0; c < cols; c++) {
        const __m256 w0 = _mm256_loadu_ps(p + (size_t)c * 16), w1 = _mm256_loadu_ps(p + (size_t)c * 16 + 8);
        for (int t = 0; t < TT; t++) {
            const __m256 xb = _mm256_broadcast_ss(x + (size_t)t * ldx + c);
            a[t][0] = _mm256_fmadd_ps(w0, xb, a[t][0]);
            a[t][1] = _mm256_fmadd_ps(w1, xb, a[t][1]);
        }
    }
    for (int t = 0; t < TT; t++) store_rows_avx2(out + (size_t)t * ldo, a[t][0], a[t][1], n, accumulate);
}

T_AVX2 static void matmul_avx2(float *out, int ldo, const float *wp, const float *x, int ldx, int T, int rows, int cols, int accumulate) {
    const int nb = (rows + 15) / 16;
    for (int b = 0; b < nb; b++) {
        const float *p = wp + (size_t)b * cols * 16;
        const int r0 = 16 * b, n = rows - r0;
        int t = 0;
        for (; t + 4 <= T; t += 4) matmul_tile_avx2(out + (size_t)t * ldo + r0, ldo, p, x + (size_t)t * ldx, ldx, cols, n, 4, accumulate);
        for (; t < T; t++) matmul_tile_avx2(out + (size_t)t * ldo + r0, ldo, p, x + (size_t)t * ldx, ldx, cols, n, 1, accumulate);
    }
}

// exp512 below on 8 lanes: the same operations, so the same value per lane.
T_AVX2 static inline __m256 exp256(__m256 v) {
    const __m256 x = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.4286068e-6f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0.69314575f), x));
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// Lanes 0..left-1 set (vmaskmovps masks: the sign bit of each 32-bit lane).
T_AVX2 static inline __m256i mask8(int left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

T_AVX2 static void exp_avx2(float *out, const float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp256(_mm256_loadu_ps(x + i)));
    if (i < n) {
        const __m256i m = mask8(n - i);
        _mm256_maskstore_ps(out + i, m, exp256(_mm256_maskload_ps(x + i, m)));
    }
}

T_AVX2 static void softmax_avx2(float *x, int n) {
    if (n <= 0) return;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float lanes[8];
    _mm256_storeu_ps(lanes, mv);
    float m = lanes[0];
    for (int j = 1; j < 8; j++) if (lanes[j] > m) m = lanes[j];
    for (int j = i; j < n; j++) if (x[j] > m) m = x[j];
    const __m256 mb = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), mb));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (i < n) {
        const __m256i k = mask8(n - i);
        const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), mb)), _mm256_castsi256_ps(k));
        _mm256_maskstore_ps(x + i, k, e);
        acc = _mm256_add_ps(acc, e);
    }
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1));
    const float inv = 1.0f / _mm_cvtss_f32(s4);
    const __m256 iv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), iv));
    for (; i < n; i++) x[i] *= inv;
}

T_AVX2 static void swiglu_avx2(float *g, const float *u, int n) {
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(g + i);
        const __m256 s = _mm256_div_ps(v, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), v))));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

// Attention: the generic loops (scores over positions, weighted sums over dimensions vectorise
// as they stand) compiled for AVX2 + FMA, with the polynomial softmax.
T_AVX2 static void attention_avx2(float *out, float *p, const float *q, const float *k, const float *v, int n, int hd, int kstride, float scale) {
    attention_generic(out, p, q, k, v, n, hd, kstride, scale, softmax_avx2);
}
T_AVX2 static void attention_group_avx2(float *out, float *p, int pstride, const float *q, const float *k, const float *v,
                                        int G, int n, int hd, int kstride, float scale) {
    attention_group_generic(out, p, pstride, q, k, v, G, n, hd, kstride, scale, softmax_avx2);
}
// Batched prefill over an FP32 cache: explicit, each K block and value slice loaded once per four
// query rows, but every lane does attention_generic's operations in its order (a multiply, then an
// add: the generic loops are built with -ffp-contract=off), so each row (token, head) is
// bit-identical to the decode step's attention_group_avx2 over its own n0 + t + 1 positions.
T_AVX2 static void attention_block_avx2(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                                        const float *k, const float *v, int T, int G, int n0, int hd, int kstride, float scale) {
    if (hd % 8 != 0) { attention_block_generic(out, ldo, p, pstride, q, ldq, k, v, T, G, n0, hd, kstride, scale, softmax_avx2); return; }
    const int R = T * G, nmax = n0 + T;
    const __m256 sc = _mm256_set1_ps(scale);
    for (int r0 = 0; r0 < R; r0 += 4) {  // scores: 16 positions × 4 rows per pass
        const int nr = R - r0 < 4 ? R - r0 : 4;
        const int nlong = n0 + (r0 + nr - 1) / G + 1;  // the longest row of this tile
        const float *qr[4];
        float *pr[4];
        for (int j = 0; j < 4; j++) {  // a short last tile repeats its first row (same values)
            const int r = r0 + (j < nr ? j : 0);
            qr[j] = q + (size_t)(r / G) * ldq + (size_t)(r % G) * hd;
            pr[j] = p + (size_t)r * pstride;
        }
        int s = 0;
        for (; s + 16 <= nlong; s += 16) {
            __m256 a[4][2];
            for (int j = 0; j < 4; j++) a[j][0] = a[j][1] = _mm256_setzero_ps();
            for (int i = 0; i < hd; i++) {
                const float *row = k + (size_t)i * kstride + s;
                const __m256 k0 = _mm256_loadu_ps(row), k1 = _mm256_loadu_ps(row + 8);
                for (int j = 0; j < 4; j++) {
                    const __m256 qi = _mm256_broadcast_ss(qr[j] + i);
                    a[j][0] = _mm256_add_ps(a[j][0], _mm256_mul_ps(qi, k0));
                    a[j][1] = _mm256_add_ps(a[j][1], _mm256_mul_ps(qi, k1));
                }
            }
            for (int j = 0; j < 4; j++) {
                _mm256_storeu_ps(pr[j] + s, _mm256_mul_ps(a[j][0], sc));
                _mm256_storeu_ps(pr[j] + s + 8, _mm256_mul_ps(a[j][1], sc));
            }
        }
        for (int j = 0; j < nr; j++) {  // the positions past the last full block, row by row
            const int n = n0 + (r0 + j) / G + 1;
            for (int t = s; t < n; t++) {
                float acc = 0;
                for (int i = 0; i < hd; i++) acc += qr[j][i] * k[(size_t)i * kstride + t];
                pr[j][t] = acc * scale;
            }
        }
    }
    for (int r = 0; r < R; r++) {  // causal: row (t, g) keeps n0 + t + 1 positions
        const int n = n0 + r / G + 1;
        float *pr = p + (size_t)r * pstride;
        softmax_avx2(pr, n);
        for (int s = n; s < nmax; s++) pr[s] = 0;
    }
    for (int r0 = 0; r0 < R; r0 += 4) {  // weighted sums: 16 dims × 4 rows per pass, one chain per lane
        const int nr = R - r0 < 4 ? R - r0 : 4;
        const int n = n0 + (r0 + nr - 1) / G + 1;
        const float *pr[4];
        for (int j = 0; j < 4; j++) pr[j] = p + (size_t)(r0 + (j < nr ? j : 0)) * pstride;
        for (int c = 0; c < hd; c += 16) {
            const int two = hd - c >= 16;
            __m256 a[4][2];
            for (int j = 0; j < 4; j++) a[j][0] = a[j][1] = _mm256_setzero_ps();
            for (int t = 0; t < n; t++) {
                const float *row = v + (size_t)t * hd + c;
                const __m256 v0 = _mm256_loadu_ps(row), v1 = two ? _mm256_loadu_ps(row + 8) : _mm256_setzero_ps();
                for (int j = 0; j < 4; j++) {
                    const __m256 w = _mm256_broadcast_ss(pr[j] + t);
                    a[j][0] = _mm256_add_ps(a[j][0], _mm256_mul_ps(w, v0));
                    if (two) a[j][1] = _mm256_add_ps(a[j][1], _mm256_mul_ps(w, v1));
                }
            }
            for (int j = 0; j < nr; j++) {
                const int r = r0 + j;
                float *o = out + (size_t)(r / G) * ldo + (size_t)(r % G) * hd + c;
                _mm256_storeu_ps(o, a[j][0]);
                if (two) _mm256_storeu_ps(o + 8, a[j][1]);
            }
        }
    }
}

// RMSNorm: the 16 fused lanes are two ymm of vfmadd (the same per-lane operation as fmaf).
T_AVX2 static void rmsnorm_avx2(float *out, const float *x, const float *weight, int n, float eps) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_fmadd_ps(x0, x0, a0);
        a1 = _mm256_fmadd_ps(x1, x1, a1);
    }
    float lane[16];
    _mm256_storeu_ps(lane, a0);
    _mm256_storeu_ps(lane + 8, a1);
    float s = -0.0f;
    for (int l = 0; l < 16; l++) s += lane[l];
    for (; i < n; i++) s += x[i] * x[i];
    const float scale = 1.0f / sqrtf(s / (float)n + eps);
    const __m256 sc = _mm256_set1_ps(scale);
    int j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), sc), _mm256_loadu_ps(weight + j)));
    for (; j < n; j++) out[j] = x[j] * scale * weight[j];
}

static const mgk_fp32_kernels fp32_avx2 = {
    matvec_avx2, matmul_avx2, attention_avx2, attention_group_avx2, attention_block_avx2,
    softmax_avx2, swiglu_avx2, exp_avx2, rmsnorm_avx2,
};

// ---- AVX-512F ------------------------------------------------------------------------------------

T_AVX512 static inline __m512 load_out(const float *out, int n, int accumulate) {
    if (!accumulate) return _mm512_setzero_ps();
    return n >= 16 ? _mm512_loadu_ps(out) : _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), out);
}
T_AVX512 static inline void store_out(float *out, __m512 v, int n) {
    if (n >= 16) _mm512_storeu_ps(out, v); else _mm512_mask_storeu_ps(out, (__mmask16)((1u << n) - 1), v);
}

T_AVX512 static void matvec_avx512(float *out, const float *wp, const float *x, int rows, int cols, int accumulate) {
    const int nb = (rows + 15) / 16;
    const size_t ps = (size_t)cols * 16;  // floats per panel
    int b = 0;
    // Four panels (64 rows) per pass, two accumulator chains each (even/odd columns) so eight
    // independent FMAs are in flight: enough to cover the 4-cycle FMA latency on two ports.
    for (; b + 4 <= nb; b += 4) {
        const float *p0 = wp + b * ps, *p1 = p0 + ps, *p2 = p1 + ps, *p3 = p2 + ps;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
        int c = 0;
        for (; c + 2 <= cols; c += 2) {
            const __m512 x0 = _mm512_set1_ps(x[c]), x1 = _mm512_set1_ps(x[c + 1]);
            const size_t o = (size_t)c * 16;
            a0 = _mm512_fmadd_ps(_mm512_load_ps(p0 + o), x0, a0);
            a1 = _mm512_fmadd_ps(_mm512_load_ps(p1 + o), x0, a1);
            a2 = _mm512_fmadd_ps(_mm512_load_ps(p2 + o), x0, a2);
            a3 = _mm512_fmadd_ps(_mm512_load_ps(p3 + o), x0, a3);
            e0 = _mm512_fmadd_ps(_mm512_load_ps(p0 + o + 16), x1, e0);
            e1 = _mm512_fmadd_ps(_mm512_load_ps(p1 + o + 16), x1, e1);
            e2 = _mm512_fmadd_ps(_mm512_load_ps(p2 + o + 16), x1, e2);
            e3 = _mm512_fmadd_ps(_mm512_load_ps(p3 + o + 16), x1, e3);
        }
        if (c < cols) {
            const __m512 x0 = _mm512_set1_ps(x[c]);
            const size_t o = (size_t)c * 16;
            a0 = _mm512_fmadd_ps(_mm512_load_ps(p0 + o), x0, a0);
            a1 = _mm512_fmadd_ps(_mm512_load_ps(p1 + o), x0, a1);
            a2 = _mm512_fmadd_ps(_mm512_load_ps(p2 + o), x0, a2);
            a3 = _mm512_fmadd_ps(_mm512_load_ps(p3 + o), x0, a3);
        }
        __m512 s[4] = {_mm512_add_ps(a0, e0), _mm512_add_ps(a1, e1), _mm512_add_ps(a2, e2), _mm512_add_ps(a3, e3)};
        for (int k = 0; k < 4; k++) {
            int r0 = 16 * (b + k), n = rows - r0;
            if (n <= 0) break;
            store_out(out + r0, _mm512_add_ps(load_out(out + r0, n, accumulate), s[k]), n);
        }
    }
    for (; b < nb; b++) {  // leftover panels: four chains over the columns
        const float *p = wp + b * ps;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int c = 0;
        for (; c + 4 <= cols; c += 4) {
            const size_t o = (size_t)c * 16;
            a0 = _mm512_fmadd_ps(_mm512_load_ps(p + o), _mm512_set1_ps(x[c]), a0);
            a1 = _mm512_fmadd_ps(_mm512_load_ps(p + o + 16), _mm512_set1_ps(x[c + 1]), a1);
            a2 = _mm512_fmadd_ps(_mm512_load_ps(p + o + 32), _mm512_set1_ps(x[c + 2]), a2);
            a3 = _mm512_fmadd_ps(_mm512_load_ps(p + o + 48), _mm512_set1_ps(x[c + 3]), a3);
        }
        for (; c < cols; c++) a0 = _mm512_fmadd_ps(_mm512_load_ps(p + (size_t)c * 16), _mm512_set1_ps(x[c]), a0);
        const __m512 s = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
        int r0 = 16 * b, n = rows - r0;
        store_out(out + r0, _mm512_add_ps(load_out(out + r0, n, accumulate), s), n);
    }
}

// One panel against a tile of TT tokens (TT a compile-time constant after inlining).
T_AVX512 static inline __attribute__((always_inline)) void
matmul_tile_avx512(float *out, int ldo, const float *p, const float *x, int ldx, int cols, int n, int TT, int accumulate) {
    __m512 acc[8];
    for (int t = 0; t < TT; t++) acc[t] = _mm512_setzero_ps();
    for (int c = 0; c < cols; c++) {
        const __m512 w = _mm512_load_ps(p + (size_t)c * 16);
        for (int t = 0; t < TT; t++) acc[t] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[(size_t)t * ldx + c]), acc[t]);
    }
    for (int t = 0; t < TT; t++)
        store_out(out + (size_t)t * ldo, _mm512_add_ps(load_out(out + (size_t)t * ldo, n, accumulate), acc[t]), n);
}

T_AVX512 static void matmul_avx512(float *out, int ldo, const float *wp, const float *x, int ldx, int T, int rows, int cols, int accumulate) {
    const int nb = (rows + 15) / 16;
    for (int b = 0; b < nb; b++) {
        const float *p = wp + (size_t)b * cols * 16;
        const int r0 = 16 * b, n = rows - r0;
        int t = 0;
        for (; t + 8 <= T; t += 8) matmul_tile_avx512(out + (size_t)t * ldo + r0, ldo, p, x + (size_t)t * ldx, ldx, cols, n, 8, accumulate);
        for (; t + 4 <= T; t += 4) matmul_tile_avx512(out + (size_t)t * ldo + r0, ldo, p, x + (size_t)t * ldx, ldx, cols, n, 4, accumulate);
        for (; t < T; t++) matmul_tile_avx512(out + (size_t)t * ldo + r0, ldo, p, x + (size_t)t * ldx, ldx, cols, n, 1, accumulate);
    }
}

T_AVX512 static void exp_avx512(float *out, const float *x, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, exp512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, exp512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

T_AVX512 static void softmax_avx512(float *x, int n) { softmax_rows512(&x, &n, 1); }

T_AVX512 static void swiglu_avx512(float *g, const float *u, int n) {
    int i = 0;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(g + i);
        const __m512 s = _mm512_div_ps(v, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

T_AVX512 static void attention_avx512(float *out, float *p, const float *q, const float *k, const float *v,
                       int n, int hd, int kstride, float scale) {
    // Scores: four 16-position blocks per pass, so four independent FMA chains over hd.
    const __m512 sc = _mm512_set1_ps(scale);
    int s = 0;
    for (; s + 64 <= n; s += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < hd; i++) {
            const __m512 qi = _mm512_set1_ps(q[i]);
            const float *row = k + (size_t)i * kstride + s;
            a0 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row), a0);
            a1 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row + 16), a1);
            a2 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row + 32), a2);
            a3 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row + 48), a3);
        }
        _mm512_storeu_ps(p + s, _mm512_mul_ps(a0, sc));
        _mm512_storeu_ps(p + s + 16, _mm512_mul_ps(a1, sc));
        _mm512_storeu_ps(p + s + 32, _mm512_mul_ps(a2, sc));
        _mm512_storeu_ps(p + s + 48, _mm512_mul_ps(a3, sc));
    }
    for (; s < n; s += 16) {
        const __mmask16 m = n - s >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - s)) - 1);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        int i = 0;
        for (; i + 2 <= hd; i += 2) {
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[i]), _mm512_maskz_loadu_ps(m, k + (size_t)i * kstride + s), a0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(q[i + 1]), _mm512_maskz_loadu_ps(m, k + (size_t)(i + 1) * kstride + s), a1);
        }
        if (i < hd) a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[i]), _mm512_maskz_loadu_ps(m, k + (size_t)i * kstride + s), a0);
        _mm512_mask_storeu_ps(p + s, m, _mm512_mul_ps(_mm512_add_ps(a0, a1), sc));
    }
    softmax_avx512(p, n);
    // Weighted sum of value rows: 16 dims × four positions per pass (four chains per 16 dims).
    for (int c = 0; c < hd; c += 16) {
        const __mmask16 m = hd - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (hd - c)) - 1);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int t = 0;
        for (; t + 4 <= n; t += 4) {
            const float *r = v + (size_t)t * hd + c;
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(p[t]), _mm512_maskz_loadu_ps(m, r), a0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(p[t + 1]), _mm512_maskz_loadu_ps(m, r + hd), a1);
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(p[t + 2]), _mm512_maskz_loadu_ps(m, r + 2 * hd), a2);
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(p[t + 3]), _mm512_maskz_loadu_ps(m, r + 3 * hd), a3);
        }
        for (; t < n; t++) a0 = _mm512_fmadd_ps(_mm512_set1_ps(p[t]), _mm512_maskz_loadu_ps(m, v + (size_t)t * hd + c), a0);
        _mm512_mask_storeu_ps(out + c, m, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

// GQA: the G (≤ 4) query heads of a group share each load of K and V.
T_AVX512 static inline __attribute__((always_inline)) void
attention_group_g(float *out, float *p, int pstride, const float *q, const float *k, const float *v,
                const int G, int n, int hd, int kstride, float scale) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int s = 0; s < n; s += 32) {  // 32 positions × G heads per pass: 2·G independent chains
        const int left = n - s;
        const __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        const __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : left <= 16 ? (__mmask16)0 : (__mmask16)((1u << (left - 16)) - 1);
        __m512 a[4][2];
        for (int g = 0; g < G; g++) a[g][0] = a[g][1] = _mm512_setzero_ps();
        for (int i = 0; i < hd; i++) {
            const float *row = k + (size_t)i * kstride + s;
            const __m512 k0 = _mm512_maskz_loadu_ps(m0, row), k1 = _mm512_maskz_loadu_ps(m1, row + 16);
            for (int g = 0; g < G; g++) {
                const __m512 qi = _mm512_set1_ps(q[g * hd + i]);
                a[g][0] = _mm512_fmadd_ps(qi, k0, a[g][0]);
                a[g][1] = _mm512_fmadd_ps(qi, k1, a[g][1]);
            }
        }
        for (int g = 0; g < G; g++) {
            _mm512_mask_storeu_ps(p + (size_t)g * pstride + s, m0, _mm512_mul_ps(a[g][0], sc));
            _mm512_mask_storeu_ps(p + (size_t)g * pstride + s + 16, m1, _mm512_mul_ps(a[g][1], sc));
        }
    }
    for (int g = 0; g < G; g++) softmax_avx512(p + (size_t)g * pstride, n);
    for (int c = 0; c < hd; c += 16) {
        const __mmask16 m = hd - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (hd - c)) - 1);
        __m512 a[4][2];
        for (int g = 0; g < G; g++) a[g][0] = a[g][1] = _mm512_setzero_ps();
        int t = 0;
        for (; t + 2 <= n; t += 2) {
            const __m512 v0 = _mm512_maskz_loadu_ps(m, v + (size_t)t * hd + c), v1 = _mm512_maskz_loadu_ps(m, v + (size_t)(t + 1) * hd + c);
            for (int g = 0; g < G; g++) {
                a[g][0] = _mm512_fmadd_ps(_mm512_set1_ps(p[(size_t)g * pstride + t]), v0, a[g][0]);
                a[g][1] = _mm512_fmadd_ps(_mm512_set1_ps(p[(size_t)g * pstride + t + 1]), v1, a[g][1]);
            }
        }
        if (t < n) {
            const __m512 v0 = _mm512_maskz_loadu_ps(m, v + (size_t)t * hd + c);
            for (int g = 0; g < G; g++) a[g][0] = _mm512_fmadd_ps(_mm512_set1_ps(p[(size_t)g * pstride + t]), v0, a[g][0]);
        }
        for (int g = 0; g < G; g++) _mm512_mask_storeu_ps(out + (size_t)g * hd + c, m, _mm512_add_ps(a[g][0], a[g][1]));
    }
}

T_AVX512 static void attention_group_avx512(float *out, float *p, int pstride, const float *q, const float *k, const float *v,
                             int G, int n, int hd, int kstride, float scale) {
    switch (G) {
    case 1: attention_group_g(out, p, pstride, q, k, v, 1, n, hd, kstride, scale); return;
    case 2: attention_group_g(out, p, pstride, q, k, v, 2, n, hd, kstride, scale); return;
    case 3: attention_group_g(out, p, pstride, q, k, v, 3, n, hd, kstride, scale); return;
    case 4: attention_group_g(out, p, pstride, q, k, v, 4, n, hd, kstride, scale); return;
    default:
        for (int g = 0; g < G; g += 4) {
            const int gg = G - g < 4 ? G - g : 4;
            attention_group_avx512(out + (size_t)g * hd, p + (size_t)g * pstride, pstride, q + (size_t)g * hd, k, v, gg, n, hd, kstride, scale);
        }
    }
}

T_AVX512 static void attention_block_avx512(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                             const float *k, const float *v, int T, int G, int n0, int hd, int kstride, float scale) {
    const int R = T * G, nmax = n0 + T;
    const __m512 sc = _mm512_set1_ps(scale);
    // Scores: 32 positions × 4 query rows per pass (8 chains); the K block stays in L1 across rows.
    for (int s = 0; s < nmax; s += 32) {
        const int left = nmax - s;
        const __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        const __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : left <= 16 ? (__mmask16)0 : (__mmask16)((1u << (left - 16)) - 1);
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
                const float *row = k + (size_t)i * kstride + s;
                const __m512 k0 = _mm512_maskz_loadu_ps(m0, row), k1 = _mm512_maskz_loadu_ps(m1, row + 16);
                for (int j = 0; j < 4; j++) {
                    const __m512 qi = _mm512_set1_ps(qr[j][i]);
                    a[j][0] = _mm512_fmadd_ps(qi, k0, a[j][0]);
                    a[j][1] = _mm512_fmadd_ps(qi, k1, a[j][1]);
                }
            }
            for (int j = 0; j < nr; j++) {
                float *pr = p + (size_t)(r0 + j) * pstride + s;
                _mm512_mask_storeu_ps(pr, m0, _mm512_mul_ps(a[j][0], sc));
                _mm512_mask_storeu_ps(pr + 16, m1, _mm512_mul_ps(a[j][1], sc));
            }
        }
    }
    for (int r = 0; r < R; r++) {  // causal: row (t, g) keeps n0 + t + 1 positions
        const int n = n0 + r / G + 1;
        float *pr = p + (size_t)r * pstride;
        softmax_avx512(pr, n);
        for (int s = n; s < nmax; s++) pr[s] = 0;
    }
    // Weighted sums: 4 query rows × 16 dims × even/odd positions per pass.
    for (int r0 = 0; r0 < R; r0 += 4) {
        const int nr = R - r0 < 4 ? R - r0 : 4;
        const int n = n0 + (r0 + nr - 1) / G + 1;  // the longest row of this tile
        const float *pr[4];
        for (int j = 0; j < 4; j++) pr[j] = p + (size_t)(r0 + (j < nr ? j : 0)) * pstride;
        for (int c = 0; c < hd; c += 16) {
            const __mmask16 m = hd - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (hd - c)) - 1);
            __m512 a[4][2];
            for (int j = 0; j < 4; j++) a[j][0] = a[j][1] = _mm512_setzero_ps();
            int t = 0;
            for (; t + 2 <= n; t += 2) {
                const __m512 v0 = _mm512_maskz_loadu_ps(m, v + (size_t)t * hd + c), v1 = _mm512_maskz_loadu_ps(m, v + (size_t)(t + 1) * hd + c);
                for (int j = 0; j < 4; j++) {
                    a[j][0] = _mm512_fmadd_ps(_mm512_set1_ps(pr[j][t]), v0, a[j][0]);
                    a[j][1] = _mm512_fmadd_ps(_mm512_set1_ps(pr[j][t + 1]), v1, a[j][1]);
                }
            }
            if (t < n) {
                const __m512 v0 = _mm512_maskz_loadu_ps(m, v + (size_t)t * hd + c);
                for (int j = 0; j < 4; j++) a[j][0] = _mm512_fmadd_ps(_mm512_set1_ps(pr[j][t]), v0, a[j][0]);
            }
            for (int j = 0; j < nr; j++) {
                const int r = r0 + j;
                _mm512_mask_storeu_ps(out + (size_t)(r / G) * ldo + (size_t)(r % G) * hd + c, m, _mm512_add_ps(a[j][0], a[j][1]));
            }
        }
    }
}

// RMSNorm: the 16 fused lanes are one zmm (the same per-lane operation as fmaf); the products as
// rmsnorm_finish, which the compiler vectorises for AVX-512 here.
// rmsnorm_avx512 on T rows in two phases, 16 rows at a time: every row's sum of squares (a chain of
// fused lanes, then 16 dependent adds), then every row's scale and products. Each row does exactly
// rmsnorm_avx512's operations; the phases only let the rows' latency chains overlap.
T_AVX512 static void rmsnorm_rows_avx512(float *out, int ldo, const float *x, int ldx, const float *weight, int T, int n, float eps) {
    for (int t0 = 0; t0 < T; t0 += 16) {
        const int nt = T - t0 < 16 ? T - t0 : 16;
        float sr[16];
        for (int j = 0; j < nt; j++) {
            const float *xr = x + (size_t)(t0 + j) * ldx;
            __m512 a = _mm512_setzero_ps();
            int i = 0;
            for (; i + 16 <= n; i += 16) { const __m512 v = _mm512_loadu_ps(xr + i); a = _mm512_fmadd_ps(v, v, a); }
            float lane[16];
            _mm512_storeu_ps(lane, a);
            float s = -0.0f;
            for (int l = 0; l < 16; l++) s += lane[l];
            for (; i < n; i++) s += xr[i] * xr[i];
            sr[j] = s;
        }
        for (int j = 0; j < nt; j++)
            rmsnorm_finish(out + (size_t)(t0 + j) * ldo, x + (size_t)(t0 + j) * ldx, weight, n, eps, sr[j]);
    }
}

T_AVX512 static void rmsnorm_avx512(float *out, const float *x, const float *weight, int n, float eps) {
    __m512 a = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) { const __m512 v = _mm512_loadu_ps(x + i); a = _mm512_fmadd_ps(v, v, a); }
    float lane[16];
    _mm512_storeu_ps(lane, a);
    float s = -0.0f;
    for (int l = 0; l < 16; l++) s += lane[l];
    for (; i < n; i++) s += x[i] * x[i];
    rmsnorm_finish(out, x, weight, n, eps, s);
}

static const mgk_fp32_kernels fp32_avx512 = {
    matvec_avx512, matmul_avx512, attention_avx512, attention_group_avx512, attention_block_avx512,
    softmax_avx512, swiglu_avx512, exp_avx512, rmsnorm_avx512,
};
#endif

// ---- dispatch ------------------------------------------------------------------------------------

const mgk_fp32_kernels *mgk_fp32_kernels_for(int path) {
    if (path == MGK_PATH_AUTO) path = mgk_selected_path();
    if (!mgk_path_supported(path)) return NULL;
    switch (path) {
#if defined(__x86_64__)
    case MGK_PATH_AVX512: case MGK_PATH_VNNI: return &fp32_avx512;
    case MGK_PATH_AVX2: case MGK_PATH_AVXVNNI: return &fp32_avx2;
#endif
    default: return &fp32_portable;
    }
}

static const mgk_fp32_kernels *fp32_selected;  // resolved once; every thread resolves the same table

static inline const mgk_fp32_kernels *fp32(void) {
    const mgk_fp32_kernels *k = __atomic_load_n(&fp32_selected, __ATOMIC_RELAXED);
    if (!k) { k = mgk_fp32_kernels_for(MGK_PATH_AUTO); __atomic_store_n(&fp32_selected, k, __ATOMIC_RELAXED); }
    return k;
}

void mgk_matvec_f32(float *out, const float *wp, const float *x, int rows, int cols, int accumulate) {
    fp32()->matvec(out, wp, x, rows, cols, accumulate);
}
void mgk_matmul_f32(float *out, int ldo, const float *wp, const float *x, int ldx, int T, int rows, int cols, int accumulate) {
    fp32()->matmul(out, ldo, wp, x, ldx, T, rows, cols, accumulate);
}
void mgk_attention_f32(float *out, float *p, const float *q, const float *k, const float *v, int n, int hd, int kstride, float scale) {
    fp32()->attention(out, p, q, k, v, n, hd, kstride, scale);
}
void mgk_attention_group_f32(float *out, float *p, int pstride, const float *q, const float *k, const float *v,
                             int G, int n, int hd, int kstride, float scale) {
    fp32()->attention_group(out, p, pstride, q, k, v, G, n, hd, kstride, scale);
}
void mgk_attention_block_f32(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                             const float *k, const float *v, int T, int G, int n0, int hd, int kstride, float scale) {
    fp32()->attention_block(out, ldo, p, pstride, q, ldq, k, v, T, G, n0, hd, kstride, scale);
}
void mgk_softmax_f32(float *x, int n) { fp32()->softmax(x, n); }
void mgk_swiglu_f32(float *g, const float *u, int n) { fp32()->swiglu(g, u, n); }
void mgk_exp_f32(float *out, const float *x, int n) { fp32()->exp(out, x, n); }
void mgk_rmsnorm_f32(float *out, const float *x, const float *weight, int n, float eps) { fp32()->rmsnorm(out, x, weight, n, eps); }
void mgk_rmsnorm_rows_f32(float *out, int ldo, const float *x, int ldx, const float *weight, int T, int n, float eps) {
    const mgk_fp32_kernels *k = fp32();
#if defined(__x86_64__)
    if (k == &fp32_avx512) { rmsnorm_rows_avx512(out, ldo, x, ldx, weight, T, n, eps); return; }
#endif
    for (int t = 0; t < T; t++) k->rmsnorm(out + (size_t)t * ldo, x + (size_t)t * ldx, weight, n, eps);
}
