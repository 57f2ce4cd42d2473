import Foundation
import Testing
@testable import MiniGPT

// The engine's forward pass against the independent numpy oracle (Tests/reference/minigpt_ref.py,
// float64, written from the math, not from the Swift code).
//
// Scaling: `ModelWeights(random:seed:)` draws N(0, 0.02²) matrices, which makes logits tiny
// (std ≈ 0.2) and attention almost uniform (scores ≈ 0.05), so a wrong RoPE, mask or head mapping
// would change the logits by less than the tolerance. `oracleWeights` therefore rescales every
// matrix to an explicit standard deviation (see `OracleScale`) and randomises the norm gains, so
//   - q and k entries have std ≈ 1.5 → attention scores of std ≈ 2: peaked, position-sensitive;
//   - each residual update has std ≈ 0.3, comparable to the embedding, so every layer matters;
//   - logits have std ≈ 3 (checked below to lie in 1...10), so 1e-4 is a relative error of ~3e-5.
// The test checks the attention really is peaked (the last layer's maximum probability, averaged
// over heads, is several times the uniform 1/T) so the tolerance cannot be met by accident.

/// Target standard deviations of the rescaled random weights (d = hidden size, F = FFN width).
enum OracleScale {
    /// Token embedding (and untied head): std 3/√d so logits = ĥ·E have std ≈ 3 for unit-RMS ĥ.
    static func embed(_ d: Int) -> Float { 3 / Float(d).squareRoot() }
    /// QKV: std 1.5/√d so q, k, v entries have std ≈ 1.5.
    static func qkv(_ d: Int) -> Float { 1.5 / Float(d).squareRoot() }
    /// O: std 0.2/√q_dim so the attention update has std ≈ 0.3.
    static func o(_ qDim: Int) -> Float { 0.2 / Float(qDim).squareRoot() }
    /// Gate and up: std 1/√d (pre-activations of std ≈ 1, where SiLU is curved).
    static func gateUp(_ d: Int) -> Float { 1 / Float(d).squareRoot() }
    /// Down: std 0.5/√F so the FFN update has std ≈ 0.3.
    static func down(_ f: Int) -> Float { 0.5 / Float(f).squareRoot() }
    /// Norm gains: 1 + N(0, 0.2²), so a kernel that ignores them fails.
    static let normJitter: Float = 0.2
}

/// Random weights for `config`, rescaled per `OracleScale`. Deterministic in `seed`.
func oracleWeights(_ config: ModelConfig, seed: UInt64) -> ModelWeights {
    var w = ModelWeights(random: config, seed: seed)
    var rng = RNG(seed: seed ^ 0x5EED)
    func rescale(_ a: inout [Float], to std: Float) {
        let rms = (a.reduce(0) { $0 + Double($1) * Double($1) } / Double(a.count)).squareRoot()
        let k = Float(Double(std) / rms)
        for i in a.indices { a[i] *= k }
    }
    func jitter(_ a: inout [Float]) { for i in a.indices { a[i] = 1 + OracleScale.normJitter * rng.nextGaussian() } }
    let c = config, d = c.hiddenSize
    rescale(&w.embed, to: OracleScale.embed(d))
    if w.lmHead != nil { rescale(&w.lmHead!, to: OracleScale.embed(d)) }
    jitter(&w.finalNorm)
    for i in w.layers.indices {
        rescale(&w.layers[i].qkv, to: OracleScale.qkv(d))
        rescale(&w.layers[i].o, to: OracleScale.o(c.qDim))
        rescale(&w.layers[i].gate, to: OracleScale.gateUp(d))
        rescale(&w.layers[i].up, to: OracleScale.gateUp(d))
        rescale(&w.layers[i].down, to: OracleScale.down(c.intermediateSize))
        jitter(&w.layers[i].attnNorm)
        jitter(&w.layers[i].ffnNorm)
    }
    return w
}

/// One model shape under test.
struct OracleShape: CustomTestStringConvertible, Sendable {
    var name: String
    var config: ModelConfig
    var testDescription: String { name }

    static let all: [OracleShape] = {
        let small = ModelConfig(vocabSize: 97, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
                                numKeyValueHeads: 2, intermediateSize: 80, maxPositionEmbeddings: 64)
        var untied = small; untied.tieWordEmbeddings = false
        var unfused = small; unfused.fusedQKV = false
        var gqa41 = small; gqa41.numKeyValueHeads = 1
        var mha = small; mha.numKeyValueHeads = 4
        var oneLayer = small; oneLayer.numHiddenLayers = 1; oneLayer.ropeTheta = 500
        var wideHead = small; wideHead.numAttentionHeads = 2; wideHead.numKeyValueHeads = 1  // hd = 16
        return [
            OracleShape(name: "default d128 L4 H4 KV2 V512", config: ModelConfig()),
            OracleShape(name: "untied head", config: untied),
            OracleShape(name: "unfused QKV", config: unfused),
            OracleShape(name: "GQA 4/1", config: gqa41),
            OracleShape(name: "MHA 4/4", config: mha),
            OracleShape(name: "1 layer, rope_theta 500", config: oneLayer),
            OracleShape(name: "H2 KV1 hd16", config: wideHead),
        ]
    }()
}

/// Prompt lengths every shape is checked on.
let oraclePromptLengths = [1, 7, 40]

/// A deterministic prompt of `length` ids in 0..<vocab.
func oraclePrompt(length: Int, vocab: Int, seed: UInt64) -> [Int] {
    var rng = RNG(seed: seed)
    return (0..<length).map { _ in Int(rng.next() % UInt64(vocab)) }
}

/// The oracle's logits for every position of each prompt, [prompt][t][v], from the model folder
/// `dir`: one python3 process for all prompts (`--ids` repeated).
func oracleLogits(model dir: URL, prompts: [[Int]]) throws -> [[[Double]]] {
    var args = [TestPaths.reference("minigpt_ref.py").path, "logits", "--model", dir.path, "--all"]
    for ids in prompts { args += ["--ids", ids.map(String.init).joined(separator: ",")] }
    let r = try runPython(args)
    guard r.succeeded else {
        throw TestSupportError(description: "minigpt_ref.py logits failed (status \(r.status)): \(r.stderr)")
    }
    return prompts.count == 1 ? [try decodeJSON([[Double]].self, from: r.stdout)]
                              : try decodeJSON([[[Double]]].self, from: r.stdout)
}

/// `m = max(m, |a − b|)`, except that a NaN on either side makes `m` NaN (Swift's `max` would drop
/// it), so a NaN anywhere fails the `<= tolerance` check.
func track(_ m: inout Double, _ a: Double, _ b: Double) {
    let d = abs(a - b)
    if !(d <= m) { m = d }
}

@Suite("Oracle")
struct OracleTests {
    static let numpyMissing = missingPythonModules(["numpy"], pip: ["numpy"])

    @Test("the numpy reference passes its own self-checks (vs scalar loops, cached decoder, GQA identities)")
    func referenceSelfCheck() throws {
        if let m = Self.numpyMissing { Issue.record(Comment(rawValue: m)); return }
        let r = try runPython([TestPaths.reference("test_minigpt_ref.py").path])
        #expect(r.succeeded, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("all reference self-checks passed"), "\(r.stdout)")
    }

    @Test("Transformer.forward and Session steps match the numpy oracle", arguments: OracleShape.all)
    func matchesOracle(_ shape: OracleShape) throws {
        if let m = Self.numpyMissing { Issue.record(Comment(rawValue: m)); return }
        let dir = try TestTempDir("minigpt-oracle")
        let seed = UInt64(shape.name.utf8.reduce(17) { $0 &* 31 &+ UInt64($1) })
        let written = oracleWeights(shape.config, seed: seed)
        try ModelFolder.save(written, to: dir.url)
        let weights = try ModelFolder.load(dir.url)   // the engine reads what the oracle reads
        #expect(weights == written)
        let model = Transformer(weights: weights)
        let session = Session(model: model)
        let V = shape.config.vocabSize

        var maxForward = 0.0, maxSession = 0.0, logitStd = 0.0, peak: Float = 0
        let prompts = oraclePromptLengths.enumerated().map { k, length in
            oraclePrompt(length: length, vocab: V, seed: seed &+ UInt64(k))
        }
        let oracle = try oracleLogits(model: dir.url, prompts: prompts)
        try #require(oracle.count == prompts.count)
        for (ids, expected) in zip(prompts, oracle) {
            let length = ids.count
            try #require(expected.count == length && expected.allSatisfy { $0.count == V })

            // Phase 1: the whole sequence at once, (T, V).
            let forward = model.forward(tokens: ids)
            try #require(forward.count == length * V)
            for t in 0..<length {
                for v in 0..<V { track(&maxForward, Double(forward[t * V + v]), expected[t][v]) }
            }

            // KV cache: one step per token, each step's logits against that position's row.
            session.reset()
            for (t, id) in ids.enumerated() {
                #expect(session.position == t)
                let logits = session.step(id)
                for v in 0..<V { track(&maxSession, Double(logits[v]), expected[t][v]) }
            }
            // prefill = the same steps; returns the last row.
            session.reset()
            let last = Array(session.prefill(ids))
            #expect(session.position == length)
            for v in 0..<V { track(&maxSession, Double(last[v]), expected[length - 1][v]) }

            if length == oraclePromptLengths.last! {
                let row = expected[length - 1]
                let mean = row.reduce(0, +) / Double(V)
                logitStd = (row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(V)).squareRoot()
                // Attention must be peaked, or RoPE/mask/head-mapping errors would hide under the tolerance.
                let H = shape.config.numAttentionHeads
                peak = (0..<H).map { session.attention(head: $0).max() ?? 0 }.reduce(0, +) / Float(H)
                #expect(peak > 4 / Float(length), "\(shape.name): mean max attention \(peak) ≈ uniform \(1 / Float(length))")
            }
        }
        print("oracle \(shape.name): max |Δ| forward \(maxForward), session \(maxSession), logit std \(logitStd), "
              + "mean max attention \(peak) at T=\(oraclePromptLengths.last!)")
        #expect(maxForward <= 1e-4, "\(shape.name): forward vs oracle max |Δ| \(maxForward)")
        #expect(maxSession <= 1e-4, "\(shape.name): session vs oracle max |Δ| \(maxSession)")
        #expect(logitStd > 1 && logitStd < 10, "\(shape.name): logit std \(logitStd) outside 1...10 (scaling broken?)")
    }

    @Test("a perturbed engine model disagrees with the oracle (the comparison can fail)")
    func perturbationIsDetected() throws {
        if let m = Self.numpyMissing { Issue.record(Comment(rawValue: m)); return }
        let config = OracleShape.all[1].config
        let dir = try TestTempDir("minigpt-oracle")
        var w = oracleWeights(config, seed: 3)
        try ModelFolder.save(w, to: dir.url)
        w.layers[config.numHiddenLayers - 1].attnNorm[0] += 0.05   // one norm gain, slightly off
        let ids = oraclePrompt(length: 7, vocab: config.vocabSize, seed: 4)
        let expected = try oracleLogits(model: dir.url, prompts: [ids])[0]
        let got = Transformer(weights: w).forward(tokens: ids)
        var maxDiff = 0.0
        for t in ids.indices { for v in 0..<config.vocabSize { track(&maxDiff, Double(got[t * config.vocabSize + v]), expected[t][v]) } }
        print("oracle perturbation: max |Δ| \(maxDiff)")
        #expect(maxDiff > 1e-3)
    }

    @Test("engine logits are bit-identical across runs and sessions")
    func deterministic() {
        let config = OracleShape.all[3].config
        let model = Transformer(weights: oracleWeights(config, seed: 9))
        let ids = oraclePrompt(length: 12, vocab: config.vocabSize, seed: 10)
        #expect(model.forward(tokens: ids).map(\.bitPattern) == model.forward(tokens: ids).map(\.bitPattern))
        let a = Session(model: model), b = Session(model: model)
        let la = Array(a.prefill(ids))
        a.reset()
        #expect(Array(a.prefill(ids)).map(\.bitPattern) == la.map(\.bitPattern))
        #expect(Array(b.prefill(ids)).map(\.bitPattern) == la.map(\.bitPattern))
    }

    @Test("minigpt_ref.py bench-decode prints the line `mgpt bench decode` parses")
    func benchDecodeLine() throws {
        if let m = Self.numpyMissing { Issue.record(Comment(rawValue: m)); return }
        let dir = try TestTempDir("minigpt-oracle")
        try ModelFolder.save(oracleWeights(OracleShape.all[3].config, seed: 5), to: dir.url)
        let r = try runPython([TestPaths.reference("minigpt_ref.py").path, "bench-decode", "--model", dir.url.path,
                               "--positions", "16", "--tokens", "8"])
        #expect(r.succeeded, "\(r.stderr)")
        let last = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let fields = Dictionary(uniqueKeysWithValues: last.split(separator: " ").compactMap { kv -> (String, Double)? in
            let p = kv.split(separator: "=")
            guard p.count == 2, let v = Double(p[1]) else { return nil }
            return (String(p[0]), v)
        })
        #expect(Set(fields.keys) == ["median_us", "p99_us", "tokens"], "\(last)")
        #expect(fields["tokens"] == 8)
        #expect((fields["median_us"] ?? 0) > 0 && (fields["p99_us"] ?? 0) >= (fields["median_us"] ?? .infinity), "\(last)")
    }

    @Test("minigpt_ref.py reports bad input with a message and status 1")
    func referenceErrors() throws {
        if let m = Self.numpyMissing { Issue.record(Comment(rawValue: m)); return }
        let dir = try TestTempDir("minigpt-oracle")
        let script = TestPaths.reference("minigpt_ref.py").path
        let noFolder = try runPython([script, "logits", "--model", dir.file("absent").path, "--ids", "1"])
        #expect(noFolder.status == 1 && noFolder.stderr.contains("absent"), "\(noFolder.stderr)")
        try ModelFolder.save(oracleWeights(OracleShape.all[3].config, seed: 5), to: dir.url)
        let outside = try runPython([script, "logits", "--model", dir.url.path, "--ids", "1,97"])
        #expect(outside.status == 1 && outside.stderr.contains("97"), "\(outside.stderr)")
        let garbage = try runPython([script, "logits", "--model", dir.url.path, "--ids", "1,x"])
        #expect(garbage.status == 1 && garbage.stderr.contains("--ids"), "\(garbage.stderr)")
    }
}
