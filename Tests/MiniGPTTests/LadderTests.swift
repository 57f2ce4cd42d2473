import Foundation
import Testing
@testable import MiniGPT

// The ladder (Ladder.swift, `mgpt bench ladder`): manifest parsing and its errors, the phase-1
// (no cache) row against the KV-cache row, and the op counts against the shape's formulas.

/// A small random model: 2 layers, 4 query / 2 KV heads, d = 32, vocabulary 64, context 64.
private func smallModel(seed: UInt64 = 3) -> (ModelWeights, Transformer) {
    let c = ModelConfig(vocabSize: 64, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                        intermediateSize: 48, maxPositionEmbeddings: 64)
    let w = ModelWeights(random: c, seed: seed)
    return (w, Transformer(weights: w))
}

/// 40 tokens from a fixed seed in contexts of 16 (16, 16, 8).
private func smallStream() -> LadderStream {
    var rng = RNG(seed: 11)
    return LadderStream(text: (0..<40).map { _ in Int(rng.next() % 64) }, context: 16)
}

private func parse(_ json: String) throws -> LadderManifest {
    try LadderManifest.parse(Data(json.utf8), base: URL(fileURLWithPath: "/tmp/ladder-base"), file: "m.json")
}

/// The error thrown by `body`, which must be a `LadderManifestError`.
private func manifestError(_ json: String) -> LadderManifestError? {
    do { _ = try parse(json); return nil } catch { return error as? LadderManifestError }
}

@Suite struct LadderManifestTests {
    @Test func parsesRowsAndResolvesPathsAgainstTheManifestFolder() throws {
        let m = try parse("""
            {"title": "t", "tokens": 100, "rows": [
              {"phase": 1, "name": "no cache", "model": "../m", "kv_cache": false, "untied_head": true},
              {"phase": 13, "name": "fp16 window", "model": "m2", "kv_dtype": "float16", "kv_window": 64, "kv_sinks": 4, "exit": "after:3"},
              {"phase": 11, "name": "gqa", "measured": false, "shape_change": {"num_key_value_heads": 4, "fused_qkv": false}, "note": "n"},
              {"phase": 4, "name": "absolute", "model": "/models/x"}]}
            """)
        #expect(m.title == "t" && m.tokens == 100 && m.rows.count == 4)
        #expect(m.rows[3].model == "/models/x")
        #expect(m.rows[0].model == "/tmp/m" && !m.rows[0].options.kvCache && m.rows[0].untiedHead)
        #expect(m.rows[1].model == "/tmp/ladder-base/m2" && m.rows[1].options.kvCache)
        #expect(m.rows[1].kvDType == "float16" && m.rows[1].kvWindow == 64 && m.rows[1].kvSinks == 4)
        #expect(m.rows[1].options.exit == .after(3))
        #expect(!m.rows[2].measured && m.rows[2].model == nil && m.rows[2].note == "n")
        #expect(m.rows[2].shapeChange.numKeyValueHeads == 4 && m.rows[2].shapeChange.fusedQKV == false)
    }

    @Test func errorsNameTheKeyPathExpectedAndFound() throws {
        let cases: [(String, String, String)] = [
            (#"{"rows": [{"phase": 1, "name": "a", "model": "m", "kv_cache": "yes"}]}"#, "rows[0].kv_cache", "a string \"yes\""),
            (#"{"rows": [{"phase": 1, "name": "a", "model": "m"}, {"phase": 2, "name": "b", "model": "m", "kv_cahce": true}]}"#, "rows[1].kv_cahce", "an unknown key"),
            (#"{"rows": [{"name": "a", "model": "m"}]}"#, "rows[0].phase", "nothing (missing key)"),
            (#"{"rows": [{"phase": 1.5, "name": "a", "model": "m"}]}"#, "rows[0].phase", "a number 1.5"),
            (#"{"rows": [{"phase": 1, "name": "a"}]}"#, "rows[0].model", "nothing (missing key)"),
            (#"{"rows": [{"phase": 1, "name": "a", "model": "m", "exit": "half"}]}"#, "rows[0].exit", "\"half\""),
            (#"{"rows": [{"phase": 1, "name": "a", "model": "m", "kv_cache": false, "kv_dtype": "int8"}]}"#, "rows[0].kv_dtype", "a value"),
            (#"{"rows": [{"phase": 1, "name": "a", "model": "m", "kv_dtype": "int4"}]}"#, "rows[0].kv_dtype", "\"int4\""),
            (#"{"rows": [{"phase": 1, "name": "a", "model": "m", "kv_sinks": 4}]}"#, "rows[0].kv_sinks", "4 without kv_window"),
            (#"{"rows": [{"phase": 1, "name": "a", "model": "m", "kv_window": 8, "kv_sinks": 8}]}"#, "rows[0].kv_sinks", "8"),
            (#"{"rows": [{"phase": 1, "name": "a", "measured": false, "shape_change": {"heads": 2}}]}"#, "rows[0].shape_change.heads", "an unknown key"),
            (#"{"rows": []}"#, "rows", "an array of 0"),
            (#"{"row": []}"#, "row", "an unknown key"),
            (#"[1]"#, "(root)", "an array of 1"),
        ]
        for (json, path, found) in cases {
            let e = try #require(manifestError(json), "no error for \(json)")
            #expect(e.keyPath == path, "\(json)")
            #expect(e.found == found, "\(json): found \(e.found)")
            #expect(e.description.hasPrefix("m.json: \(path): expected "))
        }
    }
}

@Suite struct LadderMeasureTests {
    @Test func noCacheRowEqualsKVCacheRow() {
        let (_, model) = smallModel()
        let stream = smallStream()
        var phase1 = LadderRunOptions()
        phase1.kvCache = false
        let a = Ladder.measure(model, stream: stream, options: phase1, warmup: 4)
        let b = Ladder.measure(model, stream: stream, options: LadderRunOptions(), warmup: 4)
        #expect(a.scored == 39 && b.scored == 39)  // every token but the last has a target
        #expect(a.logprobs.count == b.logprobs.count)
        let maxDiff = zip(a.logprobs, b.logprobs).map { abs($0 - $1) }.max()!
        #expect(maxDiff <= 1e-4, "max |Δ log-prob| \(maxDiff)")
        #expect(abs(a.avgEntropy - b.avgEntropy) <= 1e-4)
        // A random model is close to uniform: log-prob near −ln 64, entropy near ln 64.
        #expect(abs(b.avgLogprob + log(64.0)) < 0.5 && abs(b.avgEntropy - log(64.0)) < 0.1)
    }

    @Test func metricsAreFiniteAndOpCountsMatchTheFormulas() {
        let (weights, model) = smallModel()
        let c = weights.config
        let stream = smallStream()
        let kv = Ladder.measure(model, stream: stream, options: LadderRunOptions(), warmup: 4)
        for v in [kv.avgLogprob, kv.avgEntropy, kv.latency.p50, kv.latency.p99, kv.matmulsPerToken, kv.macsPerToken] { #expect(v.isFinite) }
        #expect(kv.tokens == 40 && kv.latency.p50 > 0)
        // KV cache: per token QKV, O, gate|up (2 products), down per layer, then the head.
        #expect(kv.matmulsPerToken == Double(c.numHiddenLayers * 5 + 1))
        let offsets: [Int] = stream.segments.flatMap { seg in seg.map { $0 - seg.lowerBound } }
        let macsTotal: Int = offsets.map { c.macsPerToken(position: $0) }.reduce(0, +)
        let macs = Double(macsTotal) / Double(offsets.count)
        #expect(abs(kv.macsPerToken - macs) < 1e-9, "\(kv.macsPerToken) vs \(macs)")
        #expect(kv.kvCacheBytes == 2 * c.numHiddenLayers * c.kvDim * stream.longestSegment * 4)
        #expect(kv.meanLayers == Double(c.numHiddenLayers))
        // Phase 1: the whole prefix of t + 1 tokens again, every position through every layer and the head.
        var p1 = LadderRunOptions()
        p1.kvCache = false
        let nc = Ladder.measure(model, stream: stream, options: p1, warmup: 0)
        let perPosition = c.numHiddenLayers * 5 + 1
        let total: Int = offsets.map { ($0 + 1) * perPosition }.reduce(0, +)
        let matmuls = Double(total) / Double(offsets.count)
        #expect(nc.matmulsPerToken == matmuls)
        #expect(nc.kvCacheBytes == 0)
        // Bytes: FP32 tied model stores exactly its parameters; the computed shape figures agree.
        #expect(kv.modelBytes == 4 * weights.parameterCount)
        let computed = Ladder.computed(c, positions: stream.longestSegment)
        #expect(computed.modelBytes == kv.modelBytes)
        #expect(computed.matmulsPerToken == c.numHiddenLayers * 5 + 1)
        #expect(computed.kvCacheBytes == kv.kvCacheBytes)
        var unfused = c
        unfused.fusedQKV = false
        #expect(Ladder.computed(unfused, positions: 1).matmulsPerToken == c.numHiddenLayers * 7 + 1)
        // An untied head adds the embedding table once more.
        #expect(Ladder.measure(model, stream: stream, options: LadderRunOptions(), untied: true, warmup: 0).modelBytes
                == kv.modelBytes + 4 * c.vocabSize * c.hiddenSize)
    }

    @Test func earlyExitAndReducedKVRowsChangeWhatTheyClaim() {
        let (weights, model) = smallModel()
        let stream = smallStream()
        let full = Ladder.measure(model, stream: stream, options: LadderRunOptions(), warmup: 0)
        var exit = LadderRunOptions()
        exit.exit = .after(1)
        let early = Ladder.measure(model, stream: stream, options: exit, warmup: 0)
        #expect(early.meanLayers == 1)
        #expect(early.macsPerToken < full.macsPerToken)
        #expect(early.logprobs != full.logprobs)
        let int8 = Session(model: model, capacity: stream.longestSegment, kvCache: KVCacheOptions(dtype: .int8))
        let q = Ladder.measure(model, stream: stream, options: LadderRunOptions(), session: int8, warmup: 0)
        #expect(q.kvCacheBytes < full.kvCacheBytes / 2)
        #expect(abs(q.avgLogprob - full.avgLogprob) < 0.01)
        let windowed = Session(model: model, kvCache: KVCacheOptions(dtype: .float32, window: 8, sinks: 2))
        let w = Ladder.measure(model, stream: stream, options: LadderRunOptions(), session: windowed, warmup: 0)
        #expect(w.kvCacheBytes == 2 * weights.config.numHiddenLayers * weights.config.kvDim * 8 * 4)
        #expect(w.scored == full.scored && w.avgLogprob.isFinite)
    }

    @Test func textStreamScoresEveryNextTokenInContexts() {
        let s = LadderStream(text: [5, 6, 7, 8, 9], context: 2)
        #expect(s.segments == [0..<2, 2..<4, 4..<5])
        #expect(s.targets == [6, 7, 8, 9, -1])
        #expect(s.longestSegment == 2 && s.scoredCount == 4)
        let (lp, h) = [Float](repeating: 0, count: 4).withUnsafeBufferPointer { Ladder.score($0, target: 1) }
        #expect(abs(lp + log(4.0)) < 1e-12 && abs(h - log(4.0)) < 1e-12)
        let (lp2, h2) = [Float]([10, 0, 0, 0]).withUnsafeBufferPointer { Ladder.score($0, target: 0) }
        #expect(lp2 > -1e-3 && h2 < 0.01)
    }
}

/// `mgpt bench ladder --runs N`: each run on its own fixed slice, cells as mean ± half-range.
@Suite struct LadderRunsTests {
    @Test func spreadIsMeanAndHalfRangeFormattedWithTheSameDigits() {
        let s = LadderSpread([-0.125, -0.135, -0.130])
        #expect(abs(s.mean + 0.13) < 1e-12 && abs(s.halfRange - 0.005) < 1e-12 && s.count == 3 && s.varies)
        #expect(s.formatted(4) == "-0.1300 ± 0.0050")
        #expect(LadderSpread([10, 14]).formatted(1) == "12.0 ± 2.0")
        // One run: one number, as a single-run ladder printed it.
        #expect(LadderSpread([2.5]).formatted(2) == "2.50")
        // Counted figures the same in every run print one number unless asked for the ±.
        #expect(LadderSpread([21, 21, 21]).formatted(1, always: false) == "21.0")
        #expect(LadderSpread([21, 21, 21]).formatted(1) == "21.0 ± 0.0")
        #expect(LadderSpread([20, 22, 21]).formatted(1, always: false) == "21.0 ± 1.0")
    }

    @Test func runsReadDifferentSlicesDeterministically() {
        // Run 0 is the corpus start; runs ≥ 1 draw their start from RNG(seed: r), the same every time.
        #expect(LadderStream.sliceStart(run: 0, total: 10_000, length: 512) == 0)
        let starts = (0..<4).map { LadderStream.sliceStart(run: $0, total: 10_000, length: 512) }
        #expect(starts == (0..<4).map { LadderStream.sliceStart(run: $0, total: 10_000, length: 512) })
        #expect(Set(starts).count == 4, "\(starts)")
        #expect(starts.allSatisfy { $0 >= 0 && $0 <= 10_000 - 512 })
        var rng = RNG(seed: 1)
        #expect(starts[1] == Int(rng.next() % UInt64(10_000 - 512 + 1)))
        // A corpus no longer than the slice: every run reads it all.
        #expect(LadderStream.sliceStart(run: 2, total: 300, length: 512) == 0)
        // Context starts: the slice moves back to the nearest one at or before the draw.
        let ctx = Array(stride(from: 0, to: 10_000, by: 100))
        for r in 1..<4 {
            let o = LadderStream.sliceStart(run: r, total: 10_000, length: 512, contextStarts: ctx)
            #expect(o == starts[r] / 100 * 100)
        }
    }

    @Test func slicedStreamsScoreOnlyInsideTheirContextsAndDifferAcrossRuns() {
        // A corpus of 3 contexts [0, 5), [5, 9), [9, 14); every token predicts the next (−1 at the end).
        let tokens = Array(0..<14)
        let targets = tokens.map { $0 + 1 < 14 ? $0 + 1 : -1 }
        let s = LadderStream(slicing: tokens, targets: targets, contextStarts: [0, 5, 9], offset: 5, length: 7)
        #expect(s.tokens == [5, 6, 7, 8, 9, 10, 11])
        #expect(s.segments == [0..<4, 4..<7])
        #expect(s.targets == [6, 7, 8, -1, 10, 11, -1])  // context ends and the slice end predict nothing
        // Offset 0 is the stream a single-run ladder scored: the first `length` tokens.
        let head = LadderStream(slicing: tokens, targets: targets, contextStarts: [0, 5, 9], offset: 0, length: 7)
        #expect(head.tokens == Array(0..<7) && head.segments == [0..<5, 5..<7] && head.targets == [1, 2, 3, 4, -1, 6, -1])

        // Two runs of a small model on their slices of one text corpus: different tokens, different
        // quality; the same run twice: bit-identical quality.
        let (_, model) = smallModel()
        var rng = RNG(seed: 12)
        let corpus = (0..<400).map { _ in Int(rng.next() % 64) }
        func run(_ r: Int) -> LadderSummary {
            let o = LadderStream.sliceStart(run: r, total: corpus.count, length: 40)
            let stream = LadderStream(text: Array(corpus[o..<(o + 40)]), context: 16)
            return LadderSummary([Ladder.measure(model, stream: stream, options: LadderRunOptions(), warmup: 0)])
        }
        let a = run(1), b = run(2), a2 = run(1)
        #expect(a.runs[0].logprobs != b.runs[0].logprobs)
        #expect(a.runs[0].logprobs == a2.runs[0].logprobs)
        let both = LadderSummary(a.runs + b.runs)
        #expect(both.runs.count == 2 && both.scored == a.scored + b.scored && both.avgLogprob.varies)
        #expect(abs(both.avgLogprob.mean - (a.avgLogprob.mean + b.avgLogprob.mean) / 2) < 1e-12)
        #expect(abs(both.avgLogprob.halfRange - abs(a.avgLogprob.mean - b.avgLogprob.mean) / 2) < 1e-12)
        #expect(!both.matmulsPerToken.varies && both.modelBytes == a.modelBytes)  // counted: the same in both runs
    }
}

/// `mgpt attention` reads layer l's probabilities by stepping with `.after(l + 1)`, then rewinding
/// and stepping fully. Check that against an independent route: the model cut to l + 1 layers,
/// whose LAST layer is layer l.
@Test func attentionOfAnInnerLayerViaExitAndRewindEqualsTheTruncatedModel() throws {
    let (weights, model) = smallModel(seed: 5)
    var cut = weights
    cut.layers = Array(weights.layers.prefix(1))
    cut.config.numHiddenLayers = 1
    let full = Session(model: model, capacity: 12), short = Session(model: Transformer(weights: cut), capacity: 12)
    let H = weights.config.numAttentionHeads
    var rng = RNG(seed: 8)
    var maxDiff: Float = 0
    for t in 0..<12 {
        let id = Int(rng.next() % 64)
        full.step(id, exit: .after(1))
        let probe = (0..<H).map { Array(full.attention(head: $0)) }
        full.rewind(to: t)
        full.step(id)
        short.step(id)
        for h in 0..<H {
            let ref = Array(short.attention(head: h))
            #expect(probe[h].count == t + 1 && ref.count == t + 1)
            for (a, b) in zip(probe[h], ref) { maxDiff = max(maxDiff, abs(a - b)) }
        }
    }
    #expect(maxDiff <= 1e-6, "max |Δp| \(maxDiff)")
    // The rewound-and-restepped session still equals a plain full run.
    let plain = Session(model: model, capacity: 12)
    rng = RNG(seed: 8)
    for _ in 0..<12 { plain.step(Int(rng.next() % 64)) }
    #expect(Array(plain.logits) == Array(full.logits))
}
