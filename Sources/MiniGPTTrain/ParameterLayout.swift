import Foundation
import MiniGPT

/// Where each parameter tensor lives inside ONE contiguous float buffer (llm.c's
/// `ParameterTensors`): the parameters, their gradients and AdamW's m and v all use this same
/// layout, so zeroing is one call and the optimizer is one flat loop.
///
/// Order (V vocabulary, C width, QKV fused q|k|v rows, F FFN width): wte (V, C); per layer: attnNorm (C), qkv (QKV, C),
/// o (C, C), ffnNorm (C), gateUp (2F, C) = gate rows then up rows, down (C, F); finalNorm (C).
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
        /// (2F, C) SwiGLU gate then up.
        public var gateUp: Int
        /// (C, F) SwiGLU down projection.
        public var down: Int
    }

    /// One named slice.
    public struct Slice: Sendable {
        /// Checkpoint name (gate and up share the slice `…mlp.gate_up`).
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

    /// The layout of `config`; throws for shapes the trainer does not support (untied head,
    /// low-rank FFN).
    public init(config: ModelConfig) throws {
        guard config.tieWordEmbeddings else {
            throw TrainError.unsupported("tie_word_embeddings: false (the trainer ties the output head to the embedding)")
        }
        guard config.ffnRank == 0 else {
            throw TrainError.unsupported("ffn_rank \(config.ffnRank) (the trainer trains dense FFNs only)")
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
            layers.append(Layer(attnNorm: add(TensorName.attnNorm(l), C, decays: false),
                                qkv: add(TensorName.qkv(l), QKV * C, decays: true),
                                o: add(TensorName.o(l), C * config.qDim, decays: true),
                                ffnNorm: add(TensorName.ffnNorm(l), C, decays: false),
                                gateUp: add("model.layers.\(l).mlp.gate_up", 2 * F * C, decays: true),
                                down: add(TensorName.down(l), C * F, decays: true)))
        }
        self.layers = layers
        finalNorm = add(TensorName.finalNorm, C, decays: false)
        count = at
        self.slices = slices
    }

    /// Copies `weights` into `buffer` (count floats) in this layout.
    public func pack(_ weights: ModelWeights, into buffer: FloatPtr) {
        let C = config.hiddenSize, F = config.intermediateSize
        func put(_ a: [Float], _ at: Int) { a.withUnsafeBufferPointer { (buffer + at).update(from: $0.baseAddress!, count: a.count) } }
        put(weights.embed, embed)
        for (l, w) in weights.layers.enumerated() {
            let s = layers[l]
            put(w.attnNorm, s.attnNorm); put(w.qkv, s.qkv); put(w.o, s.o); put(w.ffnNorm, s.ffnNorm)
            put(w.gate, s.gateUp); put(w.up, s.gateUp + F * C); put(w.down, s.down)
        }
        put(weights.finalNorm, finalNorm)
    }

    /// The weights held in `buffer` as engine `ModelWeights`.
    public func unpack(_ buffer: ConstFloatPtr) -> ModelWeights {
        let C = config.hiddenSize, F = config.intermediateSize
        func get(_ at: Int, _ n: Int) -> [Float] { Array(UnsafeBufferPointer(start: buffer + at, count: n)) }
        // ModelWeights has no public memberwise init: start from a (cheap, discarded) random init.
        var w = ModelWeights(random: config, seed: 0)
        w.embed = get(embed, config.vocabSize * C)
        for (l, s) in layers.enumerated() {
            w.layers[l].attnNorm = get(s.attnNorm, C)
            w.layers[l].qkv = get(s.qkv, config.qkvDim * C)
            w.layers[l].o = get(s.o, C * config.qDim)
            w.layers[l].ffnNorm = get(s.ffnNorm, C)
            w.layers[l].gate = get(s.gateUp, F * C)
            w.layers[l].up = get(s.gateUp + F * C, F * C)
            w.layers[l].down = get(s.down, C * F)
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
