// The C kernels tested on their own, without Swift: built for x86-64 by the host compiler and for
// aarch64 by gcc-aarch64-linux-gnu (run under qemu-aarch64), see scripts/test-arm-kernels.sh.
//
// Seeded integer-only inputs (so every ISA sees the same floats), then for every kernel path the CPU
// supports: the activation quantizer's bytes and the INT8 products' int32 sums must equal the
// portable path's bit for bit, and the portable sums must equal a naive row-major loop. With
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

enum { MAX_CASES = 64 };
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
