import Foundation

// LoRA adapters (phase 15; Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"):
// a frozen projection W (out, in) is adapted as
//
//   W' = W + (α/r) · B · A,   A (r, in), B (out, r),
//
// so a task costs r·(out + in) parameters per projection instead of out·in. The adapter is its own
// folder, laid out like Hugging Face PEFT's: `adapter_model.safetensors` with F32 tensors
// `<base tensor name>.lora_A` (r, in) and `<base tensor name>.lora_B` (out, r) — e.g.
// `model.layers.0.self_attn.qkv_proj.weight.lora_A` — and `adapter_config.json`
// {"peft_type": "LORA", "r", "lora_alpha", "target_modules", "base_model"}. The engine merges it into
// the FP32 weights at load (`ModelFolder.load(_:adapter:)`), before any INT8 packing; `mgpt lora
// merge` writes the same merged weights as a plain model folder. Trainer and engine merge with the
// same function (`loraMergeAdd`), so a model trained with an adapter scores the same at load.

/// A projection a LoRA adapter may adapt.
public enum LoRATarget: String, Codable, Sendable, CaseIterable {
    /// Fused QKV projection (q_dim + 2·kv_dim, d).
    case qkv
    /// Attention output projection (d, q_dim).
    case o
    /// SwiGLU gate (F, d).
    case gate
    /// SwiGLU up (F, d).
    case up
    /// SwiGLU down (d, F).
    case down

    /// The PEFT `target_modules` name ("qkv_proj", "o_proj", "gate_proj", "up_proj", "down_proj").
    public var moduleName: String { rawValue + "_proj" }

    /// The target whose module name or short name is `s` ("qkv_proj" or "qkv").
    public init?(name s: String) {
        if let t = LoRATarget(rawValue: s) { self = t; return }
        guard let t = LoRATarget.allCases.first(where: { $0.moduleName == s }) else { return nil }
        self = t
    }

    /// The base tensor's name in layer `i` (the fused QKV name even when `fused_qkv` is false).
    public func tensorName(layer i: Int) -> String {
        switch self {
        case .qkv: return TensorName.qkv(i)
        case .o: return TensorName.o(i)
        case .gate: return TensorName.gate(i)
        case .up: return TensorName.up(i)
        case .down: return TensorName.down(i)
        }
    }

    /// (out, in) of this projection in a model of shape `c`.
    public func shape(_ c: ModelConfig) -> (rows: Int, cols: Int) {
        switch self {
        case .qkv: return (c.qkvDim, c.hiddenSize)
        case .o: return (c.hiddenSize, c.qDim)
        case .gate, .up: return (c.intermediateSize, c.hiddenSize)
        case .down: return (c.hiddenSize, c.intermediateSize)
        }
    }

    /// Whether the target is an FFN projection (absent as a dense matrix when `ffn_rank` > 0).
    public var isFFN: Bool { self == .gate || self == .up || self == .down }
}

/// `adapter_config.json` of a LoRA adapter folder (PEFT's key names).
public struct AdapterConfig: Codable, Sendable, Equatable {
    /// Always "LORA".
    public var peftType = "LORA"
    /// Rank r.
    public var r: Int
    /// α: the update is scaled by α/r.
    public var loraAlpha: Float
    /// Adapted projections, PEFT names ("qkv_proj", …).
    public var targetModules: [String]
    /// The base model folder the adapter was trained on (informational).
    public var baseModel: String

    enum CodingKeys: String, CodingKey {
        case r
        case peftType = "peft_type", loraAlpha = "lora_alpha", targetModules = "target_modules", baseModel = "base_model"
    }

    /// A config for rank `r`, scale `loraAlpha / r`, `targets`, trained on `baseModel`.
    public init(r: Int, loraAlpha: Float, targets: [LoRATarget], baseModel: String) {
        self.r = r; self.loraAlpha = loraAlpha; self.baseModel = baseModel
        targetModules = targets.map(\.moduleName)
    }

    /// Decodes PEFT's keys; `peft_type` and `base_model` are optional.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        peftType = try c.decodeIfPresent(String.self, forKey: .peftType) ?? "LORA"
        r = try c.decode(Int.self, forKey: .r)
        loraAlpha = try c.decode(Float.self, forKey: .loraAlpha)
        targetModules = try c.decode([String].self, forKey: .targetModules)
        baseModel = try c.decodeIfPresent(String.self, forKey: .baseModel) ?? ""
    }

    /// α / r, the factor of B·A.
    public var scale: Float { loraAlpha / Float(r) }
}

/// Errors of adapter files and merging; each names the file or tensor and expected vs found.
public enum AdapterError: Error, CustomStringConvertible, Equatable {
    /// A bad adapter file: path and what is wrong.
    case file(String, String)
    /// The base cannot take the adapter: what is wrong.
    case base(String)

    public var description: String {
        switch self {
        case .file(let p, let m): return "\(p): \(m)"
        case .base(let m): return "cannot apply the LoRA adapter: \(m)"
        }
    }
}

/// `w (rows, cols) += scale · b (rows, r) · a (r, cols)`, row-major. Each element's Σ_t b·a runs in
/// t order in FP32, then is scaled and added once: the one merge the trainer and the engine share.
public func loraMergeAdd(_ w: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                         rows: Int, cols: Int, rank r: Int, scale: Float) {
    for i in 0..<rows {
        let wi = w + i * cols, bi = b + i * r
        for j in 0..<cols {
            var acc: Float = 0
            for t in 0..<r { acc += bi[t] * a[t * cols + j] }
            wi[j] += scale * acc
        }
    }
}

/// A LoRA adapter: its config and the A (r, in) and B (out, r) factors of every adapted tensor,
/// keyed by the base tensor's name.
public struct LoRAAdapter: Sendable, Equatable {
    /// File names inside an adapter folder.
    public static let weightsFile = "adapter_model.safetensors"
    /// The config file.
    public static let configFile = "adapter_config.json"

    /// Rank, α, targets, base.
    public var config: AdapterConfig
    /// (r, in) A factors by base tensor name.
    public var a: [String: [Float]]
    /// (out, r) B factors by base tensor name.
    public var b: [String: [Float]]

    /// An adapter from its parts (shapes are checked when merged).
    public init(config: AdapterConfig, a: [String: [Float]], b: [String: [Float]]) {
        self.config = config; self.a = a; self.b = b
    }

    /// The adapted projections, parsed from `target_modules`.
    public func targets(path: String = configFile) throws -> [LoRATarget] {
        try config.targetModules.map { s in
            guard let t = LoRATarget(name: s) else {
                throw AdapterError.file(path, "target_modules: expected names from \(LoRATarget.allCases.map(\.moduleName)), found \"\(s)\"")
            }
            return t
        }
    }

    /// Reads `adapter_config.json` and `adapter_model.safetensors` from `dir`, checking every
    /// tensor of every layer against the base shape `base`.
    public static func load(_ dir: URL, for base: ModelConfig) throws -> LoRAAdapter {
        let cfgURL = dir.appendingPathComponent(configFile)
        guard FileManager.default.fileExists(atPath: cfgURL.path) else {
            throw AdapterError.file(dir.path, "not a LoRA adapter folder (expected \(configFile) and \(weightsFile))")
        }
        let config: AdapterConfig
        do { config = try JSONDecoder().decode(AdapterConfig.self, from: Data(contentsOf: cfgURL)) } catch {
            throw AdapterError.file(cfgURL.path, "cannot read the adapter config (keys r, lora_alpha, target_modules): \(error)")
        }
        guard config.peftType == "LORA" else { throw AdapterError.file(cfgURL.path, "peft_type: expected \"LORA\", found \"\(config.peftType)\"") }
        guard config.r >= 1 else { throw AdapterError.file(cfgURL.path, "r: expected an integer ≥ 1, found \(config.r)") }
        guard config.loraAlpha.isFinite else { throw AdapterError.file(cfgURL.path, "lora_alpha: expected a finite number, found \(config.loraAlpha)") }
        var adapter = LoRAAdapter(config: config, a: [:], b: [:])
        let targets = try adapter.targets(path: cfgURL.path)
        let file = try SafeTensorsFile(url: dir.appendingPathComponent(weightsFile))
        let r = config.r
        for l in 0..<base.numHiddenLayers {
            for t in targets {
                let name = t.tensorName(layer: l), (rows, cols) = t.shape(base)
                adapter.a[name] = try file.floats(name + ".lora_A", shape: [r, cols])
                adapter.b[name] = try file.floats(name + ".lora_B", shape: [rows, r])
            }
        }
        return adapter
    }

    /// Writes the adapter folder `dir` (created if needed).
    public func save(to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var w = SafeTensorsWriter()
        w.metadata = ["format": "pt", "producer": "minigpt"]
        let r = config.r
        for name in a.keys.sorted() {
            guard let av = a[name], let bv = b[name] else { continue }
            w.add(name + ".lora_A", shape: [r, av.count / r], floats: av)
            w.add(name + ".lora_B", shape: [bv.count / r, r], floats: bv)
        }
        try w.write(to: dir.appendingPathComponent(Self.weightsFile))
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(config).write(to: dir.appendingPathComponent(Self.configFile), options: .atomic)
    }

    /// Adapter parameters (every A and B).
    public var parameterCount: Int { a.values.reduce(0) { $0 + $1.count } + b.values.reduce(0) { $0 + $1.count } }

    /// `weights` with W += (α/r)·B·A merged into every adapted FP32 matrix. Refuses an INT8 base
    /// (merge into the FP32 base, then quantize) and FFN targets of a low-rank FFN.
    public func merged(into weights: ModelWeights) throws -> ModelWeights {
        let c = weights.config
        if let dt = c.weightDType, dt.attention == .int8 || dt.ffn == .int8 {
            throw AdapterError.base("the base holds INT8 weights (weight_dtype attention \(dt.attention.rawValue), ffn \(dt.ffn.rawValue)); "
                                    + "apply the adapter to the FP32 base, then quantize the merged folder (mgpt lora merge, mgpt quantize)")
        }
        let targets = try targets()
        if c.ffnRank > 0, let t = targets.first(where: \.isFFN) {
            throw AdapterError.base("target \(t.moduleName) needs a dense FFN; the base has ffn_rank \(c.ffnRank)")
        }
        let r = config.r, scale = config.scale
        var w = weights
        for l in 0..<c.numHiddenLayers {
            for t in targets {
                let name = t.tensorName(layer: l), (rows, cols) = t.shape(c)
                guard let av = a[name], av.count == r * cols else {
                    throw AdapterError.base("tensor \(name).lora_A: expected shape [\(r), \(cols)], found \(a[name].map { "\($0.count) floats" } ?? "none")")
                }
                guard let bv = b[name], bv.count == rows * r else {
                    throw AdapterError.base("tensor \(name).lora_B: expected shape [\(rows), \(r)], found \(b[name].map { "\($0.count) floats" } ?? "none")")
                }
                func merge(_ m: inout [Float]) {
                    m.withUnsafeMutableBufferPointer { mp in
                        av.withUnsafeBufferPointer { ap in
                            bv.withUnsafeBufferPointer { bp in
                                loraMergeAdd(mp.baseAddress!, a: ap.baseAddress!, b: bp.baseAddress!, rows: rows, cols: cols, rank: r, scale: scale)
                            }
                        }
                    }
                }
                switch t {
                case .qkv: merge(&w.layers[l].qkv)
                case .o: merge(&w.layers[l].o)
                case .gate: merge(&w.layers[l].gate)
                case .up: merge(&w.layers[l].up)
                case .down: merge(&w.layers[l].down)
                }
                w.quantized[name] = nil
            }
        }
        return w
    }
}

extension ModelFolder {
    /// Reads the folder `dir` and merges the LoRA adapter folder `adapter` (if given) into its FP32
    /// weights, before the engine packs them (an INT8 base is refused: `LoRAAdapter.merged`).
    public static func load(_ dir: URL, adapter: URL?) throws -> ModelWeights {
        let base = try load(dir)
        guard let adapter else { return base }
        return try LoRAAdapter.load(adapter, for: base.config).merged(into: base)
    }
}
