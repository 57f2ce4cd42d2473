import Foundation

/// The fixed hyper-parameters of a MiniGPT model: the `config.json` of a model folder.
///
/// Keys are the Hugging Face Llama names (`hidden_size`, `num_key_value_heads`, ...) so the folder
/// reads like any other checkpoint; MiniGPT's own switches for the later phases of the ladder have
/// snake_case names of their own and default to "off". Unknown keys and impossible shapes are
/// rejected with a `ModelConfigError` naming the key, what was expected and what was found.
public struct ModelConfig: Codable, Sendable, Equatable {
    /// Tokens in the vocabulary (bytes + merges + special, observation and intent tokens).
    public var vocabSize: Int
    /// Width of the residual stream, d.
    public var hiddenSize: Int
    /// Number of transformer blocks.
    public var numHiddenLayers: Int
    /// Query heads per layer.
    public var numAttentionHeads: Int
    /// Key/value heads per layer (GQA: each serves `numAttentionHeads / numKeyValueHeads` query heads).
    public var numKeyValueHeads: Int
    /// Hidden width of the SwiGLU feed-forward network.
    public var intermediateSize: Int
    /// Longest sequence the model was built (and trained) for.
    public var maxPositionEmbeddings: Int
    /// RoPE base frequency.
    public var ropeTheta: Float
    /// RMSNorm epsilon.
    public var rmsNormEps: Float
    /// Output head shares the token embedding matrix (phase 4).
    public var tieWordEmbeddings: Bool
    /// Q, K and V are one stored projection (phase 8/11). The engine always fuses at load; this says
    /// how the tensors are stored in `model.safetensors`.
    public var fusedQKV: Bool
    /// Rank of the low-rank FFN factorisation W ≈ A·B (phase 7); 0 means dense.
    public var ffnRank: Int
    /// Layers after which an early-exit head may stop the forward pass (phase 13/15); empty = off.
    public var earlyExitLayers: [Int]
    /// Architecture tag written to the file; always "minigpt".
    public var modelType: String
    /// Which weight groups are stored and run in INT8 (phases 5/6; Quantization.swift); nil = all FP32.
    public var weightDType: WeightDTypes?
    /// KV cache precision and sliding window a `Session` uses when none is passed (KVCache.swift); nil = FP32, no window.
    public var kvCache: KVCacheOptions?

    /// The default phase-15 shape: d=128, 4 layers, 4 query heads, 2 KV heads, FFN 320, context 256.
    public init(vocabSize: Int = 512, hiddenSize: Int = 128, numHiddenLayers: Int = 4,
                numAttentionHeads: Int = 4, numKeyValueHeads: Int = 2, intermediateSize: Int = 320,
                maxPositionEmbeddings: Int = 256, ropeTheta: Float = 10000, rmsNormEps: Float = 1e-5,
                tieWordEmbeddings: Bool = true, fusedQKV: Bool = true, ffnRank: Int = 0,
                earlyExitLayers: [Int] = []) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.intermediateSize = intermediateSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.ropeTheta = ropeTheta
        self.rmsNormEps = rmsNormEps
        self.tieWordEmbeddings = tieWordEmbeddings
        self.fusedQKV = fusedQKV
        self.ffnRank = ffnRank
        self.earlyExitLayers = earlyExitLayers
        self.modelType = "minigpt"
    }

    // MARK: Derived shapes

    /// Width of one attention head.
    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Width of all query heads together (= hiddenSize).
    public var qDim: Int { numAttentionHeads * headDim }
    /// Width of all key (or value) heads together.
    public var kvDim: Int { numKeyValueHeads * headDim }
    /// Rows of the fused QKV projection: q, then k, then v.
    public var qkvDim: Int { qDim + 2 * kvDim }
    /// Query heads sharing one KV head.
    public var groupSize: Int { numAttentionHeads / numKeyValueHeads }

    // MARK: Codable with Hugging Face key names

    enum CodingKeys: String, CodingKey, CaseIterable {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case intermediateSize = "intermediate_size"
        case maxPositionEmbeddings = "max_position_embeddings"
        case ropeTheta = "rope_theta"
        case rmsNormEps = "rms_norm_eps"
        case tieWordEmbeddings = "tie_word_embeddings"
        case fusedQKV = "fused_qkv"
        case ffnRank = "ffn_rank"
        case earlyExitLayers = "early_exit_layers"
        case modelType = "model_type"
        case weightDType = "weight_dtype"
        case kvCache = "kv_cache"
    }

    /// Keys that Hugging Face tooling writes and that carry no meaning for MiniGPT; accepted and ignored.
    static let ignoredKeys: Set<String> = [
        "architectures", "torch_dtype", "hidden_act", "transformers_version", "bos_token_id",
        "eos_token_id", "pad_token_id", "_name_or_path", "head_dim", "attention_bias",
        "initializer_range", "use_cache",
    ]

    public init(from decoder: any Decoder) throws {
        // Reject unknown keys first: a typo ("num_layers") must not silently become a default.
        let any = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        for key in any.allKeys where !known.contains(key.stringValue) && !Self.ignoredKeys.contains(key.stringValue) {
            throw ModelConfigError.unknownKey(key.stringValue)
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ModelConfig()
        // Integers are read as numbers and checked here: Foundation's JSONDecoder on Linux reports
        // a fractional value for an Int field as "not valid JSON" without naming the key.
        func integer(_ key: CodingKeys) throws -> Int? {
            guard c.contains(key) else { return nil }
            let v = try c.decode(Double.self, forKey: key)
            guard v == v.rounded(), abs(v) < 1e15 else {
                throw ModelConfigError.invalid(key: key.rawValue, expected: "an integer", found: "\(v)")
            }
            return Int(v)
        }
        func required(_ key: CodingKeys) throws -> Int {
            guard let v = try integer(key) else { throw ModelConfigError.missingKey(key.rawValue) }
            return v
        }
        vocabSize = try required(.vocabSize)
        hiddenSize = try required(.hiddenSize)
        numHiddenLayers = try required(.numHiddenLayers)
        numAttentionHeads = try required(.numAttentionHeads)
        numKeyValueHeads = try integer(.numKeyValueHeads) ?? numAttentionHeads
        intermediateSize = try required(.intermediateSize)
        maxPositionEmbeddings = try required(.maxPositionEmbeddings)
        ropeTheta = try c.decodeIfPresent(Float.self, forKey: .ropeTheta) ?? d.ropeTheta
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? d.rmsNormEps
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? true
        fusedQKV = try c.decodeIfPresent(Bool.self, forKey: .fusedQKV) ?? true
        ffnRank = try integer(.ffnRank) ?? 0
        earlyExitLayers = try c.decodeIfPresent([Int].self, forKey: .earlyExitLayers) ?? []
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "minigpt"
        weightDType = try c.decodeIfPresent(WeightDTypes.self, forKey: .weightDType)
        kvCache = try c.decodeIfPresent(KVCacheOptions.self, forKey: .kvCache)
        try validate()
    }

    /// Checks that the shape is one the engine can run; throws a precise error otherwise.
    public func validate() throws {
        func positive(_ v: Int, _ key: CodingKeys) throws {
            if v <= 0 { throw ModelConfigError.invalid(key: key.rawValue, expected: "an integer > 0", found: "\(v)") }
        }
        try positive(vocabSize, .vocabSize)
        try positive(hiddenSize, .hiddenSize)
        try positive(numHiddenLayers, .numHiddenLayers)
        try positive(numAttentionHeads, .numAttentionHeads)
        try positive(numKeyValueHeads, .numKeyValueHeads)
        try positive(intermediateSize, .intermediateSize)
        try positive(maxPositionEmbeddings, .maxPositionEmbeddings)
        if modelType != "minigpt" {
            throw ModelConfigError.invalid(key: "model_type", expected: "\"minigpt\"", found: "\"\(modelType)\"")
        }
        if hiddenSize % numAttentionHeads != 0 {
            throw ModelConfigError.invalid(key: "num_attention_heads",
                expected: "a divisor of hidden_size (\(hiddenSize))", found: "\(numAttentionHeads)")
        }
        if headDim % 2 != 0 {
            throw ModelConfigError.invalid(key: "num_attention_heads",
                expected: "hidden_size / num_attention_heads even (RoPE rotates pairs)", found: "head_dim \(headDim)")
        }
        if numAttentionHeads % numKeyValueHeads != 0 {
            throw ModelConfigError.invalid(key: "num_key_value_heads",
                expected: "a divisor of num_attention_heads (\(numAttentionHeads))", found: "\(numKeyValueHeads)")
        }
        if !(ropeTheta > 1) || !ropeTheta.isFinite {
            throw ModelConfigError.invalid(key: "rope_theta", expected: "a finite number > 1", found: "\(ropeTheta)")
        }
        if !(rmsNormEps > 0) || !rmsNormEps.isFinite {
            throw ModelConfigError.invalid(key: "rms_norm_eps", expected: "a finite number > 0", found: "\(rmsNormEps)")
        }
        if ffnRank < 0 || ffnRank > min(hiddenSize, intermediateSize) {
            throw ModelConfigError.invalid(key: "ffn_rank",
                expected: "0 (dense) or 1...\(min(hiddenSize, intermediateSize))", found: "\(ffnRank)")
        }
        for l in earlyExitLayers where l < 1 || l >= numHiddenLayers {
            throw ModelConfigError.invalid(key: "early_exit_layers",
                expected: "layer counts in 1..<\(numHiddenLayers)", found: "\(l)")
        }
        try kvCache?.validate(maxPositions: maxPositionEmbeddings)
    }

    // MARK: Files

    /// Reads and validates `config.json`; errors name the file.
    public static func load(from url: URL) throws -> ModelConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelConfigError.file(url.path, "cannot read: \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(ModelConfig.self, from: data)
        } catch let e as ModelConfigError {
            throw ModelConfigError.file(url.path, e.description)
        } catch let e as DecodingError {
            throw ModelConfigError.file(url.path, describe(e))
        }
    }

    /// Writes `config.json` with sorted keys, pretty-printed.
    public func save(to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(self).write(to: url)
    }

    /// Multiply-adds of one decode step at position `pos` (0-based) with a full KV cache: the
    /// projections (QKV, O, FFN, head) and the attention scores/mixing over `pos + 1` positions.
    public func macsPerToken(position pos: Int) -> Int {
        let ffn = ffnRank > 0 ? 3 * ffnRank * (hiddenSize + intermediateSize) : 3 * hiddenSize * intermediateSize
        let proj = hiddenSize * qkvDim + qDim * hiddenSize + ffn
        let attn = 2 * numAttentionHeads * headDim * (pos + 1)
        return numHiddenLayers * (proj + attn) + vocabSize * hiddenSize
    }
}

/// Errors reading or validating a model config.
public enum ModelConfigError: Error, CustomStringConvertible, Equatable {
    case unknownKey(String)
    case missingKey(String)
    case invalid(key: String, expected: String, found: String)
    case file(String, String)

    public var description: String {
        switch self {
        case .unknownKey(let k): return "unknown key \"\(k)\" (a typo? see ModelConfig for the accepted keys)"
        case .missingKey(let k): return "missing required key \"\(k)\""
        case .invalid(let k, let e, let f): return "key \"\(k)\": expected \(e), found \(f)"
        case .file(let p, let m): return "\(p): \(m)"
        }
    }
}

/// A coding key for any string: used to list the keys actually present.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

/// A one-line description of a `DecodingError` naming the key path.
func describe(_ e: DecodingError) -> String {
    func path(_ p: [any CodingKey]) -> String { p.map(\.stringValue).joined(separator: ".") }
    switch e {
    case .typeMismatch(let t, let c): return "key \"\(path(c.codingPath))\": expected \(t), \(c.debugDescription)"
    case .valueNotFound(let t, let c): return "key \"\(path(c.codingPath))\": expected \(t), found null"
    case .keyNotFound(let k, let c): return "missing required key \"\(path(c.codingPath + [k]))\""
    case .dataCorrupted(let c): return "invalid JSON at \"\(path(c.codingPath))\": \(c.debugDescription) \(c.underlyingError.map { "\($0)" } ?? "")"
    @unknown default: return "\(e)"
    }
}
