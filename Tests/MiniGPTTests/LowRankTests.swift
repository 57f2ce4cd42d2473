import Foundation
import Testing
@testable import MiniGPT

// Phase 7, the low-rank FFN (LowRank.swift): the Jacobi SVD, the factored engine paths (forward,
// step, batched prefill) against each other and against the numpy oracle, and the file format.

/// The small oracle shape with a low-rank FFN: d 32, F 80, rank 12.
private func lowRankConfig(rank: Int = 12) -> ModelConfig {
    ModelConfig(vocabSize: 97, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
                numKeyValueHeads: 2, intermediateSize: 80, maxPositionEmbeddings: 64, ffnRank: rank)
}

/// `oracleWeights` for a low-rank config: the factors are rescaled so each product A·B has the
/// standard deviation `OracleScale` gives the dense matrix (logits of std ≈ 3, every layer matters).
private func lowRankOracleWeights(_ c: ModelConfig, seed: UInt64) -> ModelWeights {
    var w = oracleWeights(c, seed: seed)
    let (d, F, r) = (c.hiddenSize, c.intermediateSize, c.ffnRank)
    func rescale(_ a: inout [Float], _ b: [Float], rows: Int, cols: Int, to std: Float) {
        var sum = 0.0
        for i in 0..<rows { for j in 0..<cols {
            var p = 0.0
            for t in 0..<r { p += Double(a[i * r + t]) * Double(b[t * cols + j]) }
            sum += p * p
        } }
        let k = Float(Double(std) / (sum / Double(rows * cols)).squareRoot())
        for i in a.indices { a[i] *= k }
    }
    for i in w.layers.indices {
        let l = w.layers[i]
        rescale(&w.layers[i].gateA, l.gateB, rows: F, cols: d, to: OracleScale.gateUp(d))
        rescale(&w.layers[i].upA, l.upB, rows: F, cols: d, to: OracleScale.gateUp(d))
        rescale(&w.layers[i].downA, l.downB, rows: d, cols: F, to: OracleScale.down(F))
    }
    return w
}

/// A deterministic N(0, 1) matrix.
private func gaussianMatrix(_ rows: Int, _ cols: Int, seed: UInt64) -> [Float] {
    var rng = RNG(seed: seed)
    return (0..<(rows * cols)).map { _ in rng.nextGaussian() }
}

@Suite("LowRank")
struct LowRankTests {
    static let numpyMissing = missingPythonModules(["numpy"], pip: ["numpy"])

    @Test("full-rank SVD reconstructs W, U and V are orthonormal, singular values descend",
          arguments: [(12, 7), (7, 12), (9, 9)])
    func svdFullRank(_ shape: (Int, Int)) {
        let (m, n) = shape
        let w = gaussianMatrix(m, n, seed: UInt64(m * 100 + n))
        let svd = SingularValueDecomposition(w, rows: m, cols: n)
        let k = min(m, n)
        #expect(svd.k == k && svd.s.count == k)
        for j in 1..<k { #expect(svd.s[j - 1] >= svd.s[j]) }
        #expect(svd.s[k - 1] > 0)
        // UᵀU = I (k, k) and V Vᵀ = I (k, k).
        var orth = 0.0
        for a in 0..<k { for b in 0..<k {
            var uu = 0.0, vv = 0.0
            for i in 0..<m { uu += svd.u[i * k + a] * svd.u[i * k + b] }
            for i in 0..<n { vv += svd.vt[a * n + i] * svd.vt[b * n + i] }
            let e = a == b ? 1.0 : 0.0
            orth = max(orth, abs(uu - e), abs(vv - e))
        } }
        #expect(orth < 1e-12, "orthonormality error \(orth)")
        let (a, b) = svd.factors(rank: k)
        let err = relativeFrobeniusError(w, a, b, rows: m, cols: n, rank: k)
        #expect(err < 1e-6, "full-rank reconstruction error \(err)")
        #expect(svd.tailError(rank: k) == 0)
        #expect(SingularValueDecomposition(w, rows: m, cols: n) == svd)   // deterministic
    }

    @Test("rank-r factors: error equals the tail singular values' energy; an exactly rank-3 matrix is recovered")
    func svdTruncated() {
        let (m, n) = (20, 14)
        let w = gaussianMatrix(m, n, seed: 5)
        let svd = SingularValueDecomposition(w, rows: m, cols: n)
        for r in [1, 4, 9, 13] {
            let (a, b) = svd.factors(rank: r)
            let err = relativeFrobeniusError(w, a, b, rows: m, cols: n, rank: r)
            let tail = svd.tailError(rank: r)
            #expect(tail > 0.01)
            #expect(abs(err - tail) < 1e-5, "rank \(r): error \(err) vs tail energy \(tail)")
        }
        // Rank 3 by construction: Σ of three outer products.
        let p = gaussianMatrix(m, 3, seed: 6), q = gaussianMatrix(3, n, seed: 7)
        var low = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for t in 0..<3 { low[i * n + j] += p[i * 3 + t] * q[t * n + j] } } }
        let s3 = SingularValueDecomposition(low, rows: m, cols: n)
        #expect(s3.s[3] < 1e-5 * s3.s[0], "4th singular value \(s3.s[3]) of a rank-3 matrix")
        let (a, b) = s3.factors(rank: 3)
        #expect(relativeFrobeniusError(low, a, b, rows: m, cols: n, rank: 3) < 1e-5)
        let (a2, b2) = s3.factors(rank: 2)
        #expect(relativeFrobeniusError(low, a2, b2, rows: m, cols: n, rank: 2) > 0.01)
    }

    @Test("ffn_rank > 0: forward, step and batched prefill agree; the op counter counts 3r(d+F) FFN MACs")
    func cacheEquivalence() {
        let c = lowRankConfig()
        let model = Transformer(weights: lowRankOracleWeights(c, seed: 11))
        let V = c.vocabSize
        let ids = oraclePrompt(length: 40, vocab: V, seed: 12)   // 40 > prefillChunk: 3 chunks
        let full = model.forward(tokens: ids)
        let s = Session(model: model)
        var maxStep = 0.0
        for (t, id) in ids.enumerated() {
            let l = s.step(id)
            for v in 0..<V { track(&maxStep, Double(l[v]), Double(full[t * V + v])) }
        }
        let p = Session(model: model)
        let last = Array(p.prefill(ids))
        var maxPrefill = 0.0
        for v in 0..<V { track(&maxPrefill, Double(last[v]), Double(full[(ids.count - 1) * V + v])) }
        #expect(maxStep <= 1e-4 && maxPrefill <= 1e-4, "step \(maxStep), prefill \(maxPrefill)")
        // After the batched prefill, decoding continues from the same cache as the stepped session.
        let next = 5
        let a = Array(s.step(next)), b = Array(p.step(next))
        var maxNext = 0.0
        for v in 0..<V { track(&maxNext, Double(a[v]), Double(b[v])) }
        #expect(maxNext <= 1e-4, "step after prefill \(maxNext)")

        let one = Session(model: model)
        one.step(3)
        #expect(one.counter.macs == c.macsPerToken(position: 0))
        #expect(one.counter.matmuls == c.numHiddenLayers * (2 + 6) + 1)   // qkv, o; 6 FFN products; head
        var fc = OpCounter()
        _ = model.forward(tokens: [3], counter: &fc)
        #expect(fc.macs == c.macsPerToken(position: 0) && fc.matmuls == one.counter.matmuls)
        let dense = ModelConfig(vocabSize: 97, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
                                numKeyValueHeads: 2, intermediateSize: 80, maxPositionEmbeddings: 64)
        #expect(c.macsPerToken(position: 0) < dense.macsPerToken(position: 0))
    }

    @Test("save/load round trip: factor tensors weight_a / weight_b, no dense FFN tensors")
    func roundTrip() throws {
        let c = lowRankConfig(rank: 5)
        let w = ModelWeights(random: c, seed: 21)
        #expect(w.layers[0].gate.isEmpty && w.layers[0].gateA.count == c.intermediateSize * 5)
        let dir = try TestTempDir("minigpt-lowrank")
        try ModelFolder.save(w, to: dir.url)
        let back = try ModelFolder.load(dir.url)
        #expect(back == w)
        let file = try SafeTensorsFile(url: dir.file(ModelFolder.weightsFile))
        #expect(file.tensors["model.layers.1.mlp.down_proj.weight_a"]?.shape == [c.hiddenSize, 5])
        #expect(file.tensors["model.layers.1.mlp.down_proj.weight_b"]?.shape == [5, c.intermediateSize])
        #expect(file.tensors[TensorName.gate(0)] == nil)
        #expect(w.parameterCount == ModelWeights(random: c, seed: 1).parameterCount)
        // A missing factor is an error naming the tensor.
        var cfg = c; cfg.ffnRank = 6
        #expect(throws: (any Error).self) { try ModelWeights(config: cfg, file: file) }
        do { _ = try ModelWeights(config: cfg, file: file); Issue.record("loaded a rank-5 file as rank 6") }
        catch { #expect("\(error)".contains("gate_proj.weight_a"), "\(error)") }
    }

    @Test("lowRank(rank:) of a dense model: full rank keeps the logits, lower rank changes them; bad ranks are errors")
    func conversion() throws {
        var dc = lowRankConfig(); dc.ffnRank = 0
        let dense = oracleWeights(dc, seed: 31)
        let full = min(dc.hiddenSize, dc.intermediateSize)
        let (fw, report) = try dense.lowRank(rank: full)
        #expect(report.count == 3 * dc.numHiddenLayers && report.allSatisfy { $0.relativeError < 1e-5 })
        #expect(fw.config.ffnRank == full && fw.layers[0].gate.isEmpty)
        let ids = oraclePrompt(length: 9, vocab: dc.vocabSize, seed: 32)
        let a = Transformer(weights: dense).forward(tokens: ids), b = Transformer(weights: fw).forward(tokens: ids)
        var m = 0.0
        for i in a.indices { track(&m, Double(a[i]), Double(b[i])) }
        #expect(m < 1e-3, "full-rank factors change logits by \(m)")
        let (lw, lrep) = try dense.lowRank(rank: 4)
        #expect(lrep.allSatisfy { $0.relativeError > 0.05 && $0.relativeError < 1 })
        #expect(lw.parameterCount < dense.parameterCount)
        #expect(throws: LowRankError.badRank(0, max: full)) { try dense.lowRank(rank: 0) }
        #expect(throws: LowRankError.badRank(full + 1, max: full)) { try dense.lowRank(rank: full + 1) }
        #expect(throws: LowRankError.alreadyLowRank(4)) { try lw.lowRank(rank: 2) }
    }

    @Test("a random low-rank model matches the numpy oracle (W = A·B) within 1e-4")
    func matchesOracle() throws {
        if let m = Self.numpyMissing { Issue.record(Comment(rawValue: m)); return }
        let c = lowRankConfig()
        let dir = try TestTempDir("minigpt-lowrank-oracle")
        try ModelFolder.save(lowRankOracleWeights(c, seed: 41), to: dir.url)
        let model = Transformer(weights: try ModelFolder.load(dir.url))
        let prompts = [1, 7, 40].enumerated().map { k, n in oraclePrompt(length: n, vocab: c.vocabSize, seed: 42 + UInt64(k)) }
        let oracle = try oracleLogits(model: dir.url, prompts: prompts)
        try #require(oracle.count == prompts.count)
        let V = c.vocabSize
        var maxForward = 0.0, maxSession = 0.0, logitStd = 0.0
        for (ids, expected) in zip(prompts, oracle) {
            try #require(expected.count == ids.count && expected.allSatisfy { $0.count == V })
            let forward = model.forward(tokens: ids)
            let s = Session(model: model)
            for t in ids.indices {
                let l = s.step(ids[t])
                for v in 0..<V {
                    track(&maxForward, Double(forward[t * V + v]), expected[t][v])
                    track(&maxSession, Double(l[v]), expected[t][v])
                }
            }
            let batched = Session(model: model)   // owns the logits buffer `prefill` returns
            let last = Array(batched.prefill(ids))
            withExtendedLifetime(batched) {}
            for v in 0..<V { track(&maxSession, Double(last[v]), expected[ids.count - 1][v]) }
            let row = expected[ids.count - 1], mean = row.reduce(0, +) / Double(V)
            logitStd = (row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(V)).squareRoot()
        }
        #expect(maxForward <= 1e-4 && maxSession <= 1e-4, "forward \(maxForward), session \(maxSession)")
        #expect(logitStd > 1 && logitStd < 10, "logit std \(logitStd) outside 1...10 (scaling broken?)")
        // The comparison can fail: a slightly different factor disagrees.
        var w = try ModelFolder.load(dir.url)
        w.layers[0].upB[0] += 0.5
        let off = Transformer(weights: w).forward(tokens: prompts[2])
        var maxOff = 0.0
        for t in prompts[2].indices { for v in 0..<V { track(&maxOff, Double(off[t * V + v]), oracle[2][t][v]) } }
        #expect(maxOff > 1e-3, "a perturbed factor still matches (max |Δ| \(maxOff))")
    }
}
