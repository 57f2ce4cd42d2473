// INT8 weight × quantized-activation kernels, one per instruction-set family, chosen at run time
// (mgk_dispatch.h): portable C (the reference), AVX2 (vpmaddubsw + vpmaddwd with the sign trick),
// AVX-512BW (the same on zmm), AVX-512 VNNI and AVX-VNNI (vpdpbusd), NEON (vmull_s8 + vpadalq_s16)
// and NEON sdot (vdotq_s32). Each fast kernel carries its own target attribute, so this file
// builds without -march and never runs an instruction the CPU lacks. All paths compute the same
// int32 sums bit for bit: no saturating step can saturate (the bounds are argued at each kernel).
// Contracts and the panel layout: include/mgk_int8.h.
#include "mgk_int8.h"
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "mgk_target.h"
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
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
                    assert(v != -128 && "symmetric INT8 weights are in -127...127 (mgk_int8.h)");
                    wp[(((size_t)b * k4 + k) * 16 + i) * 4 + j] = v;
                    s += v;
                }
            bias[r] = 128 * s;
        }
}

// ---- activation quantizer ----------------------------------------------------------------------
// Every vector quantizer does the scalar one's IEEE operations in the same order on each element:
// max of |x| (exact in any order), one multiply by inv = 127 / amax, round half to even, clamp to
// ±127, + 128. So the bytes are identical, whatever the lane count.

static float quantize_tail(uint8_t *xu, const float *x, int i, int n, int npad, float amax) {
    for (int j = i; j < n; j++) { const float a = fabsf(x[j]); if (a > amax) amax = a; }
    if (!(amax > 0) || !isfinite(amax)) {  // all zero (or non-finite: fail soft to zero output)
        memset(xu, 128, (size_t)npad);
        return -1;
    }
    return amax;
}

static void quantize_scalar(uint8_t *xu, const float *x, int i, int n, float inv) {
    for (; i < n; i++) {
        float v = nearbyintf(x[i] * inv);  // round half to even (default FP environment)
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        xu[i] = (uint8_t)((int)v + 128);
    }
}

static float quantize_portable(uint8_t *xu, const float *x, int n, int npad) {
    const float amax = quantize_tail(xu, x, 0, n, npad, 0);
    if (amax < 0) return 0;
    quantize_scalar(xu, x, 0, n, 127.0f / amax);
    for (int i = n; i < npad; i++) xu[i] = 128;
    return amax / 127.0f;
}

#if defined(__x86_64__)
T_AVX2 static float quantize_avx2(uint8_t *xu, const float *x, int n, int npad) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mv = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_and_ps(_mm256_loadu_ps(x + i), absmask));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const float amax = quantize_tail(xu, x, i, n, npad, _mm_cvtss_f32(m4));
    if (amax < 0) return 0;
    const float inv = 127.0f / amax;
    const __m256 vi = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const __m256i off = _mm256_set1_epi32(128);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), off);  // 1..255, exact
        // Narrow 8 × int32 to 8 bytes: values fit, so the saturating packs change nothing.
        const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(xu + i), _mm_packus_epi16(w, w));
    }
    quantize_scalar(xu, x, i, n, inv);
    for (i = n; i < npad; i++) xu[i] = 128;
    return amax / 127.0f;
}

// quantize_avx512 on T rows in two phases, 16 rows at a time (every row's max |x|, then every
// row's bytes): each row does exactly quantize_avx512's operations, the rows' reduction and
// division latencies overlap.
T_AVX512 static void quantize_rows_avx512(uint8_t *xu, float *xs, const float *x, int ldx, int T, int n, int npad) {
    for (int t0 = 0; t0 < T; t0 += 16) {
        const int nt = T - t0 < 16 ? T - t0 : 16;
        float am[16];
        for (int j = 0; j < nt; j++) {
            const float *xr = x + (size_t)(t0 + j) * ldx;
            __m512 mv = _mm512_setzero_ps();
            int i = 0;
            for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_abs_ps(_mm512_loadu_ps(xr + i)));
            float amax = _mm512_reduce_max_ps(mv);
            for (; i < n; i++) { const float a = fabsf(xr[i]); if (a > amax) amax = a; }
            am[j] = amax;
        }
        for (int j = 0; j < nt; j++) {
            const float *xr = x + (size_t)(t0 + j) * ldx;
            uint8_t *ur = xu + (size_t)(t0 + j) * npad;
            const float amax = am[j];
            if (!(amax > 0) || !isfinite(amax)) { memset(ur, 128, (size_t)npad); xs[t0 + j] = 0; continue; }
            const float inv = 127.0f / amax;
            const __m512 vi = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
            int i = 0;
            for (; i + 16 <= n; i += 16) {
                __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(xr + i), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
                const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(128));
                _mm_storeu_si128((__m128i *)(ur + i), _mm512_cvtepi32_epi8(q));
            }
            quantize_scalar(ur, xr, i, n, inv);
            for (i = n; i < npad; i++) ur[i] = 128;
            xs[t0 + j] = amax / 127.0f;
        }
    }
}

T_AVX512 static float quantize_avx512(uint8_t *xu, const float *x, int n, int npad) {
    __m512 mv = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    const float amax = quantize_tail(xu, x, i, n, npad, _mm512_reduce_max_ps(mv));
    if (amax < 0) return 0;
    const float inv = 127.0f / amax;
    const __m512 vi = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(128));
        _mm_storeu_si128((__m128i *)(xu + i), _mm512_cvtepi32_epi8(q));  // vpmovdb: truncating, values fit
    }
    quantize_scalar(xu, x, i, n, inv);
    for (i = n; i < npad; i++) xu[i] = 128;
    return amax / 127.0f;
}
#endif

#if defined(__aarch64__)
static float quantize_neon(uint8_t *xu, const float *x, int n, int npad) {
    float32x4_t mv = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) mv = vmaxq_f32(mv, vabsq_f32(vld1q_f32(x + i)));
    const float amax = quantize_tail(xu, x, i, n, npad, vmaxvq_f32(mv));
    if (amax < 0) return 0;
    const float inv = 127.0f / amax;
    const float32x4_t vi = vdupq_n_f32(inv), lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
    const int32x4_t off = vdupq_n_s32(128);
    for (i = 0; i + 8 <= n; i += 8) {
        // vrndnq_f32: round to nearest, ties to even (FRINTN), like nearbyintf in the default mode.
        const float32x4_t a = vminq_f32(vmaxq_f32(vrndnq_f32(vmulq_f32(vld1q_f32(x + i), vi)), lo), hi);
        const float32x4_t b = vminq_f32(vmaxq_f32(vrndnq_f32(vmulq_f32(vld1q_f32(x + i + 4), vi)), lo), hi);
        const int16x8_t q = vcombine_s16(vmovn_s32(vaddq_s32(vcvtq_s32_f32(a), off)), vmovn_s32(vaddq_s32(vcvtq_s32_f32(b), off)));
        vst1_u8(xu + i, vmovn_u16(vreinterpretq_u16_s16(q)));  // 1..255: the narrowing keeps it
    }
    quantize_scalar(xu, x, i, n, inv);
    for (i = n; i < npad; i++) xu[i] = 128;
    return amax / 127.0f;
}
#endif

// ---- portable (the reference) -----------------------------------------------------------------

static void acc_portable(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int b0, int b1, int cols4) {
    (void)bias;
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

// The float epilogue every path shares: out[r] (+)= (float)acc[r] · s_r · s_x, in that order.
static inline __attribute__((always_inline)) void
epilogue(float *out, const int32_t *acc, const float *wscale, float xscale, int n, int accumulate) {
    for (int r = 0; r < n; r++) {
        const float y = (float)acc[r] * wscale[r] * xscale;
        out[r] = accumulate ? out[r] + y : y;
    }
}

// ---- batched prefill (GEMM) on every path --------------------------------------------------------
// mgk_matmul_i8 runs each 16-row panel (≤ 5 KB at this model's widths: L1-resident) against tiles of
// TT tokens: a tile kernel loads each 64-byte column group once and applies it to all TT tokens from
// registers, writing the TT × 16 int32 row sums (each path's sums are its matvec's, exactly); the
// float epilogue is the shared one. So every path's GEMM equals T calls of its mgk_matvec_i8 bit for
// bit. A path's driver picks TT ∈ {1…MAXT} as compile-time constants (switch), so the tile loops
// unroll into registers.
#define MATMUL_TILED(NAME, ATTR, TILE, MAXT)                                                                      \
    ATTR static void NAME(float *out, int ldo, const int8_t *wp, const float *wscale, const int32_t *bias,        \
                          const uint8_t *xu, const float *xscale, int T, int rows, int cols4, int accumulate) {   \
        const int nbt = (rows + 15) / 16, k4 = cols4 / 4;                                                         \
        int32_t acc[(MAXT) * 16];                                                                                 \
        for (int b = 0; b < nbt; b++) {                                                                           \
            const int8_t *p = wp + (size_t)b * k4 * 64;                                                           \
            const int r0 = 16 * b, n = rows - r0 < 16 ? rows - r0 : 16;                                           \
            for (int t = 0; t < T; t += (MAXT)) {                                                                 \
                const int tt = T - t < (MAXT) ? T - t : (MAXT);                                                   \
                const uint8_t *x = xu + (size_t)t * cols4;                                                        \
                switch (tt) {                                                                                     \
                case 1: TILE(acc, p, bias + r0, x, cols4, k4, 1); break;                                          \
                case 2: TILE(acc, p, bias + r0, x, cols4, k4, (MAXT) >= 2 ? 2 : 1); break;                        \
                case 3: TILE(acc, p, bias + r0, x, cols4, k4, (MAXT) >= 3 ? 3 : 1); break;                        \
                case 4: TILE(acc, p, bias + r0, x, cols4, k4, (MAXT) >= 4 ? 4 : 1); break;                        \
                case 5: TILE(acc, p, bias + r0, x, cols4, k4, (MAXT) >= 5 ? 5 : 1); break;                        \
                default: TILE(acc, p, bias + r0, x, cols4, k4, (MAXT) >= 6 ? 6 : 1); break;                       \
                }                                                                                                 \
                for (int j = 0; j < tt; j++)                                                                      \
                    epilogue(out + (size_t)(t + j) * ldo + r0, acc + 16 * j, wscale + r0, xscale[t + j], n, accumulate); \
            }                                                                                                     \
        }                                                                                                         \
    }

// Portable and AVX-512BW (no VNNI): the GEMM is T matvecs. Measured on the phase-15 shapes (12
// tokens), their 4-token tiles were slower than the decode kernels (portable 2.67 vs 2.05 ms, AVX-512BW
// 108 vs 89 µs): the portable tile's token loop does not vectorise at the SSE2 baseline, and the
// masked sign trick's per-token operations cannot be shared between tokens, so a tile only adds
// register pressure. (The batched prefill still saves the head products and the last layer's rows.)
static void matmul_i8_by_matvec(float *out, int ldo, const int8_t *wp, const float *wscale, const int32_t *bias,
                                const uint8_t *xu, const float *xscale, int T, int rows, int cols4, int accumulate, int path) {
    for (int t = 0; t < T; t++)
        mgk_matvec_i8(out + (size_t)t * ldo, wp, wscale, bias, xu + (size_t)t * cols4, xscale[t], rows, cols4, accumulate, path);
}

// ---- x86 ---------------------------------------------------------------------------------------
#if defined(__x86_64__)

static inline int32_t x4_at(const uint8_t *xu, int k) {  // the activation bytes of column group k
    int32_t v;
    memcpy(&v, xu + 4 * k, 4);
    return v;
}

// AVX2. vpmaddubsw (_mm256_maddubs_epi16) multiplies u8 × s8 and adds adjacent pairs into int16
// *with saturation*; offset activations xu ≤ 255 against |q| ≤ 127 could reach 2·255·127 = 64 770.
// So we use the sign trick of llama.cpp's Q8_0 kernels instead: the u8 operand is |xq| and the
// s8 operand is q with xq's sign applied (_mm256_sign_epi8), so each product is |xq|·(±q) = xq·q
// with |xq| ≤ 128 and |q| ≤ 127: a pair sums to at most 2·128·127 = 32 512 < 32 767 and never
// saturates. vpmaddwd (_mm256_madd_epi16) against ones then adds the two pairs of each row into
// int32 (exact). With the panel layout one ymm holds 8 rows × 4 columns, so the result lanes are
// whole row sums: no horizontal add. NP panels per pass share the activation broadcast.
T_AVX2 static inline __attribute__((always_inline)) void
dot_avx2(int32_t *acc, const int8_t *p0, size_t ps, const uint8_t *xu, int k4, const int NP) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    __m256i a[4][2];
    for (int j = 0; j < NP; j++) a[j][0] = a[j][1] = _mm256_setzero_si256();
    for (int k = 0; k < k4; k++) {
        const __m256i xs = _mm256_xor_si256(_mm256_set1_epi32(x4_at(xu, k)), flip);  // xq = xu − 128 as s8
        const __m256i ax = _mm256_abs_epi8(xs);  // |xq| as u8 (−128 → 128, still exact)
        for (int j = 0; j < NP; j++) {
            const int8_t *q = p0 + j * ps + (size_t)k * 64;
            for (int h = 0; h < 2; h++) {
                const __m256i w = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(q + 32 * h)), xs);
                a[j][h] = _mm256_add_epi32(a[j][h], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, w), ones));
            }
        }
    }
    for (int j = 0; j < NP; j++) {
        _mm256_storeu_si256((__m256i *)(acc + 16 * j), a[j][0]);
        _mm256_storeu_si256((__m256i *)(acc + 16 * j + 8), a[j][1]);
    }
}

T_AVX2 static void acc_avx2(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int b0, int b1, int cols4) {
    (void)bias;
    const int k4 = cols4 / 4;
    const size_t ps = (size_t)k4 * 64;
    int b = b0;
    for (; b + 4 <= b1; b += 4) dot_avx2(acc + 16 * (b - b0), wp + b * ps, ps, xu, k4, 4);
    for (; b < b1; b++) dot_avx2(acc + 16 * (b - b0), wp + b * ps, ps, xu, k4, 1);
}

// The shared float epilogue on 16 rows in two ymm: (float)acc · s_r · s_x, then + out, in that
// order (so the bits equal epilogue()'s); n < 16 rows go through a stack copy.
T_AVX2 static inline __attribute__((always_inline)) void
epilogue16_avx2(float *out, __m256i a0, __m256i a1, const float *wscale, __m256 xs, int n, int accumulate) {
    if (n >= 16) {
        __m256 y0 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a0), _mm256_loadu_ps(wscale)), xs);
        __m256 y1 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a1), _mm256_loadu_ps(wscale + 8)), xs);
        if (accumulate) { y0 = _mm256_add_ps(_mm256_loadu_ps(out), y0); y1 = _mm256_add_ps(_mm256_loadu_ps(out + 8), y1); }
        _mm256_storeu_ps(out, y0);
        _mm256_storeu_ps(out + 8, y1);
        return;
    }
    int32_t acc[16];
    _mm256_storeu_si256((__m256i *)acc, a0);
    _mm256_storeu_si256((__m256i *)(acc + 8), a1);
    epilogue(out, acc, wscale, _mm_cvtss_f32(_mm256_castps256_ps128(xs)), n, accumulate);
}

// The decode product on AVX2 with the epilogue in registers: four panels per pass (dot_avx2), then
// the float epilogue straight from the accumulators (no int32 round trip through memory).
T_AVX2 static void matvec_i8_avx2(float *out, const int8_t *wp, const float *wscale, const uint8_t *xu, float xscale,
                                  int rows, int cols4, int accumulate) {
    const int nbt = (rows + 15) / 16, k4 = cols4 / 4;
    const size_t ps = (size_t)k4 * 64;
    const __m256 xs = _mm256_set1_ps(xscale);
    int32_t acc[64];
    int b = 0;
    for (; b + 4 <= nbt; b += 4) {
        dot_avx2(acc, wp + b * ps, ps, xu, k4, 4);
        for (int j = 0; j < 4; j++) {
            const int r0 = 16 * (b + j);
            epilogue16_avx2(out + r0, _mm256_loadu_si256((const __m256i *)(acc + 16 * j)),
                            _mm256_loadu_si256((const __m256i *)(acc + 16 * j + 8)), wscale + r0, xs, rows - r0, accumulate);
        }
    }
    for (; b < nbt; b++) {
        dot_avx2(acc, wp + b * ps, ps, xu, k4, 1);
        epilogue16_avx2(out + 16 * b, _mm256_loadu_si256((const __m256i *)acc), _mm256_loadu_si256((const __m256i *)(acc + 8)),
                        wscale + 16 * b, xs, rows - 16 * b, accumulate);
    }
}

// Batched prefill on AVX2 (a real GEMM): one 16-row panel (≤ 5 KB, L1-resident) against a tile of
// TT ≤ 4 tokens, so each 64-byte column group is loaded once per tile and its two ymm stay in
// registers for all TT tokens. The sign trick's per-token operands, xq as s8 and |xq| as u8, are
// prepared once per call for the whole chunk (sign_operands_avx2), so the tile loop only broadcasts
// them from memory (a load, no ALU work): per 32 products and token it issues vpsignb, vpmaddubsw,
// vpmaddwd and vpaddd, the floor of the sign trick. The epilogue is the shared one's operations on
// 8 lanes, so the result equals T calls of mgk_matvec_i8 bit for bit.
enum { SIGN_BUF = 8192 };  // bytes of each per-call operand array (tokens × cols4)

// xs8 = xu − 128 (as s8) and xa = |xu − 128| (as u8; −128 → 128) for n bytes, n a multiple of 4.
T_AVX2 static void sign_operands_avx2(int8_t *xs8, uint8_t *xa, const uint8_t *xu, int n) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i s = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(xu + i)), flip);
        _mm256_storeu_si256((__m256i *)(xs8 + i), s);
        _mm256_storeu_si256((__m256i *)(xa + i), _mm256_abs_epi8(s));
    }
    for (; i < n; i++) {
        const int v = (int)xu[i] - 128;
        xs8[i] = (int8_t)v;
        xa[i] = (uint8_t)(v < 0 ? -v : v);
    }
}

T_AVX2 static inline __attribute__((always_inline)) __m256i bcast4_avx2(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

T_AVX2 static inline __attribute__((always_inline)) void
matmul_i8_tile_avx2(float *out, int ldo, const int8_t *p, const float *wscale, const int8_t *xs8, const uint8_t *xa,
                    const float *xscale, int cols4, int n, const int TT, int accumulate) {
    const int k4 = cols4 / 4;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a[4][2];
    for (int t = 0; t < TT; t++) a[t][0] = a[t][1] = _mm256_setzero_si256();
    for (int k = 0; k < k4; k++) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + (size_t)k * 64));
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(p + (size_t)k * 64 + 32));
        for (int t = 0; t < TT; t++) {
            const __m256i xs = bcast4_avx2(xs8 + (size_t)t * cols4 + 4 * k), ax = bcast4_avx2(xa + (size_t)t * cols4 + 4 * k);
            a[t][0] = _mm256_add_epi32(a[t][0], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w0, xs)), ones));
            a[t][1] = _mm256_add_epi32(a[t][1], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w1, xs)), ones));
        }
    }
    for (int t = 0; t < TT; t++)
        epilogue16_avx2(out + (size_t)t * ldo, a[t][0], a[t][1], wscale, _mm256_set1_ps(xscale[t]), n, accumulate);
}

T_AVX2 static void matmul_i8_avx2(float *out, int ldo, const int8_t *wp, const float *wscale, const uint8_t *xu,
                                  const float *xscale, int T, int rows, int cols4, int accumulate) {
    const int nbt = (rows + 15) / 16, k4 = cols4 / 4;
    const int chunk = SIGN_BUF / cols4;  // tokens whose operands fit the stack buffers
    if (chunk == 0) {  // a very wide matrix: token by token
        for (int t = 0; t < T; t++)
            matvec_i8_avx2(out + (size_t)t * ldo, wp, wscale, xu + (size_t)t * cols4, xscale[t], rows, cols4, accumulate);
        return;
    }
    int8_t xs8[SIGN_BUF];
    uint8_t xa[SIGN_BUF];
    for (int t0 = 0; t0 < T; t0 += chunk) {
        const int tt = T - t0 < chunk ? T - t0 : chunk;
        sign_operands_avx2(xs8, xa, xu + (size_t)t0 * cols4, tt * cols4);
        for (int b = 0; b < nbt; b++) {
            const int8_t *p = wp + (size_t)b * k4 * 64;
            const int r0 = 16 * b, n = rows - r0;
            float *o = out + (size_t)t0 * ldo + r0;
            int t = 0;
            for (; t + 4 <= tt; t += 4)
                matmul_i8_tile_avx2(o + (size_t)t * ldo, ldo, p, wscale + r0, xs8 + (size_t)t * cols4, xa + (size_t)t * cols4, xscale + t0 + t, cols4, n, 4, accumulate);
            const int8_t *s8 = xs8 + (size_t)t * cols4;
            const uint8_t *sa = xa + (size_t)t * cols4;
            switch (tt - t) {  // the last 1–3 tokens in one tile
            case 3: matmul_i8_tile_avx2(o + (size_t)t * ldo, ldo, p, wscale + r0, s8, sa, xscale + t0 + t, cols4, n, 3, accumulate); break;
            case 2: matmul_i8_tile_avx2(o + (size_t)t * ldo, ldo, p, wscale + r0, s8, sa, xscale + t0 + t, cols4, n, 2, accumulate); break;
            case 1: matmul_i8_tile_avx2(o + (size_t)t * ldo, ldo, p, wscale + r0, s8, sa, xscale + t0 + t, cols4, n, 1, accumulate); break;
            default: break;
            }
        }
    }
}

// AVX-512BW without VNNI: the AVX2 kernel on zmm, one panel (16 rows × 4 columns) per register.
// AVX-512 has no vpsignb, so xq's sign is applied with a mask: the sign bits of xq
// (_mm512_movepi8_mask) select the lanes where q is negated (_mm512_mask_sub_epi8 from zero);
// where xq = 0 the u8 operand |xq| is 0 anyway. Same bound as above: pairs ≤ 32 512.
T_AVX512 static inline __attribute__((always_inline)) void
dot_avx512(int32_t *acc, const int8_t *p0, size_t ps, const uint8_t *xu, int k4, const int NP) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi16(1), zero = _mm512_setzero_si512();
    __m512i a[4];
    for (int j = 0; j < NP; j++) a[j] = zero;
    for (int k = 0; k < k4; k++) {
        const __m512i xs = _mm512_xor_si512(_mm512_set1_epi32(x4_at(xu, k)), flip);
        const __m512i ax = _mm512_abs_epi8(xs);
        const __mmask64 neg = _mm512_movepi8_mask(xs);
        for (int j = 0; j < NP; j++) {
            const __m512i q = _mm512_loadu_si512(p0 + j * ps + (size_t)k * 64);
            const __m512i w = _mm512_mask_sub_epi8(q, neg, zero, q);
            a[j] = _mm512_add_epi32(a[j], _mm512_madd_epi16(_mm512_maddubs_epi16(ax, w), ones));
        }
    }
    for (int j = 0; j < NP; j++) _mm512_storeu_si512(acc + 16 * j, a[j]);
}

T_AVX512 static void acc_avx512(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int b0, int b1, int cols4) {
    (void)bias;
    const int k4 = cols4 / 4;
    const size_t ps = (size_t)k4 * 64;
    int b = b0;
    for (; b + 4 <= b1; b += 4) dot_avx512(acc + 16 * (b - b0), wp + b * ps, ps, xu, k4, 4);
    for (; b < b1; b++) dot_avx512(acc + 16 * (b - b0), wp + b * ps, ps, xu, k4, 1);
}


// AVX-VNNI (Alder Lake, Zen 5): vpdpbusd on ymm (_mm256_dpbusd_avx_epi32, the VEX encoding).
// vpdpbusd adds four u8 × s8 products straight into int32 without saturation (the vpdpbusds
// twin saturates; we never use it), so the offset activations xu go in as they are and the
// offset is removed with the pack-time bias: Σ q·xu − 128·Σ q = Σ q·xq, exact in int32.
// Eight chains (four panels × two halves) cover the instruction's latency.
T_AVXVNNI static inline __attribute__((always_inline)) void
dot_avxvnni(int32_t *acc, const int8_t *p0, size_t ps, const int32_t *bias, const uint8_t *xu, int k4, const int NP) {
    __m256i a[4][2];
    for (int j = 0; j < NP; j++) a[j][0] = a[j][1] = _mm256_setzero_si256();
    for (int k = 0; k < k4; k++) {
        const __m256i x = _mm256_set1_epi32(x4_at(xu, k));
        for (int j = 0; j < NP; j++) {
            const int8_t *q = p0 + j * ps + (size_t)k * 64;
            a[j][0] = _mm256_dpbusd_avx_epi32(a[j][0], x, _mm256_loadu_si256((const __m256i *)q));
            a[j][1] = _mm256_dpbusd_avx_epi32(a[j][1], x, _mm256_loadu_si256((const __m256i *)(q + 32)));
        }
    }
    for (int j = 0; j < NP; j++)
        for (int h = 0; h < 2; h++)
            _mm256_storeu_si256((__m256i *)(acc + 16 * j + 8 * h),
                                _mm256_sub_epi32(a[j][h], _mm256_loadu_si256((const __m256i *)(bias + 16 * j + 8 * h))));
}

T_AVXVNNI static void acc_avxvnni(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int b0, int b1, int cols4) {
    const int k4 = cols4 / 4;
    const size_t ps = (size_t)k4 * 64;
    int b = b0;
    for (; b + 4 <= b1; b += 4) dot_avxvnni(acc + 16 * (b - b0), wp + b * ps, ps, bias + 16 * b, xu, k4, 4);
    for (; b < b1; b++) dot_avxvnni(acc + 16 * (b - b0), wp + b * ps, ps, bias + 16 * b, xu, k4, 1);
}

// Batched prefill on AVX-VNNI: one panel (two ymm per column group) against TT ≤ 6 tokens: 12
// chains, 2 weight loads and 6 broadcasts per 12 vpdpbusd (15 of the 16 ymm registers).
T_AVXVNNI static inline __attribute__((always_inline)) void
tile_avxvnni(int32_t *acc, const int8_t *p, const int32_t *bias, const uint8_t *xu, int cols4, int k4, const int TT) {
    __m256i a[6][2];
    for (int t = 0; t < TT; t++) a[t][0] = a[t][1] = _mm256_setzero_si256();
    for (int k = 0; k < k4; k++) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + (size_t)k * 64));
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(p + (size_t)k * 64 + 32));
        for (int t = 0; t < TT; t++) {
            const __m256i x = _mm256_set1_epi32(x4_at(xu + (size_t)t * cols4, k));
            a[t][0] = _mm256_dpbusd_avx_epi32(a[t][0], x, w0);
            a[t][1] = _mm256_dpbusd_avx_epi32(a[t][1], x, w1);
        }
    }
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)bias), b1 = _mm256_loadu_si256((const __m256i *)(bias + 8));
    for (int t = 0; t < TT; t++) {
        _mm256_storeu_si256((__m256i *)(acc + 16 * t), _mm256_sub_epi32(a[t][0], b0));
        _mm256_storeu_si256((__m256i *)(acc + 16 * t + 8), _mm256_sub_epi32(a[t][1], b1));
    }
}
MATMUL_TILED(matmul_i8_avxvnni, T_AVXVNNI, tile_avxvnni, 6)

// AVX-512 VNNI: vpdpbusd on zmm (_mm512_dpbusd_epi32), the same offset-and-bias scheme.
T_VNNI512 static inline __m512i xbcast(const uint8_t *xu, int k) { return _mm512_set1_epi32(x4_at(xu, k)); }

// Σ q·xu − 128·Σq for panels b..b+nb, four panels per pass sharing each activation broadcast.
T_VNNI512 static inline void acc_vnni_block(__m512i *out, const int8_t *wp, const int32_t *bias,
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
            a0 = _mm512_dpbusd_epi32(a0, x, _mm512_loadu_si512(p0 + o));
            a1 = _mm512_dpbusd_epi32(a1, x, _mm512_loadu_si512(p0 + ps + o));
            a2 = _mm512_dpbusd_epi32(a2, x, _mm512_loadu_si512(p0 + 2 * ps + o));
            a3 = _mm512_dpbusd_epi32(a3, x, _mm512_loadu_si512(p0 + 3 * ps + o));
            e0 = _mm512_dpbusd_epi32(e0, y, _mm512_loadu_si512(p0 + o + 64));
            e1 = _mm512_dpbusd_epi32(e1, y, _mm512_loadu_si512(p0 + ps + o + 64));
            e2 = _mm512_dpbusd_epi32(e2, y, _mm512_loadu_si512(p0 + 2 * ps + o + 64));
            e3 = _mm512_dpbusd_epi32(e3, y, _mm512_loadu_si512(p0 + 3 * ps + o + 64));
        }
        if (k < k4) {
            const __m512i x = xbcast(xu, k);
            const size_t o = (size_t)k * 64;
            a0 = _mm512_dpbusd_epi32(a0, x, _mm512_loadu_si512(p0 + o));
            a1 = _mm512_dpbusd_epi32(a1, x, _mm512_loadu_si512(p0 + ps + o));
            a2 = _mm512_dpbusd_epi32(a2, x, _mm512_loadu_si512(p0 + 2 * ps + o));
            a3 = _mm512_dpbusd_epi32(a3, x, _mm512_loadu_si512(p0 + 3 * ps + o));
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
            a0 = _mm512_dpbusd_epi32(a0, xbcast(xu, k), _mm512_loadu_si512(p0 + (size_t)k * 64));
            a1 = _mm512_dpbusd_epi32(a1, xbcast(xu, k + 1), _mm512_loadu_si512(p0 + (size_t)k * 64 + 64));
        }
        if (k < k4) a0 = _mm512_dpbusd_epi32(a0, xbcast(xu, k), _mm512_loadu_si512(p0 + (size_t)k * 64));
        out[0] = _mm512_sub_epi32(_mm512_add_epi32(a0, a1), _mm512_loadu_si512(bias + 16 * b));
    }
}

T_VNNI512 static void acc_vnni(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int b0, int b1, int cols4) {
    const int k4 = cols4 / 4;
    for (int b = b0; b < b1;) {
        const int nb = b + 4 <= b1 ? 4 : 1;
        __m512i v[4];
        acc_vnni_block(v, wp, bias, xu, b, nb, k4);
        for (int j = 0; j < nb; j++) _mm512_storeu_si512(acc + 16 * (b - b0 + j), v[j]);
        b += nb;
    }
}

T_VNNI512 static void matvec_vnni(float *out, const int8_t *wp, const float *wscale, const int32_t *bias,
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

// Batched prefill on AVX-512 VNNI: NP ≤ 4 panels (64 rows) against a tile of TT ≤ 6 tokens, all
// NP·TT ≤ 24 accumulators in registers (+ 4 weight registers): each 64-byte column group is loaded
// once per tile and each token's 4 activation bytes are broadcast once for all NP panels, so a
// column group costs NP + TT loads for NP·TT vpdpbusd, and 24 independent chains keep both
// 512-bit pipes busy (the former one-panel tiles of 8 + 4 tokens issued a load per vpdpbusd and
// left the 4-token tile latency-bound). The int32 sums are exact in any order and the epilogue is
// matvec_vnni's, so the result equals T calls of mgk_matvec_i8 bit for bit.
T_VNNI512 static inline __attribute__((always_inline)) void
matmul_vnni_tile(float *out, int ldo, const int8_t *p, size_t ps, const float *wscale, const int32_t *bias,
                 const uint8_t *xu, const float *xscale, int cols4, int n, const int NP, const int TT, int accumulate) {
    const int k4 = cols4 / 4;
    __m512i acc[4][6];
    for (int j = 0; j < NP; j++)
        for (int t = 0; t < TT; t++) acc[j][t] = _mm512_setzero_si512();
    for (int k = 0; k < k4; k++) {
        __m512i w[4];
        for (int j = 0; j < NP; j++) w[j] = _mm512_loadu_si512(p + j * ps + (size_t)k * 64);
        for (int t = 0; t < TT; t++) {
            const __m512i x = xbcast(xu + (size_t)t * cols4, k);
            for (int j = 0; j < NP; j++) acc[j][t] = _mm512_dpbusd_epi32(acc[j][t], x, w[j]);
        }
    }
    for (int j = 0; j < NP; j++) {
        const int nj = n - 16 * j;
        if (nj <= 0) break;
        const __mmask16 m = nj >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nj) - 1);
        const __m512i bv = _mm512_loadu_si512(bias + 16 * j);
        const __m512 ws = _mm512_maskz_loadu_ps(m, wscale + 16 * j);
        for (int t = 0; t < TT; t++) {
            __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[j][t], bv)), ws), _mm512_set1_ps(xscale[t]));
            float *o = out + (size_t)t * ldo + 16 * j;
            if (accumulate) y = _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), y);
            _mm512_mask_storeu_ps(o, m, y);
        }
    }
}

#define VNNI_TILE_CASE(NP, TT)                                                                                        \
    case TT: matmul_vnni_tile(o, ldo, p, ps, ws, bs, x, xsc, cols4, n, NP, TT, accumulate); break;
#define VNNI_TILE_SWITCH(NP)                                                                                          \
    switch (tt) {                                                                                                     \
        VNNI_TILE_CASE(NP, 1) VNNI_TILE_CASE(NP, 2) VNNI_TILE_CASE(NP, 3) VNNI_TILE_CASE(NP, 4)                       \
        VNNI_TILE_CASE(NP, 5) default: VNNI_TILE_CASE(NP, 6)                                                          \
    }

T_VNNI512 static void matmul_vnni(float *out, int ldo, const int8_t *wp, const float *wscale, const int32_t *bias,
                                  const uint8_t *xu, const float *xscale, int T, int rows, int cols4, int accumulate) {
    const int nbt = (rows + 15) / 16, k4 = cols4 / 4;
    const size_t ps = (size_t)k4 * 64;
    const int ntiles = (T + 5) / 6, base = ntiles ? T / ntiles : 0, extra = ntiles ? T % ntiles : 0;  // even tiles of ≤ 6
    for (int b = 0; b < nbt; b += 4) {
        const int8_t *p = wp + (size_t)b * ps;
        const int r0 = 16 * b, n = rows - r0, np = nbt - b < 4 ? nbt - b : 4;
        const float *ws = wscale + r0;
        const int32_t *bs = bias + r0;
        for (int i = 0, t = 0; i < ntiles; i++) {
            const int tt = base + (i < extra);
            float *o = out + (size_t)t * ldo + r0;
            const uint8_t *x = xu + (size_t)t * cols4;
            const float *xsc = xscale + t;
            switch (np) {
            case 1: VNNI_TILE_SWITCH(1) break;
            case 2: VNNI_TILE_SWITCH(2) break;
            case 3: VNNI_TILE_SWITCH(3) break;
            default: VNNI_TILE_SWITCH(4) break;
            }
            t += tt;
        }
    }
}
#undef VNNI_TILE_SWITCH
#undef VNNI_TILE_CASE
#endif

// ---- aarch64 -----------------------------------------------------------------------------------
#if defined(__aarch64__)

static inline int8x16_t xq_at(const uint8_t *xu, int k) {  // xq = xu − 128 of column group k, ×4
    uint32_t v;
    memcpy(&v, xu + 4 * k, 4);
    return vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(v)), vdupq_n_u8(0x80)));
}

// Plain NEON (Armv8.0). One int8x16 holds 4 rows × 4 columns of a panel. vmull_s8 widens 8 products
// to int16 (|xq·q| ≤ 128·127 = 16 256), vmlal_s8 adds the next column group's 8 products in place:
// two products per lane, ≤ 32 512 < 32 767, so the int16 lane is exact (vmull/vmlal wrap, they do
// not saturate, and they never need to). vpadalq_s16 then adds adjacent lanes into int32, and a
// final vpaddq_s32 turns (row, cols 0–1), (row, cols 2–3) lanes into row sums.
static void acc_neon(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int b0, int b1, int cols4) {
    (void)bias;
    const int k4 = cols4 / 4;
    for (int b = b0; b < b1; b++) {
        const int8_t *p = wp + (size_t)b * k4 * 64;
        int32x4_t a[8];  // a[2c]: rows 4c, 4c+1; a[2c+1]: rows 4c+2, 4c+3
        for (int j = 0; j < 8; j++) a[j] = vdupq_n_s32(0);
        int k = 0;
        for (; k + 2 <= k4; k += 2) {
            const int8x16_t x0 = xq_at(xu, k), x1 = xq_at(xu, k + 1);
            for (int c = 0; c < 4; c++) {
                const int8x16_t w0 = vld1q_s8(p + (size_t)k * 64 + 16 * c), w1 = vld1q_s8(p + (size_t)(k + 1) * 64 + 16 * c);
                const int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), vget_low_s8(w1), vget_low_s8(x1));
                const int16x8_t hi = vmlal_high_s8(vmull_high_s8(w0, x0), w1, x1);
                a[2 * c] = vpadalq_s16(a[2 * c], lo);
                a[2 * c + 1] = vpadalq_s16(a[2 * c + 1], hi);
            }
        }
        if (k < k4) {
            const int8x16_t x0 = xq_at(xu, k);
            for (int c = 0; c < 4; c++) {
                const int8x16_t w0 = vld1q_s8(p + (size_t)k * 64 + 16 * c);
                a[2 * c] = vpadalq_s16(a[2 * c], vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
                a[2 * c + 1] = vpadalq_s16(a[2 * c + 1], vmull_high_s8(w0, x0));
            }
        }
        for (int c = 0; c < 4; c++) vst1q_s32(acc + 16 * (b - b0) + 4 * c, vpaddq_s32(a[2 * c], a[2 * c + 1]));
    }
}

// NEON sdot (Armv8.2 dot product, ACLE vdotq_s32): each int32 lane adds the four s8 × s8 products
// of its 4 bytes, i.e. one row × one column group of the panel layout: no saturation, no offset
// (signed × signed, so xq goes in directly and the bias is not needed). Two chains per chunk.
T_DOTPROD static void acc_dotprod(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int b0, int b1, int cols4) {
    (void)bias;
    const int k4 = cols4 / 4;
    for (int b = b0; b < b1; b++) {
        const int8_t *p = wp + (size_t)b * k4 * 64;
        int32x4_t a[4], e[4];
        for (int c = 0; c < 4; c++) a[c] = e[c] = vdupq_n_s32(0);
        int k = 0;
        for (; k + 2 <= k4; k += 2) {
            const int8x16_t x0 = xq_at(xu, k), x1 = xq_at(xu, k + 1);
            for (int c = 0; c < 4; c++) {
                a[c] = vdotq_s32(a[c], vld1q_s8(p + (size_t)k * 64 + 16 * c), x0);
                e[c] = vdotq_s32(e[c], vld1q_s8(p + (size_t)(k + 1) * 64 + 16 * c), x1);
            }
        }
        if (k < k4) {
            const int8x16_t x0 = xq_at(xu, k);
            for (int c = 0; c < 4; c++) a[c] = vdotq_s32(a[c], vld1q_s8(p + (size_t)k * 64 + 16 * c), x0);
        }
        for (int c = 0; c < 4; c++) vst1q_s32(acc + 16 * (b - b0) + 4 * c, vaddq_s32(a[c], e[c]));
    }
}

// Batched prefill on NEON: acc_neon's pairs of column groups against TT ≤ 2 tokens (16 int32x4
// accumulators + 8 weight registers of arm64's 32). Same int16 bound per lane as acc_neon.
static inline __attribute__((always_inline)) void
tile_neon(int32_t *acc, const int8_t *p, const int32_t *bias, const uint8_t *xu, int cols4, int k4, const int TT) {
    (void)bias;
    int32x4_t a[2][8];
    for (int t = 0; t < TT; t++)
        for (int j = 0; j < 8; j++) a[t][j] = vdupq_n_s32(0);
    int k = 0;
    for (; k + 2 <= k4; k += 2) {
        int8x16_t w0[4], w1[4];
        for (int c = 0; c < 4; c++) { w0[c] = vld1q_s8(p + (size_t)k * 64 + 16 * c); w1[c] = vld1q_s8(p + (size_t)(k + 1) * 64 + 16 * c); }
        for (int t = 0; t < TT; t++) {
            const int8x16_t x0 = xq_at(xu + (size_t)t * cols4, k), x1 = xq_at(xu + (size_t)t * cols4, k + 1);
            for (int c = 0; c < 4; c++) {
                const int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(w0[c]), vget_low_s8(x0)), vget_low_s8(w1[c]), vget_low_s8(x1));
                const int16x8_t hi = vmlal_high_s8(vmull_high_s8(w0[c], x0), w1[c], x1);
                a[t][2 * c] = vpadalq_s16(a[t][2 * c], lo);
                a[t][2 * c + 1] = vpadalq_s16(a[t][2 * c + 1], hi);
            }
        }
    }
    if (k < k4) {
        for (int t = 0; t < TT; t++) {
            const int8x16_t x0 = xq_at(xu + (size_t)t * cols4, k);
            for (int c = 0; c < 4; c++) {
                const int8x16_t w0 = vld1q_s8(p + (size_t)k * 64 + 16 * c);
                a[t][2 * c] = vpadalq_s16(a[t][2 * c], vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
                a[t][2 * c + 1] = vpadalq_s16(a[t][2 * c + 1], vmull_high_s8(w0, x0));
            }
        }
    }
    for (int t = 0; t < TT; t++)
        for (int c = 0; c < 4; c++) vst1q_s32(acc + 16 * t + 4 * c, vpaddq_s32(a[t][2 * c], a[t][2 * c + 1]));
}
MATMUL_TILED(matmul_i8_neon, , tile_neon, 2)

// Batched prefill on sdot: one column group's four int8x16 against TT ≤ 4 tokens (16 accumulators).
T_DOTPROD static inline __attribute__((always_inline)) void
tile_dotprod(int32_t *acc, const int8_t *p, const int32_t *bias, const uint8_t *xu, int cols4, int k4, const int TT) {
    (void)bias;
    int32x4_t a[4][4];
    for (int t = 0; t < TT; t++)
        for (int c = 0; c < 4; c++) a[t][c] = vdupq_n_s32(0);
    for (int k = 0; k < k4; k++) {
        int8x16_t w[4];
        for (int c = 0; c < 4; c++) w[c] = vld1q_s8(p + (size_t)k * 64 + 16 * c);
        for (int t = 0; t < TT; t++) {
            const int8x16_t x = xq_at(xu + (size_t)t * cols4, k);
            for (int c = 0; c < 4; c++) a[t][c] = vdotq_s32(a[t][c], w[c], x);
        }
    }
    for (int t = 0; t < TT; t++)
        for (int c = 0; c < 4; c++) vst1q_s32(acc + 16 * t + 4 * c, a[t][c]);
}
MATMUL_TILED(matmul_i8_dotprod, T_DOTPROD, tile_dotprod, 4)
#endif

// ---- dispatch ----------------------------------------------------------------------------------

int mgk_i8_path_supported(int path) { return mgk_path_supported(path); }
int mgk_i8_best_path(void) { return mgk_selected_path(); }

// AUTO → the selected path; a path this CPU lacks also falls back to it (never SIGILL).
static inline int resolve(int path) { return (path == MGK_PATH_AUTO || !mgk_path_supported(path)) ? mgk_selected_path() : path; }

float mgk_quantize_activation_path(uint8_t *xu, const float *x, int n, int npad, int path) {
    switch (resolve(path)) {
#if defined(__x86_64__)
    case MGK_PATH_AVX2: case MGK_PATH_AVXVNNI: return quantize_avx2(xu, x, n, npad);
    case MGK_PATH_AVX512: case MGK_PATH_VNNI: return quantize_avx512(xu, x, n, npad);
#elif defined(__aarch64__)
    case MGK_PATH_NEON: case MGK_PATH_DOTPROD: return quantize_neon(xu, x, n, npad);
#endif
    default: return quantize_portable(xu, x, n, npad);
    }
}

void mgk_quantize_rows(uint8_t *xu, float *xs, const float *x, int ldx, int T, int n, int npad) {
    switch (resolve(MGK_PATH_AUTO)) {  // the path's quantizer, resolved once for the T rows
#if defined(__x86_64__)
    case MGK_PATH_AVX2: case MGK_PATH_AVXVNNI:
        for (int t = 0; t < T; t++) xs[t] = quantize_avx2(xu + (size_t)t * npad, x + (size_t)t * ldx, n, npad);
        return;
    case MGK_PATH_AVX512: case MGK_PATH_VNNI: quantize_rows_avx512(xu, xs, x, ldx, T, n, npad); return;
#elif defined(__aarch64__)
    case MGK_PATH_NEON: case MGK_PATH_DOTPROD:
        for (int t = 0; t < T; t++) xs[t] = quantize_neon(xu + (size_t)t * npad, x + (size_t)t * ldx, n, npad);
        return;
#endif
    default:
        for (int t = 0; t < T; t++) xs[t] = quantize_portable(xu + (size_t)t * npad, x + (size_t)t * ldx, n, npad);
    }
}

float mgk_quantize_activation(uint8_t *xu, const float *x, int n, int npad) {
    return mgk_quantize_activation_path(xu, x, n, npad, MGK_PATH_AUTO);
}

typedef void (*acc_fn)(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int b0, int b1, int cols4);

static acc_fn acc_for(int path) {
    switch (path) {
#if defined(__x86_64__)
    case MGK_PATH_VNNI: return acc_vnni;
    case MGK_PATH_AVX512: return acc_avx512;
    case MGK_PATH_AVXVNNI: return acc_avxvnni;
    case MGK_PATH_AVX2: return acc_avx2;
#elif defined(__aarch64__)
    case MGK_PATH_DOTPROD: return acc_dotprod;
    case MGK_PATH_NEON: return acc_neon;
#endif
    default: return acc_portable;
    }
}

void mgk_matvec_i8_acc(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu, int rows, int cols4, int path) {
    acc_for(resolve(path))(acc, wp, bias, xu, 0, (rows + 15) / 16, cols4);
}

void mgk_matvec_i8(float *out, const int8_t *wp, const float *wscale, const int32_t *bias,
                   const uint8_t *xu, float xscale, int rows, int cols4, int accumulate, int path) {
    path = resolve(path);
#if defined(__x86_64__)
    if (path == MGK_PATH_VNNI) { matvec_vnni(out, wp, wscale, bias, xu, xscale, rows, cols4, accumulate); return; }
    if (path == MGK_PATH_AVX2) { matvec_i8_avx2(out, wp, wscale, xu, xscale, rows, cols4, accumulate); return; }
#endif
    // Four panels (64 rows) at a time into a stack buffer, then the shared float epilogue.
    const acc_fn f = acc_for(path);
    const int nbt = (rows + 15) / 16;
    int32_t acc[64];
    for (int b = 0; b < nbt; b += 4) {
        const int b1 = b + 4 < nbt ? b + 4 : nbt, r0 = 16 * b;
        f(acc, wp, bias, xu, b, b1, cols4);
        const int n = 16 * b1 < rows ? 16 * b1 - r0 : rows - r0;
        epilogue(out + r0, acc, wscale + r0, xscale, n, accumulate);
    }
}

void mgk_matmul_i8(float *out, int ldo, const int8_t *wp, const float *wscale, const int32_t *bias,
                   const uint8_t *xu, const float *xscale, int T, int rows, int cols4, int accumulate, int path) {
    path = resolve(path);
    // One token: the decode product (the same bits by contract; its panel blocking keeps more
    // chains in flight than a one-token tile).
    if (T == 1) { mgk_matvec_i8(out, wp, wscale, bias, xu, xscale[0], rows, cols4, accumulate, path); return; }
#if defined(__x86_64__)
    if (path == MGK_PATH_VNNI) { matmul_vnni(out, ldo, wp, wscale, bias, xu, xscale, T, rows, cols4, accumulate); return; }
    if (path == MGK_PATH_AVX2) { matmul_i8_avx2(out, ldo, wp, wscale, xu, xscale, T, rows, cols4, accumulate); return; }
    if (path == MGK_PATH_AVXVNNI) { matmul_i8_avxvnni(out, ldo, wp, wscale, bias, xu, xscale, T, rows, cols4, accumulate); return; }
#elif defined(__aarch64__)
    if (path == MGK_PATH_DOTPROD) { matmul_i8_dotprod(out, ldo, wp, wscale, bias, xu, xscale, T, rows, cols4, accumulate); return; }
    if (path == MGK_PATH_NEON) { matmul_i8_neon(out, ldo, wp, wscale, bias, xu, xscale, T, rows, cols4, accumulate); return; }
#endif
    matmul_i8_by_matvec(out, ldo, wp, wscale, bias, xu, xscale, T, rows, cols4, accumulate, path);  // portable, avx512
}
