#ifndef MGK_FP32_H
#define MGK_FP32_H
// FP32 decode kernels (fp32.c). Outputs first, then inputs, then dimensions (STYLE.md).
//
// Panel layout: a weight matrix W (rows, cols) is packed as ceil(rows/16) panels of 16 rows, each
// stored column-major: wp[(b·cols + c)·16 + i] = W[16b + i][c], missing rows of the last panel
// zero. One 64-byte load then holds column c of 16 output rows, so a matrix–vector product is one
// broadcast-FMA per 16 multiply-adds and needs no horizontal sums.

/// Floats a panel-packed (rows, cols) matrix occupies.
long mgk_panel_f32_count(int rows, int cols);
/// Packs row-major `w` (rows, cols) into panel layout `wp` (mgk_panel_f32_count floats).
void mgk_pack_panel_f32(float *wp, const float *w, int rows, int cols);

/// out (rows) [+]= W · x (cols), W panel-packed. The decode hot spot.
void mgk_matvec_f32(float *out, const float *wp, const float *x, int rows, int cols, int accumulate);

/// out (T, ldo) [+]= X (T, ldx) · Wᵀ: T tokens against one panel-packed W (rows, cols). Each panel
/// of 16 rows is read from memory once and reused from L1 for every token (batched prefill), on
/// every path (tiles of 4 tokens; 8 on AVX-512). Portable: equal to T matvecs bit for bit.
void mgk_matmul_f32(float *out, int ldo, const float *wp, const float *x, int ldx, int T, int rows, int cols, int accumulate);

/// One query head's attention over n cached positions: p (n) = softmax(scale · Kᵀ q), then
/// out (hd) = Σ_s p[s] · v[s]. Keys are stored transposed, k (hd, kstride): lanes run over
/// positions; values row by row, v (n, hd). p keeps the probabilities.
void mgk_attention_f32(float *out, float *p, const float *q, const float *k, const float *v,
                       int n, int hd, int kstride, float scale);

/// The G query heads of one GQA group against their shared KV head in one pass over K and V:
/// out (G, hd), p (G, pstride), q (G, hd); otherwise as mgk_attention_f32 (which it equals per head).
void mgk_attention_group_f32(float *out, float *p, int pstride, const float *q, const float *k, const float *v,
                             int G, int n, int hd, int kstride, float scale);

/// Causal attention of T tokens × G query heads (one GQA group) against their KV head, for batched
/// prefill: token t sees the first n0 + t + 1 cached positions (its own K/V already appended).
/// Row (t, g): q at q + t·ldq + g·hd, output at out + t·ldo + g·hd, probabilities at
/// p + (t·G + g)·pstride (pstride ≥ n0 + T; entries past the row's own length are zeroed).
/// Each 32-position block of K is read once for all T·G queries; equals mgk_attention_f32 per row.
void mgk_attention_block_f32(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                             const float *k, const float *v, int T, int G, int n0, int hd, int kstride, float scale);

/// In-place softmax over n values (max-subtracted).
void mgk_softmax_f32(float *x, int n);
/// g ← silu(g) ⊙ u over n values (SwiGLU).
void mgk_swiglu_f32(float *g, const float *u, int n);
/// e^x elementwise (the polynomial the vector kernels use), out may alias x.
void mgk_exp_f32(float *out, const float *x, int n);
/// RMSNorm: out (n) = x · (1 / √(mean(x²) + eps)) · weight, with exactly the Swift engine's
/// arithmetic on every path (Kernels.swift `rmsnormSwift`): x² summed in 16 fused lanes over
/// i = 16k + lane, the lanes added in order from −0, the n mod 16 tail with a multiply then an add.
/// (In C so a build whose Swift code lacks hardware FMA does not pay a libm fmaf per lane.)
void mgk_rmsnorm_f32(float *out, const float *x, const float *weight, int n, float eps);
/// mgk_rmsnorm_f32 on T rows (batched prefill): row t of out (T, ldo) from row t of x (T, ldx).
void mgk_rmsnorm_rows_f32(float *out, int ldo, const float *x, int ldx, const float *weight, int T, int n, float eps);

/// One instruction set's instance of every kernel above (the functions above call the selected
/// path's table; tests call each path's table directly and compare them).
typedef struct mgk_fp32_kernels {
    void (*matvec)(float *out, const float *wp, const float *x, int rows, int cols, int accumulate);
    void (*matmul)(float *out, int ldo, const float *wp, const float *x, int ldx, int T, int rows, int cols, int accumulate);
    void (*attention)(float *out, float *p, const float *q, const float *k, const float *v, int n, int hd, int kstride, float scale);
    void (*attention_group)(float *out, float *p, int pstride, const float *q, const float *k, const float *v,
                            int G, int n, int hd, int kstride, float scale);
    void (*attention_block)(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                            const float *k, const float *v, int T, int G, int n0, int hd, int kstride, float scale);
    void (*softmax)(float *x, int n);
    void (*swiglu)(float *g, const float *u, int n);
    void (*exp)(float *out, const float *x, int n);
    void (*rmsnorm)(float *out, const float *x, const float *weight, int n, float eps);
} mgk_fp32_kernels;

/// The FP32 kernels of `path` (MGK_PATH_* of mgk_dispatch.h; AUTO = the selected path), or NULL
/// when this CPU cannot run it. vnni/avx512 share the AVX-512 instance, avx2/avxvnni the AVX2 one,
/// portable/neon/dotprod the generic C one.
const mgk_fp32_kernels *mgk_fp32_kernels_for(int path);
#endif
