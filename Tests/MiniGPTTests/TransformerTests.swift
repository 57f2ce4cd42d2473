import Foundation
import Testing
@testable import MiniGPT

/// Random weights scaled up so logits are O(1): at GPT-2's init scale they are ~1e-3 and any two
/// implementations agree to 1e-4 trivially.
func scaledRandomWeights(_ config: ModelConfig, seed: UInt64, scale: Float = 8) -> ModelWeights {
    var w = ModelWeights(random: config, seed: seed)
    w.embed = w.embed.map { $0 * scale }
    w.lmHead = w.lmHead?.map { $0 * scale }
    for i in w.layers.indices {
        w.layers[i].qkv = w.layers[i].qkv.map { $0 * scale }
        w.layers[i].gate = w.layers[i].gate.map { $0 * scale }
        w.layers[i].up = w.layers[i].up.map { $0 * scale }
    }
    return w
}

@Suite struct TransformerTests {
    static let shapes: [ModelConfig] = [
        ModelConfig(),
        ModelConfig(vocabSize: 97, hiddenSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
                    numKeyValueHeads: 1, intermediateSize: 72, maxPositionEmbeddings: 64,
                    tieWordEmbeddings: false, fusedQKV: false),
        ModelConfig(vocabSize: 64, hiddenSize: 64, numHiddenLayers: 1, numAttentionHeads: 2,
                    numKeyValueHeads: 2, intermediateSize: 160, maxPositionEmbeddings: 32),
    ]

    @Test("KV-cache decode equals the full-sequence forward", arguments: 0..<3)
    func cacheMatchesFullSequence(shape: Int) {
        let config = Self.shapes[shape]
        let model = Transformer(weights: scaledRandomWeights(config, seed: UInt64(shape + 1)))
        var rng = RNG(seed: 42)
        let T = min(40, config.maxPositionEmbeddings)
        let tokens = (0..<T).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
        let full = model.forward(tokens: tokens)
        let session = Session(model: model)
        var maxDiff: Float = 0, maxAbs: Float = 0
        for (t, tok) in tokens.enumerated() {
            let logits = session.step(tok)
            for v in 0..<config.vocabSize {
                maxDiff = max(maxDiff, abs(logits[v] - full[t * config.vocabSize + v]))
                maxAbs = max(maxAbs, abs(logits[v]))
            }
        }
        print("shape \(shape): max |cached - full| = \(maxDiff), max |logit| = \(maxAbs)")
        #expect(maxDiff <= 1e-4)
        #expect(maxAbs > 0.5, "logits too small for the comparison to mean anything")
    }

    @Test("fast matvec equals the naive kernel")
    func matvecMatchesNaive() {
        var rng = RNG(seed: 7)
        for (rows, cols) in [(4, 16), (7, 32), (320, 128), (5, 20), (1, 48)] {
            let w = (0..<(rows * cols)).map { _ in rng.nextGaussian() }
            let x = (0..<cols).map { _ in rng.nextGaussian() }
            var fast = [Float](repeating: 1, count: rows), slow = fast
            matvec(&fast, w, x, rows: rows, cols: cols, accumulate: true)
            matvecNaive(&slow, w, x, rows: rows, cols: cols, accumulate: true)
            for r in 0..<rows { #expect(abs(fast[r] - slow[r]) <= 1e-4 * max(1, abs(slow[r]))) }
        }
    }

    @Test("reset replays identically")
    func resetIsDeterministic() {
        let model = Transformer(weights: scaledRandomWeights(ModelConfig(), seed: 3))
        let s = Session(model: model)
        let a = Array(s.prefill([1, 2, 3, 4]))
        s.reset()
        let b = Array(s.prefill([1, 2, 3, 4]))
        #expect(a == b)
        #expect(s.position == 4)
    }

    @Test("op counter counts the matmuls of a decode step")
    func opCounter() {
        let c = ModelConfig()
        let s = Session(model: Transformer(weights: ModelWeights(random: c, seed: 1)))
        s.step(5)
        #expect(s.counter.matmuls == c.numHiddenLayers * 5 + 1)
        #expect(s.counter.macs == c.macsPerToken(position: 0))
    }
}

@Suite struct EvictionTests {
    @Test("eviction is exact for a one-layer model (its K/V depend only on token and position)")
    func evictionExactForOneLayer() {
        let config = ModelConfig(vocabSize: 64, hiddenSize: 64, numHiddenLayers: 1, numAttentionHeads: 4,
                                 numKeyValueHeads: 2, intermediateSize: 96, maxPositionEmbeddings: 64)
        let model = Transformer(weights: scaledRandomWeights(config, seed: 9))
        let sinks = [1, 2, 3], evicted = [10, 11, 12, 13, 14], kept = [20, 21, 22, 23]
        let a = Session(model: model)
        a.prefill(sinks + evicted + kept)
        a.evict(from: sinks.count, count: evicted.count)
        #expect(a.position == sinks.count + kept.count)
        let la = Array(a.step(30))
        let b = Session(model: model)
        b.prefill(sinks + kept)
        let lb = Array(b.step(30))
        let diff = zip(la, lb).map { abs($0 - $1) }.max()!
        print("eviction: max |evicted - fresh| = \(diff)")
        #expect(diff <= 1e-4)
    }

    @Test("a rolling window keeps decoding forever in bounded memory")
    func rollingWindowStaysBounded() {
        let config = ModelConfig(vocabSize: 32, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2,
                                 numKeyValueHeads: 1, intermediateSize: 16, maxPositionEmbeddings: 40)
        let s = Session(model: Transformer(weights: ModelWeights(random: config, seed: 4)))
        var rng = RNG(seed: 1)
        var finite = true
        for _ in 0..<10_000 {
            if s.position == s.capacity { s.evict(from: 4, count: 16) }
            let l = s.step(Int(rng.next() % 32))
            finite = finite && l.allSatisfy { $0.isFinite }
        }
        #expect(finite)
        #expect(s.position <= s.capacity)
    }
}
