import Foundation
import MiniGPT

/// One point of the learning curve.
public struct CurvePoint: Codable, Sendable, Equatable {
    /// Optimizer steps done.
    public var step: Int
    /// Mean training loss over the steps since the previous point (nats/token, with smoothing).
    public var trainLoss: Float
    /// Held-out loss (nats/token, no smoothing), when evaluated at this step.
    public var valLoss: Float?
    /// Seconds since the start of this run.
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case step, seconds
        case trainLoss = "train_loss", valLoss = "val_loss"
    }
}

/// `training.json` in a model folder: what `mgpt eval` and `--resume` need to know.
public struct TrainingRecord: Codable, Sendable, Equatable {
    /// Sequence length the model was trained on (eval windows default to it).
    public var trainSeqLen: Int
    /// Optimizer steps done.
    public var step: Int
    /// Total steps of the schedule.
    public var totalSteps: Int
    /// Seed of init and data order.
    public var seed: UInt64
    /// Sequences per step.
    public var batch: Int
    /// Learning curve.
    public var curve: [CurvePoint]
    /// How the data order is drawn (so a resumed run continues the same sequence).
    public var dataOrder = "step s samples its batch from RNG(seed: seed &* 0x9E3779B97F4A7C15 ^ s)"
    /// The model folder the run started from (recipe `init_from`), if any.
    public var initFrom: String? = nil
    /// The weight groups trained through fake INT8 quantization (recipe `qat`), if any: the folder
    /// holds the FP32 master weights; `mgpt quantize` gives the INT8 model the run was trained for.
    public var qat: QATSpec? = nil
    /// The LoRA adapters trained (recipe `lora`), if any: the folder is then an adapter folder.
    public var lora: LoRASpec? = nil

    enum CodingKeys: String, CodingKey {
        case step, seed, batch, curve, qat, lora
        case trainSeqLen = "train_seq_len", totalSteps = "total_steps", dataOrder = "data_order", initFrom = "init_from"
    }

    /// File name inside a model folder.
    public static let fileName = "training.json"
    /// AdamW moments for `--resume`.
    public static let optimizerFile = "optimizer.safetensors"

    /// Reads `training.json` from `dir`, nil if absent.
    public static func load(from dir: URL) throws -> TrainingRecord? {
        let url = dir.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do { return try JSONDecoder().decode(TrainingRecord.self, from: Data(contentsOf: url)) } catch {
            throw TrainError.file(url.path, "cannot read training record: \(error)")
        }
    }
}

/// How `Trainer` reports progress.
public enum ProgressStyle: Sendable {
    /// A one-line bar redrawn in place (a terminal).
    case bar
    /// Plain lines (a log file or pipe).
    case lines
    /// Nothing.
    case quiet
}

/// The outcome of `Trainer.run`.
public struct TrainResult: Sendable {
    /// Steps done in total (including resumed ones).
    public var step: Int
    /// Whether the run stopped early on request (Ctrl-C).
    public var interrupted: Bool
    /// Last held-out loss, if any.
    public var valLoss: Float?
    /// The folder written.
    public var out: URL
}

/// Runs a recipe: tokenizer, corpus, model, the training loop with periodic held-out evaluation and
/// checkpoints, and a final checkpoint (also on a stop request, e.g. Ctrl-C).
public final class Trainer {
    /// The recipe (after command-line overrides).
    public let recipe: Recipe
    /// Where progress lines go (stderr in `mgpt train`).
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    /// A trainer for `recipe`.
    public init(recipe: Recipe) { self.recipe = recipe }

    /// The per-step data RNG (see `TrainingRecord.dataOrder`).
    static func dataRNG(seed: UInt64, step: Int) -> RNG { RNG(seed: (seed &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(step)) }

    /// Trains; `shouldStop` is polled between steps. With `resume`, continues from the checkpoint in
    /// `recipe.out` (weights, AdamW moments, step), bit-identical to an uninterrupted run.
    public func run(resume: Bool = false, progress: ProgressStyle = .lines,
                    shouldStop: () -> Bool = { false }) throws -> TrainResult {
        let r = recipe, tr = r.training
        let out = URL(fileURLWithPath: r.out)
        guard !r.corpus.isEmpty else { throw TrainError.recipe(path: "corpus", message: "expected at least one corpus file, found none") }
        let state = resume ? try TrainingRecord.load(from: out) : nil
        if resume && state == nil {
            throw TrainError.file(out.appendingPathComponent(TrainingRecord.fileName).path, "--resume needs a checkpoint here (missing)")
        }
        if resume && r.lora != nil {
            throw TrainError.recipe(path: "lora", message: "--resume is not supported for LoRA runs (the adapter folder keeps no optimizer state); rerun from init_from")
        }
        if r.lora != nil && r.initFrom == nil {
            throw TrainError.recipe(path: "init_from", message: "LoRA trains adapters on a frozen base: expected a base model folder, found none")
        }
        // init_from: the starting weights (and shape, and tokenizer) come from a model folder.
        var initial: ModelWeights? = nil
        if let dir = r.initFrom {
            initial = try Self.loadInitial(URL(fileURLWithPath: dir), recipe: r)
        }

        // Tokenizer: the checkpoint's when resuming, a given file, or trained on the corpus.
        let tokenizer: Tokenizer
        let tokURL = out.appendingPathComponent(ModelFolder.tokenizerFile)
        if resume && r.lora == nil {
            tokenizer = try Tokenizer(contentsOf: tokURL)
        } else if let dir = r.initFrom {
            let url = URL(fileURLWithPath: dir).appendingPathComponent(ModelFolder.tokenizerFile)
            do { tokenizer = try Tokenizer(contentsOf: url) } catch {
                throw TrainError.recipe(path: "init_from", message: "expected a model folder with \(ModelFolder.tokenizerFile): \(error)")
            }
            guard tokenizer.vocabSize <= initial!.config.vocabSize else {
                throw TrainError.recipe(path: "init_from", message: "\(url.path) has \(tokenizer.vocabSize) ids, more than the model's vocab_size \(initial!.config.vocabSize)")
            }
        } else if let f = r.tokenizer.file {
            tokenizer = try Tokenizer(contentsOf: URL(fileURLWithPath: f))
        } else {
            let t0 = Date()
            let docs = try CorpusLoader.tokenizerDocuments(r.corpus, limit: r.tokenizer.trainBytes)
            tokenizer = try Tokenizer.train(corpus: docs, vocabSize: r.tokenizer.vocabSize,
                                            observationTokens: r.tokenizer.observationTokens,
                                            intentTokens: r.tokenizer.intentTokens)
            log("tokenizer: trained \(tokenizer.vocabSize) ids on \(docs.reduce(0) { $0 + $1.count }) bytes in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
        }

        // Data.
        let t0 = Date()
        var train = try CorpusLoader.load(r.corpus, tokenizer: tokenizer)
        var val: TokenStream
        if !r.validationCorpus.isEmpty {
            val = try CorpusLoader.load(r.validationCorpus, tokenizer: tokenizer)
        } else {
            let cut = Int(Double(train.tokens.count) * (1 - tr.validationFraction))
            val = train.slice(cut..<train.tokens.count)
            train = train.slice(0..<cut)
        }
        guard train.tokens.count > tr.seqLen + 1 else {
            throw TrainError.message("corpus has \(train.tokens.count) training tokens; need more than seq_len + 1 = \(tr.seqLen + 1)")
        }
        log("data: \(train.tokens.count) training tokens (\(train.bytes) bytes), \(val.tokens.count) held-out tokens, encoded in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")

        // Model and optimizer.
        let config = try initial?.config ?? r.modelConfig(vocabSize: tokenizer.vocabSize)
        let weights: ModelWeights
        if let initial, !resume {
            weights = initial
        } else if resume {
            weights = try ModelFolder.load(out)
            guard weights.config == config else {
                throw TrainError.file(out.appendingPathComponent(ModelFolder.configFile).path,
                                      "checkpoint config differs from the recipe's model; resume with the same recipe")
            }
        } else {
            weights = ModelWeights(random: config, seed: tr.seed)
        }
        let model = try TrainableModel(weights: weights, batch: tr.batch, seqLen: tr.seqLen,
                                       optimizer: tr.optimizer, workers: tr.threads, qat: r.qat, lora: r.lora, loraSeed: tr.seed)
        model.earlyExitLossWeight = tr.earlyExitLossWeight
        var curve: [CurvePoint] = []
        var startStep = 0
        if let state {
            try loadOptimizer(model, from: out.appendingPathComponent(TrainingRecord.optimizerFile))
            startStep = state.step
            curve = state.curve
            guard state.totalSteps == tr.steps, state.batch == tr.batch, state.trainSeqLen == tr.seqLen, state.seed == tr.seed else {
                throw TrainError.file(out.appendingPathComponent(TrainingRecord.fileName).path,
                                      "checkpoint was made with steps \(state.totalSteps), batch \(state.batch), seq_len \(state.trainSeqLen), seed \(state.seed); resume with the same values")
            }
            log("resume: step \(startStep) of \(tr.steps) from \(out.path)")
        }
        if let lora = model.lora {
            log("lora: rank \(lora.spec.rank) alpha \(lora.spec.alpha) on \(lora.spec.targets.map(\.rawValue).joined(separator: ",")): \(lora.count) trainable parameters (\(String(format: "%.2f", 100 * Double(lora.count) / Double(model.layout.count)))% of \(model.layout.count)), base frozen")
        }
        if let spec = model.lora?.spec, spec.trainableFraction(config) > 0.05 {
            log(String(format: "warning: lora trains %.1f%% of the parameters (> 5%%); lower lora.rank or use fewer lora.targets", 100 * spec.trainableFraction(config)))
        }
        if let q = model.qat { log("qat: fake \(q.bits == 8 ? "INT8" : "\(q.bits)-bit") weights (per-row scales) for attention \(q.attention), ffn \(q.ffn); straight-through backward") }
        if let dir = r.initFrom { log("init_from: \(dir)") }
        log("model: \(model.layout.count) parameters, d=\(config.hiddenSize) layers=\(config.numHiddenLayers) heads=\(config.numAttentionHeads)/\(config.numKeyValueHeads) ffn=\(config.intermediateSize) vocab=\(config.vocabSize); batch \(tr.batch) × \(tr.seqLen), \(tr.steps) steps")

        // Held-out windows: evenly spaced over the held-out stream, a fixed set for every evaluation.
        let allWindows = val.evaluationWindows(T: tr.seqLen)
        let want = min(allWindows.count, tr.evalBatches * tr.batch)
        let evalWindows = (0..<want).map { allWindows[$0 * allWindows.count / max(want, 1)] }
        func evaluate() -> Float? {
            guard !evalWindows.isEmpty else { return nil }
            var sums = ScoreSums()
            var i = 0
            while i < evalWindows.count {
                var ids: [Int32] = [], targets: [Int32] = []
                for k in 0..<tr.batch {
                    if i + k < evalWindows.count { ids += evalWindows[i + k].ids; targets += evalWindows[i + k].targets }
                    else { ids += Array(repeating: 0, count: tr.seqLen); targets += Array(repeating: -1, count: tr.seqLen) }
                }
                sums.add(model.score(ids: ids, targets: targets))
                i += tr.batch
            }
            return sums.count > 0 ? Float(-sums.logProb / Double(sums.count)) : nil
        }

        func record(step: Int) throws {
            var record = TrainingRecord(trainSeqLen: tr.seqLen, step: step, totalSteps: tr.steps, seed: tr.seed,
                                        batch: tr.batch, curve: curve)
            record.initFrom = r.initFrom
            record.qat = model.qat
            record.lora = model.lora?.spec
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(record).write(to: out.appendingPathComponent(TrainingRecord.fileName), options: .atomic)
        }
        func checkpoint(step: Int) throws {
            if let lora = model.lora {
                // A PEFT-style adapter folder: adapter_model.safetensors + adapter_config.json, the
                // base's tokenizer and the training record. No model.safetensors: the base is frozen.
                try lora.adapter(baseModel: r.initFrom ?? "").save(to: out)
                try tokenizer.save(to: tokURL)
                try record(step: step)
                return
            }
            try ModelFolder.save(model.weights, to: out, metadata: ["step": "\(step)"] .merging(model.qat == nil ? [:] : ["qat": "weights fake-quantized to INT8 in training; FP32 master stored, run mgpt quantize"]) { a, _ in a })
            try tokenizer.save(to: tokURL)
            var w = SafeTensorsWriter()
            w.metadata = ["step": "\(model.optimizer.step)", "layout": "MiniGPTTrain.ParameterLayout"]
            w.add("adamw.m", shape: [model.layout.count], floats: model.optimizer.m.array)
            w.add("adamw.v", shape: [model.layout.count], floats: model.optimizer.v.array)
            try w.write(to: out.appendingPathComponent(TrainingRecord.optimizerFile))
            try record(step: step)
        }

        // The loop.
        let started = DispatchTime.now().uptimeNanoseconds
        func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        let tokensPerStep = tr.batch * tr.seqLen
        let lineEvery = max(1, min(50, tr.steps / 20))
        var lossSum: Double = 0, lossCount = 0
        var lastVal: Float? = curve.last(where: { $0.valLoss != nil })?.valLoss
        var step = startStep
        var interrupted = false
        var ema: Float? = nil
        while step < tr.steps {
            if shouldStop() { interrupted = true; break }
            var rng = Self.dataRNG(seed: tr.seed, step: step)
            let (ids, targets) = train.randomBatch(B: tr.batch, T: tr.seqLen, rng: &rng)
            let lr = tr.optimizer.learningRate(step: step, total: tr.steps)
            let (loss, norm) = model.step(ids: ids, targets: targets, smoothing: tr.labelSmoothing, lr: lr)
            guard loss.isFinite else {
                throw TrainError.message("loss became \(loss) at step \(step + 1) (lr \(lr), grad norm \(norm)); lower training.learning_rate")
            }
            step += 1
            lossSum += Double(loss); lossCount += 1
            ema = ema.map { 0.9 * $0 + 0.1 * loss } ?? loss
            let evalNow = (tr.evalInterval > 0 && step % tr.evalInterval == 0) || step == tr.steps
            if evalNow {
                lastVal = evaluate()
                curve.append(CurvePoint(step: step, trainLoss: Float(lossSum / Double(max(lossCount, 1))),
                                        valLoss: lastVal, seconds: seconds()))
                lossSum = 0; lossCount = 0
            }
            let elapsed = seconds()
            let done = step - startStep
            let tps = Double(done * tokensPerStep) / max(elapsed, 1e-9)
            let eta = Double(tr.steps - step) * elapsed / Double(max(done, 1))
            let valText = lastVal.map { String(format: " val %.4f", $0) } ?? ""
            switch progress {
            case .bar:
                let width = 24, filled = width * step / tr.steps
                let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
                FileHandle.standardError.write(Data(String(format: "\r[%@] %d/%d loss %.4f%@ lr %.2e %.0f tok/s ETA %@ ",
                    bar, step, tr.steps, ema ?? loss, valText, lr, tps, Self.duration(eta)).utf8))
                if evalNow { FileHandle.standardError.write(Data("\n".utf8)) }
            case .lines:
                if step % lineEvery == 0 || evalNow {
                    log(String(format: "step %d/%d loss %.4f%@ lr %.2e grad_norm %.3f %.0f tok/s ETA %@",
                               step, tr.steps, loss, evalNow ? valText : "", lr, norm, tps, Self.duration(eta)))
                }
            case .quiet:
                break
            }
            if tr.checkpointInterval > 0, step % tr.checkpointInterval == 0, step < tr.steps { try checkpoint(step: step) }
        }
        if interrupted && lossCount > 0 {
            curve.append(CurvePoint(step: step, trainLoss: Float(lossSum / Double(lossCount)), valLoss: nil, seconds: seconds()))
        }
        try checkpoint(step: step)
        if progress == .bar { FileHandle.standardError.write(Data("\n".utf8)) }
        log(interrupted ? "interrupted at step \(step): checkpoint saved to \(out.path) (continue with --resume)"
                        : "done: \(step) steps in \(Self.duration(seconds())), model folder \(out.path)")
        return TrainResult(step: step, interrupted: interrupted, valLoss: lastVal, out: out)
    }

    /// The weights of the `init_from` folder `dir`: FP32 only, dense or low-rank as stored; every
    /// key of the recipe's `model` object must agree with the folder's config.json.
    /// Recipe "model" keys that may differ from an `init_from` folder's config (no parameter depends on them).
    static let parameterFreeKeys: Set<String> = ["early_exit_layers", "kv_cache"]

    static func loadInitial(_ dir: URL, recipe r: Recipe) throws -> ModelWeights {
        var w: ModelWeights
        do { w = try ModelFolder.load(dir) } catch {
            throw TrainError.recipe(path: "init_from", message: "expected a loadable model folder at \(dir.path): \(error)")
        }
        if let dt = w.config.weightDType, dt.attention == .int8 || dt.ffn == .int8 {
            throw TrainError.recipe(path: "init_from", message: "\(dir.path) holds INT8 weights (weight_dtype attention \(dt.attention.rawValue), ffn \(dt.ffn.rawValue)); expected an FP32 folder (QAT and LoRA train FP32 masters)")
        }
        var have = try JSONSerialization.jsonObject(with: JSONEncoder().encode(w.config)) as? [String: Any] ?? [:]
        // Keys that change no parameter (where the stack may exit, how the KV cache is stored) may
        // differ from the folder's: the recipe's value wins, so a fine-tune can add early exits.
        let free = r.model.filter { Self.parameterFreeKeys.contains($0.key) }
        if !free.isEmpty {
            for (k, v) in free { have[k] = v.any }
            do {
                w.config = try JSONDecoder().decode(ModelConfig.self, from: JSONSerialization.data(withJSONObject: have))
            } catch {
                throw TrainError.recipe(path: "model", message: "\(error)")
            }
        }
        for (k, v) in r.model.sorted(by: { $0.key < $1.key }) where !Self.parameterFreeKeys.contains(k) {
            let mine = try have[k].map { try JSONValue($0) }
            func same(_ a: JSONValue?, _ b: JSONValue) -> Bool {
                switch (a, b) {
                case (.number(let x)?, .number(let y)): return abs(x - y) <= 1e-6 * max(abs(x), abs(y))  // Float keys (rms_norm_eps)
                case (.array(let xs)?, .array(let ys)): return xs.count == ys.count && zip(xs, ys).allSatisfy { same($0, $1) }
                default: return a == b
                }
            }
            guard same(mine, v) else {
                throw TrainError.recipe(path: "model.\(k)", message: "init_from \(dir.path) has \(have[k].map { "\($0)" } ?? "no value"), the recipe says \(v.any); drop the key or make them agree")
            }
        }
        return w
    }

    func loadOptimizer(_ model: TrainableModel, from url: URL) throws {
        let f = try SafeTensorsFile(url: url)
        let m = try f.floats("adamw.m", shape: [model.layout.count])
        let v = try f.floats("adamw.v", shape: [model.layout.count])
        guard let s = f.metadata["step"].flatMap(Int.init) else {
            throw TrainError.file(url.path, "metadata key \"step\": expected an integer")
        }
        m.withUnsafeBufferPointer { model.optimizer.m.pointer.update(from: $0.baseAddress!, count: m.count) }
        v.withUnsafeBufferPointer { model.optimizer.v.pointer.update(from: $0.baseAddress!, count: v.count) }
        model.optimizer.step = s
    }

    /// "1h02m", "4m12s", "37s".
    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        if t >= 3600 { return String(format: "%dh%02dm", t / 3600, t % 3600 / 60) }
        if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
        return "\(t)s"
    }
}
