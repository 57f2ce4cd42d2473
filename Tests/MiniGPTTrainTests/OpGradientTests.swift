import Foundation
import Testing
import MiniGPT
@testable import MiniGPTTrain

// Finite-difference checks of every op's backward: L = Σ r ⊙ op(inputs) for a fixed random r, so
// ∂L/∂out = r; central differences of L (accumulated in Double) against the analytic gradient,
// compared norm-wise: ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖) ≤ 1e-2 in FP32.

/// Seeded N(0, s²) floats.
func gaussian(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var rng = RNG(seed: seed)
    return (0..<n).map { _ in rng.nextGaussian() * scale }
}

/// Norm-wise relative error of two gradient vectors.
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var d = 0.0, na = 0.0, nb = 0.0
    for i in a.indices {
        d += Double(a[i] - b[i]) * Double(a[i] - b[i])
        na += Double(a[i]) * Double(a[i]); nb += Double(b[i]) * Double(b[i])
    }
    return d.squareRoot() / max(na.squareRoot(), nb.squareRoot(), 1e-12)
}

/// Central-difference gradient of `loss` with respect to `x` (every element).
func numericGradient(_ x: inout [Float], eps: Float = 1e-2, _ loss: ([Float]) -> Double) -> [Float] {
    var g = [Float](repeating: 0, count: x.count)
    for i in x.indices {
        let keep = x[i]
        x[i] = keep + eps; let lp = loss(x)
        x[i] = keep - eps; let lm = loss(x)
        x[i] = keep
        g[i] = Float((lp - lm) / (2 * Double(eps)))
    }
    return g
}

/// Σ r·out in Double.
func project(_ out: [Float], _ r: [Float]) -> Double {
    var s = 0.0
    for i in out.indices { s += Double(out[i]) * Double(r[i]) }
    return s
}

@Suite("Op gradients (finite differences)")
struct OpGradientTests {
    @Test func rmsnorm() {
        let N = 3, C = 8
        var x = gaussian(N * C, seed: 1), w = gaussian(C, seed: 2, scale: 0.5).map { $0 + 1 }
        let r = gaussian(N * C, seed: 3)
        func fwd(_ x: [Float], _ w: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
            rmsnormForward(&out, &rstd, x, w, N: N, C: C, eps: 1e-5)
            return out
        }
        var out = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
        rmsnormForward(&out, &rstd, x, w, N: N, C: C, eps: 1e-5)
        var dx = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C)
        rmsnormBackward(&dx, &dw, r, x, w, rstd, N: N, C: C)
        let wc = w
        let nx = numericGradient(&x) { project(fwd($0, wc), r) }
        let xc = x
        let nw = numericGradient(&w) { project(fwd(xc, $0), r) }
        #expect(relativeError(dx, nx) < 1e-2, "dx rel err \(relativeError(dx, nx))")
        #expect(relativeError(dw, nw) < 1e-2, "dw rel err \(relativeError(dw, nw))")
    }

    @Test func rope() {
        let B = 2, T = 5, NH = 2, KVH = 1, hd = 4, QKV = (NH + 2 * KVH) * hd
        let table = RopeTable(T: T, hd: hd, theta: 10000)
        var x = gaussian(B * T * QKV, seed: 4)
        let r = gaussian(B * T * QKV, seed: 5)
        func fwd(_ x: [Float]) -> [Float] {
            var y = x
            ropeForward(&y, table, B: B, T: T, heads: NH + KVH, hd: hd, QKV: QKV)
            return y
        }
        var d = r
        ropeBackward(&d, table, B: B, T: T, heads: NH + KVH, hd: hd, QKV: QKV)
        let n = numericGradient(&x) { project(fwd($0), r) }
        #expect(relativeError(d, n) < 1e-2)
        // HF rotate_half convention at t=1, pair (0, hd/2): angle = 1·theta^0 = 1 rad.
        let y = fwd(x)
        let q0 = x[QKV], q2 = x[QKV + 2]
        #expect(abs(y[QKV] - (q0 * cos(1) - q2 * sin(1))) < 1e-6)
        #expect(abs(y[QKV + 2] - (q2 * cos(1) + q0 * sin(1))) < 1e-6)
        // V is untouched.
        #expect(y[QKV - hd..<QKV] == x[QKV - hd..<QKV])
    }

    @Test(arguments: [(4, 4, 2, 4), (2, 19, 1, 32)])
    func attention(NH: Int, T: Int, KVH: Int, hd: Int) {
        let B = 2, QKV = (NH + 2 * KVH) * hd, C = NH * hd
        var qkv = gaussian(B * T * QKV, seed: 6)
        let r = gaussian(B * T * C, seed: 7)
        var scratch = [Float](repeating: 0, count: attentionScratchCount(T: T, hd: hd))
        func fwd(_ qkv: [Float], naive: Bool = false) -> [Float] {
            var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
            if naive { attentionForwardNaive(&out, &att, qkv, B: B, T: T, NH: NH, KVH: KVH, hd: hd) }
            else { attentionForward(&out, &att, qkv, &scratch, B: B, T: T, NH: NH, KVH: KVH, hd: hd) }
            return out
        }
        var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
        attentionForward(&out, &att, qkv, &scratch, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
        var d = [Float](repeating: 0, count: B * T * QKV)
        attentionBackward(&d, r, att, qkv, &scratch, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
        // The GEMM form against its naive per-key twin.
        var dn = [Float](repeating: 0, count: B * T * QKV), s2 = [Float](repeating: 0, count: T)
        attentionBackwardNaive(&dn, r, att, qkv, &s2, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
        #expect(relativeError(fwd(qkv), fwd(qkv, naive: true)) < 1e-5)
        #expect(relativeError(d, dn) < 1e-5)
        if T <= 4 {
            let n = numericGradient(&qkv) { project(fwd($0), r) }
            #expect(relativeError(d, n) < 1e-2, "rel err \(relativeError(d, n))")
        }
        // Causality: position 0 of each sequence attends only to itself, so its output is v_0.
        let v0 = Array(qkv[(NH + KVH) * hd..<(NH + KVH) * hd + hd])
        let o0 = fwd(qkv)
        for i in 0..<hd { #expect(abs(o0[i] - v0[i]) < 1e-6) }
    }

    @Test func swiglu() {
        let N = 3, F = 5
        var gu = gaussian(N * 2 * F, seed: 8, scale: 2)
        let r = gaussian(N * F, seed: 9)
        func fwd(_ gu: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * F)
            swigluForward(&out, gu, N: N, F: F)
            return out
        }
        var d = [Float](repeating: 0, count: N * 2 * F)
        swigluBackward(&d, r, gu, N: N, F: F)
        let n = numericGradient(&gu) { project(fwd($0), r) }
        #expect(relativeError(d, n) < 1e-2)
    }

    @Test func matmulGradientAndNaiveTwin() {
        let N = 6, IC = 5, OC = 7
        var x = gaussian(N * IC, seed: 10), w = gaussian(OC * IC, seed: 11)
        let r = gaussian(N * OC, seed: 12)
        let ws = GemmWorkspace(count: 1000)
        func fwd(_ x: [Float], _ w: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * OC)
            matmulForward(&out, x, w, N: N, IC: IC, OC: OC, ws: ws)
            return out
        }
        var dx = [Float](repeating: 0, count: N * IC), dw = [Float](repeating: 0, count: OC * IC)
        matmulBackward(&dx, &dw, r, x, w, N: N, IC: IC, OC: OC, ws: ws)
        var dxn = dx.map { _ in Float(0) }, dwn = dw.map { _ in Float(0) }
        matmulBackwardNaive(&dxn, &dwn, r, x, w, N: N, IC: IC, OC: OC)
        #expect(relativeError(dx, dxn) < 1e-6)
        #expect(relativeError(dw, dwn) < 1e-6)
        let wc = w
        let nx = numericGradient(&x) { project(fwd($0, wc), r) }
        let xc = x
        let nw = numericGradient(&w) { project(fwd(xc, $0), r) }
        #expect(relativeError(dx, nx) < 1e-2)
        #expect(relativeError(dw, nw) < 1e-2)
    }

    /// The blocked SIMD GEMM equals its naive twin bit for bit (same per-element FMA order), on
    /// shapes that exercise the 4×32 block, the 16-wide and scalar column tails and leftover rows.
    @Test func gemmMatchesNaiveBitwise() {
        for (M, Nc, K) in [(9, 37, 13), (4, 32, 8), (1, 16, 3), (13, 70, 33)] {
            let a = gaussian(M * K, seed: 13), b = gaussian(K * Nc, seed: 14)
            for acc in [false, true] {
                var c1 = gaussian(M * Nc, seed: 15), c2 = c1
                gemm(&c1, ldc: Nc, a, lda: K, b, ldb: Nc, M: M, Nc: Nc, K: K, accumulate: acc)
                gemmScalar(&c2, ldc: Nc, a, lda: K, b, ldb: Nc, M: M, Nc: Nc, K: K, accumulate: acc)
                #expect(c1 == c2, "M=\(M) N=\(Nc) K=\(K) accumulate=\(acc)")
            }
        }
    }

    @Test func crossEntropyWithLabelSmoothing() {
        let N = 3, V = 6
        var z = gaussian(N * V, seed: 16, scale: 2)
        let targets: [Int32] = [2, -1, 5]
        for eps: Float in [0, 0.1] {
            func loss(_ z: [Float]) -> Double {
                var p = z, l = [Float](repeating: 0, count: N)
                crossEntropyForward(&l, &p, targets, N: N, V: V, smoothing: eps)
                return l.reduce(0.0) { $0 + Double($1) }
            }
            var p = z, l = [Float](repeating: 0, count: N)
            crossEntropyForward(&l, &p, targets, N: N, V: V, smoothing: eps)
            crossEntropyBackward(&p, targets, N: N, V: V, smoothing: eps, dloss: 1)
            let n = numericGradient(&z, eps: 1e-2, loss)
            #expect(relativeError(p, n) < 1e-2, "eps \(eps): rel err \(relativeError(p, n))")
            #expect(l[1] == 0)
            // Against the definition in Double: −Σ q log softmax(z).
            let row = z[0..<V].map(Double.init), m = row.max()!
            let logZ = m + log(row.reduce(0) { $0 + exp($1 - m) })
            var ref = 0.0
            for j in 0..<V { ref -= (Double(eps) / Double(V) + (j == 2 ? Double(1 - eps) : 0)) * (row[j] - logZ) }
            #expect(abs(Double(l[0]) - ref) < 1e-5)
        }
    }

    @Test func embedding() {
        let V = 5, C = 3, N = 4
        var wte = gaussian(V * C, seed: 17)
        let ids: [Int32] = [1, 3, 1, 0]
        let r = gaussian(N * C, seed: 18)
        func fwd(_ w: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * C)
            embeddingForward(&out, ids, w, N: N, C: C)
            return out
        }
        var d = [Float](repeating: 0, count: V * C)
        embeddingBackward(&d, r, ids, N: N, C: C)
        let n = numericGradient(&wte) { project(fwd($0), r) }
        #expect(relativeError(d, n) < 1e-2)
        #expect(d[4 * C..<5 * C].allSatisfy { $0 == 0 })  // id 4 never used
    }
}
