import Foundation
import Testing
import MiniGPT
@testable import MiniGPTTrain

/// A small engine-friendly shape (head dim 8, GQA) for engine-vs-trainer comparisons.
func evalConfig() -> ModelConfig {
    ModelConfig(vocabSize: 40, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
                numKeyValueHeads: 2, intermediateSize: 48, maxPositionEmbeddings: 32)
}

/// A random token stream of `n` tokens (one byte and one character per token for the bit rates).
func randomStream(_ n: Int, V: Int, seed: UInt64) -> TokenStream {
    var rng = RNG(seed: seed)
    // A repetitive pattern plus noise, so a few training steps can learn something.
    let tokens = (0..<n).map { i in Int32(rng.next() % 5 == 0 ? Int(rng.next() % UInt64(V)) : (i * 7) % V) }
    return TokenStream(tokens: tokens, bytes: n, characters: n)
}

@Suite("Quantization-aware training and engine evaluation")
struct QATTests {
    /// The forward pass reads exactly the weights `mgpt quantize` stores (dequantized), group by group.
    @Test(arguments: [(true, true), (true, false), (false, true)])
    func fakeQuantEqualsEngineInt8Weights(attention: Bool, ffn: Bool) throws {
        let w = tinyWeights()
        let model = try TrainableModel(weights: w, batch: 2, seqLen: 4, qat: QATSpec(attention: attention, ffn: ffn))
        let eff = model.effectiveWeights
        let q = w.quantized(attention: attention, ffn: ffn)
        var changed = 0
        for (l, (e, r)) in zip(eff.layers, q.layers).enumerated() {
            #expect(e.qkv == r.qkv && e.o == r.o, "layer \(l) attention")
            #expect(e.gate == r.gate && e.up == r.up && e.down == r.down, "layer \(l) ffn")
            #expect(e.attnNorm == w.layers[l].attnNorm && e.ffnNorm == w.layers[l].ffnNorm)
            if attention { changed += e.qkv == w.layers[l].qkv ? 0 : 1 } else { #expect(e.qkv == w.layers[l].qkv) }
            if ffn { changed += e.down == w.layers[l].down ? 0 : 1 } else { #expect(e.gate == w.layers[l].gate) }
        }
        #expect(changed > 0, "fake quantization changed nothing")
        #expect(eff.embed == w.embed && eff.finalNorm == w.finalNorm)
        // The master stays FP32 (untouched by the forward).
        #expect(model.weights.layers[0].qkv == w.layers[0].qkv)
        // And equals what the engine reads from a saved INT8 folder.
        let dir = try tempDir("qat-int8")
        defer { try? FileManager.default.removeItem(at: dir) }
        try ModelFolder.save(q, to: dir)
        let loaded = try ModelFolder.load(dir)
        #expect(loaded.layers.map(\.qkv) == eff.layers.map(\.qkv) && loaded.layers.map(\.down) == eff.layers.map(\.down))
    }

    /// Straight-through estimator: ∂L/∂master = ∂L/∂(fake-quantized weights), i.e. the gradient of
    /// a plain model whose weights ARE the quantized ones.
    @Test func steGradientIsTheIdentity() throws {
        let w = tinyWeights()
        let (ids, targets) = tinyBatch(B: 2, T: 5, V: w.config.vocabSize, seed: 4)
        let qat = try TrainableModel(weights: w, batch: 2, seqLen: 5, qat: QATSpec())
        var qw = w.quantized(attention: true, ffn: true)
        qw.config.weightDType = nil
        let plain = try TrainableModel(weights: qw, batch: 2, seqLen: 5)
        let lq = qat.forwardBackward(ids: ids, targets: targets, smoothing: 0)
        let lp = plain.forwardBackward(ids: ids, targets: targets, smoothing: 0)
        #expect(lq == lp)
        #expect(qat.gradients.array == plain.gradients.array)
        // …and differs from the FP32 model's loss (quantization is visible to training).
        let fp = try TrainableModel(weights: w, batch: 2, seqLen: 5)
        #expect(fp.loss(ids: ids, targets: targets) != lq)
    }

    /// Same data and seed → bit-identical master weights; the master moves off the INT8 grid.
    @Test func qatTrainingIsDeterministic() throws {
        let w = tinyWeights()
        func run() throws -> TrainableModel {
            let m = try TrainableModel(weights: w, batch: 3, seqLen: 5, qat: QATSpec())
            for s in 0..<4 {
                let (ids, targets) = tinyBatch(B: 3, T: 5, V: w.config.vocabSize, seed: UInt64(10 + s))
                m.step(ids: ids, targets: targets, smoothing: 0, lr: 1e-2)
            }
            return m
        }
        let a = try run(), b = try run()
        #expect(a.params.array == b.params.array)
        let fp = try TrainableModel(weights: w, batch: 3, seqLen: 5)
        for s in 0..<4 {
            let (ids, targets) = tinyBatch(B: 3, T: 5, V: w.config.vocabSize, seed: UInt64(10 + s))
            fp.step(ids: ids, targets: targets, smoothing: 0, lr: 1e-2)
        }
        #expect(fp.params.array != a.params.array)
        #expect(a.weights.layers[0].qkv != a.effectiveWeights.layers[0].qkv)
    }

    /// `mgpt eval --engine` on an FP32 folder equals the trainer's evaluation to ~1e-4.
    @Test func engineEvalEqualsTrainerEval() throws {
        let c = evalConfig()
        let w = ModelWeights(random: c, seed: 21)
        let stream = randomStream(700, V: c.vocabSize, seed: 8)
        let trainer = try Evaluator.evaluate(weights: w, stream: stream, seqLen: 24)
        let engine = try Evaluator.evaluateEngine(weights: w, stream: stream, seqLen: 24)
        #expect(trainer.tokens == engine.tokens && engine.tokens == 699)
        #expect(abs(trainer.avgLogprob - engine.avgLogprob) < 1e-4, "\(trainer.avgLogprob) vs \(engine.avgLogprob)")
        #expect(abs(trainer.avgEntropy - engine.avgEntropy) < 1e-4)
        #expect(abs(trainer.bitsPerChar - engine.bitsPerChar) < 1e-4)
        // Deterministic, and an INT8 folder scores differently (the engine runs INT8 products).
        #expect(try Evaluator.evaluateEngine(weights: w, stream: stream, seqLen: 24) == engine)
        let q = try Evaluator.evaluateEngine(weights: w.quantized(attention: true, ffn: true), stream: stream, seqLen: 24)
        #expect(q.avgLogprob != engine.avgLogprob && abs(q.avgLogprob - engine.avgLogprob) < 0.05)
    }

    /// Recipe keys: init_from, qat, lora, with key-path errors.
    @Test func recipeReadsQATAndLoRAKeys() throws {
        let r = try Recipe(json: Data(#"{"init_from": "m", "qat": {"ffn": false}, "lora": {"rank": 4, "alpha": 8, "targets": ["qkv", "down_proj"]}}"#.utf8))
        #expect(r.initFrom == "m" && r.qat == QATSpec(attention: true, ffn: false))
        #expect(r.lora == LoRASpec(rank: 4, alpha: 8, targets: [.qkv, .down]))
        func error(_ json: String) -> String {
            do { _ = try Recipe(json: Data(json.utf8)); return "no error" } catch { return "\(error)" }
        }
        #expect(error(#"{"qat": {"atention": true}}"#).contains("\"qat.atention\""))
        #expect(error(#"{"qat": {"ffn": "yes"}}"#).contains("\"qat.ffn\""))
        #expect(error(#"{"lora": {"alpha": 2}}"#).contains("\"lora.rank\""))
        #expect(error(#"{"lora": {"rank": 2, "targets": ["qkv", "mlp"]}}"#).contains("\"lora.targets[1]\""))
        #expect(error(#"{"init_from": 3}"#).contains("\"init_from\""))
        #expect(try Recipe(json: Data(#"{"qat": {"bits": 4}}"#.utf8)).qat == QATSpec(bits: 4))
        #expect(error(#"{"qat": {"bits": 9}}"#).contains("\"qat.bits\""))
        #expect(error(#"{"qat": {"bits": 1}}"#).contains("\"qat.bits\""))
    }

    /// The b-bit grid: 8 bits is the engine's INT8 round trip bit for bit; fewer bits keep at most
    /// 2^b − 1 levels per row, the row's largest magnitude, and an error of at most half a step.
    @Test(arguments: [2, 3, 4, 6, 8])
    func fakeQuantizedGrid(bits: Int) throws {
        var rng = RNG(seed: 11)
        let rows = 6, cols = 40
        let w = (0..<(rows * cols)).map { _ in rng.nextGaussian() * 0.1 }
        let q = fakeQuantized(w, rows: rows, cols: cols, bits: bits)
        if bits == 8 { #expect(q == QuantizedMatrix(quantizing: w, rows: rows, cols: cols).dequantized()) }
        let levels = Float((1 << (bits - 1)) - 1)
        for r in 0..<rows {
            let row = Array(w[(r * cols)..<((r + 1) * cols)]), qrow = Array(q[(r * cols)..<((r + 1) * cols)])
            let amax = row.map(abs).max()!, step = amax / levels
            #expect(Set(qrow).count <= 2 * Int(levels) + 1)
            #expect(abs(qrow.map(abs).max()! - amax) <= 1e-6 * amax)
            for (a, b) in zip(row, qrow) { #expect(abs(a - b) <= step / 2 * (1 + 1e-5)) }
        }
        // Folder level: only the chosen groups move, and nothing is stored as INT8.
        var c = ModelConfig(vocabSize: 40, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2,
                            numKeyValueHeads: 1, intermediateSize: 24, maxPositionEmbeddings: 16)
        c.vocabSize = 40
        let m = ModelWeights(random: c, seed: 3)
        let f = m.fakeQuantized(bits: 4, attention: true, ffn: false)
        #expect(f.layers[0].qkv != m.layers[0].qkv && f.layers[0].gate == m.layers[0].gate)
        #expect(f.config.weightDType == nil && f.quantized.isEmpty)
    }

    /// End to end: a base run, then a QAT run from it (init_from) whose record says qat and whose
    /// FP32 master quantizes to an INT8 folder the engine scores.
    @Test func qatRunFromAFolder() throws {
        let dir = try tempDir("qat-run")
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = dir.appendingPathComponent("corpus.txt")
        try generatedCorpus(lines: 300).write(to: corpus, atomically: true, encoding: .utf8)
        let base = dir.appendingPathComponent("base")
        _ = try Trainer(recipe: tinyRecipe(corpus: corpus, out: base, steps: 6)).run(progress: .quiet)
        var r = try tinyRecipe(corpus: corpus, out: dir.appendingPathComponent("qat"), steps: 4)
        r.model = [:]
        r.initFrom = base.path
        r.qat = QATSpec()
        let res = try Trainer(recipe: r).run(progress: .quiet)
        let record = try #require(try TrainingRecord.load(from: res.out))
        #expect(record.qat == QATSpec() && record.initFrom == base.path && record.lora == nil)
        let master = try ModelFolder.load(res.out)
        #expect(master.config.weightDType == nil && master.quantized.isEmpty)
        #expect(master.layers[0].qkv != (try ModelFolder.load(base)).layers[0].qkv)
        // A recipe model key that disagrees with the folder is named.
        r.model = ["hidden_size": .number(32)]
        #expect(throws: TrainError.self) { try Trainer(recipe: r).run(progress: .quiet) }
        do { _ = try Trainer(recipe: r).run(progress: .quiet) } catch { #expect("\(error)".contains("model.hidden_size")) }
        // An INT8 init_from is refused, naming the key.
        let q = dir.appendingPathComponent("int8")
        try ModelFolder.save(master.quantized(attention: true, ffn: true), to: q)
        r.model = [:]; r.initFrom = q.path
        do { _ = try Trainer(recipe: r).run(progress: .quiet); Issue.record("INT8 init_from accepted") } catch {
            #expect("\(error)".contains("init_from") && "\(error)".contains("INT8"))
        }
    }
}
