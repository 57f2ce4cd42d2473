import Foundation
import MiniGPT

/// A training recipe: everything `mgpt train` needs, read from one JSON file (e.g.
/// `Configs/train/shakespeare.json`); command-line flags override single fields.
///
/// ```json
/// {
///   "corpus": ["data/shakespeare/train.txt"],        // text files or sim corpus JSONL (*.jsonl)
///   "validation_corpus": ["data/shakespeare/val.txt"], // optional; else validation_fraction of corpus
///   "tokenizer": {"vocab_size": 512, "train_bytes": 2000000},  // or {"file": "tokenizer.json"}
///   "model": {"hidden_size": 128, "num_hidden_layers": 4, ...}, // config.json keys; vocab from tokenizer
///   "training": {"steps": 3000, "batch": 16, "seq_len": 128, "learning_rate": 0.003, ...},
///   "out": "out/shakespeare",
///   "init_from": "out/shakespeare",                  // optional: start from this model folder's
///                                                   //   weights and tokenizer (shape from its config)
///   "qat": {"attention": true, "ffn": true, "bits": 8}, // optional: fake-INT8 (or 2-7 bit) weights, STE backward
///   "lora": {"rank": 8, "alpha": 8, "targets": ["qkv", "o", "gate", "up", "down"]}
///                                                   // optional: freeze the base, train adapters;
///                                                   //   `out` becomes a PEFT-style adapter folder
/// }
/// ```
/// Unknown keys are rejected with their key path (`training.learnig_rate`). Relative paths are
/// relative to the working directory.
public struct Recipe: Sendable, Equatable {
    /// How the tokenizer is obtained.
    public struct TokenizerSpec: Sendable, Equatable {
        /// Reuse this tokenizer.json (nil = train one on the corpus).
        public var file: String?
        /// Total vocabulary when training one.
        public var vocabSize = 512
        /// Reserved observation tokens (sim corpora).
        public var observationTokens = 0
        /// Reserved intent tokens (sim corpora).
        public var intentTokens = 0
        /// Corpus bytes the BPE trainer reads (the first ones, in file order).
        public var trainBytes = 1_000_000
    }

    /// Optimisation and schedule.
    public struct Training: Sendable, Equatable {
        /// Optimizer steps in total.
        public var steps = 1000
        /// Sequences per step.
        public var batch = 16
        /// Tokens per sequence.
        public var seqLen = 128
        /// AdamW and schedule (learning rate, warm-up, decay, betas, clip).
        public var optimizer = AdamWConfig()
        /// Label smoothing ε of the cross-entropy.
        public var labelSmoothing: Float = 0
        /// Steps between held-out evaluations (0 = only at the end).
        public var evalInterval = 100
        /// Batches of the held-out set scored per evaluation.
        public var evalBatches = 8
        /// Steps between checkpoints (0 = only at the end and on Ctrl-C).
        public var checkpointInterval = 500
        /// Seed of the initial weights and of the data order.
        public var seed: UInt64 = 1
        /// Worker threads (the batch split; part of the numerics).
        public var threads = 2
        /// Fraction of the corpus tokens held out when no validation corpus is given.
        public var validationFraction = 0.1
        /// w of the early-exit auxiliary losses: loss = final + w · Σ over `model.early_exit_layers`
        /// of the shared head's loss after that many blocks (0 = the final loss alone).
        public var earlyExitLossWeight: Float = 0
    }

    /// Training corpus files.
    public var corpus: [String] = []
    /// Held-out corpus files (optional).
    public var validationCorpus: [String] = []
    /// Tokenizer source.
    public var tokenizer = TokenizerSpec()
    /// The model's config.json keys (vocab_size defaults to the tokenizer's).
    public var model: [String: JSONValue] = [:]
    /// Optimisation.
    public var training = Training()
    /// Output model folder.
    public var out = "out/model"
    /// A model folder to start from (weights, config, tokenizer.json), nil = random init.
    public var initFrom: String?
    /// Quantization-aware training of the chosen weight groups (FakeQuant.swift), nil = off.
    public var qat: QATSpec?
    /// LoRA adapters on a frozen base (LoRA.swift), nil = off.
    public var lora: LoRASpec?

    /// The defaults.
    public init() {}

    /// Reads and validates a recipe file.
    public static func load(_ url: URL) throws -> Recipe {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TrainError.file(url.path, "cannot read recipe: \(error.localizedDescription)")
        }
        do { return try Recipe(json: data) } catch let e as TrainError {
            throw TrainError.file(url.path, e.description)
        }
    }

    /// Parses recipe JSON; errors name the key path, what was expected and what was found.
    public init(json data: Data) throws {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw TrainError.recipe(path: "", message: "not valid JSON: \(error.localizedDescription)")
        }
        let r = try RecipeReader.object(root, path: "")
        try RecipeReader.allow(r, path: "", keys: ["corpus", "validation_corpus", "tokenizer", "model", "training", "out", "comment",
                                                          "init_from", "qat", "lora"])
        if let v = r["corpus"] { corpus = try RecipeReader.strings(v, path: "corpus") }
        if let v = r["validation_corpus"] { validationCorpus = try RecipeReader.strings(v, path: "validation_corpus") }
        if let v = r["out"] { out = try RecipeReader.string(v, path: "out") }
        if let v = r["init_from"] { initFrom = try RecipeReader.string(v, path: "init_from") }
        if let v = r["qat"] {
            let q = try RecipeReader.object(v, path: "qat")
            try RecipeReader.allow(q, path: "qat", keys: ["attention", "ffn", "bits"])
            var spec = QATSpec()
            if let v = q["attention"] { spec.attention = try RecipeReader.bool(v, path: "qat.attention") }
            if let v = q["ffn"] { spec.ffn = try RecipeReader.bool(v, path: "qat.ffn") }
            if let v = q["bits"] {
                spec.bits = try RecipeReader.int(v, path: "qat.bits", min: 2)
                guard spec.bits <= 8 else { throw TrainError.recipe(path: "qat.bits", message: "expected an integer in 2...8, found \(spec.bits)") }
            }
            qat = spec
        }
        if let v = r["lora"] {
            let l = try RecipeReader.object(v, path: "lora")
            try RecipeReader.allow(l, path: "lora", keys: ["rank", "alpha", "targets"])
            guard let rv = l["rank"] else { throw TrainError.recipe(path: "lora.rank", message: "expected an integer ≥ 1, found nothing (required)") }
            let rank = try RecipeReader.int(rv, path: "lora.rank", min: 1)
            let alpha = try l["alpha"].map { try RecipeReader.float($0, path: "lora.alpha", min: 0) }
            var targets = LoRATarget.allCases
            if let tv = l["targets"] {
                let names = try RecipeReader.strings(tv, path: "lora.targets")
                targets = try names.enumerated().map { i, s in
                    guard let t = LoRATarget(name: s) else {
                        throw TrainError.recipe(path: "lora.targets[\(i)]", message: "expected one of \(LoRATarget.allCases.map(\.rawValue)), found \"\(s)\"")
                    }
                    return t
                }
                guard !targets.isEmpty else { throw TrainError.recipe(path: "lora.targets", message: "expected at least one target, found none") }
                guard Set(targets).count == targets.count else { throw TrainError.recipe(path: "lora.targets", message: "expected distinct targets, found \(names)") }
            }
            lora = LoRASpec(rank: rank, alpha: alpha, targets: targets)
        }
        if let v = r["tokenizer"] {
            let t = try RecipeReader.object(v, path: "tokenizer")
            try RecipeReader.allow(t, path: "tokenizer", keys: ["file", "vocab_size", "observation_tokens", "intent_tokens", "train_bytes"])
            if let v = t["file"] { tokenizer.file = try RecipeReader.string(v, path: "tokenizer.file") }
            if let v = t["vocab_size"] { tokenizer.vocabSize = try RecipeReader.int(v, path: "tokenizer.vocab_size", min: 260) }
            if let v = t["observation_tokens"] { tokenizer.observationTokens = try RecipeReader.int(v, path: "tokenizer.observation_tokens", min: 0) }
            if let v = t["intent_tokens"] { tokenizer.intentTokens = try RecipeReader.int(v, path: "tokenizer.intent_tokens", min: 0) }
            if let v = t["train_bytes"] { tokenizer.trainBytes = try RecipeReader.int(v, path: "tokenizer.train_bytes", min: 1) }
        }
        if let v = r["model"] {
            let m = try RecipeReader.object(v, path: "model")
            let known = Set(ModelConfigKeys.all)
            for k in m.keys.sorted() where !known.contains(k) {
                throw TrainError.recipe(path: "model.\(k)", message: "unknown key (expected one of: \(ModelConfigKeys.all.joined(separator: ", ")))")
            }
            model = try m.mapValues { try JSONValue($0) }
        }
        if let v = r["training"] {
            let t = try RecipeReader.object(v, path: "training")
            let p = "training."
            try RecipeReader.allow(t, path: "training", keys: [
                "steps", "batch", "seq_len", "learning_rate", "min_lr_fraction", "warmup_steps", "beta1", "beta2",
                "epsilon", "weight_decay", "grad_clip", "label_smoothing", "eval_interval", "eval_batches",
                "checkpoint_interval", "seed", "threads", "validation_fraction", "early_exit_loss_weight"])
            var tr = Training()
            if let v = t["steps"] { tr.steps = try RecipeReader.int(v, path: p + "steps", min: 1) }
            if let v = t["batch"] { tr.batch = try RecipeReader.int(v, path: p + "batch", min: 1) }
            if let v = t["seq_len"] { tr.seqLen = try RecipeReader.int(v, path: p + "seq_len", min: 2) }
            if let v = t["learning_rate"] { tr.optimizer.learningRate = try RecipeReader.float(v, path: p + "learning_rate", min: 0) }
            if let v = t["min_lr_fraction"] { tr.optimizer.minLRFraction = try RecipeReader.float(v, path: p + "min_lr_fraction", min: 0, max: 1) }
            if let v = t["warmup_steps"] { tr.optimizer.warmupSteps = try RecipeReader.int(v, path: p + "warmup_steps", min: 0) }
            if let v = t["beta1"] { tr.optimizer.beta1 = try RecipeReader.float(v, path: p + "beta1", min: 0, max: 0.999999) }
            if let v = t["beta2"] { tr.optimizer.beta2 = try RecipeReader.float(v, path: p + "beta2", min: 0, max: 0.999999) }
            if let v = t["epsilon"] { tr.optimizer.epsilon = try RecipeReader.float(v, path: p + "epsilon", min: 0) }
            if let v = t["weight_decay"] { tr.optimizer.weightDecay = try RecipeReader.float(v, path: p + "weight_decay", min: 0) }
            if let v = t["grad_clip"] { tr.optimizer.gradClip = try RecipeReader.float(v, path: p + "grad_clip", min: 0) }
            if let v = t["label_smoothing"] { tr.labelSmoothing = try RecipeReader.float(v, path: p + "label_smoothing", min: 0, max: 0.999) }
            if let v = t["eval_interval"] { tr.evalInterval = try RecipeReader.int(v, path: p + "eval_interval", min: 0) }
            if let v = t["eval_batches"] { tr.evalBatches = try RecipeReader.int(v, path: p + "eval_batches", min: 1) }
            if let v = t["checkpoint_interval"] { tr.checkpointInterval = try RecipeReader.int(v, path: p + "checkpoint_interval", min: 0) }
            if let v = t["seed"] { tr.seed = UInt64(try RecipeReader.int(v, path: p + "seed", min: 0)) }
            if let v = t["threads"] { tr.threads = try RecipeReader.int(v, path: p + "threads", min: 1) }
            if let v = t["validation_fraction"] { tr.validationFraction = Double(try RecipeReader.float(v, path: p + "validation_fraction", min: 0, max: 0.9)) }
            if let v = t["early_exit_loss_weight"] { tr.earlyExitLossWeight = try RecipeReader.float(v, path: p + "early_exit_loss_weight", min: 0, max: 100) }
            training = tr
        }
    }

    /// The model config: the recipe's `model` keys over `ModelConfig()`'s defaults, `vocab_size`
    /// from the tokenizer unless given, and `max_position_embeddings` at least `seq_len`.
    public func modelConfig(vocabSize: Int) throws -> ModelConfig {
        let defaults = try JSONSerialization.jsonObject(with: JSONEncoder().encode(ModelConfig())) as! [String: Any]
        var merged = defaults
        merged["vocab_size"] = vocabSize
        merged["max_position_embeddings"] = max(training.seqLen, ModelConfig().maxPositionEmbeddings)
        for (k, v) in model { merged[k] = v.any }
        let data = try JSONSerialization.data(withJSONObject: merged)
        let config: ModelConfig
        do { config = try JSONDecoder().decode(ModelConfig.self, from: data) } catch let e as ModelConfigError {
            throw TrainError.recipe(path: "model", message: e.description)
        } catch {
            throw TrainError.recipe(path: "model", message: "\(error)")
        }
        if config.vocabSize < vocabSize {
            throw TrainError.recipe(path: "model.vocab_size", message: "expected ≥ the tokenizer's \(vocabSize), found \(config.vocabSize)")
        }
        if training.earlyExitLossWeight > 0 && config.earlyExitLayers.isEmpty {
            throw TrainError.recipe(path: "training.early_exit_loss_weight",
                                    message: "expected 0 when model.early_exit_layers is empty (no exit to train), found \(training.earlyExitLossWeight)")
        }
        if config.maxPositionEmbeddings < training.seqLen {
            throw TrainError.recipe(path: "model.max_position_embeddings", message: "expected ≥ training.seq_len \(training.seqLen), found \(config.maxPositionEmbeddings)")
        }
        return config
    }
}

/// The config.json keys a recipe's "model" object may carry.
enum ModelConfigKeys {
    static let all = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                      "intermediate_size", "max_position_embeddings", "rope_theta", "rms_norm_eps",
                      "tie_word_embeddings", "fused_qkv", "ffn_rank", "early_exit_layers", "kv_cache"]
}

/// A JSON value kept as-is (the recipe's model keys, passed through to ModelConfig).
public enum JSONValue: Sendable, Equatable {
    case number(Double), bool(Bool), string(String), array([JSONValue]), object([String: JSONValue])

    init(_ any: Any) throws {
        if let b = any as? Bool, type(of: any) == type(of: NSNumber(value: true)) { self = .bool(b); return }
        if let n = any as? NSNumber { self = .number(n.doubleValue); return }
        if let s = any as? String { self = .string(s); return }
        if let a = any as? [Any] { self = .array(try a.map { try JSONValue($0) }); return }
        if let o = any as? [String: Any] { self = .object(try o.mapValues { try JSONValue($0) }); return }
        throw TrainError.recipe(path: "model", message: "unsupported JSON value \(any)")
    }

    var any: Any {
        switch self {
        case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? Int(d) as Any : d as Any
        case .bool(let b): return b
        case .string(let s): return s
        case .array(let a): return a.map(\.any)
        case .object(let o): return o.mapValues(\.any)
        }
    }
}

/// Typed reads from parsed JSON with key-path errors.
enum RecipeReader {
    static func object(_ v: Any, path: String) throws -> [String: Any] {
        guard let o = v as? [String: Any] else { throw TrainError.recipe(path: path, message: "expected an object, found \(v)") }
        return o
    }

    static func allow(_ o: [String: Any], path: String, keys: Set<String>) throws {
        for k in o.keys.sorted() where !keys.contains(k) {
            throw TrainError.recipe(path: path.isEmpty ? k : "\(path).\(k)",
                                    message: "unknown key (expected one of: \(keys.sorted().joined(separator: ", ")))")
        }
    }

    static func string(_ v: Any, path: String) throws -> String {
        guard let s = v as? String else { throw TrainError.recipe(path: path, message: "expected a string, found \(v)") }
        return s
    }

    static func strings(_ v: Any, path: String) throws -> [String] {
        if let s = v as? String { return [s] }
        guard let a = v as? [Any] else { throw TrainError.recipe(path: path, message: "expected a string or an array of strings, found \(v)") }
        return try a.enumerated().map { try string($1, path: "\(path)[\($0)]") }
    }

    static func bool(_ v: Any, path: String) throws -> Bool {
        guard let b = v as? Bool, type(of: v) == type(of: NSNumber(value: true)) else {
            throw TrainError.recipe(path: path, message: "expected true or false, found \(v)")
        }
        return b
    }

    static func int(_ v: Any, path: String, min: Int) throws -> Int {
        guard let n = v as? NSNumber, type(of: v) != type(of: NSNumber(value: true)),
              n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 1e15 else {
            throw TrainError.recipe(path: path, message: "expected an integer, found \(v)")
        }
        guard n.intValue >= min else { throw TrainError.recipe(path: path, message: "expected an integer ≥ \(min), found \(n.intValue)") }
        return n.intValue
    }

    static func float(_ v: Any, path: String, min: Float, max: Float = .greatestFiniteMagnitude) throws -> Float {
        guard let n = v as? NSNumber, type(of: v) != type(of: NSNumber(value: true)) else {
            throw TrainError.recipe(path: path, message: "expected a number, found \(v)")
        }
        let f = n.floatValue
        guard f.isFinite, f >= min, f <= max else {
            throw TrainError.recipe(path: path, message: "expected a number in \(min)...\(max == .greatestFiniteMagnitude ? "∞" : "\(max)"), found \(f)")
        }
        return f
    }
}
