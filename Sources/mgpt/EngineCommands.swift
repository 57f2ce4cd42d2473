import ArgumentParser
import Foundation
import MiniGPT

/// `mgpt init`: writes a randomly initialised model folder.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Write a randomly initialised model folder.")

    @Option(help: "Output model folder.") var out: String
    @Option(help: "A config.json giving the shape (default: the phase-15 shape, d=128, 4 layers).") var config: String?
    @Option(help: "A tokenizer.json to copy into the folder; the vocabulary size follows it.") var tokenizer: String?
    @Option(help: "Seed of the weight initialisation.") var seed: UInt64 = 1

    func run() throws {
        var cfg = ModelConfig()
        if let config {
            do { cfg = try ModelConfig.load(from: URL(fileURLWithPath: config)) } catch {
                throw failure("\(error)", code: FileManager.default.fileExists(atPath: config) ? Exit.dataError : Exit.noInput)
            }
        }
        var tok: Tokenizer?
        if let tokenizer {
            let t = try loadTokenizer(tokenizer)
            if config != nil && cfg.vocabSize != t.vocabSize {
                throw failure("\(config!): vocab_size \(cfg.vocabSize) does not match \(tokenizer) (\(t.vocabSize) tokens)", code: Exit.dataError)
            }
            cfg.vocabSize = t.vocabSize
            tok = t
        }
        let weights = ModelWeights(random: cfg, seed: seed)
        let dir = URL(fileURLWithPath: out)
        try ModelFolder.save(weights, to: dir, metadata: ["seed": "\(seed)"])
        try tok?.save(to: dir.appendingPathComponent(ModelFolder.tokenizerFile))
        print("wrote \(out): \(weights.parameterCount) parameters, d=\(cfg.hiddenSize), layers=\(cfg.numHiddenLayers), vocab=\(cfg.vocabSize), seed=\(seed)")
    }
}

/// `mgpt logits`: the final-position logits of a token sequence, as JSON (the oracle's interface).
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits", abstract: "Print the final-position logits of a token sequence as a JSON array.")

    @Option(help: "Model folder.") var model: String
    @Option(help: "Token ids, comma separated.") var ids: String
    @Flag(help: "Print every position's logits (a JSON array of arrays).") var all = false
    @Flag(help: "Use the phase-1 full-sequence path instead of the KV-cache session.") var noCache = false

    func run() throws {
        let weights = try loadWeights(model)
        let tokens = try parseIDs(ids)
        let c = weights.config
        guard !tokens.isEmpty else { throw ValidationError("--ids is empty") }
        if let bad = tokens.firstIndex(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw ValidationError("--ids: item \(bad + 1) (\(tokens[bad])) is outside the vocabulary 0..<\(c.vocabSize)")
        }
        guard tokens.count <= c.maxPositionEmbeddings else {
            throw ValidationError("--ids: \(tokens.count) tokens exceed the context of \(c.maxPositionEmbeddings)")
        }
        let m = Transformer(weights: weights)
        var rows: [[Float]] = []
        if noCache {
            let l = m.forward(tokens: tokens)
            rows = (0..<tokens.count).map { Array(l[($0 * c.vocabSize)..<(($0 + 1) * c.vocabSize)]) }
        } else {
            let s = Session(model: m)
            rows = tokens.map { Array(s.step($0)) }
        }
        print(all ? "[" + rows.map(jsonArray).joined(separator: ",\n") + "]" : jsonArray(rows.last!))
    }
}

/// `mgpt generate`: streams sampled text from a prompt.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Generate text from a prompt, streaming tokens to stdout.")

    @Option(help: "Model folder (with tokenizer.json).") var model: String
    @Option(help: "Prompt text.") var prompt: String = ""
    @Option(help: "Softmax temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(help: "Keep the k most likely tokens (0 = off).") var topK: Int = 0
    @Option(help: "Nucleus sampling threshold (1 = off).") var topP: Float = 0.95
    @Option(help: "Entropy-aware decoding: scale the temperature by the step's entropy / this many nats (0 = off).") var entropyReference: Float = 0
    @Option(help: "Sampling seed.") var seed: UInt64 = 1
    @Option(help: "Tokens to generate.") var maxTokens: Int = 200
    @Option(help: "A LoRA adapter folder merged into the (FP32) model at load.") var adapter: String?
    @Option(help: "KV cache element type: float32, float16 or int8 (default: config.json's kv_cache, else float32).") var kvDtype: String?
    @Option(help: "KV window in positions: evict the oldest non-sink positions when full, so generation never stops (default: config.json's kv_cache).") var kvWindow: Int?
    @Option(help: "Leading positions the KV window never evicts (with --kv-window).") var kvSinks: Int?
    @Option(help: "Early exit: full, after:K (K blocks) or confident:H (stop at the first of early_exit_layers with entropy ≤ H nats).") var exit: String = "full"
    @Flag(help: "Print timing and op counts to stderr at the end.") var stats = false

    func validate() throws {
        guard temperature >= 0 else { throw ValidationError("--temperature must be >= 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard topK >= 0 else { throw ValidationError("--top-k must be >= 0") }
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be >= 0") }
        guard entropyReference >= 0 else { throw ValidationError("--entropy-reference must be >= 0") }
        if let kvDtype, KVCacheDType(rawValue: kvDtype) == nil {
            throw ValidationError("--kv-dtype: expected float32, float16 or int8, found \"\(kvDtype)\"")
        }
        if kvSinks != nil && kvWindow == nil { throw ValidationError("--kv-sinks needs --kv-window") }
        guard ExitRule(parsing: exit) != nil else {
            throw ValidationError("--exit: expected full, after:K or confident:H, found \"\(exit)\"")
        }
    }

    func run() throws {
        var weights = try loadWeights(model)
        if let adapter {
            do { weights = try ModelFolder.load(URL(fileURLWithPath: model), adapter: URL(fileURLWithPath: adapter)) } catch {
                throw failure("\(adapter): \(error)", code: Exit.dataError)
            }
        }
        let rule = ExitRule(parsing: exit)!
        do { try rule.validate(for: weights.config) } catch { throw failure("--exit: \(error)", code: Exit.usage) }
        var kv = weights.config.kvCache ?? KVCacheOptions()
        if let kvDtype { kv.dtype = KVCacheDType(rawValue: kvDtype)! }
        if let kvWindow { (kv.window, kv.sinks) = (kvWindow, kvSinks ?? 0) }
        do { try kv.validate(maxPositions: weights.config.maxPositionEmbeddings) } catch {
            throw failure("--kv-window/--kv-sinks: \(error)", code: Exit.usage)
        }
        let tok = try loadTokenizer(URL(fileURLWithPath: model).appendingPathComponent(ModelFolder.tokenizerFile).path)
        let c = weights.config
        guard tok.vocabSize == c.vocabSize else {
            throw failure("\(model): tokenizer has \(tok.vocabSize) tokens but config.json says vocab_size \(c.vocabSize)", code: Exit.dataError)
        }
        let session = Session(model: Transformer(weights: weights), kvCache: kv)
        let rolling = kv.window != nil  // a window evicts instead of stopping at the context limit
        var sampler = Sampler(vocabSize: c.vocabSize, options: .init(temperature: temperature, topK: topK, topP: topP, entropyReference: entropyReference), seed: seed)
        var ids = [tok.bosID] + tok.encode(prompt)
        if ids.count > c.maxPositionEmbeddings { ids = Array(ids.suffix(c.maxPositionEmbeddings)) }
        FileHandle.standardOutput.write(Data(prompt.utf8))
        let t0 = monotonicNanos()
        var logits = session.prefill(ids)
        let tPrefill = monotonicNanos()
        var produced = 0
        var layers = 0
        while produced < maxTokens && (rolling || session.position < session.capacity) {
            let next = sampler.sample(logits)
            if next == tok.eosID { break }
            FileHandle.standardOutput.write(Data(tok.tokenBytes(next)))
            produced += 1
            if !rolling && session.position == session.capacity { break }
            logits = session.step(next, exit: rule)
            layers += session.lastExitLayer
        }
        print("")
        if stats {
            let t1 = monotonicNanos()
            note("prompt_tokens=\(ids.count) generated=\(produced) prefill_ms=\(fmt(Double(tPrefill - t0) / 1e6, 2)) decode_us_per_token=\(fmt(Double(t1 - tPrefill) / 1e3 / Double(max(produced, 1)), 1)) matmuls=\(session.counter.matmuls) macs=\(session.counter.macs) mean_layers=\(fmt(Double(layers) / Double(max(produced, 1)), 2)) kv_positions=\(session.position) kv_bytes=\(session.kvCacheBytes)")
        }
        if session.position == session.capacity && produced < maxTokens {
            note("(stopped at the context limit of \(session.capacity) positions)")
        }
    }
}

/// `mgpt inspect`: parameters, bytes, the tensor table and the cost of a token.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show a model folder's parameters, bytes, tensors and MACs per token.")

    @Option(help: "Model folder.") var model: String
    @Flag(help: "Print JSON instead of tables.") var json = false

    func run() throws {
        let weights = try loadWeights(model)
        let c = weights.config
        let file = try SafeTensorsFile(url: URL(fileURLWithPath: model).appendingPathComponent(ModelFolder.weightsFile))
        let tensors = file.tensors.values.sorted { $0.offsets.lowerBound < $1.offsets.lowerBound }
        let totalBytes = tensors.reduce(0) { $0 + $1.offsets.count }
        let session = Session(model: Transformer(weights: weights), capacity: 2)
        session.step(0)
        let perToken = session.counter
        let kvPerPos = 2 * c.numHiddenLayers * c.kvDim * 4
        if json {
            let obj: [String: Any] = [
                "parameters": weights.parameterCount, "weight_bytes": totalBytes,
                "matmuls_per_token": perToken.matmuls, "macs_per_token_pos0": perToken.macs,
                "macs_per_token_full_context": c.macsPerToken(position: c.maxPositionEmbeddings - 1),
                "kv_bytes_per_position": kvPerPos,
                "tensors": tensors.map { ["name": $0.name, "dtype": $0.dtype.rawValue, "shape": $0.shape, "bytes": $0.offsets.count] as [String: Any] },
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("model \(model)")
        print("  shape: d=\(c.hiddenSize) layers=\(c.numHiddenLayers) heads=\(c.numAttentionHeads) kv_heads=\(c.numKeyValueHeads) head_dim=\(c.headDim) ffn=\(c.intermediateSize) vocab=\(c.vocabSize) context=\(c.maxPositionEmbeddings)")
        print("  switches: tied=\(c.tieWordEmbeddings) fused_qkv=\(c.fusedQKV) ffn_rank=\(c.ffnRank) early_exit=\(c.earlyExitLayers)")
        print("  parameters: \(weights.parameterCount)   file bytes: \(totalBytes)")
        print("  per token: \(perToken.matmuls) matmuls, \(perToken.macs) MACs at position 0, \(c.macsPerToken(position: c.maxPositionEmbeddings - 1)) MACs at position \(c.maxPositionEmbeddings - 1)")
        print("  KV cache: \(kvPerPos) bytes per position (FP32), \(kvPerPos * c.maxPositionEmbeddings) for the full context\n")
        print(table([["tensor", "dtype", "shape", "bytes"]] + tensors.map { [$0.name, $0.dtype.rawValue, "\($0.shape)", "\($0.offsets.count)"] }))
    }
}
