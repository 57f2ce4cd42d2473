import Foundation
import Testing
import MiniGPT
@testable import MiniGPTTrain

/// A tiny model with weights large enough that every gradient is well above FP32 noise.
func tinyConfig() -> ModelConfig {
    ModelConfig(vocabSize: 11, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2,
                numKeyValueHeads: 1, intermediateSize: 12, maxPositionEmbeddings: 16)
}

/// `tinyConfig()` with FFN rank `rank` (0 = dense), `layers` blocks and early exits `exits`.
func tinyConfig(rank: Int, layers: Int = 2, exits: [Int] = []) -> ModelConfig {
    var c = tinyConfig()
    c.ffnRank = rank; c.numHiddenLayers = layers; c.earlyExitLayers = exits
    return c
}

/// Random weights with matrices ×10 (std 0.2) and norms 1 ± 0.2 (low-rank factors ×√10 each,
/// so their products are ×10 too).
func tinyWeights(_ config: ModelConfig = tinyConfig(), seed: UInt64 = 7) -> ModelWeights {
    var w = ModelWeights(random: config, seed: seed)
    var rng = RNG(seed: seed &+ 1)
    func s(_ a: [Float]) -> [Float] { a.map { $0 * 10 } }
    func h(_ a: [Float]) -> [Float] { a.map { $0 * Float(10).squareRoot() } }
    func n(_ a: [Float]) -> [Float] { a.map { _ in 1 + 0.2 * rng.nextGaussian() } }
    w.embed = s(w.embed)
    for l in w.layers.indices {
        w.layers[l].qkv = s(w.layers[l].qkv); w.layers[l].o = s(w.layers[l].o)
        w.layers[l].gate = s(w.layers[l].gate); w.layers[l].up = s(w.layers[l].up)
        w.layers[l].down = s(w.layers[l].down)
        w.layers[l].gateA = h(w.layers[l].gateA); w.layers[l].gateB = h(w.layers[l].gateB)
        w.layers[l].upA = h(w.layers[l].upA); w.layers[l].upB = h(w.layers[l].upB)
        w.layers[l].downA = h(w.layers[l].downA); w.layers[l].downB = h(w.layers[l].downB)
        w.layers[l].attnNorm = n(w.layers[l].attnNorm); w.layers[l].ffnNorm = n(w.layers[l].ffnNorm)
    }
    w.finalNorm = n(w.finalNorm)
    return w
}

/// Deterministic token batch (B, T) and next-token targets with a few ignored positions.
func tinyBatch(B: Int, T: Int, V: Int, seed: UInt64) -> (ids: [Int32], targets: [Int32]) {
    var rng = RNG(seed: seed)
    let ids = (0..<(B * T)).map { _ in Int32(rng.next() % UInt64(V)) }
    var targets = (0..<(B * T)).map { _ in Int32(rng.next() % UInt64(V)) }
    targets[1] = -1
    return (ids, targets)
}

/// One whole-model gradient check: label smoothing, FFN rank (0 = dense), early-exit loss weight.
struct GradientCase: Sendable, CustomStringConvertible {
    var smoothing: Float, rank: Int, exitWeight: Float
    var description: String { "smoothing \(smoothing), ffn_rank \(rank), exit w \(exitWeight)" }
}

/// The trained objective after `model.loss`: final loss + w · Σ exit losses (mean per target).
func objective(_ model: TrainableModel, ids: [Int32], targets: [Int32], smoothing: Float) -> Double {
    let final = Double(model.loss(ids: ids, targets: targets, smoothing: smoothing))
    let exits = model.exitLosses ?? []
    return final + Double(model.earlyExitLossWeight) * exits.reduce(0) { $0 + Double($1) }
}

@Suite("Whole-model gradients and determinism")
struct ModelGradientTests {
    /// Finite differences of the trained objective against backward for a sample of every tensor:
    /// dense and low-rank FFNs, with and without early-exit auxiliary losses (3 blocks, exits 1, 2).
    @Test(arguments: [GradientCase(smoothing: 0, rank: 0, exitWeight: 0), GradientCase(smoothing: 0.1, rank: 0, exitWeight: 0),
                      GradientCase(smoothing: 0, rank: 3, exitWeight: 0), GradientCase(smoothing: 0.1, rank: 3, exitWeight: 0),
                      GradientCase(smoothing: 0, rank: 0, exitWeight: 0.3), GradientCase(smoothing: 0.1, rank: 3, exitWeight: 0.7)])
    func wholeModelFiniteDifferences(_ k: GradientCase) throws {
        let c = k.exitWeight > 0 ? tinyConfig(rank: k.rank, layers: 3, exits: [1, 2]) : tinyConfig(rank: k.rank)
        let model = try TrainableModel(weights: tinyWeights(c), batch: 3, seqLen: 5)
        model.earlyExitLossWeight = k.exitWeight
        let (ids, targets) = tinyBatch(B: 3, T: 5, V: c.vocabSize, seed: 3)
        model.forwardBackward(ids: ids, targets: targets, smoothing: k.smoothing)
        if k.exitWeight > 0 {
            let exits = try #require(model.exitLosses)
            #expect(exits.count == 2 && exits.allSatisfy { $0 > 0.5 }, "exit losses \(exits)")
        }
        let grads = model.gradients.array
        var rng = RNG(seed: 99)
        let p = model.params.pointer
        let eps: Float = 1e-2
        for slice in model.layout.slices {
            let picks = (0..<min(12, slice.count)).map { _ in slice.offset + Int(rng.next() % UInt64(slice.count)) }
            var analytic: [Float] = [], numeric: [Float] = []
            for i in picks {
                let keep = p[i]
                p[i] = keep + eps; let lp = objective(model, ids: ids, targets: targets, smoothing: k.smoothing)
                p[i] = keep - eps; let lm = objective(model, ids: ids, targets: targets, smoothing: k.smoothing)
                p[i] = keep
                analytic.append(grads[i]); numeric.append(Float((lp - lm) / (2 * Double(eps))))
            }
            let err = relativeError(analytic, numeric)
            #expect(err < 1e-2, "\(slice.name): rel err \(err)")
        }
    }

    /// One shard or two: the same gradients up to FP32 summation order.
    @Test func shardSplitDoesNotChangeGradients() throws {
        let c = tinyConfig()
        let (ids, targets) = tinyBatch(B: 4, T: 6, V: c.vocabSize, seed: 5)
        let one = try TrainableModel(weights: tinyWeights(c), batch: 4, seqLen: 6, workers: 1)
        let two = try TrainableModel(weights: tinyWeights(c), batch: 4, seqLen: 6, workers: 2)
        let l1 = one.forwardBackward(ids: ids, targets: targets, smoothing: 0)
        let l2 = two.forwardBackward(ids: ids, targets: targets, smoothing: 0)
        #expect(abs(l1 - l2) < 1e-5)
        #expect(relativeError(one.gradients.array, two.gradients.array) < 1e-5)
    }

    /// Same weights, data and schedule → bit-identical parameters after several AdamW steps.
    @Test func trainingIsBitIdenticalOnRerun() throws {
        let c = tinyConfig()
        func run() throws -> [Float] {
            var opt = AdamWConfig(); opt.warmupSteps = 2; opt.learningRate = 1e-2
            let m = try TrainableModel(weights: ModelWeights(random: c, seed: 42), batch: 4, seqLen: 8, optimizer: opt)
            for s in 0..<6 {
                let (ids, targets) = tinyBatch(B: 4, T: 8, V: c.vocabSize, seed: UInt64(100 + s))
                m.step(ids: ids, targets: targets, smoothing: 0.1, lr: opt.learningRate(step: s, total: 6))
            }
            return m.params.array
        }
        let a = try run(), b = try run()
        #expect(a == b)
        #expect(a != ParameterBufferSnapshot.initial(c))
    }

    /// The loss falls when the model learns a fixed batch (AdamW, clipping and the schedule wired).
    @Test func lossDecreasesOnAFixedBatch() throws {
        let c = tinyConfig()
        var opt = AdamWConfig(); opt.warmupSteps = 1; opt.learningRate = 1e-2; opt.weightDecay = 0
        let m = try TrainableModel(weights: ModelWeights(random: c, seed: 1), batch: 2, seqLen: 8, optimizer: opt)
        let (ids, targets) = tinyBatch(B: 2, T: 8, V: c.vocabSize, seed: 8)
        let first = m.step(ids: ids, targets: targets, smoothing: 0, lr: 1e-2).loss
        var last = first
        for _ in 0..<30 { last = m.step(ids: ids, targets: targets, smoothing: 0, lr: 1e-2).loss }
        #expect(first > 2.2 && last < first * 0.5, "loss \(first) → \(last)")
    }

    /// Weight decay skips the norms: with zero gradients, only matrices shrink.
    @Test func weightDecaySkipsNorms() throws {
        let c = tinyConfig()
        var opt = AdamWConfig(); opt.weightDecay = 0.5
        let m = try TrainableModel(weights: tinyWeights(c), batch: 1, seqLen: 2, optimizer: opt)
        let before = m.params.array
        m.gradients.zero()
        m.applyUpdate(lr: 0.1)
        let after = m.params.array
        let norm = m.layout.layers[0].attnNorm, qkv = m.layout.layers[0].qkv
        #expect(after[norm] == before[norm])
        #expect(abs(after[qkv] - before[qkv] * (1 - 0.05)) < 1e-6)
    }
}

/// Parameters of a freshly initialised model (layout order), for "training changed something".
enum ParameterBufferSnapshot {
    static func initial(_ c: ModelConfig) -> [Float] {
        let layout = try! ParameterLayout(config: c)
        let b = ParameterBuffer(count: layout.count)
        layout.pack(ModelWeights(random: c, seed: 42), into: b.pointer)
        return b.array
    }
}
