import Foundation

/// Tensor names in `model.safetensors` (Hugging Face Llama style; DESIGN.md "The model").
///
/// Shapes are `[out, in]` row-major, as `nn.Linear` stores them: y = W·x.
public enum TensorName {
    /// (V, d) token embedding; also the output head when embeddings are tied.
    public static let embed = "model.embed_tokens.weight"
    /// (d) final RMSNorm weight.
    public static let finalNorm = "model.norm.weight"
    /// (V, d) untied output head.
    public static let lmHead = "lm_head.weight"
    /// (d) RMSNorm before attention in layer `i`.
    public static func attnNorm(_ i: Int) -> String { "model.layers.\(i).input_layernorm.weight" }
    /// (q_dim + 2·kv_dim, d) fused QKV projection: rows of q, then k, then v.
    public static func qkv(_ i: Int) -> String { "model.layers.\(i).self_attn.qkv_proj.weight" }
    /// (q_dim, d), (kv_dim, d), (kv_dim, d) unfused projections (`fused_qkv: false`).
    public static func q(_ i: Int) -> String { "model.layers.\(i).self_attn.q_proj.weight" }
    public static func k(_ i: Int) -> String { "model.layers.\(i).self_attn.k_proj.weight" }
    public static func v(_ i: Int) -> String { "model.layers.\(i).self_attn.v_proj.weight" }
    /// (d, q_dim) attention output projection.
    public static func o(_ i: Int) -> String { "model.layers.\(i).self_attn.o_proj.weight" }
    /// (d) RMSNorm before the FFN in layer `i`.
    public static func ffnNorm(_ i: Int) -> String { "model.layers.\(i).post_attention_layernorm.weight" }
    /// (F, d) SwiGLU gate projection.
    public static func gate(_ i: Int) -> String { "model.layers.\(i).mlp.gate_proj.weight" }
    /// (F, d) SwiGLU up projection.
    public static func up(_ i: Int) -> String { "model.layers.\(i).mlp.up_proj.weight" }
    /// (d, F) SwiGLU down projection.
    public static func down(_ i: Int) -> String { "model.layers.\(i).mlp.down_proj.weight" }
    /// Low-rank FFN factors (`ffn_rank` r > 0; LowRank.swift): a projection W (out, in) ≈ A · B is
    /// stored as `<W's name minus ".weight">.weight_a` (out, r) and `….weight_b` (r, in), e.g.
    /// `model.layers.0.mlp.gate_proj.weight_a` (F, r) and `…gate_proj.weight_b` (r, d). The dense
    /// `.weight` tensors are then absent. `dense` is `gate(i)`, `up(i)` or `down(i)`.
    public static func factorA(_ dense: String) -> String { dense + "_a" }
    /// The (r, in) factor B of `dense` (see `factorA`).
    public static func factorB(_ dense: String) -> String { dense + "_b" }
}

/// The FP32 weights of one transformer block, `[out, in]` row-major.
public struct LayerWeights: Sendable, Equatable {
    /// (d) RMSNorm before attention.
    public var attnNorm: [Float]
    /// (q_dim + 2·kv_dim, d) fused QKV.
    public var qkv: [Float]
    /// (d, q_dim) output projection.
    public var o: [Float]
    /// (d) RMSNorm before the FFN.
    public var ffnNorm: [Float]
    /// (F, d) gate, (F, d) up, (d, F) down. Empty when `ffn_rank` r > 0: the factors below hold the FFN.
    public var gate: [Float], up: [Float], down: [Float]
    /// Low-rank factors when `ffn_rank` r > 0 (gate ≈ gateA·gateB, …), else empty: (F, r), (r, d).
    public var gateA: [Float] = [], gateB: [Float] = []
    /// (F, r), (r, d) up factors.
    public var upA: [Float] = [], upB: [Float] = []
    /// (d, r), (r, F) down factors.
    public var downA: [Float] = [], downB: [Float] = []
}

/// All FP32 weights of a model, the master copy that training updates and the engine packs at load.
public struct ModelWeights: Sendable, Equatable {
    /// The shape these weights have.
    public var config: ModelConfig
    /// (V, d) token embedding.
    public var embed: [Float]
    /// One entry per block.
    public var layers: [LayerWeights]
    /// (d) final RMSNorm.
    public var finalNorm: [Float]
    /// (V, d) output head when not tied to `embed`.
    public var lmHead: [Float]?
    /// INT8 forms of matrices, keyed by tensor name (the fused QKV under `TensorName.qkv(i)`), as
    /// loaded from I8 tensors or made by `quantized(attention:ffn:)`; the FP32 fields hold their
    /// dequantized values. Used only while they still match the FP32 master (Quantization.swift).
    public var quantized: [String: QuantizedMatrix] = [:]

    /// Random weights: N(0, 0.02²) for matrices (GPT-2's init), residual output projections scaled
    /// by 1/√(2·layers) so the residual stream's variance does not grow with depth; norms at 1.
    public init(random config: ModelConfig, seed: UInt64) {
        self.config = config
        var rng = RNG(seed: seed)
        let d = config.hiddenSize, f = config.intermediateSize, v = config.vocabSize
        let std: Float = 0.02
        let residualStd = std / Float(2 * config.numHiddenLayers).squareRoot()
        func normal(_ n: Int, _ s: Float) -> [Float] { (0..<n).map { _ in rng.nextGaussian() * s } }
        embed = normal(v * d, std)
        let r = config.ffnRank
        layers = (0..<config.numHiddenLayers).map { _ in
            var l = LayerWeights(attnNorm: Array(repeating: 1, count: d),
                                 qkv: normal(config.qkvDim * d, std),
                                 o: normal(d * config.qDim, residualStd),
                                 ffnNorm: Array(repeating: 1, count: d),
                                 gate: [], up: [], down: [])
            if r == 0 {
                l.gate = normal(f * d, std); l.up = normal(f * d, std); l.down = normal(d * f, residualStd)
            } else {
                // Entries of A·B are sums of r products: factor std √(s/√r) gives products of std s.
                func fs(_ s: Float) -> Float { (s / Float(r).squareRoot()).squareRoot() }
                l.gateA = normal(f * r, fs(std)); l.gateB = normal(r * d, fs(std))
                l.upA = normal(f * r, fs(std)); l.upB = normal(r * d, fs(std))
                l.downA = normal(d * r, fs(residualStd)); l.downB = normal(r * f, fs(residualStd))
            }
            return l
        }
        finalNorm = Array(repeating: 1, count: d)
        lmHead = config.tieWordEmbeddings ? nil : normal(v * d, std)
    }

    /// Reads weights from `model.safetensors`, checking every name and shape against `config`.
    public init(config: ModelConfig, file: SafeTensorsFile) throws {
        self.config = config
        let d = config.hiddenSize, f = config.intermediateSize, v = config.vocabSize
        embed = try file.floats(TensorName.embed, shape: [v, d])
        var quantized: [String: QuantizedMatrix] = [:]
        func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> [Float] {
            let m = try file.matrix(name, rows: rows, cols: cols)
            if let q = m.quantized { quantized[name] = q }
            return m.floats
        }
        layers = try (0..<config.numHiddenLayers).map { i in
            let qkv: [Float]
            if config.fusedQKV {
                qkv = try matrix(TensorName.qkv(i), config.qkvDim, d)
            } else {
                qkv = try matrix(TensorName.q(i), config.qDim, d) + matrix(TensorName.k(i), config.kvDim, d)
                    + matrix(TensorName.v(i), config.kvDim, d)
                let parts = [TensorName.q(i), TensorName.k(i), TensorName.v(i)].map { quantized.removeValue(forKey: $0) }
                if parts.allSatisfy({ $0 != nil }) { quantized[TensorName.qkv(i)] = QuantizedMatrix.stacked(parts.map { $0! }) }
            }
            let r = config.ffnRank
            guard r > 0 else {
                return LayerWeights(attnNorm: try file.floats(TensorName.attnNorm(i), shape: [d]),
                                    qkv: qkv,
                                    o: try matrix(TensorName.o(i), d, config.qDim),
                                    ffnNorm: try file.floats(TensorName.ffnNorm(i), shape: [d]),
                                    gate: try matrix(TensorName.gate(i), f, d),
                                    up: try matrix(TensorName.up(i), f, d),
                                    down: try matrix(TensorName.down(i), d, f))
            }
            // Low-rank FFN: FP32 factors only (the engine packs them FP32 whatever weight_dtype says).
            var l = LayerWeights(attnNorm: try file.floats(TensorName.attnNorm(i), shape: [d]),
                                 qkv: qkv,
                                 o: try matrix(TensorName.o(i), d, config.qDim),
                                 ffnNorm: try file.floats(TensorName.ffnNorm(i), shape: [d]),
                                 gate: [], up: [], down: [])
            l.gateA = try file.floats(TensorName.factorA(TensorName.gate(i)), shape: [f, r])
            l.gateB = try file.floats(TensorName.factorB(TensorName.gate(i)), shape: [r, d])
            l.upA = try file.floats(TensorName.factorA(TensorName.up(i)), shape: [f, r])
            l.upB = try file.floats(TensorName.factorB(TensorName.up(i)), shape: [r, d])
            l.downA = try file.floats(TensorName.factorA(TensorName.down(i)), shape: [d, r])
            l.downB = try file.floats(TensorName.factorB(TensorName.down(i)), shape: [r, f])
            return l
        }
        self.quantized = quantized
        finalNorm = try file.floats(TensorName.finalNorm, shape: [d])
        lmHead = config.tieWordEmbeddings ? nil : try file.floats(TensorName.lmHead, shape: [v, d])
    }

    /// The tensors as a safetensors writer (FP32, names per `TensorName`).
    public func writer(metadata: [String: String] = [:]) -> SafeTensorsWriter {
        let c = config, d = c.hiddenSize, f = c.intermediateSize
        var w = SafeTensorsWriter()
        w.metadata = metadata.merging(["format": "pt", "producer": "minigpt"]) { a, _ in a }
        w.add(TensorName.embed, shape: [c.vocabSize, d], floats: embed)
        for (i, l) in layers.enumerated() {
            func matrix(_ name: String, _ rows: Int, _ cols: Int, _ m: [Float]) {
                w.addMatrix(name, rows: rows, cols: cols, floats: m, quantized: currentQuantized(name, master: m))
            }
            w.add(TensorName.attnNorm(i), shape: [d], floats: l.attnNorm)
            if c.fusedQKV {
                matrix(TensorName.qkv(i), c.qkvDim, d, l.qkv)
            } else {
                let q = currentQuantized(TensorName.qkv(i), master: l.qkv)
                let bounds = [0, c.qDim, c.qDim + c.kvDim, c.qkvDim]
                for (j, name) in [TensorName.q(i), TensorName.k(i), TensorName.v(i)].enumerated() {
                    let rows = bounds[j]..<bounds[j + 1]
                    w.addMatrix(name, rows: rows.count, cols: d, floats: Array(l.qkv[(rows.lowerBound * d)..<(rows.upperBound * d)]),
                                quantized: q?.rows(rows))
                }
            }
            matrix(TensorName.o(i), d, c.qDim, l.o)
            w.add(TensorName.ffnNorm(i), shape: [d], floats: l.ffnNorm)
            if c.ffnRank > 0 {
                let r = c.ffnRank
                for (name, a, b, out, inp) in [(TensorName.gate(i), l.gateA, l.gateB, f, d), (TensorName.up(i), l.upA, l.upB, f, d),
                                               (TensorName.down(i), l.downA, l.downB, d, f)] {
                    w.add(TensorName.factorA(name), shape: [out, r], floats: a)
                    w.add(TensorName.factorB(name), shape: [r, inp], floats: b)
                }
            } else {
                matrix(TensorName.gate(i), f, d, l.gate)
                matrix(TensorName.up(i), f, d, l.up)
                matrix(TensorName.down(i), d, f, l.down)
            }
        }
        w.add(TensorName.finalNorm, shape: [d], floats: finalNorm)
        if let lmHead { w.add(TensorName.lmHead, shape: [c.vocabSize, d], floats: lmHead) }
        return w
    }

    /// Number of stored parameters.
    public var parameterCount: Int {
        embed.count + finalNorm.count + (lmHead?.count ?? 0)
            + layers.reduce(0) { $0 + $1.attnNorm.count + $1.qkv.count + $1.o.count + $1.ffnNorm.count + $1.gate.count + $1.up.count + $1.down.count
                + $1.gateA.count + $1.gateB.count + $1.upA.count + $1.upB.count + $1.downA.count + $1.downB.count }
    }
}
