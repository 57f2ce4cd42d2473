// The C kernels tested on their own, without Swift: built for x86-64 by the host compiler and for
// aarch64 by gcc-aarch64-linux-gnu (run under qemu-aarch64), see scripts/test-arm-kernels.sh.
//
// Seeded integer-only inputs (so every ISA sees the same floats), then for every kernel path the CPU
// supports: the activation quantizer's bytes and the INT8 products' int32 sums must equal the
// portable path's bit for bit, and the portable sums must equal a naive row-major loop; the batched
// prefill kernels (INT8 GEMM, FP32 GEMM, causal KV block attention) must equal their decode kernels
// token by token (bit for bit where the arithmetic is the same, FP32 GEMM within rounding). With
// --write FILE the per-case checksums are saved; with --check FILE they must equal a file written
// by another build (the x86 build's file, checked on arm64). Last line: "N passed, N failed".
//
//   cc -O2 -ffp-contract=off -I Sources/CMiniGPTKernels/include Tests/kernels-c/test_kernels.c -lm
#include "../../Sources/CMiniGPTKernels/kernels.c"
#include "../../Sources/CMiniGPTKernels/int8.c"
#include "../../Sources/CMiniGPTKernels/fp32.c"
#include "../../Sources/CMiniGPTKernels/kv.c"
#include <stdio.h>
#include <stdlib.h>
#include <math.h>

static int passed, failed;

static void check(int ok, const char *what, const char *path, int rows, int cols) {
    if (ok) { passed++; return; }
    failed++;
    printf("FAIL %s path=%s rows=%d cols=%d\n", what, path, rows, cols);
}

// xorshift64*: the same sequence on every machine.
static uint64_t rng_state;
static uint64_t next_u64(void) {
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static int rand_int(int lo, int hi) { return lo + (int)(next_u64() % (uint64_t)(hi - lo + 1)); }
// Floats built from integers only (k / 64 with |k| < 2^15): exact everywhere, and a quarter of them
// sit on a multiple of 0.5 of the quantization grid when amax is a power of two, to hit the ties.
static float rand_float(void) { return (float)rand_int(-20000, 20000) / 64.0f; }

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ull; }
    return h;
}

static void *aligned(size_t bytes) {  // the Swift side packs into 64-byte aligned memory too
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) { perror("aligned_alloc"); exit(2); }
    return p;
}

enum { MAX_CASES = 96 };
static uint64_t sums[MAX_CASES];

// One shape: returns the checksum of (quantized bytes, portable int32 sums).
static uint64_t run_case(int rows, int cols, int weight_kind, int act_kind) {
    const int cols4 = (cols + 3) / 4 * 4, rows16 = (rows + 15) / 16 * 16;
    int8_t *q = aligned((size_t)rows * cols), *wp = aligned((size_t)mgk_panel_i8_count(rows, cols));
    int32_t *bias = aligned(4 * (size_t)rows16), *ref = aligned(4 * (size_t)rows16), *acc = aligned(4 * (size_t)rows16);
    float *x = aligned(4 * (size_t)cols);
    uint8_t *xu = aligned((size_t)cols4), *xv = aligned((size_t)cols4);
    for (int i = 0; i < rows * cols; i++)  // 0: random; 1: all ±127 (the largest products)
        q[i] = (int8_t)(weight_kind == 0 ? rand_int(-127, 127) : (rand_int(0, 1) ? 127 : -127));
    for (int c = 0; c < cols; c++)  // 0: random; 1: ±max (xq = ±127); 2: ties (amax 127, halves)
        x[c] = act_kind == 0 ? rand_float() : act_kind == 1 ? (rand_int(0, 1) ? 3.5f : -3.5f)
             : (c == 0 ? 127.0f : (float)rand_int(-254, 254) / 2.0f);
    mgk_pack_panel_i8(wp, bias, q, rows, cols);

    const float xs = mgk_quantize_activation_path(xu, x, cols, cols4, MGK_PATH_PORTABLE);
    for (int p = MGK_PATH_PORTABLE; p < MGK_PATH_COUNT; p++) {
        if (!mgk_path_supported(p)) continue;
        memset(xv, 0xAB, (size_t)cols4);
        const float s = mgk_quantize_activation_path(xv, x, cols, cols4, p);
        check(s == xs && memcmp(xv, xu, (size_t)cols4) == 0, "quantizer bytes", mgk_path_name(p), 1, cols);
    }
    // The definition, on the row-major weights: Σ_c q[r][c] · (xu[c] − 128).
    for (int r = 0; r < rows16; r++) {
        int32_t s = 0;
        for (int c = 0; r < rows && c < cols; c++) s += (int32_t)q[(size_t)r * cols + c] * ((int32_t)xu[c] - 128);
        ref[r] = s;
    }
    for (int p = MGK_PATH_PORTABLE; p < MGK_PATH_COUNT; p++) {
        if (!mgk_path_supported(p)) continue;
        memset(acc, 0x5A, 4 * (size_t)rows16);
        mgk_matvec_i8_acc(acc, wp, bias, xu, rows, cols4, p);
        check(memcmp(acc, ref, 4 * (size_t)rows) == 0, "int8 sums", mgk_path_name(p), rows, cols);
    }
    // xu = 0 everywhere (xq = −128, outside the quantizer's range): still exact on every path.
    memset(xv, 0, (size_t)cols4);
    for (int r = 0; r < rows; r++) {
        int32_t s = 0;
        for (int c = 0; c < cols; c++) s += (int32_t)q[(size_t)r * cols + c] * -128;
        ref[r] = s;
    }
    for (int p = MGK_PATH_PORTABLE; p < MGK_PATH_COUNT; p++) {
        if (!mgk_path_supported(p)) continue;
        mgk_matvec_i8_acc(acc, wp, bias, xv, rows, cols4, p);
        check(memcmp(acc, ref, 4 * (size_t)rows) == 0, "int8 sums, xq = -128", mgk_path_name(p), rows, cols);
    }
    mgk_matvec_i8_acc(acc, wp, bias, xu, rows, cols4, MGK_PATH_PORTABLE);
    uint64_t h = fnv1a(1469598103934665603ull, xu, (size_t)cols4);
    h = fnv1a(h, &xs, sizeof xs);
    h = fnv1a(h, acc, 4 * (size_t)rows);
    free(q); free(wp); free(bias); free(ref); free(acc); free(x); free(xu); free(xv);
    return h;
}

// Batched prefill, INT8: T quantized token rows through mgk_matmul_i8 on every path (fresh output and
// accumulating into a prior one) must equal T portable mgk_matvec_i8 calls bit for bit (the same
// int32 sums, the same float epilogue). Returns the checksum of the portable GEMM's floats.
static uint64_t run_gemm_case(int rows, int cols, int T) {
    const int cols4 = (cols + 3) / 4 * 4, rows16 = (rows + 15) / 16 * 16, ldo = rows + 3;
    int8_t *q = aligned((size_t)rows * cols), *wp = aligned((size_t)mgk_panel_i8_count(rows, cols));
    int32_t *bias = aligned(4 * (size_t)rows16);
    float *ws = aligned(4 * (size_t)rows16), *x = aligned(4 * (size_t)cols), *xs = aligned(4 * (size_t)T);
    float *ref = aligned(4 * (size_t)T * ldo), *out = aligned(4 * (size_t)T * ldo), *init = aligned(4 * (size_t)T * ldo);
    uint8_t *xu = aligned((size_t)T * cols4);
    for (int i = 0; i < rows * cols; i++) q[i] = (int8_t)rand_int(-127, 127);
    for (int r = 0; r < rows; r++) ws[r] = (float)rand_int(1, 4000) / 65536.0f;
    mgk_pack_panel_i8(wp, bias, q, rows, cols);
    for (int t = 0; t < T; t++) {
        for (int c = 0; c < cols; c++) x[c] = rand_float();
        xs[t] = mgk_quantize_activation_path(xu + (size_t)t * cols4, x, cols, cols4, MGK_PATH_PORTABLE);
    }
    for (int i = 0; i < T * ldo; i++) init[i] = rand_float();
    uint64_t h = 1469598103934665603ull;
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        memcpy(ref, init, 4 * (size_t)T * ldo);
        for (int t = 0; t < T; t++)
            mgk_matvec_i8(ref + (size_t)t * ldo, wp, ws, bias, xu + (size_t)t * cols4, xs[t], rows, cols4, accumulate, MGK_PATH_PORTABLE);
        for (int p = MGK_PATH_PORTABLE; p < MGK_PATH_COUNT; p++) {
            if (!mgk_path_supported(p)) continue;
            memcpy(out, init, 4 * (size_t)T * ldo);
            mgk_matmul_i8(out, ldo, wp, ws, bias, xu, xs, T, rows, cols4, accumulate, p);
            check(memcmp(out, ref, 4 * (size_t)T * ldo) == 0, accumulate ? "int8 GEMM (accumulate) = T matvecs" : "int8 GEMM = T matvecs",
                  mgk_path_name(p), rows, cols * 1000 + T);
            if (p != MGK_PATH_PORTABLE) continue;
            h = fnv1a(h, out, 4 * (size_t)T * ldo);
        }
    }
    free(q); free(wp); free(bias); free(ws); free(x); free(xs); free(ref); free(out); free(init); free(xu);
    return h;
}

// Batched prefill, FP32: mgk_matmul_f32 against T calls of mgk_matvec_f32 of the same path (within
// rounding: leftover panels of a matvec sum in two chains) and the portable one bit for bit.
static void run_gemm_f32_case(int rows, int cols, int T) {
    const int ldo = rows + 1, ldx = cols + 2;
    float *w = aligned(4 * (size_t)rows * cols), *wp = aligned(4 * (size_t)mgk_panel_f32_count(rows, cols));
    float *x = aligned(4 * (size_t)T * ldx), *ref = aligned(4 * (size_t)T * ldo), *out = aligned(4 * (size_t)T * ldo);
    for (int i = 0; i < rows * cols; i++) w[i] = (float)rand_int(-1000, 1000) / 1024.0f;
    for (int i = 0; i < T * ldx; i++) x[i] = (float)rand_int(-1000, 1000) / 1024.0f;
    mgk_pack_panel_f32(wp, w, rows, cols);
    for (int p = MGK_PATH_PORTABLE; p < MGK_PATH_COUNT; p++) {
        const mgk_fp32_kernels *k = mgk_fp32_kernels_for(p);
        if (!k) continue;
        for (int t = 0; t < T; t++) k->matvec(ref + (size_t)t * ldo, wp, x + (size_t)t * ldx, rows, cols, 0);
        k->matmul(out, ldo, wp, x, ldx, T, rows, cols, 0);
        int ok = 1;
        for (int t = 0; t < T; t++)
            for (int r = 0; r < rows; r++) {
                const float a = out[(size_t)t * ldo + r], b = ref[(size_t)t * ldo + r];
                if (p == MGK_PATH_PORTABLE ? a != b : fabsf(a - b) > 1e-4f * sqrtf((float)cols)) ok = 0;
            }
        check(ok, p == MGK_PATH_PORTABLE ? "fp32 GEMM = T matvecs (bitwise)" : "fp32 GEMM = T matvecs", mgk_path_name(p), rows, cols * 1000 + T);
    }
    free(w); free(wp); free(x); free(ref); free(out);
}

// Batched prefill attention: for every path's KV kernels, the causal block kernel (T tokens × G heads
// after n0 cached positions) must equal the decode group kernel run token by token (n0 + t + 1
// positions each) bit for bit, outputs and probabilities, over FP16 and INT8 caches.
static void run_attention_case(int T, int G, int n0, int hd) {
    const int n = n0 + T, cap = n + 5, pstride = cap, ldq = G * hd + 3, ldo = G * hd + 1;
    int8_t *k8 = aligned((size_t)hd * cap), *v8 = aligned((size_t)cap * hd);
    uint16_t *k16 = aligned(2 * (size_t)hd * cap), *v16 = aligned(2 * (size_t)cap * hd);
    float *ks = aligned(4 * (size_t)cap), *vs = aligned(4 * (size_t)cap), *q = aligned(4 * (size_t)T * ldq);
    float *ob = aligned(4 * (size_t)T * ldo), *pb = aligned(4 * (size_t)T * G * pstride);
    float *og = aligned(4 * (size_t)G * hd), *pg = aligned(4 * (size_t)G * pstride), *col = aligned(4 * (size_t)hd);
    for (int s = 0; s < cap; s++) {  // one position at a time through the store kernels, as a cache fills
        for (int i = 0; i < hd; i++) col[i] = (float)rand_int(-2048, 2048) / 1024.0f;
        ks[s] = mgk_kv_store_i8(k8 + s, cap, col, hd);
        mgk_kv_store_f16(k16 + s, cap, col, hd);
        for (int i = 0; i < hd; i++) col[i] = (float)rand_int(-2048, 2048) / 1024.0f;
        vs[s] = mgk_kv_store_i8(v8 + (size_t)s * hd, 1, col, hd);
        mgk_kv_store_f16(v16 + (size_t)s * hd, 1, col, hd);
    }
    for (int i = 0; i < T * ldq; i++) q[i] = (float)rand_int(-2048, 2048) / 1024.0f;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int p = MGK_PATH_PORTABLE; p < MGK_PATH_COUNT; p++) {
        const mgk_kv_kernels *kk = mgk_kv_kernels_for(p);
        if (!kk) continue;
        for (int dt = 0; dt < 2; dt++) {
            memset(pb, 0xCD, 4 * (size_t)T * G * pstride);
            if (dt) kk->attention_block_i8(ob, ldo, pb, pstride, q, ldq, k8, ks, v8, vs, T, G, n0, hd, cap, scale);
            else kk->attention_block_f16(ob, ldo, pb, pstride, q, ldq, k16, v16, T, G, n0, hd, cap, scale);
            int ok = 1;
            for (int t = 0; t < T; t++) {
                const int nt = n0 + t + 1;
                if (dt) kk->attention_group_i8(og, pg, pstride, q + (size_t)t * ldq, k8, ks, v8, vs, G, nt, hd, cap, scale);
                else kk->attention_group_f16(og, pg, pstride, q + (size_t)t * ldq, k16, v16, G, nt, hd, cap, scale);
                for (int g = 0; g < G; g++) {
                    if (memcmp(ob + (size_t)t * ldo + (size_t)g * hd, og + (size_t)g * hd, 4 * (size_t)hd) != 0) ok = 0;
                    const float *pr = pb + (size_t)(t * G + g) * pstride;
                    if (memcmp(pr, pg + (size_t)g * pstride, 4 * (size_t)nt) != 0) ok = 0;
                    for (int s = nt; s < n; s++) if (pr[s] != 0) ok = 0;
                }
            }
            check(ok, dt ? "int8 KV block attention = per-token group (bitwise)" : "fp16 KV block attention = per-token group (bitwise)",
                  mgk_path_name(p), T * 100 + G, n0 * 1000 + hd);
        }
    }
    // FP32 cache (fp32.c): the same contract, keys transposed (hd, cap), values (cap, hd).
    float *k32 = aligned(4 * (size_t)hd * cap), *v32 = aligned(4 * (size_t)cap * hd);
    for (int i = 0; i < hd * cap; i++) { k32[i] = (float)rand_int(-2048, 2048) / 1024.0f; v32[i] = (float)rand_int(-2048, 2048) / 1024.0f; }
    for (int p = MGK_PATH_PORTABLE; p < MGK_PATH_COUNT; p++) {
        const mgk_fp32_kernels *kf = mgk_fp32_kernels_for(p);
        if (!kf) continue;
        memset(pb, 0xCD, 4 * (size_t)T * G * pstride);
        kf->attention_block(ob, ldo, pb, pstride, q, ldq, k32, v32, T, G, n0, hd, cap, scale);
        int ok = 1;
        for (int t = 0; t < T; t++) {
            const int nt = n0 + t + 1;
            kf->attention_group(og, pg, pstride, q + (size_t)t * ldq, k32, v32, G, nt, hd, cap, scale);
            for (int g = 0; g < G; g++) {
                if (memcmp(ob + (size_t)t * ldo + (size_t)g * hd, og + (size_t)g * hd, 4 * (size_t)hd) != 0) ok = 0;
                const float *pr = pb + (size_t)(t * G + g) * pstride;
                if (memcmp(pr, pg + (size_t)g * pstride, 4 * (size_t)nt) != 0) ok = 0;
                for (int s = nt; s < n; s++) if (pr[s] != 0) ok = 0;
            }
        }
        check(ok, "fp32 block attention = per-token group (bitwise)", mgk_path_name(p), T * 100 + G, n0 * 1000 + hd);
    }
    free(k32); free(v32);
    free(k8); free(v8); free(k16); free(v16); free(ks); free(vs); free(q); free(ob); free(pb); free(og); free(pg); free(col);
}

// KV stores: every path's single-position INT8 store (strided and contiguous) must write the portable
// bytes and scale, and every path's block store of T positions (batched prefill) the same bytes and
// scales as T single stores: random values, exact ties, an all-zero position, an infinity and a NaN.
static void run_kv_store_case(int T, int hd) {
    const int ld = 2 * hd + 3, cap = T + 7;
    float *kin = aligned(4 * (size_t)T * ld), *vin = aligned(4 * (size_t)T * ld);
    int8_t *kr = aligned((size_t)hd * cap), *vr = aligned((size_t)cap * hd), *kb = aligned((size_t)hd * cap), *vb = aligned((size_t)cap * hd);
    float *ksr = aligned(4 * (size_t)cap), *vsr = aligned(4 * (size_t)cap), *ksb = aligned(4 * (size_t)cap), *vsb = aligned(4 * (size_t)cap);
    for (int i = 0; i < T * ld; i++) { kin[i] = rand_float(); vin[i] = rand_float(); }
    if (T > 2) {
        for (int i = 0; i < hd; i++) kin[(size_t)1 * ld + i] = 0;   // all-zero key at position 1
        vin[(size_t)2 * ld + hd / 2] = INFINITY;                        // a non-finite value at position 2
    }
    if (T > 4) kin[(size_t)4 * ld + 1] = NAN;                          // a NaN key at position 4
    for (int i = 0; i < T * ld; i += 7) if (i % ld < hd) kin[i] = 0.5f * (float)(i % 5);  // some ties
    const mgk_kv_kernels *ref = mgk_kv_kernels_for(MGK_PATH_PORTABLE);
    memset(kr, 0x5A, (size_t)hd * cap); memset(vr, 0x5A, (size_t)cap * hd);
    for (int j = 0; j < T; j++) {
        ksr[j] = ref->store_i8(kr + j, cap, kin + (size_t)j * ld, hd);
        vsr[j] = ref->store_i8(vr + (size_t)j * hd, 1, vin + (size_t)j * ld, hd);
    }
    for (int p = MGK_PATH_PORTABLE; p < MGK_PATH_COUNT; p++) {
        const mgk_kv_kernels *kk = mgk_kv_kernels_for(p);
        if (!kk) continue;
        memset(kb, 0x5A, (size_t)hd * cap); memset(vb, 0x5A, (size_t)cap * hd);
        int ok = 1;
        for (int j = 0; j < T; j++) {
            const float a = kk->store_i8(kb + j, cap, kin + (size_t)j * ld, hd), b = kk->store_i8(vb + (size_t)j * hd, 1, vin + (size_t)j * ld, hd);
            if (memcmp(&a, ksr + j, 4) != 0 || memcmp(&b, vsr + j, 4) != 0) ok = 0;
        }
        ok = ok && memcmp(kb, kr, (size_t)hd * cap) == 0 && memcmp(vb, vr, (size_t)cap * hd) == 0;
        check(ok, "int8 KV store = portable (bytes, scales)", mgk_path_name(p), T, hd);
        memset(kb, 0x5A, (size_t)hd * cap); memset(vb, 0x5A, (size_t)cap * hd);
        kk->store_block_i8(kb, ksb, vb, vsb, cap, kin, vin, ld, T, hd);
        ok = memcmp(kb, kr, (size_t)hd * cap) == 0 && memcmp(vb, vr, (size_t)cap * hd) == 0 &&
             memcmp(ksb, ksr, 4 * (size_t)T) == 0 && memcmp(vsb, vsr, 4 * (size_t)T) == 0;
        check(ok, "int8 KV block store = T single stores", mgk_path_name(p), T, hd);
    }
    free(kin); free(vin); free(kr); free(vr); free(kb); free(vb); free(ksr); free(vsr); free(ksb); free(vsb);
}

// KV re-rotation after eviction (INT8 keys): every path must write the portable bytes and scales for
// n positions of a transposed cache (row stride cap): random keys, an all-zero key, a zero scale, a
// subnormal scale (127 / amax overflows), an infinite scale (NaN keys), odd head sizes (the last
// dimension is not rotated) and position counts around the 8-position vector block.
static void run_kv_rotate_case(int n, int hd) {
    const int cap = n + 5, half = hd / 2;
    int8_t *k0 = aligned((size_t)hd * cap), *kr = aligned((size_t)hd * cap), *kb = aligned((size_t)hd * cap);
    float *ks0 = aligned(4 * (size_t)cap), *ksr = aligned(4 * (size_t)cap), *ksb = aligned(4 * (size_t)cap);
    float *cs = aligned(4 * (size_t)(half + 1)), *sn = aligned(4 * (size_t)(half + 1));
    for (int i = 0; i < hd * cap; i++) k0[i] = (int8_t)rand_int(-127, 127);
    for (int s = 0; s < cap; s++) ks0[s] = (float)rand_int(1, 4000) / 65536.0f;
    for (int i = 0; i < half; i++) { cs[i] = cosf(0.37f * (float)(i + 1)); sn[i] = sinf(0.37f * (float)(i + 1)); }
    if (n > 3) { for (int i = 0; i < hd; i++) k0[(size_t)i * cap + 1] = 0; ks0[3] = 0; }
    if (n > 9) ks0[9] = 1e-42f;
    if (n > 12) ks0[12] = INFINITY;
    const mgk_kv_kernels *ref = mgk_kv_kernels_for(MGK_PATH_PORTABLE);
    memcpy(kr, k0, (size_t)hd * cap); memcpy(ksr, ks0, 4 * (size_t)cap);
    ref->rotate_back_i8(kr, ksr, cap, n, cs, sn, hd);
    for (int p = MGK_PATH_PORTABLE; p < MGK_PATH_COUNT; p++) {
        const mgk_kv_kernels *kk = mgk_kv_kernels_for(p);
        if (!kk) continue;
        memcpy(kb, k0, (size_t)hd * cap); memcpy(ksb, ks0, 4 * (size_t)cap);
        kk->rotate_back_i8(kb, ksb, cap, n, cs, sn, hd);
        check(memcmp(kb, kr, (size_t)hd * cap) == 0 && memcmp(ksb, ksr, 4 * (size_t)cap) == 0,
              "int8 KV re-rotation = portable (bytes, scales)", mgk_path_name(p), n, hd);
    }
    free(k0); free(kr); free(kb); free(ks0); free(ksr); free(ksb); free(cs); free(sn);
}

int main(int argc, char **argv) {
    const char *write_path = NULL, *check_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--write") == 0) write_path = argv[i + 1];
        else if (strcmp(argv[i], "--check") == 0) check_path = argv[i + 1];
    }
    char paths[96];
    mgk_supported_paths(paths, sizeof paths);
    printf("kernel paths on this CPU: %s\n", paths);
    // Rows not a multiple of 16, columns not a multiple of 4, 16 or 32, and the model's shapes.
    static const int shapes[][2] = {{1, 1}, {1, 3}, {5, 20}, {16, 16}, {17, 33}, {31, 7}, {33, 65}, {48, 127},
                                    {64, 128}, {96, 7}, {80, 130}, {128, 320}, {320, 128}, {129, 257}, {512, 128}, {7, 1001}};
    const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    int ncases = 0;
    rng_state = 0x9E3779B97F4A7C15ull;
    for (int s = 0; s < nshapes; s++)
        for (int kind = 0; kind < 3; kind++) {
            const int wk = kind == 1, ak = kind;  // (random, random), (±127, ±max), (random, ties)
            sums[ncases++] = run_case(shapes[s][0], shapes[s][1], wk, ak);
        }
    // GEMM shapes: the model's matrices, odd rows / columns, and token counts around the tile sizes.
    static const int gemm[][3] = {{256, 128, 12}, {640, 128, 13}, {128, 320, 16}, {17, 33, 5}, {33, 7, 3}, {48, 130, 1},
                                  {96, 65, 2}, {512, 128, 7}, {7, 1001, 4}, {31, 257, 9},
                                  // VNNI tiles of ≤ 4 panels × ≤ 6 tokens: 1–3 leftover panels, uneven token splits
                                  {128, 128, 11}, {80, 64, 6}, {112, 40, 19}, {49, 128, 24}};
    for (size_t g = 0; g < sizeof gemm / sizeof gemm[0]; g++) sums[ncases++] = run_gemm_case(gemm[g][0], gemm[g][1], gemm[g][2]);
    static const int gemm_f32[][3] = {{256, 128, 12}, {384, 128, 1}, {80, 33, 13}, {17, 5, 6}, {128, 320, 16}};
    for (size_t g = 0; g < sizeof gemm_f32 / sizeof gemm_f32[0]; g++) run_gemm_f32_case(gemm_f32[g][0], gemm_f32[g][1], gemm_f32[g][2]);
    // Attention: (T, G, n0, hd) incl. the model's (12, 2, 127, 32), positions not multiples of 8 or
    // 16, a head size that is not a multiple of 16 (24) or of 8 (12: the generic fallback).
    static const int att[][4] = {{12, 2, 127, 32}, {1, 2, 0, 32}, {3, 1, 5, 32}, {16, 4, 40, 32}, {5, 3, 17, 24},
                                 {7, 2, 300, 32}, {4, 2, 9, 12}, {13, 1, 250, 64}, {2, 2, 255, 32},
                                 // the AVX-512 fast block kernel: 8-row score tiles with 1–7 leftover rows, a 16-position
                                 // last block, head sizes 16, 48 and 128, and the largest chunk its scratch takes
                                 {11, 2, 133, 32}, {9, 3, 20, 16}, {16, 4, 170, 32}, {6, 1, 60, 128}, {3, 2, 45, 48},
                                 // the AVX2 block kernel's converted K/V (more than 4 rows): head size 8, the largest
                                 // chunk its scratch takes (190 positions, hd 32), one past it (193: the cache directly),
                                 // a long cache, 5 rows (a 6-row score tile short by one), head size 40 (a last 8-dim slice)
                                 {5, 2, 3, 8}, {3, 2, 187, 32}, {3, 2, 190, 32}, {4, 1, 400, 32}, {5, 1, 30, 32}, {12, 2, 127, 40}};
    for (size_t a = 0; a < sizeof att / sizeof att[0]; a++) run_attention_case(att[a][0], att[a][1], att[a][2], att[a][3]);
    // KV stores (T, hd): the model's (12, 32), a partial and a second pass of 16, odd head sizes, and
    // a head wider than the vector block path (200).
    static const int kvs[][2] = {{12, 32}, {1, 32}, {5, 24}, {16, 32}, {20, 12}, {7, 64}, {3, 200}, {17, 128}, {9, 7}, {5, 120}};
    for (size_t a = 0; a < sizeof kvs / sizeof kvs[0]; a++) run_kv_store_case(kvs[a][0], kvs[a][1]);
    // Re-rotation (n, hd): the daemon's eviction (91, 32), below, at and around the 8-position block.
    static const int rot[][2] = {{91, 32}, {1, 32}, {7, 32}, {8, 32}, {16, 16}, {23, 7}, {40, 64}, {13, 9}, {100, 128}};
    for (size_t a = 0; a < sizeof rot / sizeof rot[0]; a++) run_kv_rotate_case(rot[a][0], rot[a][1]);
    if (write_path) {
        FILE *f = fopen(write_path, "w");
        if (!f) { perror(write_path); return 2; }
        for (int i = 0; i < ncases; i++) fprintf(f, "%d %016llx\n", i, (unsigned long long)sums[i]);
        fclose(f);
        printf("wrote %d checksums to %s\n", ncases, write_path);
    }
    if (check_path) {
        FILE *f = fopen(check_path, "r");
        if (!f) { perror(check_path); return 2; }
        int id, seen = 0;
        unsigned long long h;
        while (fscanf(f, "%d %llx", &id, &h) == 2) {
            seen++;
            if (id < 0 || id >= ncases || sums[id] != h) { failed++; printf("FAIL checksum of case %d differs from %s\n", id, check_path); }
            else passed++;
        }
        fclose(f);
        if (seen != ncases) { failed++; printf("FAIL %s holds %d checksums, expected %d\n", check_path, seen, ncases); }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
