import CMiniGPTKernels
import Foundation
import Testing
@testable import MiniGPT

// The C kernels (Sources/CMiniGPTKernels) against their naive twins: FP32 panel products against
// row-major loops, the AVX-512 softmax/SwiGLU against libm, every INT8 dispatch path against the
// portable one (bit for bit), and batched prefill against step-by-step decoding.

/// `count` Gaussian floats from `rng`.
func gaussians(_ count: Int, _ rng: inout RNG, scale: Float = 1) -> [Float] {
    (0..<count).map { _ in rng.nextGaussian() * scale }
}

/// Row-major FP32 `w` packed for `mgk_matvec_f32`, kept alive by the returned arena.
func packedF32(_ w: [Float], rows: Int, cols: Int) -> (PackedArena, PackedMatrix) {
    let arena = PackedArena()
    return (arena, arena.packF32(w, rows: rows, cols: cols))
}

@Suite struct KernelTests {
    static let shapes = [(1, 1), (16, 16), (5, 20), (17, 33), (64, 128), (320, 128), (128, 320), (512, 128), (96, 7)]

    @Test("panel FP32 matvec equals the naive row-major loop (overwrite and accumulate)")
    func matvecF32() {
        var rng = RNG(seed: 11)
        for (rows, cols) in Self.shapes {
            let w = gaussians(rows * cols, &rng), x = gaussians(cols, &rng), base = gaussians(rows, &rng)
            let (arena, m) = packedF32(w, rows: rows, cols: cols)
            for accumulate in [false, true] {
                var fast = base + [7, 7, 7], slow = base  // three guard values past the end
                fast.withUnsafeMutableBufferPointer { mgk_matvec_f32($0.baseAddress!, m.f32, x, Int32(rows), Int32(cols), accumulate ? 1 : 0) }
                matvecNaive(&slow, w, x, rows: rows, cols: cols, accumulate: accumulate)
                let err = zip(fast, slow).map { abs($0 - $1) }.max()!
                #expect(err <= 1e-4 * Float(cols).squareRoot(), "\(rows)×\(cols) accumulate \(accumulate): max |Δ| \(err)")
                #expect(Array(fast[rows...]) == [7, 7, 7], "\(rows)×\(cols): wrote past the output")
            }
            withExtendedLifetime(arena) {}
        }
    }

    @Test("batched FP32 matmul equals one matvec per token, with row strides", arguments: [1, 3, 4, 8, 12, 13])
    func matmulF32(tokens T: Int) {
        var rng = RNG(seed: UInt64(T))
        for (rows, cols) in [(17, 33), (320, 128), (128, 320)] {
            let w = gaussians(rows * cols, &rng)
            let (ldx, ldo) = (cols + 5, rows + 3)
            let x = gaussians(T * ldx, &rng), base = gaussians(T * ldo, &rng)
            let (arena, m) = packedF32(w, rows: rows, cols: cols)
            var batched = base, single = base
            batched.withUnsafeMutableBufferPointer { mgk_matmul_f32($0.baseAddress!, Int32(ldo), m.f32, x, Int32(ldx), Int32(T), Int32(rows), Int32(cols), 1) }
            single.withUnsafeMutableBufferPointer { o in x.withUnsafeBufferPointer { xp in
                for t in 0..<T { mgk_matvec_f32(o.baseAddress! + t * ldo, m.f32, xp.baseAddress! + t * ldx, Int32(rows), Int32(cols), 1) }
            } }
            let err = zip(batched, single).map { abs($0 - $1) }.max()!
            #expect(err <= 1e-4 * Float(cols).squareRoot(), "T=\(T) \(rows)×\(cols): max |Δ| \(err)")
            for t in 0..<T { for r in rows..<ldo { #expect(batched[t * ldo + r] == base[t * ldo + r], "wrote into the row padding") } }
            withExtendedLifetime(arena) {}
        }
    }

    @Test("softmax and SwiGLU equal their libm twins", arguments: [1, 5, 15, 16, 17, 64, 257])
    func softmaxAndSwiglu(n: Int) {
        var rng = RNG(seed: UInt64(100 + n))
        let x = gaussians(n, &rng, scale: 6)
        var fast = x, slow = x
        softmax(&fast, n)
        softmaxNaive(&slow, n)
        let e1 = zip(fast, slow).map { abs($0 - $1) / max($1, 1e-30) }.max()!
        #expect(e1 <= 2e-6, "softmax n=\(n): max relative |Δ| \(e1)")
        #expect(abs(fast.reduce(0, +) - 1) <= 1e-5)
        let u = gaussians(n, &rng)
        var g1 = x, g2 = x
        swiglu(&g1, u, n)
        swigluNaive(&g2, u, n)
        let e2 = zip(g1, g2).map { abs($0 - $1) / max(abs($1), 1e-3) }.max()!
        #expect(e2 <= 2e-6, "swiglu n=\(n): max relative |Δ| \(e2)")
        var big: [Float] = [-200, -90, 0, 50, 95, 200]
        var bigRef = big
        softmax(&big, big.count)
        softmaxNaive(&bigRef, bigRef.count)
        #expect(big.allSatisfy(\.isFinite) && abs(big[5] - bigRef[5]) < 1e-6, "extreme inputs: \(big)")
    }

    @Test("C attention equals the Swift composition (scores, softmax, weighted sum)", arguments: [1, 15, 16, 63, 64, 65, 200])
    func attention(n: Int) {
        var rng = RNG(seed: UInt64(900 + n))
        for hd in [32, 16, 8] {
            let stride = n + 3
            let q = gaussians(hd, &rng), k = gaussians(hd * stride, &rng), v = gaussians(n * hd, &rng)
            var o1 = [Float](repeating: 9, count: hd), o2 = o1, p1 = [Float](repeating: 0, count: n), p2 = p1
            let scale = 1 / Float(hd).squareRoot()
            mgk_attention_f32(&o1, &p1, q, k, v, Int32(n), Int32(hd), Int32(stride), scale)
            attentionNaive(&o2, &p2, q, k, v, n: n, hd: hd, stride: stride, scale: scale)
            let ep = zip(p1, p2).map { abs($0 - $1) }.max()!, eo = zip(o1, o2).map { abs($0 - $1) }.max()!
            #expect(ep <= 1e-5 && eo <= 1e-5, "n=\(n) hd=\(hd): max |Δp| \(ep), |Δout| \(eo)")
            for G in [1, 2, 3, 4, 6] {  // a GQA group in one pass equals G single-head calls
                let qs = gaussians(G * hd, &rng)
                var og = [Float](repeating: 0, count: G * hd), pg = [Float](repeating: 0, count: G * stride)
                var os = og, ps = pg
                mgk_attention_group_f32(&og, &pg, Int32(stride), qs, k, v, Int32(G), Int32(n), Int32(hd), Int32(stride), scale)
                for g in 0..<G {
                    os.withUnsafeMutableBufferPointer { o in ps.withUnsafeMutableBufferPointer { pp in qs.withUnsafeBufferPointer { qp in
                        attentionNaive(o.baseAddress! + g * hd, pp.baseAddress! + g * stride, qp.baseAddress! + g * hd, k, v,
                                       n: n, hd: hd, stride: stride, scale: scale)
                    } } }
                }
                let e = zip(og, os).map { abs($0 - $1) }.max()!
                #expect(e <= 1e-5, "group G=\(G) n=\(n) hd=\(hd): max |Δ| \(e)")
            }
        }
    }

    @Test("batched causal attention equals one single-head call per (token, head)", arguments: [0, 5, 40])
    func attentionBlock(n0: Int) {
        var rng = RNG(seed: UInt64(1000 + n0))
        for (T, G, hd) in [(1, 2, 32), (12, 2, 32), (13, 1, 16), (5, 4, 32), (16, 3, 8)] {
            let stride = n0 + T + 3, (ldq, ldo) = (G * hd + 7, G * hd + 5)
            let q = gaussians(T * ldq, &rng), k = gaussians(hd * stride, &rng), v = gaussians((n0 + T) * hd, &rng)
            var out = [Float](repeating: 9, count: T * ldo), p = [Float](repeating: 0, count: T * G * stride)
            mgk_attention_block_f32(&out, Int32(ldo), &p, Int32(stride), q, Int32(ldq), k, v, Int32(T), Int32(G), Int32(n0), Int32(hd), Int32(stride), 0.2)
            var worst: Float = 0
            for t in 0..<T {
                for g in 0..<G {
                    let n = n0 + t + 1
                    var o = [Float](repeating: 0, count: hd), pr = [Float](repeating: 0, count: n)
                    q.withUnsafeBufferPointer { qp in attentionNaive(&o, &pr, qp.baseAddress! + t * ldq + g * hd, k, v, n: n, hd: hd, stride: stride, scale: 0.2) }
                    for i in 0..<hd { worst = max(worst, abs(o[i] - out[t * ldo + g * hd + i])) }
                    for s in 0..<n { worst = max(worst, abs(pr[s] - p[(t * G + g) * stride + s])) }
                    #expect(p[((t * G + g) * stride + n)..<((t * G + g) * stride + n0 + T)].allSatisfy { $0 == 0 }, "causal tail not zeroed")
                }
                #expect(out[(t * ldo + G * hd)..<((t + 1) * ldo)].allSatisfy { $0 == 9 }, "wrote into the row padding")
            }
            #expect(worst <= 1e-5, "T=\(T) G=\(G) hd=\(hd) n0=\(n0): max |Δ| \(worst)")
        }
    }

    @Test("activation quantization: symmetric, one scale, |x − xq·s| ≤ s/2, zero-safe")
    func quantizeActivation() {
        var rng = RNG(seed: 5)
        let x = gaussians(37, &rng, scale: 3)
        var xu = [UInt8](repeating: 0, count: 40)
        let s = mgk_quantize_activation(&xu, x, 37, 40)
        let amax = x.map(abs).max()!
        #expect(s == amax / 127)
        for i in 0..<37 {
            let q = Float(Int(xu[i]) - 128)
            #expect(abs(q) <= 127 && abs(x[i] - q * s) <= s / 2 * 1.0001, "element \(i): \(x[i]) vs \(q)·\(s)")
        }
        #expect(Array(xu[37...]) == [128, 128, 128], "padding must quantize to zero")
        // The vector path (16 lanes, then a scalar tail) equals the scalar definition bit for bit.
        let inv = 127 / amax
        let reference = x.map { UInt8(Int(max(-127, min(127, ($0 * inv).rounded(.toNearestOrEven)))) + 128) }
        #expect(Array(xu[..<37]) == reference)
        #expect(xu.contains(255) || xu.contains(1), "the largest element must map to ±127")
        var zu = [UInt8](repeating: 0, count: 8)
        #expect(mgk_quantize_activation(&zu, [Float](repeating: 0, count: 8), 8, 8) == 0 && zu.allSatisfy { $0 == 128 })
    }

    @Test("every INT8 dispatch path computes the portable path's integers, bit for bit")
    func int8PathsAgree() throws {
        let paths = [Int32(MGK_I8_PORTABLE), Int32(MGK_I8_AVX2), Int32(MGK_I8_VNNI)]
        let names = ["portable", "avx2", "vnni"]
        let supported = paths.map { mgk_i8_path_supported($0) != 0 }
        print("int8 paths supported: \(zip(names, supported).map { "\($0)=\($1)" }.joined(separator: " ")); auto = \(names[Int(mgk_i8_best_path()) - 1])")
        #expect(supported[0])
        var rng = RNG(seed: 77)
        for (rows, cols) in Self.shapes + [(80, 130)] {
            let q = QuantizedMatrix(quantizing: gaussians(rows * cols, &rng), rows: rows, cols: cols)
            let arena = PackedArena()
            let m = arena.packI8(q)
            let x = gaussians(cols, &rng, scale: 2)
            var xu = [UInt8](repeating: 0, count: m.cols4)
            let xs = mgk_quantize_activation(&xu, x, Int32(cols), Int32(m.cols4))
            // The definition, in Swift: Σ_c q[r][c] · xq[c].
            let expected = (0..<rows).map { r in (0..<cols).reduce(Int32(0)) { $0 + Int32(q.values[r * cols + $1]) * (Int32(xu[$1]) - 128) } }
            let rows16 = (rows + 15) / 16 * 16
            var outs: [[Float]] = []
            for (p, ok) in zip(paths, supported) where ok {
                var acc = [Int32](repeating: -1, count: rows16)
                mgk_matvec_i8_acc(&acc, m.i8, m.bias, xu, Int32(rows), Int32(m.cols4), p)
                #expect(Array(acc[..<rows]) == expected, "\(names[Int(p) - 1]) \(rows)×\(cols): integer sums differ")
                var out = [Float](repeating: 0.5, count: rows)
                mgk_matvec_i8(&out, m.i8, m.scales, m.bias, xu, xs, Int32(rows), Int32(m.cols4), 1, p)
                outs.append(out)
            }
            for o in outs.dropFirst() { #expect(o.map(\.bitPattern) == outs[0].map(\.bitPattern), "\(rows)×\(cols): float epilogue differs between paths") }
            // And the dequantized product is close to the FP32 product of the dequantized weights.
            var ref = [Float](repeating: 0.5, count: rows)
            matvecNaive(&ref, q.dequantized(), x, rows: rows, cols: cols, accumulate: true)
            let err = zip(outs[0], ref).map { abs($0 - $1) }.max()!
            let bound = (0..<rows).map { r in q.scales[r] * 127 * xs / 2 * Float(cols) }.max()!  // |Σ q·(x/s − xq)|·s·s_x
            #expect(err <= bound, "\(rows)×\(cols): |int8 − fp32| \(err) above the rounding bound \(bound)")
            withExtendedLifetime(arena) {}
        }
    }

    @Test("batched INT8 matmul equals one INT8 matvec per token, bit for bit, on every path", arguments: [1, 4, 12, 13])
    func matmulI8(tokens T: Int) {
        var rng = RNG(seed: UInt64(300 + T))
        let (rows, cols) = (80, 130)
        let arena = PackedArena()
        let m = arena.packI8(QuantizedMatrix(quantizing: gaussians(rows * cols, &rng), rows: rows, cols: cols))
        let x = gaussians(T * cols, &rng)
        var xu = [UInt8](repeating: 0, count: T * m.cols4), xs = [Float](repeating: 0, count: T)
        xu.withUnsafeMutableBufferPointer { u in x.withUnsafeBufferPointer { xp in
            for t in 0..<T { xs[t] = mgk_quantize_activation(u.baseAddress! + t * m.cols4, xp.baseAddress! + t * cols, Int32(cols), Int32(m.cols4)) }
        } }
        let ldo = rows + 2
        for p in [Int32(MGK_I8_PORTABLE), Int32(MGK_I8_AVX2), Int32(MGK_I8_VNNI)] where mgk_i8_path_supported(p) != 0 {
            let base = gaussians(T * ldo, &rng)
            var batched = base, single = base
            mgk_matmul_i8(&batched, Int32(ldo), m.i8, m.scales, m.bias, xu, xs, Int32(T), Int32(rows), Int32(m.cols4), 1, p)
            for t in 0..<T {
                single.withUnsafeMutableBufferPointer { o in xu.withUnsafeBufferPointer { u in
                    mgk_matvec_i8(o.baseAddress! + t * ldo, m.i8, m.scales, m.bias, u.baseAddress! + t * m.cols4, xs[t], Int32(rows), Int32(m.cols4), 1, p)
                } }
            }
            #expect(batched.map(\.bitPattern) == single.map(\.bitPattern), "path \(p), T=\(T)")
        }
        withExtendedLifetime(arena) {}
    }
}

@Suite struct PrefillTests {
    /// Batched prefill against step-by-step decoding on the same model, from a non-empty cache.
    func compare(_ weights: ModelWeights, lengths: [Int], tolerance: Float) {
        let model = Transformer(weights: weights)
        let V = weights.config.vocabSize
        var rng = RNG(seed: 21)
        let warm = (0..<5).map { _ in Int(rng.next() % UInt64(V)) }
        for T in lengths {
            let ids = (0..<T).map { _ in Int(rng.next() % UInt64(V)) }
            let a = Session(model: model), b = Session(model: model)
            a.prefill(warm); b.prefillSequential(warm)
            let batched = Array(a.prefill(ids)), stepped = Array(b.prefillSequential(ids))
            let err = zip(batched, stepped).map { abs($0 - $1) }.max()!
            #expect(a.position == b.position)
            #expect(err <= tolerance, "T=\(T): max |batched − stepped| \(err)")
            let H = weights.config.numAttentionHeads
            for h in 0..<H {
                let pa = Array(a.attention(head: h)), pb = Array(b.attention(head: h))
                #expect(pa.count == pb.count && zip(pa, pb).allSatisfy { abs($0 - $1) <= 1e-5 }, "attention of head \(h) after prefill")
            }
            // The cache prefill left behind decodes the next token like the stepped one.
            let na = Array(a.step(ids[0])), nb = Array(b.step(ids[0]))
            #expect(zip(na, nb).map { abs($0 - $1) }.max()! <= tolerance, "T=\(T): step after prefill")
        }
    }

    @Test("batched FP32 prefill equals step-by-step within 1e-4 (chunked beyond 16 tokens)")
    func fp32() {
        compare(oracleWeights(ModelConfig(), seed: 8), lengths: [2, 12, 16, 17, 40], tolerance: 1e-4)
    }

    @Test("batched INT8 prefill equals step-by-step within 1e-4")
    func int8() {
        compare(oracleWeights(ModelConfig(), seed: 9).quantized(attention: true, ffn: true), lengths: [3, 12, 33], tolerance: 1e-4)
    }
}
