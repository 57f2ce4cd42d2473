import Foundation
import Testing
import MiniGPT
@testable import MiniGPTTrain

/// The robot model's shape (Models/robot: d 128, 4 layers, 4/2 heads, FFN 320, vocab 512).
func robotShape() -> ModelConfig {
    ModelConfig(vocabSize: 512, hiddenSize: 128, numHiddenLayers: 4, numAttentionHeads: 4,
                numKeyValueHeads: 2, intermediateSize: 320, maxPositionEmbeddings: 256)
}

/// A LoRA model over `w` with B set to random values too (B = 0 at init makes dA vanish).
func loraModel(_ w: ModelWeights, rank: Int = 2, alpha: Float = 4, targets: [LoRATarget] = LoRATarget.allCases,
               batch: Int = 2, seqLen: Int = 5) throws -> TrainableModel {
    let m = try TrainableModel(weights: w, batch: batch, seqLen: seqLen, lora: LoRASpec(rank: rank, alpha: alpha, targets: targets), loraSeed: 3)
    let lora = m.lora!
    var rng = RNG(seed: 17)
    for e in lora.entries { for i in 0..<(e.rows * rank) { lora.params.pointer[e.b + i] = rng.nextGaussian() * 0.3 } }
    return m
}

@Suite("LoRA adapters: training, files, merge")
struct LoRATests {
    /// B = 0 at init: step 0 of LoRA training is exactly the base model.
    @Test func stepZeroEqualsTheBase() throws {
        let w = tinyWeights()
        let (ids, targets) = tinyBatch(B: 2, T: 5, V: w.config.vocabSize, seed: 6)
        let base = try TrainableModel(weights: w, batch: 2, seqLen: 5)
        let lora = try TrainableModel(weights: w, batch: 2, seqLen: 5, lora: LoRASpec(rank: 4))
        #expect(lora.loss(ids: ids, targets: targets) == base.loss(ids: ids, targets: targets))
        #expect(lora.effectiveWeights == base.weights)
        #expect(lora.optimizer.m.count == lora.lora!.count && lora.trainableCount == lora.lora!.count)
    }

    /// A step moves only the adapters (both A and B once B ≠ 0); the base buffer is untouched.
    @Test func onlyAdapterParametersChange() throws {
        let w = tinyWeights()
        let m = try TrainableModel(weights: w, batch: 2, seqLen: 5, lora: LoRASpec(rank: 2))
        let lora = try #require(m.lora)
        let base0 = m.params.array, ad0 = lora.params.array
        for s in 0..<2 {
            let (ids, targets) = tinyBatch(B: 2, T: 5, V: w.config.vocabSize, seed: UInt64(30 + s))
            m.step(ids: ids, targets: targets, smoothing: 0, lr: 1e-2)
        }
        #expect(m.params.array == base0)
        let ad1 = lora.params.array
        let e = lora.entries[0]
        #expect(Array(ad1[e.b..<(e.b + e.rows * 2)]) != Array(ad0[e.b..<(e.b + e.rows * 2)]), "B did not move")
        #expect(Array(ad1[e.a..<(e.a + 2 * e.cols)]) != Array(ad0[e.a..<(e.a + 2 * e.cols)]), "A did not move")
        #expect(m.effectiveWeights != m.weights)
    }

    /// dA and dB from backward agree with central finite differences of the loss.
    @Test func adapterGradientsMatchFiniteDifferences() throws {
        let w = tinyWeights()
        let m = try loraModel(w)
        let lora = try #require(m.lora)
        let (ids, targets) = tinyBatch(B: 2, T: 5, V: w.config.vocabSize, seed: 9)
        m.forwardBackward(ids: ids, targets: targets, smoothing: 0)
        let grads = lora.grads.array
        let p = lora.params.pointer
        let eps: Float = 1e-2
        var rng = RNG(seed: 5)
        for e in lora.entries {
            for (what, start, n) in [("A", e.a, 2 * e.cols), ("B", e.b, e.rows * 2)] {
                var analytic: [Float] = [], numeric: [Float] = []
                for _ in 0..<8 {
                    let i = start + Int(rng.next() % UInt64(n))
                    let keep = p[i]
                    p[i] = keep + eps; let lp = Double(m.loss(ids: ids, targets: targets))
                    p[i] = keep - eps; let lm = Double(m.loss(ids: ids, targets: targets))
                    p[i] = keep
                    analytic.append(grads[i]); numeric.append(Float((lp - lm) / (2 * Double(eps))))
                }
                let err = relativeError(analytic, numeric)
                #expect(err < 2e-2, "\(e.name) \(what): rel err \(err)")
            }
        }
    }

    /// Engine: applying the adapter at load gives the same logits as the merged folder (bit-identical),
    /// and the trainer's effective weights equal the engine's merge.
    @Test func mergeEqualsAppliedAtLoad() throws {
        let c = evalConfig()
        let w = ModelWeights(random: c, seed: 12)
        let m = try loraModel(w, rank: 3, alpha: 6, targets: [.qkv, .o, .up, .down], batch: 1, seqLen: 8)
        let dir = try tempDir("lora-merge")
        defer { try? FileManager.default.removeItem(at: dir) }
        let baseDir = dir.appendingPathComponent("base"), adDir = dir.appendingPathComponent("adapter")
        try ModelFolder.save(w, to: baseDir)
        try m.lora!.adapter(baseModel: baseDir.path).save(to: adDir)
        let applied = try ModelFolder.load(baseDir, adapter: adDir)
        #expect(applied.layers.map(\.qkv) == m.effectiveWeights.layers.map(\.qkv))
        #expect(applied.layers.map(\.gate) == w.layers.map(\.gate))  // not a target
        let mergedDir = dir.appendingPathComponent("merged")
        try ModelFolder.save(LoRAAdapter.load(adDir, for: c).merged(into: try ModelFolder.load(baseDir)), to: mergedDir)
        let merged = try ModelFolder.load(mergedDir)
        let tokens = [1, 5, 9, 2, 33, 7, 7, 0, 12]
        let a = Session(model: Transformer(weights: applied)), b = Session(model: Transformer(weights: merged))
        let s0 = Session(model: Transformer(weights: w))
        var differs = false
        for t in tokens {
            let la = Array(a.step(t)), lb = Array(b.step(t)), l0 = Array(s0.step(t))
            #expect(la == lb)
            differs = differs || la != l0
        }
        #expect(differs, "the adapter changed nothing")
        // The PEFT-style files.
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: adDir.appendingPathComponent("adapter_config.json"))) as? [String: Any]
        #expect(cfg?["r"] as? Int == 3 && (cfg?["target_modules"] as? [String]) == ["qkv_proj", "o_proj", "up_proj", "down_proj"])
        let f = try SafeTensorsFile(url: adDir.appendingPathComponent("adapter_model.safetensors"))
        #expect(try f.info("model.layers.1.self_attn.qkv_proj.weight.lora_A").shape == [3, c.hiddenSize])
        #expect(try f.info("model.layers.1.self_attn.qkv_proj.weight.lora_B").shape == [c.qkvDim, 3])
    }

    /// An INT8 base is refused with a clear error; a missing adapter tensor is named.
    @Test func badBasesAndFilesAreRefused() throws {
        let c = evalConfig()
        let w = ModelWeights(random: c, seed: 2)
        let m = try loraModel(w, batch: 1, seqLen: 4)
        let adapter = m.lora!.adapter(baseModel: "x")
        #expect(throws: AdapterError.self) { try adapter.merged(into: w.quantized(attention: true, ffn: false)) }
        do { _ = try adapter.merged(into: w.quantized(attention: true, ffn: true)) } catch {
            #expect("\(error)".contains("INT8"))
        }
        let dir = try tempDir("lora-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        var partial = adapter
        partial.a["model.layers.1.mlp.down_proj.weight"] = nil
        partial.b["model.layers.1.mlp.down_proj.weight"] = nil
        try partial.save(to: dir)
        do { _ = try LoRAAdapter.load(dir, for: c); Issue.record("missing tensor accepted") } catch {
            #expect("\(error)".contains("model.layers.1.mlp.down_proj.weight.lora_A"))
        }
        // Wrong rank for the shapes: the tensor and its shape are named.
        var cfg = adapter.config
        cfg.r = 5
        try JSONEncoder().encode(cfg).write(to: dir.appendingPathComponent(LoRAAdapter.configFile))
        do { _ = try LoRAAdapter.load(dir, for: c); Issue.record("wrong rank accepted") } catch {
            #expect("\(error)".contains("lora_A"))
        }
    }

    /// Adapter size: the count helper matches the real buffer; on the robot shape rank 4 on all five
    /// projections and rank 8 on attention (qkv, o) train ≤ 5% of the parameters, rank 8 on all five
    /// does not (8.4%).
    @Test func adapterFractionOnTheRobotShape() throws {
        let c = robotShape()
        let base = ModelWeights(random: c, seed: 1).parameterCount
        let layout = try ParameterLayout(config: c)
        for (spec, under) in [(LoRASpec(rank: 4), true), (LoRASpec(rank: 8, targets: [.qkv, .o]), true), (LoRASpec(rank: 8), false)] {
            let state = try LoRAState(spec: spec, layout: layout, seed: 1)
            #expect(state.count == spec.parameterCount(c))
            #expect(abs(spec.trainableFraction(c) - Double(state.count) / Double(base)) < 1e-12)
            #expect((spec.trainableFraction(c) <= 0.05) == under, "rank \(spec.rank) \(spec.targets): \(spec.trainableFraction(c))")
        }
    }

    /// End to end: `init_from` base + `lora` writes an adapter folder that the engine applies at load;
    /// the trainer's final held-out loss equals the engine's score of base + adapter.
    @Test func loraRunWritesAnAdapterFolder() throws {
        let dir = try tempDir("lora-run")
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = dir.appendingPathComponent("corpus.txt")
        try generatedCorpus(lines: 300).write(to: corpus, atomically: true, encoding: .utf8)
        let base = dir.appendingPathComponent("base")
        _ = try Trainer(recipe: tinyRecipe(corpus: corpus, out: base, steps: 6)).run(progress: .quiet)
        var r = try tinyRecipe(corpus: corpus, out: dir.appendingPathComponent("adapter"), steps: 4)
        r.model = [:]
        r.initFrom = base.path
        r.lora = LoRASpec(rank: 2, targets: [.qkv, .down])
        let res = try Trainer(recipe: r).run(progress: .quiet)
        for f in ["adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "training.json"] {
            #expect(FileManager.default.fileExists(atPath: res.out.appendingPathComponent(f).path), "missing \(f)")
        }
        #expect(!FileManager.default.fileExists(atPath: res.out.appendingPathComponent("model.safetensors").path))
        #expect(try TrainingRecord.load(from: res.out)?.lora == r.lora)
        let withAdapter = try Evaluator.evaluate(modelDir: base, corpus: [corpus.path], engine: true, adapter: res.out)
        let without = try Evaluator.evaluate(modelDir: base, corpus: [corpus.path], engine: true)
        let trainerSide = try Evaluator.evaluate(modelDir: base, corpus: [corpus.path], engine: false, adapter: res.out)
        #expect(withAdapter.avgLogprob != without.avgLogprob)
        #expect(abs(withAdapter.avgLogprob - trainerSide.avgLogprob) < 1e-4)
        // LoRA without a base is refused, naming the key.
        r.initFrom = nil
        do { _ = try Trainer(recipe: r).run(progress: .quiet); Issue.record("LoRA without init_from accepted") } catch {
            #expect("\(error)".contains("init_from"))
        }
    }
}
