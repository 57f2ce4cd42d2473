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
    /// (F, d) gate, (F, d) up, (d, F) down.
    public var gate: [Float], up: [Float], down: [Float]
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
        layers = (0..<config.numHiddenLayers).map { _ in
            LayerWeights(attnNorm: Array(repeating: 1, count: d),
                         qkv: normal(config.qkvDim * d, std),
                         o: normal(d * config.qDim, residualStd),
                         ffnNorm: Array(repeating: 1, count: d),
                         gate: normal(f * d, std), up: normal(f * d, std),
                         down: normal(d * f, residualStd))
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
            return LayerWeights(attnNorm: try file.floats(TensorName.attnNorm(i), shape: [d]),
                                qkv: qkv,
                                o: try matrix(TensorName.o(i), d, config.qDim),
                                ffnNorm: try file.floats(TensorName.ffnNorm(i), shape: [d]),
                                gate: try matrix(TensorName.gate(i), f, d),
                                up: try matrix(TensorName.up(i), f, d),
                                down: try matrix(TensorName.down(i), d, f))
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
            matrix(TensorName.gate(i), f, d, l.gate)
            matrix(TensorName.up(i), f, d, l.up)
            matrix(TensorName.down(i), d, f, l.down)
        }
        w.add(TensorName.finalNorm, shape: [d], floats: finalNorm)
        if let lmHead { w.add(TensorName.lmHead, shape: [c.vocabSize, d], floats: lmHead) }
        return w
    }

    /// Number of stored parameters.
    public var parameterCount: Int {
        embed.count + finalNorm.count + (lmHead?.count ?? 0)
            + layers.reduce(0) { $0 + $1.attnNorm.count + $1.qkv.count + $1.o.count + $1.ffnNorm.count + $1.gate.count + $1.up.count + $1.down.count }
    }
}
