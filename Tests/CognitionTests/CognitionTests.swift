import Foundation
import Testing
import MiniGPT
import Observation
@testable import Cognition

@Suite struct IntentDecodingTests {
    let vocab = IntentVocabulary(firstTokenID: 20, count: Intent.tokenCount)

    func logits(_ fill: Float, _ set: [Int: Float]) -> [Float] {
        var l = [Float](repeating: fill, count: 40)
        for (k, v) in set { l[k] = v }
        return l
    }

    @Test func uniformIntentsGiveVerbMarginals() {
        // 13 equally likely intents: verbs STOP, DONE, BACKUP 1/13 each, FORWARD 4/13, turns 3/13.
        let l = logits(-50, Dictionary(uniqueKeysWithValues: (20..<33).map { ($0, 1) }))
        let p = l.withUnsafeBufferPointer { IntentDecoding.decode($0, vocab: vocab) }
        #expect(p.index == 3)  // FORWARD, its first level on ties
        #expect(abs(p.probability - 4.0 / 13) < 1e-5)
        let q: [Float] = [1, 1, 1, 4, 3, 3].map { $0 / 13 }
        #expect(abs(p.entropy - q.reduce(0) { $0 - $1 * logf($1) }) < 1e-4)
        #expect(p.grammarMass > 0.999)
    }

    @Test func argumentUncertaintyIsNotVerbUncertainty() {
        // TURN_RIGHT(0.5) and TURN_RIGHT(1.0) (indices 11, 12) equally likely: the verb is certain.
        let l = logits(-30, [31: 5, 32: 5])
        let p = l.withUnsafeBufferPointer { IntentDecoding.decode($0, vocab: vocab) }
        #expect(p.index == 11 && p.probability > 0.999 && p.entropy < 1e-3)
    }

    @Test func peakedBlockIsConfidentAndIgnoresTokensOutsideTheGrammar() {
        // Token 3 (outside the block) is the global argmax; the grammar must still pick an intent.
        let l = logits(0, [3: 30, 25: 12])
        let p = l.withUnsafeBufferPointer { IntentDecoding.decode($0, vocab: vocab) }
        #expect(p.index == 5)
        #expect(p.probability > 0.999)
        #expect(p.entropy < 1e-3)
        #expect(p.grammarMass < 1e-6)
    }
}

@Suite struct HeadSignalTests {
    @Test func identicalHeadsDoNotDisagreeAndRandomHeadsDo() {
        let config = ModelConfig(vocabSize: 32, hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 4,
                                 numKeyValueHeads: 1, intermediateSize: 32, maxPositionEmbeddings: 32)
        var w = ModelWeights(random: config, seed: 3)
        w.embed = w.embed.map { $0 * 20 }
        w.layers[0].qkv = w.layers[0].qkv.map { $0 * 20 }
        let random = Session(model: Transformer(weights: w))
        random.prefill(Array(0..<20))
        let dRandom = HeadSignals.disagreement(random)
        // Copy head 0's query rows into every query head: the heads then attend identically.
        let hd = config.headDim, d = config.hiddenSize
        for h in 1..<4 { for r in 0..<hd { for c in 0..<d { w.layers[0].qkv[(h * hd + r) * d + c] = w.layers[0].qkv[r * d + c] } } }
        let same = Session(model: Transformer(weights: w))
        same.prefill(Array(0..<20))
        let dSame = HeadSignals.disagreement(same)
        print("disagreement random=\(dRandom) identical=\(dSame)")
        #expect(dSame < 1e-5)
        #expect(dRandom > 0.01 && dRandom <= 1)
    }
}

@Suite struct MetaControllerTests {
    func proposal(_ index: Int = 4, p: Float = 0.9, h: Float = 0.3, mass: Float = 0.9) -> IntentProposal {
        IntentProposal(index: index, probability: p, entropy: h, grammarMass: mass)
    }

    @Test func eachGateTripsToTheFallbackWithZeroConfidence() {
        var t = ControllerThresholds()
        t.hysteresisTicks = 0
        t.maxHeadDisagreement = 0.6   // off by default (docs/controller.md)
        let cases: [(IntentProposal, Float, GateReason)] = [
            (proposal(h: 2.0), 0.1, .highEntropy),
            (proposal(), 0.9, .headDisagreement),
            (proposal(p: 0.2), 0.1, .lowConfidence),
            (proposal(mass: 0.01), 0.1, .offGrammar),
        ]
        for (p, dis, reason) in cases {
            var c = MetaController(thresholds: t)
            let d = c.decide(p, headDisagreement: dis)
            #expect(d.gated && d.reason == reason && d.intent == .stop && d.confidence == 0)
        }
        var c = MetaController(thresholds: t)
        let ok = c.decide(proposal(), headDisagreement: 0.1)
        #expect(!ok.gated && ok.reason == .ok && ok.intent == Intent(index: 4) && ok.confidence == 0.9)
    }

    @Test func hysteresisHoldsTheFallbackForCleanTicks() {
        var t = ControllerThresholds()
        t.hysteresisTicks = 2
        var c = MetaController(thresholds: t)
        let reasons = (0..<4).map { _ in c.decide(proposal(), headDisagreement: 0.1).reason }
        #expect(reasons == [.holding, .holding, .ok, .ok])
        #expect(c.decide(proposal(h: 3), headDisagreement: 0.1).reason == .highEntropy)
        #expect(c.decide(proposal(), headDisagreement: 0.1).reason == .holding)
    }

    @Test func watchdogDecisionIsTheFallback() {
        var c = MetaController()
        let d = c.decideWithoutInput(.staleSensor)
        #expect(d.gated && d.confidence == 0 && d.intent == .stop && d.reason == .staleSensor)
    }
}
