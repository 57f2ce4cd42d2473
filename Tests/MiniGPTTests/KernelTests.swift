import CMiniGPTKernels
import Foundation
import Testing
@testable import MiniGPT

// The C kernels (Sources/CMiniGPTKernels) against their naive twins: FP32 panel products against
// row-major loops, the vector softmax/SwiGLU against libm, and every kernel path this CPU can run
// (mgk_dispatch.h) against the portable one: INT8 sums and quantized activations bit for bit, FP32
// and KV kernels within rounding (bounds in fp32.c); batched prefill against step-by-step decoding.

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

    /// Every kernel path this CPU can run (`MINIGPT_KERNELS` names), portable first.
    static let paths: [Int32] = (Int32(MGK_PATH_PORTABLE)..<Int32(MGK_PATH_COUNT)).filter { mgk_path_supported($0) != 0 }
    static func name(_ p: Int32) -> String { String(cString: mgk_path_name(p)) }

    /// Seeded random shapes on top of the fixed ones: rows not a multiple of 16, cols not a multiple of 4, 16 or 32.
    static func randomShapes(_ count: Int, seed: UInt64) -> [(Int, Int)] {
        var rng = RNG(seed: seed)
        return (0..<count).map { _ in (1 + Int(rng.next() % 300), 1 + Int(rng.next() % 400)) }
    }

    @Test("every INT8 dispatch path computes the portable path's integers, bit for bit (fixed and random shapes)")
    func int8PathsAgree() throws {
        let all = (Int32(MGK_PATH_PORTABLE)..<Int32(MGK_PATH_COUNT)).map { "\(Self.name($0))=\(mgk_path_supported($0) != 0)" }
        print("kernel paths: \(all.joined(separator: " ")); selected = \(KernelPath.selected)")
        #expect(Self.paths.first == Int32(MGK_PATH_PORTABLE))
        var rng = RNG(seed: 77)
        for (rows, cols) in Self.shapes + [(80, 130), (33, 31), (15, 63), (48, 129)] + Self.randomShapes(12, seed: 78) {
            let q = QuantizedMatrix(quantizing: gaussians(rows * cols, &rng), rows: rows, cols: cols)
            let arena = PackedArena()
            let m = arena.packI8(q)
            let x = gaussians(cols, &rng, scale: 2)
            var xu = [UInt8](repeating: 0, count: m.cols4)
            let xs = mgk_quantize_activation_path(&xu, x, Int32(cols), Int32(m.cols4), Int32(MGK_PATH_PORTABLE))
            // The definition, in Swift: Σ_c q[r][c] · xq[c].
            let expected = (0..<rows).map { r in (0..<cols).reduce(Int32(0)) { $0 + Int32(q.values[r * cols + $1]) * (Int32(xu[$1]) - 128) } }
            let rows16 = (rows + 15) / 16 * 16
            var outs: [[Float]] = []
            for p in Self.paths {
                var acc = [Int32](repeating: -1, count: rows16)
                mgk_matvec_i8_acc(&acc, m.i8, m.bias, xu, Int32(rows), Int32(m.cols4), p)
                #expect(Array(acc[..<rows]) == expected, "\(Self.name(p)) \(rows)×\(cols): integer sums differ")
                var out = [Float](repeating: 0.5, count: rows)
                mgk_matvec_i8(&out, m.i8, m.scales, m.bias, xu, xs, Int32(rows), Int32(m.cols4), 1, p)
                outs.append(out)
            }
            for (o, p) in zip(outs, Self.paths).dropFirst() {
                #expect(o.map(\.bitPattern) == outs[0].map(\.bitPattern), "\(Self.name(p)) \(rows)×\(cols): float epilogue differs from portable")
            }
            // And the dequantized product is close to the FP32 product of the dequantized weights.
            var ref = [Float](repeating: 0.5, count: rows)
            matvecNaive(&ref, q.dequantized(), x, rows: rows, cols: cols, accumulate: true)
            let err = zip(outs[0], ref).map { abs($0 - $1) }.max()!
            let bound = (0..<rows).map { r in q.scales[r] * 127 * xs / 2 * Float(cols) }.max()!  // |Σ q·(x/s − xq)|·s·s_x
            #expect(err <= bound, "\(rows)×\(cols): |int8 − fp32| \(err) above the rounding bound \(bound)")
            withExtendedLifetime(arena) {}
        }
    }

    @Test("the INT8 paths' int16 steps cannot saturate: ±127 weights against ±127 and −128 activations")
    func int8Extremes() {
        for (rows, cols) in [(16, 64), (33, 257), (5, 3)] {
            for pattern in 0..<3 {
                var rng = RNG(seed: UInt64(rows * 1000 + cols * 10 + pattern))
                let values = (0..<(rows * cols)).map { _ in Int8(rng.next() % 2 == 0 ? 127 : -127) }
                let q = QuantizedMatrix(values: values, scales: [Float](repeating: 1, count: rows), rows: rows, cols: cols)
                let arena = PackedArena()
                let m = arena.packI8(q)
                // xu 255 / 1 (xq ±127), xu 0 (xq −128, outside the quantizer's range), or a mix.
                let xu: [UInt8] = (0..<m.cols4).map { c in
                    c >= cols ? 128 : pattern == 0 ? (rng.next() % 2 == 0 ? 255 : 1) : pattern == 1 ? 0 : [0, 1, 255][Int(rng.next() % 3)]
                }
                let expected = (0..<rows).map { r in (0..<cols).reduce(Int32(0)) { $0 + Int32(values[r * cols + $1]) * (Int32(xu[$1]) - 128) } }
                for p in Self.paths {
                    var acc = [Int32](repeating: -1, count: (rows + 15) / 16 * 16)
                    mgk_matvec_i8_acc(&acc, m.i8, m.bias, xu, Int32(rows), Int32(m.cols4), p)
                    #expect(Array(acc[..<rows]) == expected, "\(Self.name(p)) \(rows)×\(cols) pattern \(pattern)")
                }
                withExtendedLifetime(arena) {}
            }
        }
    }

    @Test("every path's activation quantizer equals the scalar one bit for bit (random, ties, zeros)",
          arguments: [1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 128, 257])
    func quantizerPathsAgree(n: Int) {
        var rng = RNG(seed: UInt64(40 + n))
        let npad = (n + 3) / 4 * 4 + 4
        // Ties: amax = 127 makes inv = 1, so halves round to even on every path or on none.
        let ties = (0..<n).map { i in i == 0 ? Float(127) : Float(Int(rng.next() % 255) - 127) + (rng.next() % 2 == 0 ? 0.5 : 0) }
        for x in [gaussians(n, &rng, scale: 3), ties, [Float](repeating: 0, count: n), gaussians(n, &rng, scale: 1e-30)] {
            var ref = [UInt8](repeating: 7, count: npad)
            let s0 = mgk_quantize_activation_path(&ref, x, Int32(n), Int32(npad), Int32(MGK_PATH_PORTABLE))
            for p in Self.paths.dropFirst() {
                var xu = [UInt8](repeating: 7, count: npad)
                let s = mgk_quantize_activation_path(&xu, x, Int32(n), Int32(npad), p)
                #expect(s.bitPattern == s0.bitPattern && xu == ref, "\(Self.name(p)) n=\(n): quantized bytes differ from scalar")
            }
        }
    }

    @Test("every path's FP32 kernels agree with the portable ones within rounding")
    func fp32PathsAgree() throws {
        let portable = try #require(mgk_fp32_kernels_for(Int32(MGK_PATH_PORTABLE))).pointee
        var rng = RNG(seed: 501)
        for p in Self.paths.dropFirst() {
            let k = try #require(mgk_fp32_kernels_for(p)).pointee
            let tag = Self.name(p)
            for (rows, cols) in Self.shapes + Self.randomShapes(6, seed: 502) {
                let w = gaussians(rows * cols, &rng), (arena, m) = packedF32(w, rows: rows, cols: cols)
                for accumulate: Int32 in [0, 1] {
                    let T = 5, (ldx, ldo) = (cols + 3, rows + 2)
                    let x = gaussians(T * ldx, &rng), base = gaussians(T * ldo, &rng) + [7, 7]
                    var a = base, b = base
                    k.matvec!(&a, m.f32, x, Int32(rows), Int32(cols), accumulate)
                    portable.matvec!(&b, m.f32, x, Int32(rows), Int32(cols), accumulate)
                    #expect(maxDiff(a, b) <= 1e-4 * Float(cols).squareRoot(), "\(tag) matvec \(rows)×\(cols): \(maxDiff(a, b))")
                    #expect(Array(a[rows...]) == Array(base[rows...]), "\(tag) matvec \(rows)×\(cols) wrote past the output")
                    a = base; b = base
                    k.matmul!(&a, Int32(ldo), m.f32, x, Int32(ldx), Int32(T), Int32(rows), Int32(cols), accumulate)
                    portable.matmul!(&b, Int32(ldo), m.f32, x, Int32(ldx), Int32(T), Int32(rows), Int32(cols), accumulate)
                    #expect(maxDiff(a, b) <= 1e-4 * Float(cols).squareRoot(), "\(tag) matmul \(rows)×\(cols): \(maxDiff(a, b))")
                    for t in 0..<T { #expect(Array(a[(t * ldo + rows)..<((t + 1) * ldo)]) == Array(base[(t * ldo + rows)..<((t + 1) * ldo)]), "\(tag) matmul row padding") }
                }
                withExtendedLifetime(arena) {}
            }
            for n in [1, 5, 7, 8, 9, 15, 16, 17, 64, 257] {
                let x = gaussians(n, &rng, scale: 6), u = gaussians(n, &rng)
                var a = x, b = x
                k.softmax!(&a, Int32(n)); portable.softmax!(&b, Int32(n))
                #expect(maxRelDiff(a, b, floor: 1e-30) <= 2e-6, "\(tag) softmax n=\(n): \(maxRelDiff(a, b, floor: 1e-30))")
                a = x; b = x
                k.swiglu!(&a, u, Int32(n)); portable.swiglu!(&b, u, Int32(n))
                #expect(maxRelDiff(a, b, floor: 1e-3) <= 2e-6, "\(tag) swiglu n=\(n)")
                k.exp!(&a, x, Int32(n)); portable.exp!(&b, x, Int32(n))
                #expect(maxRelDiff(a, b, floor: 1e-30) <= 2e-6, "\(tag) exp n=\(n)")
            }
            for (n, hd, G) in [(1, 32, 2), (17, 16, 1), (63, 32, 4), (130, 8, 3), (200, 32, 6)] {
                let stride = n + 3, scale = 1 / Float(hd).squareRoot()
                let q = gaussians(G * hd, &rng), kk = gaussians(hd * stride, &rng), v = gaussians(n * hd, &rng)
                var oa = [Float](repeating: 9, count: G * hd), pa = [Float](repeating: 0, count: G * stride), ob = oa, pb = pa
                k.attention_group!(&oa, &pa, Int32(stride), q, kk, v, Int32(G), Int32(n), Int32(hd), Int32(stride), scale)
                portable.attention_group!(&ob, &pb, Int32(stride), q, kk, v, Int32(G), Int32(n), Int32(hd), Int32(stride), scale)
                #expect(maxDiff(oa, ob) <= 1e-5 && maxDiff(pa, pb) <= 1e-5, "\(tag) attention group n=\(n) hd=\(hd) G=\(G)")
                k.attention!(&oa, &pa, q, kk, v, Int32(n), Int32(hd), Int32(stride), scale)
                portable.attention!(&ob, &pb, q, kk, v, Int32(n), Int32(hd), Int32(stride), scale)
                #expect(maxDiff(oa, ob) <= 1e-5 && maxDiff(pa, pb) <= 1e-5, "\(tag) attention n=\(n) hd=\(hd)")
                // Causal block: T tokens after n0 = n − T cached.
                let T = min(n, 5), n0 = n - T, ldq = G * hd + 3, ldo = G * hd + 1
                let qb = gaussians(T * ldq, &rng)
                var ba = [Float](repeating: 9, count: T * ldo), bpa = [Float](repeating: 1, count: T * G * stride), bb = ba, bpb = bpa
                k.attention_block!(&ba, Int32(ldo), &bpa, Int32(stride), qb, Int32(ldq), kk, v, Int32(T), Int32(G), Int32(n0), Int32(hd), Int32(stride), scale)
                portable.attention_block!(&bb, Int32(ldo), &bpb, Int32(stride), qb, Int32(ldq), kk, v, Int32(T), Int32(G), Int32(n0), Int32(hd), Int32(stride), scale)
                #expect(maxDiff(ba, bb) <= 1e-5 && maxDiff(bpa, bpb) <= 1e-5, "\(tag) attention block T=\(T) n0=\(n0) hd=\(hd) G=\(G)")
            }
        }
    }

    @Test("every path's KV-cache kernels agree with the portable ones (stores bit for bit, attention within rounding)")
    func kvPathsAgree() throws {
        let portable = try #require(mgk_kv_kernels_for(Int32(MGK_PATH_PORTABLE))).pointee
        var rng = RNG(seed: 601)
        for p in Self.paths.dropFirst() {
            let k = try #require(mgk_kv_kernels_for(p)).pointee
            let tag = Self.name(p)
            for (n, hd, G) in [(1, 32, 2), (17, 16, 1), (63, 32, 4), (127, 32, 2), (130, 8, 3)] {
                let stride = n + 5, scale = 1 / Float(hd).squareRoot()
                let keys = gaussians(hd * n, &rng, scale: 2), values = gaussians(n * hd, &rng, scale: 2)
                // Store position by position (keys transposed), as the cache does, on both paths.
                var k16a = [UInt16](repeating: 0, count: hd * stride), k16b = k16a, v16a = [UInt16](repeating: 0, count: n * hd), v16b = v16a
                var k8a = [Int8](repeating: 0, count: hd * stride), k8b = k8a, v8a = [Int8](repeating: 0, count: n * hd), v8b = v8a
                var ksa = [Float](repeating: 0, count: n), ksb = ksa, vsa = ksa, vsb = ksa
                for s in 0..<n {
                    let kc = (0..<hd).map { keys[$0 * n + s] }, vr = Array(values[(s * hd)..<((s + 1) * hd)])
                    k16a.withUnsafeMutableBufferPointer { k.store_f16!($0.baseAddress! + s, Int32(stride), kc, Int32(hd)) }
                    k16b.withUnsafeMutableBufferPointer { portable.store_f16!($0.baseAddress! + s, Int32(stride), kc, Int32(hd)) }
                    v16a.withUnsafeMutableBufferPointer { k.store_f16!($0.baseAddress! + s * hd, 1, vr, Int32(hd)) }
                    v16b.withUnsafeMutableBufferPointer { portable.store_f16!($0.baseAddress! + s * hd, 1, vr, Int32(hd)) }
                    ksa[s] = k8a.withUnsafeMutableBufferPointer { k.store_i8!($0.baseAddress! + s, Int32(stride), kc, Int32(hd)) }
                    ksb[s] = k8b.withUnsafeMutableBufferPointer { portable.store_i8!($0.baseAddress! + s, Int32(stride), kc, Int32(hd)) }
                    vsa[s] = v8a.withUnsafeMutableBufferPointer { k.store_i8!($0.baseAddress! + s * hd, 1, vr, Int32(hd)) }
                    vsb[s] = v8b.withUnsafeMutableBufferPointer { portable.store_i8!($0.baseAddress! + s * hd, 1, vr, Int32(hd)) }
                }
                #expect(k16a == k16b && v16a == v16b, "\(tag) FP16 store bits differ")
                #expect(k8a == k8b && v8a == v8b && ksa.map(\.bitPattern) == ksb.map(\.bitPattern), "\(tag) INT8 store differs")
                var la = [Float](repeating: 0, count: hd), lb = la
                k.load_f16!(&la, k16a, Int32(stride), Int32(hd)); portable.load_f16!(&lb, k16a, Int32(stride), Int32(hd))
                #expect(la.map(\.bitPattern) == lb.map(\.bitPattern), "\(tag) FP16 load")
                k.load_i8!(&la, k8a, Int32(stride), ksa[0], Int32(hd)); portable.load_i8!(&lb, k8a, Int32(stride), ksa[0], Int32(hd))
                #expect(la.map(\.bitPattern) == lb.map(\.bitPattern), "\(tag) INT8 load")
                let q = gaussians(G * hd, &rng)
                var oa = [Float](repeating: 9, count: G * hd), pa = [Float](repeating: 0, count: G * stride), ob = oa, pb = pa
                k.attention_group_f16!(&oa, &pa, Int32(stride), q, k16a, v16a, Int32(G), Int32(n), Int32(hd), Int32(stride), scale)
                portable.attention_group_f16!(&ob, &pb, Int32(stride), q, k16a, v16a, Int32(G), Int32(n), Int32(hd), Int32(stride), scale)
                #expect(maxDiff(oa, ob) <= 1e-5 && maxDiff(pa, pb) <= 1e-5, "\(tag) FP16 group n=\(n) hd=\(hd) G=\(G): \(maxDiff(oa, ob))")
                k.attention_group_i8!(&oa, &pa, Int32(stride), q, k8a, ksa, v8a, vsa, Int32(G), Int32(n), Int32(hd), Int32(stride), scale)
                portable.attention_group_i8!(&ob, &pb, Int32(stride), q, k8a, ksa, v8a, vsa, Int32(G), Int32(n), Int32(hd), Int32(stride), scale)
                #expect(maxDiff(oa, ob) <= 1e-5 && maxDiff(pa, pb) <= 1e-5, "\(tag) INT8 group n=\(n) hd=\(hd) G=\(G): \(maxDiff(oa, ob))")
                let T = min(n, 4), n0 = n - T, ldq = G * hd + 3, ldo = G * hd + 1
                let qb = gaussians(T * ldq, &rng)
                var ba = [Float](repeating: 9, count: T * ldo), bpa = [Float](repeating: 1, count: T * G * stride), bb = ba, bpb = bpa
                k.attention_block_i8!(&ba, Int32(ldo), &bpa, Int32(stride), qb, Int32(ldq), k8a, ksa, v8a, vsa, Int32(T), Int32(G), Int32(n0), Int32(hd), Int32(stride), scale)
                portable.attention_block_i8!(&bb, Int32(ldo), &bpb, Int32(stride), qb, Int32(ldq), k8a, ksa, v8a, vsa, Int32(T), Int32(G), Int32(n0), Int32(hd), Int32(stride), scale)
                #expect(maxDiff(ba, bb) <= 1e-5 && maxDiff(bpa, bpb) <= 1e-5, "\(tag) INT8 block T=\(T) n0=\(n0)")
                k.attention_block_f16!(&ba, Int32(ldo), &bpa, Int32(stride), qb, Int32(ldq), k16a, v16a, Int32(T), Int32(G), Int32(n0), Int32(hd), Int32(stride), scale)
                portable.attention_block_f16!(&bb, Int32(ldo), &bpb, Int32(stride), qb, Int32(ldq), k16a, v16a, Int32(T), Int32(G), Int32(n0), Int32(hd), Int32(stride), scale)
                #expect(maxDiff(ba, bb) <= 1e-5 && maxDiff(bpa, bpb) <= 1e-5, "\(tag) FP16 block T=\(T) n0=\(n0)")
                // Re-rotation (eviction) on both paths from the same cache.
                let half = hd / 2
                let cs = (0..<half).map { Foundation.cos(Float($0) * 0.3) }, sn = (0..<half).map { Foundation.sin(Float($0) * 0.3) }
                var ra = k16a, rb = k16a
                k.rotate_back_f16!(&ra, Int32(stride), Int32(n), cs, sn, Int32(hd)); portable.rotate_back_f16!(&rb, Int32(stride), Int32(n), cs, sn, Int32(hd))
                #expect(ra == rb, "\(tag) FP16 re-rotation bits differ")
                var r8a = k8a, r8b = k8a, rsa = ksa, rsb = ksa
                k.rotate_back_i8!(&r8a, &rsa, Int32(stride), Int32(n), cs, sn, Int32(hd)); portable.rotate_back_i8!(&r8b, &rsb, Int32(stride), Int32(n), cs, sn, Int32(hd))
                #expect(r8a == r8b && rsa.map(\.bitPattern) == rsb.map(\.bitPattern), "\(tag) INT8 re-rotation differs")
            }
        }
    }

    @Test("MINIGPT_KERNELS values: names, auto, and refusals that name the variable, the value and the supported paths")
    func kernelSelection() {
        #expect(mgk_kernels_parse(nil, nil, 0) == mgk_best_path())
        #expect(mgk_kernels_parse("auto", nil, 0) == mgk_best_path())
        for p in Self.paths { #expect(mgk_kernels_parse(mgk_path_name(p), nil, 0) == p) }
        var err = [CChar](repeating: 0, count: 256)
        #expect(mgk_kernels_parse("avx3", &err, Int32(err.count)) == -1)
        let message = text(err)
        #expect(message.hasPrefix("MINIGPT_KERNELS=avx3: unknown") && message.contains(KernelPath.supported.joined(separator: ",")), "\(message)")
        let lacking = (Int32(MGK_PATH_PORTABLE)..<Int32(MGK_PATH_COUNT)).filter { mgk_path_supported($0) == 0 }
        for p in lacking {
            #expect(mgk_kernels_parse(mgk_path_name(p), &err, Int32(err.count)) == -1)
            #expect(text(err).contains("MINIGPT_KERNELS=\(Self.name(p)): this CPU lacks"), "\(text(err))")
            #expect(mgk_fp32_kernels_for(p) == nil && mgk_kv_kernels_for(p) == nil)
        }
        #expect(KernelPath.supported.last == "portable" && KernelPath.supported.contains(KernelPath.selected))
    }

    @Test("the C RMSNorm equals the Swift one bit for bit on every path")
    func rmsnormBitIdentical() {
        var rng = RNG(seed: 77)
        for n in [1, 5, 15, 16, 17, 31, 128, 130, 320] {
            for scale: Float in [1e-3, 1, 40] {
                let x = gaussians(n, &rng, scale: scale), w = gaussians(n, &rng)
                var ref = [Float](repeating: 0, count: n)
                rmsnormSwift(&ref, x, w, n, eps: 1e-5)
                for p in Self.paths {
                    var out = [Float](repeating: 7, count: n)
                    mgk_fp32_kernels_for(p)!.pointee.rmsnorm(&out, x, w, Int32(n), 1e-5)
                    #expect(out.map(\.bitPattern) == ref.map(\.bitPattern), "path \(Self.name(p)), n=\(n), scale \(scale)")
                }
            }
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
        var first: [Float]?
        let base = gaussians(T * ldo, &rng)
        for p in Self.paths {
            var batched = base, single = base
            mgk_matmul_i8(&batched, Int32(ldo), m.i8, m.scales, m.bias, xu, xs, Int32(T), Int32(rows), Int32(m.cols4), 1, p)
            for t in 0..<T {
                single.withUnsafeMutableBufferPointer { o in xu.withUnsafeBufferPointer { u in
                    mgk_matvec_i8(o.baseAddress! + t * ldo, m.i8, m.scales, m.bias, u.baseAddress! + t * m.cols4, xs[t], Int32(rows), Int32(m.cols4), 1, p)
                } }
            }
            #expect(batched.map(\.bitPattern) == single.map(\.bitPattern), "path \(Self.name(p)), T=\(T)")
            if let first { #expect(batched.map(\.bitPattern) == first.map(\.bitPattern), "path \(Self.name(p)) differs from portable, T=\(T)") }
            first = first ?? batched
        }
        withExtendedLifetime(arena) {}
    }
}

/// A NUL-terminated C buffer as a String.
func text(_ buffer: [CChar]) -> String { String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
/// max |a − b|.
func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
/// max |a − b| / max(|b|, floor).
func maxRelDiff(_ a: [Float], _ b: [Float], floor: Float) -> Float { zip(a, b).map { abs($0 - $1) / max(abs($1), floor) }.max() ?? 0 }

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

    /// Bit patterns, for exact comparisons.
    static func bits(_ x: UnsafeBufferPointer<Float>) -> [UInt32] { x.map(\.bitPattern) }

    /// Prefills `ids` after `warm` batched and token by token on two sessions of `model`: the logits,
    /// every head's attention probabilities and the next step's logits must be bit-identical.
    func expectBitIdentical(_ model: Transformer, kv: KVCacheOptions, warm: [Int], ids: [Int], _ label: String) {
        let a = Session(model: model, kvCache: kv), b = Session(model: model, kvCache: kv)
        a.prefill(warm); b.prefillSequential(warm)
        let la = Self.bits(a.prefill(ids)), lb = Self.bits(b.prefillSequential(ids))
        #expect(la == lb, "\(label): batched logits differ from step by step")
        for h in 0..<model.config.numAttentionHeads {
            #expect(Self.bits(a.attention(head: h)) == Self.bits(b.attention(head: h)), "\(label): attention of head \(h)")
        }
        #expect(Self.bits(a.step(ids[0])) == Self.bits(b.step(ids[0])), "\(label): the step after prefill")
    }

    // INT8 products are exact integer sums on every path and the GEMM shares the matvec's float
    // epilogue; the block attention kernels do each row's arithmetic exactly as the decode kernels
    // (kv.c, fp32.c), so batched prefill reproduces step-by-step decoding bit for bit.
    @Test("batched INT8 prefill is bit-identical to step by step in every KV precision", arguments: KVCacheDType.allCases)
    func int8BitIdentical(dtype: KVCacheDType) {
        let model = Transformer(weights: oracleWeights(ModelConfig(), seed: 12).quantized(attention: true, ffn: true))
        let V = model.config.vocabSize
        var rng = RNG(seed: 31)
        let warm = (0..<101).map { _ in Int(rng.next() % UInt64(V)) }  // attention spans several 8/16/32 blocks
        for T in [2, 5, 12, 15, 16, 17, 40] {
            let ids = (0..<T).map { _ in Int(rng.next() % UInt64(V)) }
            expectBitIdentical(model, kv: KVCacheOptions(dtype: dtype), warm: warm, ids: ids, "\(dtype) T=\(T)")
        }
        // From an empty cache too (the first chunk's own keys are all there is).
        expectBitIdentical(model, kv: KVCacheOptions(dtype: dtype), warm: [1], ids: Array(warm.prefix(14)), "\(dtype) from 1 position")
    }

    @Test("the shipped configuration (INT8 weights, INT8 KV window with sinks) prefills bit-identically through evictions")
    func windowedBitIdentical() {
        var c = ModelConfig()
        c.kvCache = KVCacheOptions(dtype: .int8, window: 64, sinks: 4)
        let model = Transformer(weights: oracleWeights(c, seed: 13).quantized(attention: true, ffn: true))
        var rng = RNG(seed: 5)
        let ticks = (0..<12).map { _ in (0..<13).map { _ in Int(rng.next() % UInt64(c.vocabSize)) } }
        let a = Session(model: model), b = Session(model: model)
        for (i, ids) in ticks.enumerated() {  // 156 tokens through a 64-position window: several evictions
            let la = Self.bits(a.prefill(ids)), lb = Self.bits(b.prefillSequential(ids))
            #expect(la == lb && a.position == b.position, "tick \(i)")
        }
    }

    // The last layer of a batched chunk runs attention, W_o and the FFN for the chunk's last token
    // only (the other tokens get their K and V rows): the cache it leaves must still be the stepped
    // one everywhere, so many decode steps after it stay bit-identical, and the early-exit probe
    // (read from the last token after an inner layer) too.
    @Test("batched prefill's last layer computes the last token only; the cache decodes on bit-identically", arguments: [KVCacheDType.int8, .float32])
    func lastLayerLastTokenOnly(dtype: KVCacheDType) {
        let model = Transformer(weights: oracleWeights(ModelConfig(), seed: 16).quantized(attention: true, ffn: true))
        let V = model.config.vocabSize
        var rng = RNG(seed: 41)
        let warm = (0..<37).map { _ in Int(rng.next() % UInt64(V)) }
        let ids = (0..<12).map { _ in Int(rng.next() % UInt64(V)) }
        let a = Session(model: model, kvCache: KVCacheOptions(dtype: dtype)), b = Session(model: model, kvCache: KVCacheOptions(dtype: dtype))
        a.probeLayer = 2; b.probeLayer = 2
        a.prefill(warm); b.prefillSequential(warm)
        #expect(Self.bits(a.prefill(ids)) == Self.bits(b.prefillSequential(ids)))
        #expect(a.probeLogits.map { Self.bits($0) } == b.probeLogits.map { Self.bits($0) }, "probe logits after prefill")
        for t in 0..<8 {
            let tok = Int(rng.next() % UInt64(V))
            #expect(Self.bits(a.step(tok)) == Self.bits(b.step(tok)), "step \(t) after prefill")
            for h in 0..<model.config.numAttentionHeads {
                #expect(Self.bits(a.attention(head: h)) == Self.bits(b.attention(head: h)), "step \(t): attention of head \(h)")
            }
        }
    }

    // `append` (a record's end marker, whose outputs nothing reads) skips the last layer's
    // attention, W_o and FFN and the head: the cache must still be the one `step` leaves, bit for
    // bit, so what follows decodes identically; a `.confident` rule and an earlier fixed exit too.
    @Test("append leaves the cache step leaves: later prefills, steps and attention bit-identical",
          arguments: [(KVCacheDType.int8, ExitRule.full), (.float32, .full), (.int8, .after(2)), (.float16, .confident(maxEntropy: 2.5))])
    func appendEqualsStep(dtype: KVCacheDType, rule: ExitRule) {
        let model = Transformer(weights: oracleWeights(ModelConfig(earlyExitLayers: [2]), seed: 17).quantized(attention: true, ffn: true))
        let V = model.config.vocabSize
        var rng = RNG(seed: 43)
        let a = Session(model: model, kvCache: KVCacheOptions(dtype: dtype)), b = Session(model: model, kvCache: KVCacheOptions(dtype: dtype))
        for round in 0..<4 {
            let ids = (0..<(round == 0 ? 20 : 9)).map { _ in Int(rng.next() % UInt64(V)) }
            #expect(Self.bits(a.prefill(ids, exit: rule)) == Self.bits(b.prefill(ids, exit: rule)), "round \(round): prefill")
            let marker = Int(rng.next() % UInt64(V))
            a.append(marker, exit: rule); b.step(marker, exit: rule)
            #expect(a.position == b.position && a.lastExitLayer == b.lastExitLayer, "round \(round): position / depth")
        }
        let tok = Int(rng.next() % UInt64(V))
        #expect(Self.bits(a.step(tok, exit: rule)) == Self.bits(b.step(tok, exit: rule)), "step after appends")
        for h in 0..<model.config.numAttentionHeads {
            #expect(Self.bits(a.attention(head: h)) == Self.bits(b.attention(head: h)), "attention of head \(h)")
        }
    }

    @Test("warmCaches reads and changes nothing: the next step is bit-identical, the sum covers the weights")
    func warmCachesChangesNothing() {
        let model = Transformer(weights: oracleWeights(ModelConfig(), seed: 18).quantized(attention: true, ffn: true))
        let ids = (0..<21).map { ($0 * 29 + 3) % model.config.vocabSize }
        let a = Session(model: model, kvCache: KVCacheOptions(dtype: .int8)), b = Session(model: model, kvCache: KVCacheOptions(dtype: .int8))
        a.prefill(ids); b.prefill(ids)
        let s1 = a.warmCaches(), s2 = a.warmCaches()
        #expect(s1 == s2, "a second pass over unchanged memory reads the same bytes")
        #expect(Self.bits(a.step(7)) == Self.bits(b.step(7)))
        #expect(a.warmCaches() != s1, "the step rewrote the session's buffers, which the pass reads")
    }

    @Test("prefill and step are deterministic: the same inputs give the same bits, run after run")
    func deterministic() {
        let model = Transformer(weights: oracleWeights(ModelConfig(), seed: 14).quantized(attention: true, ffn: true))
        let ids = (0..<29).map { ($0 * 37 + 11) % model.config.vocabSize }
        func run(_ s: Session) -> [UInt32] {
            s.reset()
            var out = Self.bits(s.prefill(ids))
            for t in ids.prefix(5) { out += Self.bits(s.step(t)) }
            return out
        }
        let s = Session(model: model, kvCache: KVCacheOptions(dtype: .int8))
        let first = run(s)
        #expect(run(s) == first)
        #expect(run(Session(model: model, kvCache: KVCacheOptions(dtype: .int8))) == first)
    }

    @Test("FP32 prefill stays within rounding of step by step and is deterministic")
    func fp32Deterministic() {
        let model = Transformer(weights: oracleWeights(ModelConfig(), seed: 15))
        let ids = (0..<23).map { ($0 * 13 + 5) % model.config.vocabSize }
        let a = Session(model: model), b = Session(model: model), c = Session(model: model)
        let la = Array(a.prefill(ids)), lb = Array(b.prefillSequential(ids)), lc = Array(c.prefill(ids))
        #expect(la.map(\.bitPattern) == lc.map(\.bitPattern))
        #expect(maxDiff(la, lb) <= 1e-4, "FP32 batched vs stepped: \(maxDiff(la, lb))")
        print("FP32 batched vs stepped prefill: max |Δ| \(maxDiff(la, lb)) (bit-identical: \(la.map(\.bitPattern) == lb.map(\.bitPattern)))")
    }
}
