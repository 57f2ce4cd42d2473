import Foundation
import MiniGPT

// LoRA training (engine side and file format: MiniGPT/Adapter.swift). The base weights stay frozen
// in the parameter buffer; the adapters live in their own contiguous buffer (with their own
// gradients and AdamW moments). Per adapted projection W (out, in), scale s = α/r:
//
//   forward:  W_eff = W + s · B (out, r) · A (r, in)          (loraMergeAdd, the engine's merge)
//   backward: the shards give dW = ∂L/∂W_eff (out, in); then
//             dA (r, in)  = s · Bᵀ · dW        dA[t][j] = s Σ_i B[i][t] · dW[i][j]
//             dB (out, r) = s · dW · Aᵀ        dB[i][t] = s Σ_j dW[i][j] · A[t][j]
//
// Init (Hu et al. 2021 §4.1): A ~ N(0, 1/in), B = 0, so step 0 is exactly the base model.

/// The recipe's `"lora"` section (or `mgpt train --lora RANK`).
public struct LoRASpec: Codable, Sendable, Equatable {
    /// Rank r.
    public var rank: Int
    /// α; the update is scaled by α/r. Default: α = r (scale 1).
    public var alpha: Float
    /// Adapted projections.
    public var targets: [LoRATarget]

    /// Rank `rank`, α (default `rank`), every projection by default.
    public init(rank: Int, alpha: Float? = nil, targets: [LoRATarget] = LoRATarget.allCases) {
        self.rank = rank
        self.alpha = alpha ?? Float(rank)
        self.targets = targets
    }

    /// Adapter parameters for a model of shape `c`: r·(out + in) per adapted matrix per layer.
    public func parameterCount(_ c: ModelConfig) -> Int {
        c.numHiddenLayers * targets.reduce(0) { n, t in let (o, i) = t.shape(c); return n + rank * (o + i) }
    }

    /// Adapter parameters as a fraction of the base model's parameters (`ModelWeights.parameterCount`
    /// for a dense, tied model of shape `c`).
    public func trainableFraction(_ c: ModelConfig) -> Double {
        let C = c.hiddenSize, F = c.intermediateSize
        let base = c.vocabSize * C + C + c.numHiddenLayers * (2 * C + c.qkvDim * C + C * c.qDim + 3 * C * F)
            + (c.tieWordEmbeddings ? 0 : c.vocabSize * C)
        return Double(parameterCount(c)) / Double(base)
    }
}

/// The adapters of a `TrainableModel` under LoRA: one buffer of every A and B, their gradients and
/// the optimizer that trains only them.
public final class LoRAState: @unchecked Sendable {
    /// One adapted matrix.
    struct Entry {
        var target: LoRATarget
        var layer: Int
        /// Base tensor name (adapter tensors are `<name>.lora_A` / `.lora_B`).
        var name: String
        /// First float of the adapted matrix in the parameter layout.
        var weight: Int
        var rows: Int, cols: Int
        /// First float of A (r, cols) and of B (rows, r) in the adapter buffer.
        var a: Int, b: Int
    }

    /// Rank, α, targets.
    public let spec: LoRASpec
    /// α / r.
    public let scale: Float
    let entries: [Entry]
    /// Adapter parameters in total.
    public let count: Int
    /// Every A then B, entry by entry (layer-major, targets in spec order).
    public let params: ParameterBuffer
    /// ∂L/∂(adapters) of the last backward.
    public let grads: ParameterBuffer

    /// Adapters for `layout`, A drawn from N(0, 1/in) with `seed`, B zero.
    init(spec: LoRASpec, layout: ParameterLayout, seed: UInt64) throws {
        let c = layout.config
        guard spec.rank >= 1 else { throw TrainError.recipe(path: "lora.rank", message: "expected an integer ≥ 1, found \(spec.rank)") }
        guard !spec.targets.isEmpty else { throw TrainError.recipe(path: "lora.targets", message: "expected at least one of \(LoRATarget.allCases.map(\.rawValue)), found none") }
        if c.ffnRank > 0, let t = spec.targets.first(where: \.isFFN) {
            throw TrainError.recipe(path: "lora.targets", message: "\"\(t.rawValue)\" needs a dense FFN; the model has ffn_rank \(c.ffnRank)")
        }
        self.spec = spec
        scale = spec.alpha / Float(spec.rank)
        let r = spec.rank, F = c.intermediateSize, C = c.hiddenSize
        var entries: [Entry] = []
        var at = 0
        for (l, s) in layout.layers.enumerated() {
            for t in spec.targets {
                let (rows, cols) = t.shape(c)
                guard r <= min(rows, cols) else {
                    throw TrainError.recipe(path: "lora.rank", message: "expected ≤ \(min(rows, cols)) (the smaller side of \(t.rawValue), \(rows)×\(cols)), found \(r)")
                }
                let w: Int
                switch t {
                case .qkv: w = s.qkv
                case .o: w = s.o
                case .gate: w = s.gateUp
                case .up: w = s.gateUp + F * C
                case .down: w = s.down
                }
                entries.append(Entry(target: t, layer: l, name: t.tensorName(layer: l), weight: w, rows: rows, cols: cols,
                                     a: at, b: at + r * cols))
                at += r * (rows + cols)
            }
        }
        self.entries = entries
        count = at
        params = ParameterBuffer(count: max(at, 1))
        grads = ParameterBuffer(count: max(at, 1))
        var rng = RNG(seed: seed)
        for e in entries {
            let std = 1 / Float(e.cols).squareRoot()
            for i in 0..<(r * e.cols) { params.pointer[e.a + i] = rng.nextGaussian() * std }
        }
    }

    /// `eff += s · B · A` for every adapted matrix (eff holds the base).
    func merge(into eff: FloatPtr) {
        let r = spec.rank, p = params.pointer
        for e in entries {
            loraMergeAdd(eff + e.weight, a: p + e.a, b: p + e.b, rows: e.rows, cols: e.cols, rank: r, scale: scale)
        }
    }

    /// Fills `grads` from `dW` (the parameter-layout gradient of the effective weights).
    func backward(dW: ConstFloatPtr) {
        let r = spec.rank, p = params.pointer, g = grads.pointer, s = scale
        grads.zero()
        for e in entries {
            let A = p + e.a, B = p + e.b, dA = g + e.a, dB = g + e.b
            for i in 0..<e.rows {
                let dWi = dW + e.weight + i * e.cols
                for t in 0..<r {
                    // dB[i][t] = s Σ_j dW[i][j] A[t][j]
                    let At = A + t * e.cols
                    var acc: Float = 0
                    for j in 0..<e.cols { acc += dWi[j] * At[j] }
                    dB[i * r + t] = s * acc
                    // dA[t][:] += s B[i][t] dW[i][:]
                    let bit = s * B[i * r + t]
                    if bit != 0 {
                        let dAt = dA + t * e.cols
                        for j in 0..<e.cols { dAt[j] += bit * dWi[j] }
                    }
                }
            }
        }
    }

    /// The adapters as an engine `LoRAAdapter` (for `adapter_model.safetensors`), base `baseModel`.
    public func adapter(baseModel: String) -> LoRAAdapter {
        let r = spec.rank
        var a: [String: [Float]] = [:], b: [String: [Float]] = [:]
        for e in entries {
            a[e.name] = Array(UnsafeBufferPointer(start: params.pointer + e.a, count: r * e.cols))
            b[e.name] = Array(UnsafeBufferPointer(start: params.pointer + e.b, count: e.rows * r))
        }
        return LoRAAdapter(config: AdapterConfig(r: r, loraAlpha: spec.alpha, targets: spec.targets, baseModel: baseModel), a: a, b: b)
    }

    /// Loads A and B from `adapter` (same rank and targets; e.g. to continue or test).
    public func load(_ adapter: LoRAAdapter) throws {
        let r = spec.rank
        for e in entries {
            guard let av = adapter.a[e.name], av.count == r * e.cols, let bv = adapter.b[e.name], bv.count == e.rows * r else {
                throw TrainError.message("adapter tensor \(e.name).lora_A/.lora_B: expected shapes [\(r), \(e.cols)] and [\(e.rows), \(r)]")
            }
            av.withUnsafeBufferPointer { (params.pointer + e.a).update(from: $0.baseAddress!, count: av.count) }
            bv.withUnsafeBufferPointer { (params.pointer + e.b).update(from: $0.baseAddress!, count: bv.count) }
        }
    }
}
