import Foundation
import Testing
import MiniGPT
@testable import MiniGPTTrain

/// A shape big enough for the GEMM fast paths and GQA, small enough for a debug build.
func engineCheckConfig(rank: Int) -> ModelConfig {
    ModelConfig(vocabSize: 40, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                intermediateSize: 48, maxPositionEmbeddings: 32, ffnRank: rank)
}

/// The trainer's final-head logits (T, V) for one sequence, after `model.loss` (workers 1, batch 1):
/// lnf · wteᵀ recomputed from the saved final-norm output.
func trainerLogits(_ model: TrainableModel, ids: [Int32]) -> [Float] {
    let c = model.layout.config, T = ids.count
    _ = model.loss(ids: ids, targets: Array(repeating: -1, count: T))
    let s = model.shards[0], a = s.acts
    var out = [Float](repeating: 0, count: T * c.vocabSize)
    out.withUnsafeMutableBufferPointer { o in
        matmulForwardNaive(o.baseAddress!, a[a.lnf], model.params.pointer + model.layout.embed,
                           N: T, IC: c.hiddenSize, OC: c.vocabSize)
    }
    return out
}

/// The engine's logits (T, V), one decode step per token.
func engineLogits(_ weights: ModelWeights, ids: [Int32]) -> [Float] {
    let session = Session(model: Transformer(weights: weights))
    return ids.flatMap { Array(session.step(Int($0))) }
}

@Suite("Low-rank FFN trained directly")
struct LowRankTrainTests {
    /// The factors get their own slices under the engine's checkpoint names, gate B then up B
    /// adjacent (one (2r, C) GEMM), and no dense FFN slice remains.
    @Test func layoutUsesTheEngineFactorNames() throws {
        let c = tinyConfig(rank: 3)
        let layout = try ParameterLayout(config: c)
        let names = Set(layout.slices.map(\.name))
        for l in 0..<c.numHiddenLayers {
            for dense in [TensorName.gate(l), TensorName.up(l), TensorName.down(l)] {
                #expect(names.contains(TensorName.factorA(dense)) && names.contains(TensorName.factorB(dense)))
                #expect(!names.contains(dense))
            }
            let s = layout.layers[l]
            #expect(s.gateUp == -1 && s.down == -1)
            let upB = try #require(layout.slices.first { $0.name == TensorName.factorB(TensorName.up(l)) })
            #expect(upB.offset == s.gateUpB + 3 * c.hiddenSize)
        }
        let C = c.hiddenSize, F = c.intermediateSize, r = 3
        let perLayer = 2 * C + c.qkvDim * C + C * c.qDim + 3 * r * (C + F)
        #expect(layout.count == c.vocabSize * C + c.numHiddenLayers * perLayer + C)
        #expect(throws: TrainError.self) { _ = try ParameterLayout(config: tinyConfig(rank: 9)) }  // > min(8, 12)
    }

    /// pack then unpack gives back the factors; the dense fields stay empty.
    @Test func packUnpackRoundTrip() throws {
        let w = tinyWeights(tinyConfig(rank: 3))
        let layout = try ParameterLayout(config: w.config)
        let buf = ParameterBuffer(count: layout.count)
        layout.pack(w, into: buf.pointer)
        let u = layout.unpack(buf.pointer)
        for l in w.layers.indices {
            #expect(u.layers[l].gateA == w.layers[l].gateA && u.layers[l].gateB == w.layers[l].gateB)
            #expect(u.layers[l].upA == w.layers[l].upA && u.layers[l].upB == w.layers[l].upB)
            #expect(u.layers[l].downA == w.layers[l].downA && u.layers[l].downB == w.layers[l].downB)
            #expect(u.layers[l].gate.isEmpty && u.layers[l].up.isEmpty && u.layers[l].down.isEmpty)
        }
    }

    /// A low-rank model trained a few steps, saved as a model folder and loaded by the engine:
    /// the engine's logits equal the trainer's forward (≤ 1e-4).
    @Test func engineLogitsEqualTrainerForward() throws {
        let c = engineCheckConfig(rank: 8)
        var opt = AdamWConfig(); opt.warmupSteps = 1; opt.learningRate = 1e-2
        let train = try TrainableModel(weights: ModelWeights(random: c, seed: 3), batch: 4, seqLen: 16, optimizer: opt)
        for s in 0..<5 {
            let (ids, targets) = tinyBatch(B: 4, T: 16, V: c.vocabSize, seed: UInt64(40 + s))
            train.step(ids: ids, targets: targets, smoothing: 0, lr: 1e-2)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mgpt-lowrank-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try ModelFolder.save(train.weights, to: dir)
        let loaded = try ModelFolder.load(dir)
        #expect(loaded.config.ffnRank == 8)

        let probe = try TrainableModel(weights: loaded, batch: 1, seqLen: 16, workers: 1)
        let ids = tinyBatch(B: 1, T: 16, V: c.vocabSize, seed: 77).ids
        let mine = trainerLogits(probe, ids: ids), engine = engineLogits(loaded, ids: ids)
        let maxDiff = zip(mine, engine).map { abs($0 - $1) }.max() ?? .infinity
        let scale = mine.map(abs).max() ?? 0
        #expect(maxDiff <= 1e-4, "max |Δlogit| \(maxDiff) (logits up to \(scale))")
        #expect(scale > 0.05, "logits too small to compare: \(scale)")
    }

    /// SVD factors of a dense model pack into the trainer and keep training (fine-tuning after
    /// `mgpt lowrank`), and low-rank training lowers the loss on a fixed batch.
    @Test func svdFactorsFineTuneAndLossFalls() throws {
        let dense = tinyWeights(tinyConfig())
        let (w, _) = try dense.lowRank(rank: 4)
        var opt = AdamWConfig(); opt.warmupSteps = 1; opt.learningRate = 1e-2; opt.weightDecay = 0
        let m = try TrainableModel(weights: w, batch: 2, seqLen: 8, optimizer: opt)
        #expect(m.weights.layers[0].gateA == w.layers[0].gateA)
        let (ids, targets) = tinyBatch(B: 2, T: 8, V: 11, seed: 8)
        let first = m.step(ids: ids, targets: targets, smoothing: 0, lr: 1e-2).loss
        var last = first
        for _ in 0..<30 { last = m.step(ids: ids, targets: targets, smoothing: 0, lr: 1e-2).loss }
        #expect(last.isFinite && last < first * 0.7, "loss \(first) → \(last)")
    }
}
