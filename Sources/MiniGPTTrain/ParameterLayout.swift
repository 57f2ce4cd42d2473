import Foundation
import MiniGPT

/// Where each parameter tensor lives inside ONE contiguous float buffer (llm.c's
/// `ParameterTensors`): the parameters, their gradients and AdamW's m and v all use this same
/// layout, so zeroing is one call and the optimizer is one flat loop.
///
/// Order (V vocabulary, C width, QKV fused q|k|v rows, F FFN width, r FFN rank): wte (V, C); per
/// layer: attnNorm (C), qkv (QKV, C), o (C, C), ffnNorm (C), then the FFN, dense: gateUp (2F, C) =
/// gate rows then up rows, down (C, F); or low-rank (`ffn_rank` r > 0, W ≈ A·B): gateB (r, C), upB
/// (r, C) (adjacent: one (2r, C) matrix gateUpB), gateA (F, r), upA (F, r), downB (r, F), downA
/// (C, r); finalNorm (C).
public struct ParameterLayout: Sendable {
    /// Offsets of one block's tensors.
    public struct Layer: Sendable {
        /// (C) RMSNorm before attention.
        public var attnNorm: Int
        /// (QKV, C) fused projection.
        public var qkv: Int
        /// (C, C) attention output projection.
        public var o: Int
        /// (C) RMSNorm before the FFN.
        public var ffnNorm: Int
        /// (2F, C) SwiGLU gate then up (dense FFN; −1 when low-rank).
        public var gateUp: Int
        /// (C, F) SwiGLU down projection (dense FFN; −1 when low-rank).
        public var down: Int
        /// (2r, C) low-rank gate factor B then up factor B (−1 when dense).
        public var gateUpB: Int = -1
        /// (F, r) low-rank gate factor A (−1 when dense).
        public var gateA: Int = -1
        /// (F, r) low-rank up factor A (−1 when dense).
        public var upA: Int = -1
        /// (r, F) low-rank down factor B (−1 when dense).
        public var downB: Int = -1
        /// (C, r) low-rank down factor A (−1 when dense).
        public var downA: Int = -1
    }

    /// One named slice.
    public struct Slice: Sendable {
        /// Checkpoint name (dense gate and up share the slice `…mlp.gate_up`; low-rank factors carry
        /// the engine's names `…gate_proj.weight_a` / `…weight_b`).
        public var name: String
        /// First float.
        public var offset: Int
        /// Number of floats.
        public var count: Int
        /// Whether AdamW's weight decay applies (matrices yes; norms no).
        public var decays: Bool
    }

    /// The model shape.
    public let config: ModelConfig
    /// (V, C) token embedding, tied with the output head.
    public let embed: Int
    /// One entry per block.
    public let layers: [Layer]
    /// (C) final RMSNorm.
    public let finalNorm: Int
    /// Total floats.
    public let count: Int
    /// Every slice in buffer order.
    public let slices: [Slice]

    /// The layout of `config`; throws for shapes the trainer does not support (untied head).
    public init(config: ModelConfig) throws {
        guard config.tieWordEmbeddings else {
            throw TrainError.unsupported("tie_word_embeddings: false (the trainer ties the output head to the embedding)")
        }
        let r = config.ffnRank
        guard r >= 0, r <= min(config.hiddenSize, config.intermediateSize) else {
            throw TrainError.unsupported("ffn_rank: expected 0 (dense) or 1...\(min(config.hiddenSize, config.intermediateSize)), found \(r)")
        }
        self.config = config
        let C = config.hiddenSize, F = config.intermediateSize, V = config.vocabSize, QKV = config.qkvDim
        var slices: [Slice] = []
        var at = 0
        func add(_ name: String, _ n: Int, decays: Bool) -> Int {
            slices.append(Slice(name: name, offset: at, count: n, decays: decays))
            defer { at += n }
            return at
        }
        embed = add(TensorName.embed, V * C, decays: true)
        var layers: [Layer] = []
        for l in 0..<config.numHiddenLayers {
            var s = Layer(attnNorm: add(TensorName.attnNorm(l), C, decays: false),
                          qkv: add(TensorName.qkv(l), QKV * C, decays: true),
                          o: add(TensorName.o(l), C * config.qDim, decays: true),
                          ffnNorm: add(TensorName.ffnNorm(l), C, decays: false),
                          gateUp: -1, down: -1)
            if r == 0 {
                s.gateUp = add("model.layers.\(l).mlp.gate_up", 2 * F * C, decays: true)
                s.down = add(TensorName.down(l), C * F, decays: true)
            } else {
                s.gateUpB = add(TensorName.factorB(TensorName.gate(l)), r * C, decays: true)
                _ = add(TensorName.factorB(TensorName.up(l)), r * C, decays: true)
                s.gateA = add(TensorName.factorA(TensorName.gate(l)), F * r, decays: true)
                s.upA = add(TensorName.factorA(TensorName.up(l)), F * r, decays: true)
                s.downB = add(TensorName.factorB(TensorName.down(l)), r * F, decays: true)
                s.downA = add(TensorName.factorA(TensorName.down(l)), C * r, decays: true)
            }
            layers.append(s)
        }
        self.layers = layers
        finalNorm = add(TensorName.finalNorm, C, decays: false)
        count = at
        self.slices = slices
    }

    /// Copies `weights` into `buffer` (count floats) in this layout. `weights` must have this
    /// layout's config (same shape, same `ffn_rank`).
    public func pack(_ weights: ModelWeights, into buffer: FloatPtr) {
        let C = config.hiddenSize, F = config.intermediateSize, r = config.ffnRank
        precondition(weights.config.ffnRank == r, "weights have ffn_rank \(weights.config.ffnRank), layout \(r)")
        func put(_ a: [Float], _ at: Int) { a.withUnsafeBufferPointer { (buffer + at).update(from: $0.baseAddress!, count: a.count) } }
        put(weights.embed, embed)
        for (l, w) in weights.layers.enumerated() {
            let s = layers[l]
            put(w.attnNorm, s.attnNorm); put(w.qkv, s.qkv); put(w.o, s.o); put(w.ffnNorm, s.ffnNorm)
            if r == 0 {
                put(w.gate, s.gateUp); put(w.up, s.gateUp + F * C); put(w.down, s.down)
            } else {
                put(w.gateB, s.gateUpB); put(w.upB, s.gateUpB + r * C); put(w.gateA, s.gateA); put(w.upA, s.upA)
                put(w.downB, s.downB); put(w.downA, s.downA)
            }
        }
        put(weights.finalNorm, finalNorm)
    }

    /// The weights held in `buffer` as engine `ModelWeights`.
    public func unpack(_ buffer: ConstFloatPtr) -> ModelWeights {
        let C = config.hiddenSize, F = config.intermediateSize, r = config.ffnRank
        func get(_ at: Int, _ n: Int) -> [Float] { Array(UnsafeBufferPointer(start: buffer + at, count: n)) }
        // ModelWeights has no public memberwise init: start from a (cheap, discarded) random init.
        var w = ModelWeights(random: config, seed: 0)
        w.embed = get(embed, config.vocabSize * C)
        for (l, s) in layers.enumerated() {
            w.layers[l].attnNorm = get(s.attnNorm, C)
            w.layers[l].qkv = get(s.qkv, config.qkvDim * C)
            w.layers[l].o = get(s.o, C * config.qDim)
            w.layers[l].ffnNorm = get(s.ffnNorm, C)
            if r == 0 {
                w.layers[l].gate = get(s.gateUp, F * C)
                w.layers[l].up = get(s.gateUp + F * C, F * C)
                w.layers[l].down = get(s.down, C * F)
            } else {
                w.layers[l].gateB = get(s.gateUpB, r * C); w.layers[l].upB = get(s.gateUpB + r * C, r * C)
                w.layers[l].gateA = get(s.gateA, F * r); w.layers[l].upA = get(s.upA, F * r)
                w.layers[l].downB = get(s.downB, r * F); w.layers[l].downA = get(s.downA, C * r)
            }
        }
        w.finalNorm = get(finalNorm, C)
        w.lmHead = nil
        return w
    }
}

/// One contiguous, zero-initialised float buffer with the parameter layout (parameters,
/// gradients, AdamW moments): the engine's 64-byte aligned `FloatBuffer`.
public typealias ParameterBuffer = FloatBuffer

extension FloatBuffer {
    /// Sets every float to 0.
    public func zero() { pointer.update(repeating: 0, count: count) }

    /// A copy of the contents.
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Errors of the training module; each says what is wrong and where.
public enum TrainError: Error, CustomStringConvertible, Equatable {
    /// A model shape the trainer cannot train.
    case unsupported(String)
    /// A bad recipe: key path, expected, found.
    case recipe(path: String, message: String)
    /// A bad input file: path and what is wrong.
    case file(String, String)
    /// Anything else, with its message.
    case message(String)

    public var description: String {
        switch self {
        case .unsupported(let m): return "unsupported model: \(m)"
        case .recipe(let p, let m): return "recipe key \"\(p)\": \(m)"
        case .file(let p, let m): return "\(p): \(m)"
        case .message(let m): return m
        }
    }
}
