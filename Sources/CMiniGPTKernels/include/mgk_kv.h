#ifndef MGK_KV_H
#define MGK_KV_H
#include <stdint.h>
// Reduced-precision KV cache kernels (kv.c): the FP16 and INT8 twins of the FP32 attention kernels
// (mgk_fp32.h), plus the per-position store / load / re-rotation a cache needs. Outputs first.
//
// Layout is the FP32 cache's: keys transposed, k (hd, kstride) — lanes run over positions — and
// values row by row, v (n, hd). FP16 elements are IEEE binary16 bit patterns (uint16_t).
// INT8 is symmetric with one FP32 scale per (layer, kv-head, position) for keys (ks[s]) and for
// values (vs[s]): x ≈ q·s, s = max|x|/127 over that position's hd values, |x − q·s| ≤ s/2.
// Kernels dequantize on the fly inside the score and weighted-sum loops (no scratch copy of the
// cache): an INT8 key's scale is one multiply per 16 scores, a value's is folded into p[s]·vs[s].

/// Writes x (n) as FP16 to out[i·stride] (round to nearest even).
void mgk_kv_store_f16(uint16_t *out, int stride, const float *x, int n);
/// Quantizes x (n) to out[i·stride] (symmetric INT8, |q| ≤ 127); returns the scale (0 if x = 0).
/// Every path stores the same bytes and scale (the vector paths do the scalar operations per lane;
/// an input holding a NaN takes the scalar loop, which skips it in max |x| and stores it as 0).
float mgk_kv_store_i8(int8_t *out, int stride, const float *x, int n);
/// T consecutive positions at once (batched prefill): key j (kin + j·ld, hd values) to column j of
/// k (hd, kstride) with its scale in ks[j], value j (vin + j·ld) to row j of v (T, hd) with vs[j].
/// The same bytes and scales as 2·T mgk_kv_store_i8 calls, in one call (keys quantized contiguously,
/// then written column by column).
void mgk_kv_store_block_i8(int8_t *k, float *ks, int8_t *v, float *vs, int kstride, const float *kin, const float *vin,
                           int ld, int T, int hd);
/// out (n) = the FP16 values x[i·stride] as floats.
void mgk_kv_load_f16(float *out, const uint16_t *x, int stride, int n);
/// out (n) = x[i·stride] · scale.
void mgk_kv_load_i8(float *out, const int8_t *x, int stride, float scale, int n);

/// Rotates the n cached keys in columns 0..<n of k (hd, kstride) by −θ, where cos/sin (hd/2) hold
/// cos θᵢ, sin θᵢ of each RoPE pair (i, i + hd/2): the re-rotation of StreamingLLM eviction.
/// Computed in FP32, rounded back to FP16 once per call (error ≤ 2⁻¹¹ relative per eviction).
void mgk_kv_rotate_back_f16(uint16_t *k, int kstride, int n, const float *cos, const float *sin, int hd);
/// As mgk_kv_rotate_back_f16 for INT8 keys: each column is dequantized with ks[s], rotated in FP32
/// and requantized with a fresh scale (error ≤ new scale / 2 per eviction, on top of the old).
void mgk_kv_rotate_back_i8(int8_t *k, float *ks, int kstride, int n, const float *cos, const float *sin, int hd);

/// mgk_attention_group_f32 over an FP16 cache: out (G, hd), p (G, pstride), q (G, hd).
void mgk_attention_group_f16(float *out, float *p, int pstride, const float *q, const uint16_t *k, const uint16_t *v,
                             int G, int n, int hd, int kstride, float scale);
/// mgk_attention_group_f32 over an INT8 cache with per-position scales ks (n), vs (n).
void mgk_attention_group_i8(float *out, float *p, int pstride, const float *q, const int8_t *k, const float *ks,
                            const int8_t *v, const float *vs, int G, int n, int hd, int kstride, float scale);
/// mgk_attention_block_f32 (causal, T tokens × G heads) over an FP16 cache. On every path each row
/// (token, head) is bit-identical to mgk_attention_group_f16 over that token's n0 + t + 1 positions
/// (the same per-lane operations; the block kernel only shares the K / V loads between rows), and
/// likewise for INT8: batched prefill reproduces step-by-step decoding exactly.
void mgk_attention_block_f16(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                             const uint16_t *k, const uint16_t *v, int T, int G, int n0, int hd, int kstride, float scale);
/// mgk_attention_block_f32 (causal, T tokens × G heads) over an INT8 cache.
void mgk_attention_block_i8(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                            const int8_t *k, const float *ks, const int8_t *v, const float *vs,
                            int T, int G, int n0, int hd, int kstride, float scale);

/// One instruction set's instance of every kernel above (the functions above call the selected
/// path's table; tests call each path's table and compare). Paths map as in mgk_fp32_kernels_for.
typedef struct mgk_kv_kernels {
    void (*store_f16)(uint16_t *out, int stride, const float *x, int n);
    float (*store_i8)(int8_t *out, int stride, const float *x, int n);
    void (*load_f16)(float *out, const uint16_t *x, int stride, int n);
    void (*load_i8)(float *out, const int8_t *x, int stride, float scale, int n);
    void (*rotate_back_f16)(uint16_t *k, int kstride, int n, const float *cos, const float *sin, int hd);
    void (*rotate_back_i8)(int8_t *k, float *ks, int kstride, int n, const float *cos, const float *sin, int hd);
    void (*attention_group_f16)(float *out, float *p, int pstride, const float *q, const uint16_t *k, const uint16_t *v,
                                int G, int n, int hd, int kstride, float scale);
    void (*attention_group_i8)(float *out, float *p, int pstride, const float *q, const int8_t *k, const float *ks,
                               const int8_t *v, const float *vs, int G, int n, int hd, int kstride, float scale);
    void (*attention_block_f16)(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                                const uint16_t *k, const uint16_t *v, int T, int G, int n0, int hd, int kstride, float scale);
    void (*attention_block_i8)(float *out, int ldo, float *p, int pstride, const float *q, int ldq,
                               const int8_t *k, const float *ks, const int8_t *v, const float *vs,
                               int T, int G, int n0, int hd, int kstride, float scale);
    void (*store_block_i8)(int8_t *k, float *ks, int8_t *v, float *vs, int kstride, const float *kin, const float *vin,
                           int ld, int T, int hd);
} mgk_kv_kernels;

/// The KV kernels of `path` (AUTO = the selected path), or NULL when this CPU cannot run it.
const mgk_kv_kernels *mgk_kv_kernels_for(int path);
#endif
