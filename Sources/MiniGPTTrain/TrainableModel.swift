import Foundation
import MiniGPT

/// A model being trained: parameters in one contiguous buffer, two shards that each run forward
/// and backward over half of the batch on their own thread, and AdamW.
///
/// Determinism: each shard writes only its own activations and gradient buffer; the sum over
/// shards, the gradient norm and the optimizer run over fixed halves of the parameter buffer in a
/// fixed order, so the same config, data and seed give bit-identical weights on every run,
/// whatever the machine's core count (the split is always `workers` shards).
public final class TrainableModel: @unchecked Sendable {
    /// Layout of params, grads, m and v.
    public let layout: ParameterLayout
    /// The parameters (layout order).
    public let params: ParameterBuffer
    /// The optimizer over the trainable vector: `params`, or the adapters under LoRA.
    public let optimizer: AdamW
    /// Sequences per step.
    public let batch: Int
    /// Tokens per sequence.
    public let seqLen: Int
    let shards: [ModelShard]
    /// Fake-quantized weight groups (QAT), nil when off.
    public let qat: QATSpec?
    /// The adapters under LoRA (then `params` is the frozen base), nil when off.
    public let lora: LoRAState?
    let fakeQuant: [FakeQuantMatrix]
    /// What the shards read when QAT or LoRA is on: eff = fakeQuant(params + (α/r)·B·A), rebuilt
    /// before every forward (FakeQuant.swift, LoRA.swift). Nil when the shards read `params`.
    let effective: ParameterBuffer?

    /// A model with `weights`, for batches of `batch` sequences of `seqLen` tokens split over
    /// `workers` threads (2 uses both cores; the split is part of the numerics, keep it fixed).
    /// `qat` trains through fake INT8 weights (straight-through estimator); `lora` freezes
    /// `weights` and trains rank-r adapters (A drawn with `loraSeed`, B zero) instead.
    public init(weights: ModelWeights, batch: Int, seqLen: Int, optimizer: AdamWConfig = AdamWConfig(),
                workers: Int = 2, qat: QATSpec? = nil, lora: LoRASpec? = nil, loraSeed: UInt64 = 1) throws {
        layout = try ParameterLayout(config: weights.config)
        guard batch >= 1, seqLen >= 1 else { throw TrainError.message("batch and sequence length must be ≥ 1, found \(batch) × \(seqLen)") }
        guard seqLen <= weights.config.maxPositionEmbeddings else {
            throw TrainError.message("sequence length \(seqLen) exceeds max_position_embeddings \(weights.config.maxPositionEmbeddings)")
        }
        params = ParameterBuffer(count: layout.count)
        layout.pack(weights, into: params.pointer)
        let qatOn = qat?.isEnabled == true ? qat : nil
        let lay = layout  // (also the shards' layout below)
        let adapters = try lora.map { try LoRAState(spec: $0, layout: lay, seed: loraSeed) }
        self.qat = qatOn
        fakeQuant = try qatOn?.matrices(lay) ?? []
        self.lora = adapters
        effective = (qatOn != nil || adapters != nil) ? ParameterBuffer(count: lay.count) : nil
        self.optimizer = AdamW(config: optimizer, count: adapters?.count ?? lay.count)
        self.batch = batch
        self.seqLen = seqLen
        let w = max(1, min(workers, batch))
        // Shard i takes ⌈B/w⌉ or ⌊B/w⌋ consecutive sequences.
        shards = (0..<w).map { i in ModelShard(layout: lay, B: batch / w + (i < batch % w ? 1 : 0), T: seqLen) }
    }

    /// The current parameters as engine weights: the FP32 master under QAT, the frozen base under LoRA.
    public var weights: ModelWeights { layout.unpack(params.pointer) }

    /// The weights the forward pass reads (after fake quantization and/or merged adapters).
    public var effectiveWeights: ModelWeights {
        layout.unpack(prepareEffective())
    }

    /// Parameters the optimizer trains (all of them, or the adapters under LoRA).
    public var trainableCount: Int { lora?.count ?? layout.count }

    /// The buffer the shards read: `effective` when QAT or LoRA is on, else `params`.
    var input: FloatPtr { effective?.pointer ?? params.pointer }

    /// Builds the buffer the shards read and returns it: `params` itself, or
    /// eff = fakeQuant(params + (α/r)·B·A). Rebuilt on every call (a few ms: a copy, the adapter
    /// products and one quantization round trip per matrix), so it can never be stale.
    @discardableResult
    func prepareEffective() -> FloatPtr {
        guard let eff = effective else { return params.pointer }
        eff.pointer.update(from: params.pointer, count: layout.count)
        lora?.merge(into: eff.pointer)
        if !fakeQuant.isEmpty {
            // Two fixed halves of the matrix list on two threads: each matrix is independent.
            let list = fakeQuant, half = (list.count + 1) / 2
            DispatchQueue.concurrentPerform(iterations: 2) { h in
                for m in list[(h == 0 ? 0 : half)..<(h == 0 ? half : list.count)] {
                    fakeQuantize(eff.pointer + m.offset, rows: m.rows, cols: m.cols, bits: m.bits)
                }
            }
        }
        return eff.pointer
    }

    /// The summed gradients of the last `forwardBackward` (layout order).
    public var gradients: ParameterBuffer { shards[0].grads }

    /// Copies `ids` and `targets` (batch·seqLen each, row-major (B, T); target −1 = no loss) into
    /// the shards.
    func load(ids: [Int32], targets: [Int32]) {
        precondition(ids.count == batch * seqLen && targets.count == batch * seqLen)
        var row = 0
        for s in shards {
            let n = s.B * seqLen
            ids.withUnsafeBufferPointer { s.ids.update(from: $0.baseAddress! + row * seqLen, count: n) }
            targets.withUnsafeBufferPointer { s.targets.update(from: $0.baseAddress! + row * seqLen, count: n) }
            row += s.B
        }
    }

    /// Mean loss over the valid targets of (`ids`, `targets`) without touching gradients.
    public func loss(ids: [Int32], targets: [Int32], smoothing: Float = 0) -> Float {
        load(ids: ids, targets: targets)
        prepareEffective()
        let sums = SharedDoubles(count: shards.count)
        DispatchQueue.concurrentPerform(iterations: shards.count) { i in
            sums[i] = shards[i].forward(params: input, smoothing: smoothing)
        }
        let valid = targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        return Float(sums.total / Double(max(valid, 1)))
    }

    /// Forward + backward over one batch: returns the mean loss and leaves the summed gradient of
    /// the mean loss in `gradients`.
    @discardableResult
    public func forwardBackward(ids: [Int32], targets: [Int32], smoothing: Float) -> Float {
        load(ids: ids, targets: targets)
        let valid = targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        let dloss = 1 / Float(max(valid, 1))
        prepareEffective()
        let sums = SharedDoubles(count: shards.count)
        DispatchQueue.concurrentPerform(iterations: shards.count) { i in
            sums[i] = shards[i].forward(params: input, smoothing: smoothing)
            shards[i].backward(params: input, smoothing: smoothing, dloss: dloss)
        }
        // Sum shard gradients into shard 0's buffer, over two fixed halves in parallel.
        if shards.count > 1 {
            let halves = halfRanges()
            DispatchQueue.concurrentPerform(iterations: halves.count) { h in
                let g0 = shards[0].grads.pointer
                for s in shards.dropFirst() {
                    let gs = s.grads.pointer
                    for i in halves[h] { g0[i] += gs[i] }
                }
            }
        }
        // QAT: straight-through, ∂L/∂W = ∂L/∂W_eff (nothing to do). LoRA: map dW to dA, dB.
        lora?.backward(dW: shards[0].grads.pointer)
        return Float(sums.total / Double(max(valid, 1)))
    }

    func halfRanges() -> [Range<Int>] {
        let mid = layout.count / 2
        return [0..<mid, mid..<layout.count]
    }

    /// ‖gradients‖₂ (two halves summed in Double, in a fixed order).
    public func gradientNorm() -> Float {
        if let lora {
            var s: Double = 0
            for i in 0..<lora.count { s += Double(lora.grads.pointer[i]) * Double(lora.grads.pointer[i]) }
            return Float(s.squareRoot())
        }
        let halves = halfRanges()
        let parts = SharedDoubles(count: 2)
        DispatchQueue.concurrentPerform(iterations: 2) { h in
            let g = shards[0].grads.pointer
            var s: Double = 0
            for i in halves[h] { s += Double(g[i]) * Double(g[i]) }
            parts[h] = s
        }
        return Float((parts[0] + parts[1]).squareRoot())
    }

    /// One AdamW update with learning rate `lr` from the current gradients, after clipping their
    /// global norm to `optimizer.config.gradClip`. Returns the norm before clipping.
    @discardableResult
    public func applyUpdate(lr: Float) -> Float {
        let norm = gradientNorm()
        let clip = optimizer.config.gradClip
        let scale: Float = (clip > 0 && norm > clip) ? clip / (norm + 1e-6) : 1
        optimizer.step += 1
        let t = optimizer.step
        if let lora {
            optimizer.update(params: lora.params.pointer, grads: lora.grads.pointer, range: 0..<lora.count,
                             decays: true, lr: lr, t: t, gradScale: scale)
            return norm
        }
        let halves = halfRanges()
        DispatchQueue.concurrentPerform(iterations: 2) { h in
            for s in layout.slices {
                let lo = max(s.offset, halves[h].lowerBound), hi = min(s.offset + s.count, halves[h].upperBound)
                if lo >= hi { continue }
                optimizer.update(params: params.pointer, grads: shards[0].grads.pointer, range: lo..<hi,
                                 decays: s.decays, lr: lr, t: t, gradScale: scale)
            }
        }
        return norm
    }

    /// forwardBackward + applyUpdate: one training step. Returns (loss, gradient norm).
    @discardableResult
    public func step(ids: [Int32], targets: [Int32], smoothing: Float, lr: Float) -> (loss: Float, gradNorm: Float) {
        let loss = forwardBackward(ids: ids, targets: targets, smoothing: smoothing)
        let norm = applyUpdate(lr: lr)
        return (loss, norm)
    }
}

/// A few doubles that concurrent workers write, each to its own index; read after they join.
final class SharedDoubles: @unchecked Sendable {
    private let values: UnsafeMutablePointer<Double>
    private let count: Int
    init(count: Int) {
        self.count = count
        values = .allocate(capacity: count)
        values.initialize(repeating: 0, count: count)
    }
    deinit { values.deallocate() }
    subscript(i: Int) -> Double {
        get { values[i] }
        set { values[i] = newValue }
    }
    /// The sum in index order.
    var total: Double { (0..<count).reduce(0) { $0 + values[$1] } }
}

extension ModelConfig {
    /// Floating-point operations (multiply and add counted separately) of one training step
    /// (forward + backward) over `batch` sequences of `seqLen` tokens: 6 per weight per token for
    /// the matmuls (2 forward, 4 backward), plus causal attention (q·k and p·v: 2·2·hd per visible
    /// pair forward, twice that backward). Norms, softmax and AdamW are not counted.
    public func trainingFlops(batch: Int, seqLen T: Int) -> Double {
        let C = Double(hiddenSize), F = Double(intermediateSize)
        let perLayer = C * Double(qkvDim) + Double(qDim) * C + 3 * C * F
        let matmulWeights = Double(numHiddenLayers) * perLayer + Double(vocabSize) * C
        let tokens = Double(batch * T)
        let pairs = Double(batch * numAttentionHeads) * Double(T * (T + 1) / 2)
        let attention = Double(numHiddenLayers) * pairs * 4 * Double(headDim) * 3
        return 6 * matmulWeights * tokens + attention
    }
}

/// Sums over the scored positions of a batch: Σ log p(target), Σ entropy of the predicted
/// distribution (nats), and how many positions were scored.
public struct ScoreSums: Sendable, Equatable {
    /// Σ ln p(target).
    public var logProb: Double = 0
    /// Σ −Σ_j p_j ln p_j.
    public var entropy: Double = 0
    /// Scored positions.
    public var count: Int = 0

    /// Zero sums.
    public init() {}

    /// Adds another batch's sums.
    public mutating func add(_ o: ScoreSums) { logProb += o.logProb; entropy += o.entropy; count += o.count }
}

extension TrainableModel {
    /// Scores one batch without label smoothing and without touching gradients.
    public func score(ids: [Int32], targets: [Int32]) -> ScoreSums {
        load(ids: ids, targets: targets)
        let V = layout.config.vocabSize
        let parts = SharedDoubles(count: 3 * shards.count)
        prepareEffective()
        DispatchQueue.concurrentPerform(iterations: shards.count) { i in
            let s = shards[i]
            s.forward(params: input, smoothing: 0)
            let a = s.acts, probs = a[a.logits], losses = a[a.losses]
            var lp = 0.0, ent = 0.0, n = 0.0
            for r in 0..<(s.B * s.T) where s.targets[r] >= 0 {
                lp -= Double(losses[r])
                let p = probs + r * V
                var h = 0.0
                for j in 0..<V where p[j] > 0 { h -= Double(p[j]) * log(Double(p[j])) }
                ent += h; n += 1
            }
            parts[3 * i] = lp; parts[3 * i + 1] = ent; parts[3 * i + 2] = n
        }
        var out = ScoreSums()
        for i in 0..<shards.count {
            out.logProb += parts[3 * i]; out.entropy += parts[3 * i + 1]; out.count += Int(parts[3 * i + 2])
        }
        return out
    }
}
