import Foundation
import Testing
@testable import MiniGPT

@Suite struct SamplerTests {
    let logits: [Float] = [2.0, 1.0, 0.5, 3.0, -1.0, 0.0, 2.5, 1.5]

    @Test func greedyPicksArgmax() {
        var s = Sampler(vocabSize: 8)
        #expect(logits.withUnsafeBufferPointer { s.sample($0) } == 3)
    }

    @Test func sameSeedSameDraws() {
        var a = Sampler(vocabSize: 8, options: .init(temperature: 1, topK: 5, topP: 0.9), seed: 11)
        var b = Sampler(vocabSize: 8, options: .init(temperature: 1, topK: 5, topP: 0.9), seed: 11)
        let da = (0..<200).map { _ in logits.withUnsafeBufferPointer { a.sample($0) } }
        let db = (0..<200).map { _ in logits.withUnsafeBufferPointer { b.sample($0) } }
        #expect(da == db)
        #expect(Set(da).count > 1, "temperature 1 should not be greedy")
    }

    @Test func topKRestrictsCandidates() {
        var s = Sampler(vocabSize: 8, options: .init(temperature: 5, topK: 2), seed: 1)
        let draws = Set((0..<500).map { _ in logits.withUnsafeBufferPointer { s.sample($0) } })
        #expect(draws == [3, 6])
    }

    @Test func topPKeepsTheNucleus() {
        // softmax at T=1: token 3 ≈ 0.40, 6 ≈ 0.24, 0 ≈ 0.15 → p=0.6 keeps {3, 6}.
        var s = Sampler(vocabSize: 8, options: .init(temperature: 1, topP: 0.6), seed: 2)
        let draws = Set((0..<500).map { _ in logits.withUnsafeBufferPointer { s.sample($0) } })
        #expect(draws == [3, 6])
    }

    @Test func entropyAwareDecodingCoolsConfidentSteps() {
        let opts = SamplingOptions(temperature: 1, entropyReference: 2, minTemperatureScale: 0.1)
        #expect(opts.effectiveTemperature(entropy: 0.05) == 0.1)
        #expect(opts.effectiveTemperature(entropy: 1) == 0.5)
        #expect(opts.effectiveTemperature(entropy: 3) == 1)
        // A confident step (entropy ≈ 0.6 nats): plain sampling at T=1 picks the runner-up now and
        // then; entropy-aware sampling at the same seed almost never does.
        let confident: [Float] = [4, 2, 0, 0, 0, 0, 0, 0]
        var plain = Sampler(vocabSize: 8, options: .init(temperature: 1), seed: 3)
        var aware = Sampler(vocabSize: 8, options: opts, seed: 3)
        let plainOff = (0..<2000).filter { _ in confident.withUnsafeBufferPointer { plain.sample($0) } != 0 }.count
        let awareOff = (0..<2000).filter { _ in confident.withUnsafeBufferPointer { aware.sample($0) } != 0 }.count
        #expect(plainOff > 200 && awareOff < plainOff / 10, "plain \(plainOff) vs aware \(awareOff)")
        // A flat step keeps the full temperature: the same draws as plain sampling.
        let flat = [Float](repeating: 0, count: 8)
        var p2 = Sampler(vocabSize: 8, options: .init(temperature: 1), seed: 4)
        var a2 = Sampler(vocabSize: 8, options: opts, seed: 4)
        let same = (0..<200).allSatisfy { _ in flat.withUnsafeBufferPointer { p2.sample($0) } == flat.withUnsafeBufferPointer { a2.sample($0) } }
        #expect(same)
    }

    @Test func entropyOfUniformIsLogN() {
        let u = [Float](repeating: 0.3, count: 16)
        #expect(abs(u.withUnsafeBufferPointer { Sampler.entropy($0) } - logf(16)) < 1e-5)
    }

    @Test func heapSortSorts() {
        var rng = RNG(seed: 5)
        var a = (0..<300).map { _ in Int(rng.next() % 50) }
        let expected = a.sorted(by: >)
        a.withUnsafeMutableBufferPointer { heapSort($0, by: >) }
        #expect(a == expected)
    }
}
