import Foundation

// The measured optimization ladder (`mgpt bench ladder`, docs/ladder.md): one row per phase, each a
// model folder plus run switches, all scored on the SAME token stream in one process:
//
//   for each segment of the stream (a context: reset at its start):
//     for each token t:  logits = model(tokens[seg.start ... t])      (kv_cache false: phase 1,
//                                                                       the whole prefix again)
//                        or session.step(tokens[t])                    (a KV cache: phase 3 on)
//                        score ln p(target[t]) and H(p) where target[t] ≥ 0
//
// The engine side (this file) owns the manifest format and the measurement; the CLI loads folders,
// tokenizes the corpus into a `LadderStream` and prints.

/// How one ladder row runs its model: the run-time switches of the ladder.
public struct LadderRunOptions: Sendable, Equatable {
    /// false: phase 1–2, recompute the whole prefix every token with `Transformer.forward`;
    /// true: a `Session` with a KV cache.
    public var kvCache: Bool = true
    /// Layers to run per token (early exit, EarlyExit.swift). Needs `kvCache`.
    public var exit: ExitRule = .full

    /// Default switches: a session with an FP32 cache, every layer.
    public init() {}
}

/// A token stream to score: the same for every row of a ladder.
public struct LadderStream: Sendable, Equatable {
    /// Token ids fed to the model, in order.
    public var tokens: [Int]
    /// `targets[i]`: the token to predict after reading `tokens[i]`, or −1 when not scored.
    public var targets: [Int]
    /// Contexts: the model is reset at each segment's start (ascending, covering `tokens`).
    public var segments: [Range<Int>]

    /// A stream; `targets.count` must equal `tokens.count` and the segments must tile the tokens.
    public init(tokens: [Int], targets: [Int], segments: [Range<Int>]) {
        precondition(tokens.count == targets.count, "targets (\(targets.count)) must match tokens (\(tokens.count))")
        precondition(segments.first?.lowerBound ?? 0 == 0 && segments.last?.upperBound ?? 0 == tokens.count
                     && zip(segments, segments.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound },
                     "segments must tile 0..<\(tokens.count)")
        self.tokens = tokens; self.targets = targets; self.segments = segments
    }

    /// Plain next-token prediction over `tokens` cut into contexts of `context` tokens: every token
    /// but the first is a target (as `mgpt eval`'s non-overlapping windows score them).
    public init(text tokens: [Int], context: Int) {
        precondition(context > 0, "context must be > 0")
        let targets = tokens.indices.map { $0 + 1 < tokens.count ? tokens[$0 + 1] : -1 }
        let segments = stride(from: 0, to: tokens.count, by: context).map { $0..<min($0 + context, tokens.count) }
        self.init(tokens: tokens, targets: targets, segments: segments)
    }

    /// Longest segment: the KV capacity a row needs without a window.
    public var longestSegment: Int { segments.map(\.count).max() ?? 0 }
    /// Positions that are scored.
    public var scoredCount: Int { targets.filter { $0 >= 0 }.count }
}

// MARK: - Runs: one slice of the corpus per run (`mgpt bench ladder --runs N`)

extension LadderStream {
    /// Start (token index into the whole corpus) of run `run`'s slice of `length` tokens, in a corpus
    /// of `total` tokens: run 0 reads the corpus from its first token (the stream a single-run ladder
    /// always scored); run r ≥ 1 draws its start uniformly from 0…total − length with
    /// `RNG(seed: r)` (one draw) and, when the corpus has context starts (`contextStarts`, ascending:
    /// a sim corpus's segments), moves it back to the nearest one at or before it, so every slice
    /// begins at a context. The same run of the same corpus always reads the same slice.
    public static func sliceStart(run: Int, total: Int, length: Int, contextStarts: [Int] = []) -> Int {
        precondition(run >= 0 && length >= 1, "run must be ≥ 0 and length ≥ 1")
        guard run > 0, total > length else { return 0 }
        var rng = RNG(seed: UInt64(run))
        let o = Int(rng.next() % UInt64(total - length + 1))
        guard !contextStarts.isEmpty else { return o }
        // Last context start ≤ o (binary search; starts are ascending).
        var lo = 0, hi = contextStarts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if contextStarts[mid] <= o { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? 0 : contextStarts[lo - 1]
    }

    /// Tokens `offset ..< offset + length` of a corpus (clipped to its end) whose contexts begin at
    /// `contextStarts` (ascending corpus indices; the slice's first token always begins one) and
    /// whose `targets[i]` is the token to predict after `tokens[i]` (−1: not scored). A context's
    /// last token and the slice's last token predict nothing: the next token lies in another context.
    public init(slicing tokens: [Int], targets: [Int], contextStarts: [Int], offset: Int, length: Int) {
        precondition(tokens.count == targets.count && offset >= 0 && offset < tokens.count && length >= 1)
        let end = min(offset + length, tokens.count)
        let cuts = [0] + contextStarts.filter { $0 > offset && $0 < end }.map { $0 - offset } + [end - offset]
        let segs = zip(cuts, cuts.dropFirst()).map { $0..<$1 }.filter { !$0.isEmpty }
        var t = Array(targets[offset..<end])
        for seg in segs { t[seg.upperBound - 1] = -1 }
        self.init(tokens: Array(tokens[offset..<end]), targets: t, segments: segs)
    }
}

/// One figure over the runs of a ladder row: the mean and the half-range (max − min) / 2.
public struct LadderSpread: Sendable, Equatable {
    /// Mean over the runs.
    public var mean: Double
    /// Smallest and largest run.
    public var min: Double, max: Double
    /// Runs.
    public var count: Int

    /// The spread of `values` (must not be empty).
    public init(_ values: [Double]) {
        precondition(!values.isEmpty, "no runs")
        mean = values.reduce(0, +) / Double(values.count)
        min = values.min()!; max = values.max()!
        count = values.count
    }

    /// Half of max − min: the ± of the tables.
    public var halfRange: Double { (max - min) / 2 }
    /// Whether the runs differ.
    public var varies: Bool { max != min }

    /// "mean ± half-range" with `decimals` digits after the point for both; one number for a single
    /// run, and — unless `always` — when every run gave the same value (counted quantities).
    public func formatted(_ decimals: Int, always: Bool = true) -> String {
        let m = String(format: "%.\(decimals)f", mean)
        guard count > 1, always || varies else { return m }
        return m + " ± " + String(format: "%.\(decimals)f", halfRange)
    }
}

/// A ladder row over its runs (one `LadderMetrics` per run, each on its own slice).
public struct LadderSummary: Sendable {
    /// The runs, in order.
    public var runs: [LadderMetrics]
    /// Quality: mean ln p(target) and mean entropy per run (vary with the slice).
    public var avgLogprob, avgEntropy: LadderSpread
    /// Latency per run: wall median, wall p99, CPU median (vary with the run).
    public var latencyP50, latencyP99, cpuP50: LadderSpread
    /// Counted per token (vary only where the slice changes positions or exits).
    public var matmulsPerToken, macsPerToken, weightBytesReadPerToken, meanLayers, kvCacheBytes: LadderSpread

    /// Summarises `runs` (must not be empty).
    public init(_ runs: [LadderMetrics]) {
        precondition(!runs.isEmpty, "no runs")
        self.runs = runs
        func s(_ f: (LadderMetrics) -> Double) -> LadderSpread { LadderSpread(runs.map(f)) }
        avgLogprob = s(\.avgLogprob); avgEntropy = s(\.avgEntropy)
        latencyP50 = s(\.latency.p50); latencyP99 = s(\.latency.p99); cpuP50 = s(\.cpu.p50)
        matmulsPerToken = s(\.matmulsPerToken); macsPerToken = s(\.macsPerToken)
        weightBytesReadPerToken = s(\.weightBytesReadPerToken); meanLayers = s(\.meanLayers)
        kvCacheBytes = s { Double($0.kvCacheBytes) }
    }

    /// Stored bytes (the same in every run).
    public var modelBytes: Int { runs[0].modelBytes }
    /// Packed weight bytes (the same in every run).
    public var weightBytes: Int { runs[0].weightBytes }
    /// Scored positions and decoded tokens, summed over the runs.
    public var scored: Int { runs.map(\.scored).reduce(0, +) }
    public var tokens: Int { runs.map(\.tokens).reduce(0, +) }
}

/// What one ladder row measured.
public struct LadderMetrics: Sendable {
    /// Mean ln p(target) over the scored positions (nats, ≤ 0).
    public var avgLogprob: Double
    /// Mean entropy of the predicted distribution at the scored positions (nats).
    public var avgEntropy: Double
    /// Scored positions.
    public var scored: Int
    /// Tokens decoded in the timed pass.
    public var tokens: Int
    /// Wall-clock µs per decoded token in the timed pass (for phase 1: one whole-prefix forward).
    public var latency: LatencyStats
    /// CPU µs this thread spent per decoded token (CLOCK_THREAD_CPUTIME_ID): on a shared machine
    /// wall-clock percentiles include time spent descheduled, CPU time does not.
    public var cpu: LatencyStats
    /// Matrix products per decoded token (OpCounter, timed pass).
    public var matmulsPerToken: Double
    /// Multiply–adds per decoded token (projections and attention).
    public var macsPerToken: Double
    /// Weight bytes streamed per decoded token (OpCounter).
    public var weightBytesReadPerToken: Double
    /// Bytes of weights the decode step reads once (`Transformer.weightBytes`).
    public var weightBytes: Int
    /// Bytes of the model's parameters as stored (INT8 + scales or FP32; the embedding once when tied).
    public var modelBytes: Int
    /// Bytes the KV cache holds at the end (0 without a cache).
    public var kvCacheBytes: Int
    /// Mean layers run fully per token (early exit; L otherwise).
    public var meanLayers: Double
    /// Per scored position, ln p(target): what tests compare between rows.
    public var logprobs: [Double]
}

/// The ladder measurement.
public enum Ladder {
    /// ln softmax(logits)[target] and the entropy of softmax(logits), in Double.
    public static func score(_ logits: UnsafeBufferPointer<Float>, target: Int) -> (logprob: Double, entropy: Double) {
        var m = -Double.infinity
        for v in logits { m = max(m, Double(v)) }
        var z = 0.0, ez = 0.0
        for v in logits { let a = Double(v) - m; let e = exp(a); z += e; ez += e * a }
        let logZ = log(z)
        return (Double(logits[target]) - m - logZ, logZ - ez / z)
    }

    /// Stored parameter bytes of the model a `Transformer` packed: what it reads per token, minus the
    /// one embedding row, plus the embedding table when the output head is a separate matrix.
    public static func modelBytes(_ model: Transformer, untied: Bool) -> Int {
        let c = model.config
        return model.weightBytes - 4 * c.hiddenSize + (untied ? 4 * c.vocabSize * c.hiddenSize : 0)
    }

    /// Scores `stream` with `model`: through `session` (a KV cache; its capacity must hold the longest
    /// segment unless it slides a window) when `options.kvCache`, else by phase 1's whole-prefix
    /// forward. Untimed warm-up over the first `warmup` tokens of the first segment, then one timed
    /// pass over the whole stream. `untied` only changes `modelBytes` (the packed head is the same).
    public static func measure(_ model: Transformer, stream: LadderStream, options: LadderRunOptions,
                               session given: Session? = nil, untied: Bool = false, warmup: Int = 32) -> LadderMetrics {
        let c = model.config
        let V = c.vocabSize
        var samples: [Double] = [], cpuSamples: [Double] = []
        samples.reserveCapacity(stream.tokens.count)
        cpuSamples.reserveCapacity(stream.tokens.count)
        var logprobs: [Double] = []
        var entropySum = 0.0
        var counter = OpCounter()
        var layersRun = 0
        var kvBytes = 0
        let session: Session? = options.kvCache ? (given ?? Session(model: model, capacity: max(stream.longestSegment, 1))) : nil

        func pass(timed: Bool, tokenLimit: Int) {
            for seg in stream.segments {
                session?.reset()
                for i in seg where i - seg.lowerBound < tokenLimit {
                    if let s = session {
                        s.counter = OpCounter()
                        let c0 = threadCPUNanos(), t0 = monotonicNanos()
                        let logits = s.step(stream.tokens[i], exit: options.exit)
                        let dt = monotonicNanos() - t0, dc = threadCPUNanos() - c0
                        if timed {
                            samples.append(Double(dt) / 1000)
                            cpuSamples.append(Double(dc) / 1000)
                            counter.matmuls += s.counter.matmuls; counter.macs += s.counter.macs
                            counter.weightBytes += s.counter.weightBytes
                            layersRun += s.lastExitLayer
                            let target = stream.targets[i]
                            if target >= 0 {
                                let (lp, h) = score(logits, target: target)
                                logprobs.append(lp); entropySum += h
                            }
                        }
                    } else {
                        var local = OpCounter()
                        let prefix = Array(stream.tokens[seg.lowerBound...i])
                        let c0 = threadCPUNanos(), t0 = monotonicNanos()
                        let all = model.forward(tokens: prefix, counter: &local)
                        let dt = monotonicNanos() - t0, dc = threadCPUNanos() - c0
                        if timed {
                            samples.append(Double(dt) / 1000)
                            cpuSamples.append(Double(dc) / 1000)
                            counter.matmuls += local.matmuls; counter.macs += local.macs
                            counter.weightBytes += local.weightBytes
                            layersRun += c.numHiddenLayers
                            let target = stream.targets[i]
                            if target >= 0 {
                                let (lp, h) = all.withUnsafeBufferPointer {
                                    score(UnsafeBufferPointer(rebasing: $0[((prefix.count - 1) * V)..<(prefix.count * V)]), target: target)
                                }
                                logprobs.append(lp); entropySum += h
                            }
                        }
                    }
                }
                if !timed { break }  // warm-up: the first segment only
            }
        }
        if warmup > 0 { pass(timed: false, tokenLimit: warmup) }
        pass(timed: true, tokenLimit: Int.max)
        kvBytes = session?.kvCacheBytes ?? 0
        let n = Double(max(samples.count, 1))
        let k = Double(max(logprobs.count, 1))
        return LadderMetrics(avgLogprob: logprobs.reduce(0, +) / k, avgEntropy: entropySum / k, scored: logprobs.count,
                             tokens: samples.count, latency: LatencyStats(samples.isEmpty ? [0] : samples),
                             cpu: LatencyStats(cpuSamples.isEmpty ? [0] : cpuSamples),
                             matmulsPerToken: Double(counter.matmuls) / n, macsPerToken: Double(counter.macs) / n,
                             weightBytesReadPerToken: Double(counter.weightBytes) / n,
                             weightBytes: model.weightBytes, modelBytes: modelBytes(model, untied: untied),
                             kvCacheBytes: kvBytes, meanLayers: Double(layersRun) / n, logprobs: logprobs)
    }

    /// Figures of a shape computed from its config alone (rows "shape fixed at training"): parameter
    /// bytes in FP32, matmuls and mean MACs per token over positions 0..<`positions`, and the bytes of
    /// an FP32 KV cache of `positions` positions.
    public static func computed(_ c: ModelConfig, positions: Int) -> (modelBytes: Int, matmulsPerToken: Int, macsPerToken: Double, kvCacheBytes: Int) {
        let (d, F, V, L) = (c.hiddenSize, c.intermediateSize, c.vocabSize, c.numHiddenLayers)
        let ffnParams = c.ffnRank > 0 ? 3 * c.ffnRank * (d + F) : 3 * d * F
        let params = V * d * (c.tieWordEmbeddings ? 1 : 2) + d + L * (2 * d + c.qkvDim * d + d * c.qDim + ffnParams)
        let matmuls = L * ((c.fusedQKV ? 1 : 3) + 1 + (c.ffnRank > 0 ? 6 : 3)) + 1
        let n = max(positions, 1)
        let macs = Double((0..<n).reduce(0) { $0 + c.macsPerToken(position: $1) }) / Double(n)
        return (4 * params, matmuls, macs, 2 * L * c.kvDim * n * 4)
    }
}

// MARK: - Manifest

/// A ladder manifest (JSON; docs/ladder.md "Manifest"): a title and one row per phase.
///
/// ```json
/// {"title": "…", "tokens": 512,
///  "rows": [{"phase": 1, "name": "FP32, no KV cache", "model": "../../out/shakespeare",
///            "kv_cache": false, "untied_head": true},
///           {"phase": 11, "name": "GQA", "model": "…", "measured": false,
///            "shape_change": {"num_key_value_heads": 4}, "note": "shape fixed at training"}]}
/// ```
/// Model paths are relative to the manifest's folder. Unknown keys and wrong types are errors naming
/// the key path (`rows[3].kv_cache`), what was expected and what was found.
public struct LadderManifest: Sendable, Equatable {
    /// Heading of the printed table.
    public var title: String
    /// Default stream length (`--tokens` overrides).
    public var tokens: Int?
    /// The rows, in manifest order.
    public var rows: [LadderRow]

    /// Top-level keys.
    static let keys: Set<String> = ["title", "tokens", "rows", "about"]

    /// Parses manifest bytes; `base` is the folder model paths are relative to, `file` names the
    /// manifest in errors.
    public static func parse(_ data: Data, base: URL, file: String) throws -> LadderManifest {
        func fail(_ path: String, _ expected: String, _ found: String) -> LadderManifestError {
            LadderManifestError(file: file, keyPath: path, expected: expected, found: found)
        }
        let root: JSONValue
        do { root = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw fail("(root)", "valid JSON", "a parse error: \(error)")
        }
        guard case .object(let top) = root else { throw fail("(root)", "an object", root.kindDescription) }
        for k in top.keys.sorted() where !keys.contains(k) { throw fail(k, "one of \(keys.sorted())", "an unknown key") }
        var m = LadderManifest(title: "ladder", tokens: nil, rows: [])
        if let t = top["title"] { guard case .string(let s) = t else { throw fail("title", "a string", t.kindDescription) }; m.title = s }
        if let t = top["tokens"] { m.tokens = try t.integer(fail("tokens", "an integer ≥ 2", t.kindDescription), min: 2) }
        guard let rowsValue = top["rows"] else { throw fail("rows", "an array of rows", "nothing (missing key)") }
        guard case .array(let rows) = rowsValue, !rows.isEmpty else { throw fail("rows", "a non-empty array of rows", rowsValue.kindDescription) }
        for (i, r) in rows.enumerated() {
            m.rows.append(try LadderRow(parsing: r, path: "rows[\(i)]", base: base, fail: fail))
        }
        return m
    }
}

/// One row of a ladder manifest.
public struct LadderRow: Sendable, Equatable {
    /// Phase number of the ladder (1…15); several rows may share one.
    public var phase: Int
    /// Short label ("INT8 attention").
    public var name: String
    /// Absolute model folder (nil only for a note-only row).
    public var model: String?
    /// false: listed but not measured (a training-time choice); `shapeChange` may give computed figures.
    public var measured = true
    /// Run switches (KV cache on/off, early exit).
    public var options = LadderRunOptions()
    /// Give the model an untied copy of its output head at load (`lm_head` = E): phases 1–3.
    public var untiedHead = false
    /// Overrides the model's `early_exit_layers` at load (for `exit: "confident:h"`).
    public var earlyExitLayers: [Int]? = nil
    /// KV cache element type: "float32", "float16" or "int8" (nil = the engine's default).
    public var kvDType: String? = nil
    /// Sliding-window length of the KV cache in positions (nil = the cache holds the segment).
    public var kvWindow: Int? = nil
    /// Attention-sink positions the window keeps.
    public var kvSinks: Int? = nil
    /// Config changes whose figures are computed from the shape alone (not-measured rows).
    public var shapeChange = LadderShapeChange()
    /// Free text for the notes column.
    public var note = ""
    /// A missing model folder skips the row ("not measured: no folder") instead of failing: for
    /// folders other commands make (a QAT or LoRA run).
    public var optional = false

    static let keys: Set<String> = ["phase", "name", "model", "measured", "kv_cache", "exit", "untied_head", "early_exit_layers",
                                    "kv_dtype", "kv_window", "kv_sinks", "shape_change", "note", "optional"]

    init(parsing value: JSONValue, path: String, base: URL,
         fail: (String, String, String) -> LadderManifestError) throws {
        guard case .object(let o) = value else { throw fail(path, "an object", value.kindDescription) }
        for k in o.keys.sorted() where !Self.keys.contains(k) { throw fail("\(path).\(k)", "one of \(Self.keys.sorted())", "an unknown key") }
        func string(_ k: String) throws -> String? {
            guard let v = o[k] else { return nil }
            guard case .string(let s) = v else { throw fail("\(path).\(k)", "a string", v.kindDescription) }
            return s
        }
        func bool(_ k: String) throws -> Bool? {
            guard let v = o[k] else { return nil }
            guard case .bool(let b) = v else { throw fail("\(path).\(k)", "true or false", v.kindDescription) }
            return b
        }
        func int(_ k: String, min: Int, _ expected: String) throws -> Int? {
            guard let v = o[k] else { return nil }
            return try v.integer(fail("\(path).\(k)", expected, v.kindDescription), min: min)
        }
        guard let p = try int("phase", min: 1, "an integer ≥ 1") else { throw fail("\(path).phase", "an integer ≥ 1", "nothing (missing key)") }
        phase = p
        guard let n = try string("name") else { throw fail("\(path).name", "a string", "nothing (missing key)") }
        name = n
        measured = try bool("measured") ?? true
        note = try string("note") ?? ""
        optional = try bool("optional") ?? false
        if let m = try string("model") {
            model = (m.hasPrefix("/") ? URL(fileURLWithPath: m) : base.appendingPathComponent(m)).standardizedFileURL.path
        }
        if measured && model == nil { throw fail("\(path).model", "a model folder (relative to the manifest)", "nothing (missing key)") }
        options.kvCache = try bool("kv_cache") ?? true
        if let e = try string("exit") {
            guard let rule = ExitRule(parsing: e) else { throw fail("\(path).exit", "\"full\", \"after:k\" or \"confident:h\"", "\"\(e)\"") }
            options.exit = rule
        }
        untiedHead = try bool("untied_head") ?? false
        if let v = o["early_exit_layers"] {
            guard case .array(let a) = v else { throw fail("\(path).early_exit_layers", "an array of integers", v.kindDescription) }
            earlyExitLayers = try a.enumerated().map { j, x in try x.integer(fail("\(path).early_exit_layers[\(j)]", "an integer ≥ 1", x.kindDescription), min: 1) }
        }
        kvDType = try string("kv_dtype")
        if let t = kvDType, !["float32", "float16", "int8"].contains(t) {
            throw fail("\(path).kv_dtype", "\"float32\", \"float16\" or \"int8\"", "\"\(t)\"")
        }
        kvWindow = try int("kv_window", min: 2, "an integer ≥ 2")
        kvSinks = try int("kv_sinks", min: 0, "an integer ≥ 0")
        if let s = kvSinks {
            guard let w = kvWindow else { throw fail("\(path).kv_sinks", "kv_window set too (sinks only matter when the window rolls)", "\(s) without kv_window") }
            if s >= w { throw fail("\(path).kv_sinks", "fewer than kv_window (\(w))", "\(s)") }
        }
        if !options.kvCache {
            for k in ["exit", "kv_dtype", "kv_window", "kv_sinks"] where o[k] != nil {
                throw fail("\(path).\(k)", "no \(k) with \"kv_cache\": false (phase 1 has no cache and runs every layer)", "a value")
            }
        }
        if let v = o["shape_change"] {
            guard case .object(let sc) = v else { throw fail("\(path).shape_change", "an object", v.kindDescription) }
            shapeChange = try LadderShapeChange(parsing: sc, path: "\(path).shape_change", fail: fail)
        }
    }
}

/// Config changes of a row that is not measured: what a model trained with them would cost.
public struct LadderShapeChange: Sendable, Equatable {
    /// `num_key_value_heads` (e.g. = num_attention_heads: MHA instead of GQA).
    public var numKeyValueHeads: Int? = nil
    /// `intermediate_size` (e.g. 4·d instead of 2.5·d).
    public var intermediateSize: Int? = nil
    /// `ffn_rank`.
    public var ffnRank: Int? = nil
    /// `fused_qkv`: false counts three projections instead of one.
    public var fusedQKV: Bool? = nil
    /// `tie_word_embeddings`.
    public var tieWordEmbeddings: Bool? = nil

    /// No change.
    public init() {}

    /// Whether any key is set.
    public var isEmpty: Bool { self == LadderShapeChange() }

    /// `config` with the changes applied (validated).
    public func applied(to config: ModelConfig) throws -> ModelConfig {
        var c = config
        if let v = numKeyValueHeads { c.numKeyValueHeads = v }
        if let v = intermediateSize { c.intermediateSize = v }
        if let v = ffnRank { c.ffnRank = v }
        if let v = fusedQKV { c.fusedQKV = v }
        if let v = tieWordEmbeddings { c.tieWordEmbeddings = v }
        try c.validate()
        return c
    }

    init(parsing o: [String: JSONValue], path: String, fail: (String, String, String) -> LadderManifestError) throws {
        let keys = ["num_key_value_heads", "intermediate_size", "ffn_rank", "fused_qkv", "tie_word_embeddings"]
        for k in o.keys.sorted() where !keys.contains(k) { throw fail("\(path).\(k)", "one of \(keys)", "an unknown key") }
        func int(_ k: String, min: Int) throws -> Int? { try o[k].map { try $0.integer(fail("\(path).\(k)", "an integer ≥ \(min)", $0.kindDescription), min: min) } }
        func bool(_ k: String) throws -> Bool? {
            guard let v = o[k] else { return nil }
            guard case .bool(let b) = v else { throw fail("\(path).\(k)", "true or false", v.kindDescription) }
            return b
        }
        numKeyValueHeads = try int("num_key_value_heads", min: 1)
        intermediateSize = try int("intermediate_size", min: 1)
        ffnRank = try int("ffn_rank", min: 0)
        fusedQKV = try bool("fused_qkv")
        tieWordEmbeddings = try bool("tie_word_embeddings")
    }
}

/// A manifest error: "<file>: <key path>: expected <…>, found <…>".
public struct LadderManifestError: Error, CustomStringConvertible, Equatable {
    /// The manifest file.
    public var file: String
    /// Where in it (`rows[2].kv_cache`).
    public var keyPath: String
    /// What would have been accepted.
    public var expected: String
    /// What was there.
    public var found: String
    /// The one-line message.
    public var description: String { "\(file): \(keyPath): expected \(expected), found \(found)" }
}

extension JSONValue {
    /// The value as an integer ≥ `min`, else `error`.
    func integer(_ error: @autoclosure () -> LadderManifestError, min: Int) throws -> Int {
        guard case .number(let n) = self, n == n.rounded(), abs(n) < 1e15, Int(n) >= min else { throw error() }
        return Int(n)
    }
}
