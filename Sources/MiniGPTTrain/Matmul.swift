import Foundation
import MiniGPT

// The matmul op and the GEMM under it: the hot spot of training (≈ 90 % of the flops at the
// default shape).
// Shape legend: N rows (B·T tokens), IC input features, OC output features; weights are stored
// [out, in] like nn.Linear. The GEMM's own names: C (M, Nc) (+)= A (M, K) · B (K, Nc).
//
// The three products of a linear layer are all cast as one row-major kernel C (M, Nc) (+)= A (M, K) ·
// B (K, Nc) (`gemm`), transposing an operand into a workspace first where needed:
//   forward  out (N, OC)  = inp (N, IC) · wᵀ      → B = wᵀ (IC, OC), transposed once per call
//   backward dinp (N, IC) += dout (N, OC) · w     → B = w as stored
//   backward dw (OC, IC)  += doutᵀ · inp (N, IC)  → A = doutᵀ (OC, N), transposed once per call
// Transposes cost O(rows·cols) moves against O(rows·cols·K) multiply-adds.

/// Scratch for the transposed operands of `matmulForward` / `matmulBackward` (one per thread):
/// the engine's aligned `FloatBuffer`.
public typealias GemmWorkspace = FloatBuffer

/// out (rows, cols) = in (cols, rows)ᵀ, in 16×16 tiles for cache locality.
@inline(__always) func transpose(_ out: FloatPtr, _ inp: ConstFloatPtr, rows: Int, cols: Int) {
    transposeStrided(out, ldo: cols, inp, ldi: rows, rows: rows, cols: cols)
}

/// out[r·ldo + c] = inp[c·ldi + r] for r < rows, c < cols, in 16×16 tiles.
func transposeStrided(_ out: FloatPtr, ldo: Int, _ inp: ConstFloatPtr, ldi: Int, rows: Int, cols: Int) {
    let tile = 16
    var r0 = 0
    while r0 < rows {
        let r1 = min(r0 + tile, rows)
        var c0 = 0
        while c0 < cols {
            let c1 = min(c0 + tile, cols)
            // Contiguous writes, strided reads: the vectoriser then emits gathers, not the much
            // slower scatters (measured with perf: scatters were ~5 % of a training step).
            for r in r0..<r1 {
                for c in c0..<c1 { out[r * ldo + c] = inp[c * ldi + r] }
            }
            c0 = c1
        }
        r0 = r1
    }
}

/// C (M, Nc) = A (M, K) · B (K, Nc), or += when `accumulate`; row-major with leading dimensions
/// lda, ldb, ldc. Register-blocked 8 rows × 32 columns (16 SIMD16 accumulators, 2 B vectors,
/// 1 broadcast: AVX-512 FMAs under -Ounchecked -target-cpu native), then 4 × 32; rows outer so
/// the A rows stay in L1 while the B panels stream from L2. Remainders take 16-wide and scalar paths.
/// Every C element is a sum over k in increasing order: results do not depend on blocking.
func gemm(_ c: FloatPtr, ldc: Int, _ a: ConstFloatPtr, lda: Int, _ b: ConstFloatPtr, ldb: Int,
          M: Int, Nc: Int, K: Int, accumulate: Bool) {
    let zero = SIMD16<Float>(repeating: 0)
    var i = 0
    // 8 rows × 32 columns: 16 accumulators, 2 B vectors and a broadcast fit AVX-512's 32 registers;
    // 16 FMAs per 2 B loads + 8 broadcasts.
    while i + 8 <= M && Nc >= 32 {
        let a0 = a + i * lda
        let c0 = c + i * ldc
        var j = 0
        while j + 32 <= Nc {
            var x0 = zero, x1 = zero, x2 = zero, x3 = zero, x4 = zero, x5 = zero, x6 = zero, x7 = zero
            var y0 = zero, y1 = zero, y2 = zero, y3 = zero, y4 = zero, y5 = zero, y6 = zero, y7 = zero
            if accumulate {
                x0 = load16(c0 + j); y0 = load16(c0 + j + 16)
                x1 = load16(c0 + ldc + j); y1 = load16(c0 + ldc + j + 16)
                x2 = load16(c0 + 2 * ldc + j); y2 = load16(c0 + 2 * ldc + j + 16)
                x3 = load16(c0 + 3 * ldc + j); y3 = load16(c0 + 3 * ldc + j + 16)
                x4 = load16(c0 + 4 * ldc + j); y4 = load16(c0 + 4 * ldc + j + 16)
                x5 = load16(c0 + 5 * ldc + j); y5 = load16(c0 + 5 * ldc + j + 16)
                x6 = load16(c0 + 6 * ldc + j); y6 = load16(c0 + 6 * ldc + j + 16)
                x7 = load16(c0 + 7 * ldc + j); y7 = load16(c0 + 7 * ldc + j + 16)
            }
            var pb = b + j
            for k in 0..<K {
                let b0 = load16(pb), b1 = load16(pb + 16)
                pb += ldb
                var s = SIMD16<Float>(repeating: a0[k]); x0.addProduct(s, b0); y0.addProduct(s, b1)
                s = SIMD16<Float>(repeating: a0[lda + k]); x1.addProduct(s, b0); y1.addProduct(s, b1)
                s = SIMD16<Float>(repeating: a0[2 * lda + k]); x2.addProduct(s, b0); y2.addProduct(s, b1)
                s = SIMD16<Float>(repeating: a0[3 * lda + k]); x3.addProduct(s, b0); y3.addProduct(s, b1)
                s = SIMD16<Float>(repeating: a0[4 * lda + k]); x4.addProduct(s, b0); y4.addProduct(s, b1)
                s = SIMD16<Float>(repeating: a0[5 * lda + k]); x5.addProduct(s, b0); y5.addProduct(s, b1)
                s = SIMD16<Float>(repeating: a0[6 * lda + k]); x6.addProduct(s, b0); y6.addProduct(s, b1)
                s = SIMD16<Float>(repeating: a0[7 * lda + k]); x7.addProduct(s, b0); y7.addProduct(s, b1)
            }
            store16(c0 + j, x0); store16(c0 + j + 16, y0)
            store16(c0 + ldc + j, x1); store16(c0 + ldc + j + 16, y1)
            store16(c0 + 2 * ldc + j, x2); store16(c0 + 2 * ldc + j + 16, y2)
            store16(c0 + 3 * ldc + j, x3); store16(c0 + 3 * ldc + j + 16, y3)
            store16(c0 + 4 * ldc + j, x4); store16(c0 + 4 * ldc + j + 16, y4)
            store16(c0 + 5 * ldc + j, x5); store16(c0 + 5 * ldc + j + 16, y5)
            store16(c0 + 6 * ldc + j, x6); store16(c0 + 6 * ldc + j + 16, y6)
            store16(c0 + 7 * ldc + j, x7); store16(c0 + 7 * ldc + j + 16, y7)
            j += 32
        }
        if j < Nc {
            // Column remainder (< 32) of this 8-row band: the 4-row paths below (Nc < 32 there).
            gemm(c0 + j, ldc: ldc, a0, lda: lda, b + j, ldb: ldb, M: 8, Nc: Nc - j, K: K, accumulate: accumulate)
        }
        i += 8
    }
    while i + 4 <= M {
        let a0 = a + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda
        let c0 = c + i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc
        var j = 0
        while j + 32 <= Nc {
            var x00 = zero, x01 = zero, x10 = zero, x11 = zero
            var x20 = zero, x21 = zero, x30 = zero, x31 = zero
            if accumulate {
                x00 = load16(c0 + j); x01 = load16(c0 + j + 16)
                x10 = load16(c1 + j); x11 = load16(c1 + j + 16)
                x20 = load16(c2 + j); x21 = load16(c2 + j + 16)
                x30 = load16(c3 + j); x31 = load16(c3 + j + 16)
            }
            var pb = b + j
            for k in 0..<K {
                let b0 = load16(pb), b1 = load16(pb + 16)
                pb += ldb
                let s0 = SIMD16<Float>(repeating: a0[k]), s1 = SIMD16<Float>(repeating: a1[k])
                let s2 = SIMD16<Float>(repeating: a2[k]), s3 = SIMD16<Float>(repeating: a3[k])
                x00.addProduct(s0, b0); x01.addProduct(s0, b1)
                x10.addProduct(s1, b0); x11.addProduct(s1, b1)
                x20.addProduct(s2, b0); x21.addProduct(s2, b1)
                x30.addProduct(s3, b0); x31.addProduct(s3, b1)
            }
            store16(c0 + j, x00); store16(c0 + j + 16, x01)
            store16(c1 + j, x10); store16(c1 + j + 16, x11)
            store16(c2 + j, x20); store16(c2 + j + 16, x21)
            store16(c3 + j, x30); store16(c3 + j + 16, x31)
            j += 32
        }
        while j + 16 <= Nc {
            var x0 = zero, x1 = zero, x2 = zero, x3 = zero
            if accumulate { x0 = load16(c0 + j); x1 = load16(c1 + j); x2 = load16(c2 + j); x3 = load16(c3 + j) }
            var pb = b + j
            for k in 0..<K {
                let b0 = load16(pb)
                pb += ldb
                x0.addProduct(SIMD16(repeating: a0[k]), b0); x1.addProduct(SIMD16(repeating: a1[k]), b0)
                x2.addProduct(SIMD16(repeating: a2[k]), b0); x3.addProduct(SIMD16(repeating: a3[k]), b0)
            }
            store16(c0 + j, x0); store16(c1 + j, x1); store16(c2 + j, x2); store16(c3 + j, x3)
            j += 16
        }
        if j < Nc { gemmScalar(c + i * ldc + j, ldc: ldc, a + i * lda, lda: lda, b + j, ldb: ldb, M: 4, Nc: Nc - j, K: K, accumulate: accumulate) }
        i += 4
    }
    if i < M {
        // Leftover rows: one at a time, 16 columns wide, then scalar.
        for r in i..<M {
            let ar = a + r * lda, cr = c + r * ldc
            var j = 0
            while j + 16 <= Nc {
                var x = accumulate ? load16(cr + j) : zero
                var pb = b + j
                for k in 0..<K { x.addProduct(SIMD16(repeating: ar[k]), load16(pb)); pb += ldb }
                store16(cr + j, x)
                j += 16
            }
            if j < Nc { gemmScalar(cr + j, ldc: ldc, ar, lda: lda, b + j, ldb: ldb, M: 1, Nc: Nc - j, K: K, accumulate: accumulate) }
        }
    }
}

/// The naive twin of `gemm` (same contract, same summation order per element): reference and
/// remainder path.
func gemmScalar(_ c: FloatPtr, ldc: Int, _ a: ConstFloatPtr, lda: Int, _ b: ConstFloatPtr, ldb: Int,
                M: Int, Nc: Int, K: Int, accumulate: Bool) {
    for i in 0..<M {
        for j in 0..<Nc {
            var s: Float = accumulate ? c[i * ldc + j] : 0
            for k in 0..<K { s = s.addingProduct(a[i * lda + k], b[k * ldb + j]) }
            c[i * ldc + j] = s
        }
    }
}

// MARK: - Matmul forward/backward (fast)

/// out (N, OC) = inp (N, IC) · w (OC, IC)ᵀ. `ws` holds at least IC·OC floats.
/// Rows of `out` are `ldOut` floats apart and rows of `inp` `ldIn` apart (default: dense), so a
/// column block of a wider activation (the low-rank FFN's z = [z_gate | z_up]) is read or written
/// in place.
func matmulForward(_ out: FloatPtr, _ inp: ConstFloatPtr, _ w: ConstFloatPtr, N: Int, IC: Int, OC: Int,
                   ws: GemmWorkspace, ldOut: Int? = nil, ldIn: Int? = nil) {
    precondition(ws.count >= IC * OC)
    transpose(ws.pointer, w, rows: IC, cols: OC)  // wᵀ (IC, OC)
    gemm(out, ldc: ldOut ?? OC, inp, lda: ldIn ?? IC, ws.pointer, ldb: OC, M: N, Nc: OC, K: IC, accumulate: false)
}

/// dinp (N, IC) += dout (N, OC) · w (OC, IC); dw (OC, IC) += dout (N, OC)ᵀ · inp (N, IC).
/// Forward was out[n,o] = Σ_i inp[n,i]·w[o,i], so ∂out[n,o]/∂inp[n,i] = w[o,i] and
/// ∂out[n,o]/∂w[o,i] = inp[n,i]: each gradient is the other operand weighted by dout.
/// `ws` holds at least N·OC floats. `ldOut` / `ldIn`: row strides of dout and of inp, dinp (default:
/// dense), as in `matmulForward`.
func matmulBackward(_ dinp: FloatPtr, _ dw: FloatPtr, _ dout: ConstFloatPtr, _ inp: ConstFloatPtr,
                    _ w: ConstFloatPtr, N: Int, IC: Int, OC: Int, ws: GemmWorkspace,
                    ldOut: Int? = nil, ldIn: Int? = nil) {
    precondition(ws.count >= N * OC)
    let ldo = ldOut ?? OC, ldi = ldIn ?? IC
    gemm(dinp, ldc: ldi, dout, lda: ldo, w, ldb: IC, M: N, Nc: IC, K: OC, accumulate: true)
    transposeStrided(ws.pointer, ldo: N, dout, ldi: ldo, rows: OC, cols: N)  // doutᵀ (OC, N)
    gemm(dw, ldc: IC, ws.pointer, lda: N, inp, ldb: ldi, M: OC, Nc: IC, K: N, accumulate: true)
}

// MARK: - Matmul forward/backward (naive reference)

/// Naive twin of `matmulForward`: out (N, OC) = inp (N, IC) · w (OC, IC)ᵀ.
func matmulForwardNaive(_ out: FloatPtr, _ inp: ConstFloatPtr, _ w: ConstFloatPtr, N: Int, IC: Int, OC: Int) {
    for n in 0..<N {
        for o in 0..<OC {
            var s: Float = 0
            for i in 0..<IC { s += inp[n * IC + i] * w[o * IC + i] }
            out[n * OC + o] = s
        }
    }
}

/// Naive twin of `matmulBackward`.
func matmulBackwardNaive(_ dinp: FloatPtr, _ dw: FloatPtr, _ dout: ConstFloatPtr, _ inp: ConstFloatPtr,
                         _ w: ConstFloatPtr, N: Int, IC: Int, OC: Int) {
    for n in 0..<N {
        for o in 0..<OC {
            let g = dout[n * OC + o]
            for i in 0..<IC {
                dinp[n * IC + i] += g * w[o * IC + i]
                dw[o * IC + i] += g * inp[n * IC + i]
            }
        }
    }
}
