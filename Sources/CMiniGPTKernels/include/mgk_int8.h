#ifndef MGK_INT8_H
#define MGK_INT8_H
#include <stdint.h>
#include "mgk_dispatch.h"
// INT8 weight × FP32 activation kernels (int8.c), phases 5/6.
//
// Weights: symmetric per-output-row int8 q (|q| ≤ 127) with a float scale s_r, w ≈ q·s_r.
// Activations: quantized per call, symmetric, one scale s_x = max|x|/127, stored offset by +128 as
// u8 (xu = xq + 128) because VNNI's vpdpbusd multiplies u8 × s8; the offset is removed exactly with
// a per-row bias 128·Σ_c q[r][c] computed at pack time. Every path computes the same int32
//   acc[r] = Σ_c q[r][c] · xq[c]
// bit for bit; the float epilogue is out[r] (+)= (float)acc[r] · s_r · s_x in that order.
//
// Panel layout: rows padded to 16, cols padded to 4 (cols4); panel b holds 16 rows as
// groups of 4 columns: wp[((b·cols4/4 + k)·16 + i)·4 + j] = q[16b + i][4k + j].

// Weights must satisfy |q| ≤ 127 (never −128): the sign-trick and NEON paths rely on it to keep
// their int16 pair sums below 32 767 (see int8.c). Activations may be any u8.

/// Kernel paths: the MGK_PATH_* values of mgk_dispatch.h (older names kept for callers).
enum { MGK_I8_AUTO = MGK_PATH_AUTO, MGK_I8_PORTABLE = MGK_PATH_PORTABLE, MGK_I8_AVX2 = MGK_PATH_AVX2, MGK_I8_VNNI = MGK_PATH_VNNI };

/// Whether `path` can run on this CPU (= mgk_path_supported).
int mgk_i8_path_supported(int path);
/// The path MGK_I8_AUTO resolves to (= mgk_selected_path).
int mgk_i8_best_path(void);

/// Bytes a panel-packed (rows, cols) int8 matrix occupies (rows → 16s, cols → 4s).
long mgk_panel_i8_count(int rows, int cols);
/// Packs row-major int8 `q` (rows, cols) into `wp` and writes bias[r] = 128·Σ_c q[r][c] (rows16 entries).
void mgk_pack_panel_i8(int8_t *wp, int32_t *bias, const int8_t *q, int rows, int cols);

/// Quantizes x (n) to xu (npad ≥ n, padding = 128, i.e. zero): returns the scale s_x (0 if x = 0).
/// xu[i] = clamp(round_half_even(x[i] · (127 / max|x|)), ±127) + 128 on every path, bit for bit
/// (for finite x; a non-finite max gives all-zero output and scale 0).
float mgk_quantize_activation(uint8_t *xu, const float *x, int n, int npad);
/// T rows at once (batched prefill): xs[t] = mgk_quantize_activation(xu + t·npad, x + t·ldx, n, npad).
void mgk_quantize_rows(uint8_t *xu, float *xs, const float *x, int ldx, int T, int n, int npad);
/// mgk_quantize_activation on one path's quantizer (tests compare them with the scalar one).
float mgk_quantize_activation_path(uint8_t *xu, const float *x, int n, int npad, int path);

/// Raw int32 products acc (rows16; rows past `rows` hold the zero rows' sums, 0) = Q · xq for one path (tests compare paths bit for bit).
void mgk_matvec_i8_acc(int32_t *acc, const int8_t *wp, const int32_t *bias, const uint8_t *xu,
                       int rows, int cols4, int path);

/// out (rows) [+]= dequant(Q · xq): the INT8 decode hot spot (path MGK_I8_AUTO in production).
void mgk_matvec_i8(float *out, const int8_t *wp, const float *wscale, const int32_t *bias,
                   const uint8_t *xu, float xscale, int rows, int cols4, int accumulate, int path);

/// out (T, ldo) [+]= per-token dequant(Q · xq_t) for T quantized tokens xu (T, cols4) with scales
/// xscale (T): batched prefill as a GEMM — each 16-row panel is loaded once per tile of tokens and
/// applied to all of them from registers (VNNI: ≤ 4 panels × ≤ 6 tokens; AVX2, AVX-VNNI and sdot: 4
/// tokens; plain NEON: 2); portable and AVX-512BW run T matvecs (their tiles were slower), and T = 1
/// is the matvec on every path. Equal to T calls of mgk_matvec_i8 on the same path bit for bit
/// (same int32 sums, same epilogue).
void mgk_matmul_i8(float *out, int ldo, const int8_t *wp, const float *wscale, const int32_t *bias,
                   const uint8_t *xu, const float *xscale, int T, int rows, int cols4, int accumulate, int path);
#endif
