import Foundation
import Testing
import MiniGPT
@testable import MiniGPTTrain

/// The first `l` blocks of `w` with its embedding and final norm: a model whose final head is
/// `w`'s exit head after l blocks.
func truncated(_ w: ModelWeights, layers l: Int) -> ModelWeights {
    var t = w
    t.config.numHiddenLayers = l
    t.config.earlyExitLayers = []
    t.layers = Array(w.layers.prefix(l))
    return t
}

@Suite("Early-exit auxiliary losses")
struct EarlyExitTrainTests {
    /// w = 0 (the default) trains exactly like a model without exits: same loss and gradients, bit
    /// for bit, and no exit losses are computed.
    @Test func zeroWeightIsBitIdenticalToNoExits() throws {
        let plain = tinyConfig(rank: 0, layers: 3), withExits = tinyConfig(rank: 0, layers: 3, exits: [1, 2])
        var w = tinyWeights(plain)
        let a = try TrainableModel(weights: w, batch: 3, seqLen: 5)
        w.config = withExits
        let b = try TrainableModel(weights: w, batch: 3, seqLen: 5)
        let (ids, targets) = tinyBatch(B: 3, T: 5, V: plain.vocabSize, seed: 3)
        let la = a.forwardBackward(ids: ids, targets: targets, smoothing: 0.1)
        let lb = b.forwardBackward(ids: ids, targets: targets, smoothing: 0.1)
        #expect(la == lb)
        #expect(a.gradients.array == b.gradients.array)
        #expect(b.exitLosses == nil)
        // w > 0: the returned loss is still the final head's; the gradients change.
        b.earlyExitLossWeight = 0.3
        let lc = b.forwardBackward(ids: ids, targets: targets, smoothing: 0.1)
        #expect(lc == la)
        #expect(b.gradients.array != a.gradients.array)
    }

    /// The exit loss after l blocks equals the final loss of the model cut to its first l blocks.
    @Test func exitLossEqualsTruncatedModel() throws {
        let c = tinyConfig(rank: 3, layers: 3, exits: [2, 1])
        let w = tinyWeights(c)
        let m = try TrainableModel(weights: w, batch: 3, seqLen: 5)
        m.earlyExitLossWeight = 0.5
        let (ids, targets) = tinyBatch(B: 3, T: 5, V: c.vocabSize, seed: 4)
        let final = m.loss(ids: ids, targets: targets, smoothing: 0.1)
        let exits = try #require(m.exitLosses)
        #expect(m.exitLayers == [1, 2])
        for (e, l) in m.exitLayers.enumerated() {
            let cut = try TrainableModel(weights: truncated(w, layers: l), batch: 3, seqLen: 5)
            let ref = cut.loss(ids: ids, targets: targets, smoothing: 0.1)
            #expect(abs(exits[e] - ref) <= 1e-5 * max(1, ref), "exit \(l): \(exits[e]) vs truncated \(ref)")
            #expect(abs(exits[e] - final) > 1e-3)
        }
    }

    /// Same weights, data and w → bit-identical parameters after several AdamW steps.
    @Test func trainingWithExitsIsBitIdenticalOnRerun() throws {
        let c = tinyConfig(rank: 0, layers: 3, exits: [1, 2])
        func run() throws -> [Float] {
            var opt = AdamWConfig(); opt.warmupSteps = 2; opt.learningRate = 1e-2
            let m = try TrainableModel(weights: ModelWeights(random: c, seed: 42), batch: 4, seqLen: 8, optimizer: opt)
            m.earlyExitLossWeight = 0.3
            for s in 0..<6 {
                let (ids, targets) = tinyBatch(B: 4, T: 8, V: c.vocabSize, seed: UInt64(100 + s))
                m.step(ids: ids, targets: targets, smoothing: 0.1, lr: opt.learningRate(step: s, total: 6))
            }
            return m.params.array
        }
        #expect(try run() == run())
    }

    /// Training with w > 0 makes the exit head after 1 block better than training without.
    @Test func auxiliaryLossTrainsTheEarlyHead() throws {
        let c = tinyConfig(rank: 0, layers: 3, exits: [1])
        let (ids, targets) = tinyBatch(B: 2, T: 8, V: c.vocabSize, seed: 8)
        func exitLoss(weight: Float) throws -> Float {
            var opt = AdamWConfig(); opt.warmupSteps = 1; opt.learningRate = 1e-2; opt.weightDecay = 0
            let m = try TrainableModel(weights: ModelWeights(random: c, seed: 1), batch: 2, seqLen: 8, optimizer: opt)
            m.earlyExitLossWeight = weight
            for _ in 0..<30 { m.step(ids: ids, targets: targets, smoothing: 0, lr: 1e-2) }
            m.measureExits = true
            _ = m.loss(ids: ids, targets: targets)
            return try #require(m.exitLosses?.first)
        }
        let without = try exitLoss(weight: 0), with = try exitLoss(weight: 1)
        #expect(with < without * 0.8, "exit-1 loss: w=1 \(with) vs w=0 \(without)")
    }

    /// Evaluator reports one score per exit head, and none for a model without exits.
    @Test func evaluatorReportsExitScores() throws {
        let c = tinyConfig(rank: 0, layers: 3, exits: [1, 2])
        var rng = RNG(seed: 5)
        let tokens = (0..<200).map { _ in Int32(rng.next() % 11) }
        let stream = TokenStream(tokens: tokens, bytes: 400, characters: 400)
        let r = try Evaluator.evaluate(weights: tinyWeights(c), stream: stream, seqLen: 8, batch: 4)
        let exits = try #require(r.exits)
        #expect(exits.map(\.layer) == [1, 2])
        #expect(exits.allSatisfy { $0.avgLogprob < 0 && $0.avgLogprob != r.avgLogprob })
        var plain = tinyWeights(c); plain.config.earlyExitLayers = []
        #expect(try Evaluator.evaluate(weights: plain, stream: stream, seqLen: 8, batch: 4).exits == nil)
    }

    /// The recipe key: parsed, range-checked, and refused without exit layers.
    @Test func recipeKey() throws {
        let ok = try Recipe(json: Data(#"{"model": {"num_hidden_layers": 4, "early_exit_layers": [1, 2]}, "training": {"early_exit_loss_weight": 0.3}}"#.utf8))
        #expect(ok.training.earlyExitLossWeight == 0.3)
        #expect(try ok.modelConfig(vocabSize: 300).earlyExitLayers == [1, 2])
        #expect(try Recipe(json: Data("{}".utf8)).training.earlyExitLossWeight == 0)
        #expect(throws: TrainError.self) { try Recipe(json: Data(#"{"training": {"early_exit_loss_weight": -1}}"#.utf8)) }
        let noExits = try Recipe(json: Data(#"{"training": {"early_exit_loss_weight": 0.3}}"#.utf8))
        do { _ = try noExits.modelConfig(vocabSize: 300); Issue.record("expected an error") } catch let e as TrainError {
            #expect(e.description.contains("training.early_exit_loss_weight"))
        }
    }
}
