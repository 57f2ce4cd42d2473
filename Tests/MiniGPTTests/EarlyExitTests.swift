import Foundation
import Testing
@testable import MiniGPT

// Early exit (EarlyExit.swift, Session.step/prefill with an `ExitRule`) against two independent
// references: the phase-1 forward of a model truncated to its first k layers, and a naive Swift
// transformer below that builds the KV cache the way state propagation should (per-token depth).

/// Naive reference: logits (V) after each token, token t running `depths[t]` layers fully and
/// only attn-norm + QKV + RoPE + cache append in the layers after (CALM state propagation).
/// Plain arrays and loops straight from the weights; shares no code with `Session`.
func earlyExitReference(_ w: ModelWeights, tokens: [Int], depths: [Int]) -> [[Float]] {
    let c = w.config
    let (d, V, hd, H, KVH, F) = (c.hiddenSize, c.vocabSize, c.headDim, c.numAttentionHeads, c.numKeyValueHeads, c.intermediateSize)
    let (qDim, kvDim) = (H * hd, KVH * hd)
    func norm(_ x: [Float], _ g: [Float]) -> [Float] {
        var ms: Float = 0
        for v in x { ms += v * v }
        let s = 1 / (ms / Float(x.count) + c.rmsNormEps).squareRoot()
        return (0..<x.count).map { x[$0] * s * g[$0] }
    }
    func matvec(_ m: [Float], _ x: [Float], rows: Int) -> [Float] {
        let cols = x.count
        return (0..<rows).map { r in var a: Float = 0; for i in 0..<cols { a += m[r * cols + i] * x[i] }; return a }
    }
    func rope(_ v: inout [Float], at offset: Int, pos: Int) {
        let half = hd / 2
        for i in 0..<half {
            let angle = Double(pos) * pow(Double(c.ropeTheta), -2.0 * Double(i) / Double(hd))
            let (cs, sn) = (Float(cos(angle)), Float(sin(angle)))
            let a = v[offset + i], b = v[offset + i + half]
            v[offset + i] = a * cs - b * sn
            v[offset + i + half] = b * cs + a * sn
        }
    }
    var keys = [[[Float]]](repeating: [], count: c.numHiddenLayers)    // [layer][pos] (kv_dim)
    var values = [[[Float]]](repeating: [], count: c.numHiddenLayers)
    var out: [[Float]] = []
    for (pos, token) in tokens.enumerated() {
        var x = Array(w.embed[(token * d)..<((token + 1) * d)])
        for (l, layer) in w.layers.enumerated() {
            var qkv = matvec(layer.qkv, norm(x, layer.attnNorm), rows: qDim + 2 * kvDim)
            for head in 0..<(H + KVH) { rope(&qkv, at: head * hd, pos: pos) }
            keys[l].append(Array(qkv[qDim..<(qDim + kvDim)]))
            values[l].append(Array(qkv[(qDim + kvDim)...]))
            guard l < depths[pos] else { continue }  // exited: cache append only
            var att = [Float](repeating: 0, count: qDim)
            for head in 0..<H {
                let kv = head / (H / KVH)
                var s = (0...pos).map { p -> Float in
                    var a: Float = 0
                    for i in 0..<hd { a += qkv[head * hd + i] * keys[l][p][kv * hd + i] }
                    return a / Float(hd).squareRoot()
                }
                let m = s.max()!
                s = s.map { expf($0 - m) }
                let z = s.reduce(0, +)
                for p in 0...pos { for i in 0..<hd { att[head * hd + i] += s[p] / z * values[l][p][kv * hd + i] } }
            }
            let o = matvec(layer.o, att, rows: d)
            for i in 0..<d { x[i] += o[i] }
            let h = norm(x, layer.ffnNorm)
            let gate = matvec(layer.gate, h, rows: F), up = matvec(layer.up, h, rows: F)
            let s = (0..<F).map { gate[$0] / (1 + expf(-gate[$0])) * up[$0] }
            let dn = matvec(layer.down, s, rows: d)
            for i in 0..<d { x[i] += dn[i] }
        }
        // x is the state after depths[pos] layers: the layers after never changed it.
        out.append(matvec(w.lmHead ?? w.embed, norm(x, w.finalNorm), rows: V))
    }
    return out
}

/// Largest |a − b| / max(1, |b|) over two equally long logit vectors.
private func maxRelDiff(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) }
}

@Suite struct EarlyExitTests {
    /// Default phase-15 shape (tied head, GQA 4/2); a small untied one with a single KV head; one
    /// whose q_dim (40) is not a multiple of 16, so propagation projects all QKV rows.
    static let shapes: [ModelConfig] = [
        ModelConfig(earlyExitLayers: [1, 2, 3]),
        ModelConfig(vocabSize: 97, hiddenSize: 48, numHiddenLayers: 3, numAttentionHeads: 4, numKeyValueHeads: 1,
                    intermediateSize: 72, maxPositionEmbeddings: 64, tieWordEmbeddings: false, earlyExitLayers: [2]),
        ModelConfig(vocabSize: 50, hiddenSize: 40, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                    intermediateSize: 64, maxPositionEmbeddings: 32, earlyExitLayers: [1]),
    ]

    static func tokens(_ n: Int, vocab: Int, seed: UInt64) -> [Int] {
        var rng = RNG(seed: seed)
        return (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) }
    }

    @Test(".after(L) equals the default full step, bit for bit", arguments: 0..<3)
    func afterAllIsFull(shape: Int) {
        let c = Self.shapes[shape]
        let model = Transformer(weights: scaledRandomWeights(c, seed: 11))
        let a = Session(model: model), b = Session(model: model)
        for tok in Self.tokens(20, vocab: c.vocabSize, seed: 5) {
            let full = Array(a.step(tok))
            let after = Array(b.step(tok, exit: .after(c.numHiddenLayers)))
            #expect(full == after)
            #expect(a.lastExitLayer == c.numHiddenLayers && b.lastExitLayer == c.numHiddenLayers)
        }
        #expect(a.counter == b.counter)
    }

    @Test(".after(k) equals the phase-1 forward of the model truncated to k layers", arguments: 0..<3)
    func afterMatchesTruncatedForward(shape: Int) {
        let c = Self.shapes[shape]
        let w = scaledRandomWeights(c, seed: 12)
        let model = Transformer(weights: w)
        let toks = Self.tokens(24, vocab: c.vocabSize, seed: 6)
        for k in 1..<c.numHiddenLayers {
            var tw = w
            tw.config.numHiddenLayers = k
            tw.config.earlyExitLayers = []
            tw.layers = Array(w.layers.prefix(k))
            let ref = Transformer(weights: tw).forward(tokens: toks)
            let s = Session(model: model)
            var worst: Float = 0
            for (t, tok) in toks.enumerated() {
                let logits = s.step(tok, exit: .after(k))
                worst = max(worst, maxRelDiff(logits, ref[(t * c.vocabSize)..<((t + 1) * c.vocabSize)]))
                #expect(s.lastExitLayer == k)
            }
            #expect(worst <= 1e-4, "shape \(shape) k=\(k): max rel diff \(worst)")
            // The exit really changed the answer (else this test could not fail).
            let full = Session(model: model)
            let fullLogits = Array(full.prefill(toks))
            #expect(maxRelDiff(fullLogits, ref[((toks.count - 1) * c.vocabSize)...]) > 1e-2)
        }
    }

    @Test("KV propagation: mixed-depth steps equal a naive reference that builds the same cache", arguments: 0..<3)
    func propagationMatchesReference(shape: Int) {
        let c = Self.shapes[shape]
        let L = c.numHiddenLayers
        let w = scaledRandomWeights(c, seed: 13)
        let toks = Self.tokens(18, vocab: c.vocabSize, seed: 7)
        let depths = toks.indices.map { t in t % 3 == 2 ? L : 1 + (t * 7) % L }  // full steps after exited ones
        let ref = earlyExitReference(w, tokens: toks, depths: depths)
        let s = Session(model: Transformer(weights: w))
        var worst: Float = 0
        for (t, tok) in toks.enumerated() {
            worst = max(worst, maxRelDiff(s.step(tok, exit: .after(depths[t])), ref[t]))
        }
        #expect(worst <= 1e-4, "max rel diff \(worst)")
        // The propagated cache matters: a full run of the same tokens ends elsewhere. (Not with two
        // layers: layer k's K and V come from x_k in both cases; only layers after k see stale input.)
        let full = Session(model: Transformer(weights: w))
        let fullLast = Array(full.prefill(toks))
        if L >= 3 { #expect(maxRelDiff(fullLast, ref[toks.count - 1]) > 1e-2) }
        // And the naive reference's full path is the engine's full path.
        let refFull = earlyExitReference(w, tokens: toks, depths: toks.map { _ in L })
        #expect(maxRelDiff(fullLast, refFull[toks.count - 1]) <= 1e-4)
    }

    @Test(".confident: a huge threshold exits at the first listed layer, -1 runs every layer")
    func confidentThresholds() {
        let c = Self.shapes[0]  // early_exit_layers [1, 2, 3] of 4
        let model = Transformer(weights: scaledRandomWeights(c, seed: 14))
        let toks = Self.tokens(10, vocab: c.vocabSize, seed: 8)
        let (huge, never, after1, full) = (Session(model: model), Session(model: model), Session(model: model), Session(model: model))
        for tok in toks {
            let a = Array(huge.step(tok, exit: .confident(maxEntropy: 1e9)))
            #expect(huge.lastExitLayer == 1)
            #expect(a == Array(after1.step(tok, exit: .after(1))))
            let b = Array(never.step(tok, exit: .confident(maxEntropy: -1)))
            #expect(never.lastExitLayer == c.numHiddenLayers)
            #expect(b == Array(full.step(tok)))
        }
        // -1 paid for three rejected head evaluations per token; the huge threshold for one.
        let head = c.vocabSize * c.hiddenSize
        #expect(never.counter.macs == full.counter.macs + 3 * toks.count * head)
        #expect(huge.counter == after1.counter)
        // A threshold between the layer entropies exits where the entropy first drops below it.
        let probe = Session(model: model)
        var entropies: [Float] = []
        for k in 1...c.numHiddenLayers {
            probe.reset()
            entropies.append(Sampler.entropy(probe.prefill(toks, exit: .after(k))))
        }
        let mid = entropies[0...2].min()!
        let expected = entropies[0...2].firstIndex { $0 <= mid }! + 1
        let s = Session(model: model)
        let out = Array(s.prefill(toks, exit: .confident(maxEntropy: mid)))
        #expect(s.lastExitLayer == expected, "entropies \(entropies)")
        probe.reset()
        #expect(out == Array(probe.prefill(toks, exit: .after(expected))))
    }

    @Test("op counter: exiting after k layers counts fewer products and MACs")
    func opCounterShowsSaving() {
        let c = Self.shapes[0]
        let L = c.numHiddenLayers
        let model = Transformer(weights: scaledRandomWeights(c, seed: 15))
        var previous = Int.max
        for k in stride(from: L, through: 1, by: -1) {
            let s = Session(model: model)
            s.step(3, exit: .after(k))
            // Dense FFN: QKV, O, gate, up, down per full layer; QKV only per propagated layer; the head.
            #expect(s.counter.matmuls == 5 * k + (L - k) + 1)
            #expect(s.counter.macs < previous)
            previous = s.counter.macs
        }
        let full = Session(model: model), one = Session(model: model)
        full.step(3); one.step(3, exit: .after(1))
        // A propagated layer skips the Q rows of QKV, W_o, the FFN and attention.
        let perLayer = 2 * c.hiddenSize * c.qDim + 3 * c.hiddenSize * c.intermediateSize + 2 * c.numAttentionHeads * c.headDim
        #expect(full.counter.macs - one.counter.macs == (L - 1) * perLayer)
    }

    @Test("a row-suffix view of packed panels (FP32 and INT8) computes the tail rows of the full product")
    func rowSuffixView() {
        var rng = RNG(seed: 17)
        let (rows, cols, T) = (64 + 32, 40, 5)
        let w = (0..<(rows * cols)).map { _ in rng.nextGaussian() }
        let x = (0..<(T * cols)).map { _ in rng.nextGaussian() }
        let arena = PackedArena()
        for m in [arena.packF32(w, rows: rows, cols: cols), arena.packI8(QuantizedMatrix(quantizing: w, rows: rows, cols: cols))] {
            #expect(m.rowSuffix(from: 8) == nil && m.rowSuffix(from: 0) == nil && m.rowSuffix(from: rows) == nil)
            let v = m.rowSuffix(from: 64)!
            #expect(v.rows == 32 && v.cols == cols)
            let xu = UnsafeMutablePointer<UInt8>.allocate(capacity: T * m.cols4)
            defer { xu.deallocate() }
            var full = [Float](repeating: 0, count: T * rows), tail = [Float](repeating: 0, count: T * rows)
            var xs = [Float](repeating: 0, count: T)
            x.withUnsafeBufferPointer { xp in
                // matrix–vector (decode) on the first token, then matrix–matrix (prefill) on all T.
                m.apply(&full, xp.baseAddress!, accumulate: false, xu: xu)
                tail.withUnsafeMutableBufferPointer { v.apply($0.baseAddress! + 64, xp.baseAddress!, accumulate: false, xu: xu) }
                #expect(Array(full[64..<rows]) == Array(tail[64..<rows]))
                m.apply(&full, ldo: rows, xp.baseAddress!, ldx: cols, tokens: T, accumulate: false, xu: xu, xs: &xs)
                tail.withUnsafeMutableBufferPointer { tp in
                    v.apply(tp.baseAddress! + 64, ldo: rows, xp.baseAddress!, ldx: cols, tokens: T, accumulate: false, xu: xu, xs: &xs)
                }
            }
            for t in 0..<T { #expect(Array(full[(t * rows + 64)..<((t + 1) * rows)]) == Array(tail[(t * rows + 64)..<((t + 1) * rows)])) }
            #expect(full.contains { abs($0) > 1 }, "outputs too small to mean anything")
        }
    }

    @Test("prefill equals step by step for the same rule (chunks of 16 and a remainder)", arguments: 0..<3)
    func prefillMatchesSteps(shape: Int) {
        let c = Self.shapes[shape]
        let model = Transformer(weights: scaledRandomWeights(c, seed: 16))
        let toks = Self.tokens(Session.prefillChunk + 5, vocab: c.vocabSize, seed: 9)
        for rule in [ExitRule.full] + (1...c.numHiddenLayers).map({ ExitRule.after($0) }) {
            let batched = Session(model: model), stepped = Session(model: model)
            let a = Array(batched.prefill(toks, exit: rule))
            var b: [Float] = []
            for tok in toks { b = Array(stepped.step(tok, exit: rule)) }
            #expect(maxRelDiff(a, b) <= 1e-4, "\(rule)")
            #expect(batched.lastExitLayer == stepped.lastExitLayer)
            // The caches agree too: one more full step from each lands on the same logits.
            #expect(maxRelDiff(batched.step(1), stepped.step(1)) <= 1e-4, "\(rule) then full")
        }
    }

    @Test("rules parse, print and validate against the model depth")
    func parsing() throws {
        let c = ModelConfig()
        #expect(ExitRule(parsing: "full") == .full)
        #expect(ExitRule(parsing: "after:2") == .after(2))
        #expect(ExitRule(parsing: "confident:1.5") == .confident(maxEntropy: 1.5))
        for bad in ["", "after", "after:x", "confident:", "half:2", "full:1"] { #expect(ExitRule(parsing: bad) == nil, "\(bad)") }
        #expect(ExitRule(parsing: ExitRule.after(3).description) == .after(3))
        try ExitRule.after(4).validate(for: c)
        #expect(throws: ExitRuleError.self) { try ExitRule.after(0).validate(for: c) }
        #expect(throws: ExitRuleError.self) { try ExitRule.after(5).validate(for: c) }
        do { try ExitRule.after(9).validate(for: c) } catch let e as ExitRuleError {
            #expect(e.description.contains("1...4") && e.description.contains("after:9"))
        }
    }
}
