import ArgumentParser
import Foundation
import MiniGPT
import MiniGPTTrain

/// `mgpt bench ladder`: the measured optimization ladder. Every row of a manifest (a model folder +
/// run switches, Ladder.swift) is scored on the same token stream in one process, side by side:
/// log-prob, entropy, decode latency, weight / model / KV bytes, matmuls and MACs per token.
struct BenchLadder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ladder",
        abstract: "Measure every phase of a ladder manifest on one token stream, side by side.",
        discussion: """
            Manifest format and the phases: docs/ladder.md. Last line: rows=… measured=… tokens=… scored=… \
            first_logprob=… last_logprob=… first_median_us=… last_median_us=… speedup=… first_cpu_us=… last_cpu_us=… cpu_speedup=… first_model_bytes=… \
            last_model_bytes=… model_bytes_ratio=… runs=… first_logprob_spread=… last_logprob_spread=… first_cpu_us_spread=… \
            last_cpu_us_spread=… kernels=… (tokens, scored: run 0's slice; the other figures: means over the runs; spreads: half-ranges)
            """)

    @Option(help: "Ladder manifest (JSON; model paths relative to it).") var manifest: String
    @Option(help: "Corpus: a text file, or a sim corpus (.jsonl) tokenized as the trainer does.") var corpus: String
    @Option(help: "Tokens of the stream (default: the manifest's tokens, else 512).") var tokens: Int?
    @Option(help: "Context length for a text corpus (default: the first model's trained sequence length).") var context: Int?
    @Option(help: "Untimed warm-up tokens per row.") var warmup = 32
    @Option(help: "Runs: run r scores every row on its own slice of the corpus (run 0 its start, run r ≥ 1 a start drawn with RNG seed r) and re-times it; cells print mean ± half-range.")
    var runs = 1
    @Option(help: "Write the table as markdown to this file.") var markdown: String?
    @Option(help: "Write the table as CSV to this file.") var csv: String?

    func validate() throws {
        if let tokens, tokens < 2 { throw ValidationError("--tokens must be ≥ 2, found \(tokens).") }
        if let context, context < 1 { throw ValidationError("--context must be ≥ 1, found \(context).") }
        if warmup < 0 { throw ValidationError("--warmup must be ≥ 0, found \(warmup).") }
        if runs < 1 { throw ValidationError("--runs must be ≥ 1, found \(runs).") }
    }

    /// One printed row: measured, computed from the shape, or a note.
    struct Result {
        var row: LadderRow
        var summary: LadderSummary?
        var computed: (modelBytes: Int, matmulsPerToken: Int, macsPerToken: Double, kvCacheBytes: Int)?
        var status: String { summary != nil ? "measured" : computed != nil ? "computed" : "not measured" }
    }

    func run() throws {
        let url = URL(fileURLWithPath: manifest)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw failure("\(manifest): cannot read the manifest", code: Exit.noInput)
        }
        let m: LadderManifest
        do { m = try LadderManifest.parse(data, base: url.deletingLastPathComponent(), file: manifest) } catch {
            throw failure("\(error)", code: Exit.dataError)
        }
        let N = tokens ?? m.tokens ?? 512
        guard let first = m.rows.first(where: { $0.measured }), let firstModel = first.model else {
            throw failure("\(manifest): rows: no measured row (every row has \"measured\": false)", code: Exit.dataError)
        }
        _ = try loadWeights(firstModel)  // "not a model folder" before "no tokenizer"
        let tokenizerFile = URL(fileURLWithPath: firstModel).appendingPathComponent(ModelFolder.tokenizerFile)
        let tokenizerBytes = FileManager.default.contents(atPath: tokenizerFile.path)
        let tokenizer = try loadTokenizer(tokenizerFile.path)
        let source = try Self.source(corpus: corpus, tokenizer: tokenizer, tokens: N, context: context, model: firstModel, whole: runs > 1)
        let slices = (0..<runs).map { source.slice(run: $0, tokens: N) }
        for (r, sl) in slices.enumerated() {
            let st = sl.stream
            note("run \(r): tokens \(sl.offset)..<\(sl.offset + st.tokens.count) of \(corpus) (\(Self.seedText(r))) in \(st.segments.count) contexts (longest \(st.longestSegment)), \(st.scoredCount) scored")
        }
        let longest = slices.map(\.stream.longestSegment).max()!

        // Load every row once; each run then scores every measured row on its slice (runs outer,
        // rows inner: a run's timings of all rows are taken close together).
        var results: [Result] = []
        var prepared: [(index: Int, model: Transformer, session: Session?, untied: Bool)] = []
        for (i, row) in m.rows.enumerated() {
            let rowName = "\(manifest): rows[\(i)] (phase \(row.phase) \"\(row.name)\")"
            guard row.measured else {
                var r = Result(row: row)
                if !row.shapeChange.isEmpty, let path = row.model ?? first.model {
                    let base = try loadWeights(path).config
                    do {
                        r.computed = Ladder.computed(try row.shapeChange.applied(to: base), positions: longest)
                    } catch { throw failure("\(rowName): shape_change: \(error)", code: Exit.dataError) }
                }
                results.append(r)
                continue
            }
            let path = row.model!
            if row.optional && !FileManager.default.fileExists(atPath: URL(fileURLWithPath: path).appendingPathComponent(ModelFolder.configFile).path) {
                var skipped = row
                skipped.note = "no folder \(Self.relative(path)) (optional row); " + row.note
                results.append(Result(row: skipped))
                continue
            }
            if let mine = FileManager.default.contents(atPath: URL(fileURLWithPath: path).appendingPathComponent(ModelFolder.tokenizerFile).path),
               mine != tokenizerBytes {
                throw failure("\(rowName): \(path)/tokenizer.json differs from the first row's (\(firstModel)): every row must read the same token stream",
                              code: Exit.dataError)
            }
            var weights = try loadWeights(path)
            if row.untiedHead {
                weights.lmHead = weights.embed
                weights.config.tieWordEmbeddings = false
            }
            if let e = row.earlyExitLayers {
                weights.config.earlyExitLayers = e
                do { try weights.config.validate() } catch { throw failure("\(rowName): early_exit_layers: \(error)", code: Exit.dataError) }
            }
            do { try row.options.exit.validate(for: weights.config) } catch { throw failure("\(rowName): exit: \(error)", code: Exit.dataError) }
            let model = Transformer(weights: weights)
            var session: Session? = nil
            if row.options.kvCache {
                if row.kvDType != nil || row.kvWindow != nil {
                    let opts = KVCacheOptions(dtype: KVCacheDType(rawValue: row.kvDType ?? "float32") ?? .float32,
                                              window: row.kvWindow, sinks: row.kvSinks ?? 0)
                    do { try opts.validate(maxPositions: weights.config.maxPositionEmbeddings) } catch {
                        throw failure("\(rowName): \(error)", code: Exit.dataError)
                    }
                    if row.kvWindow == nil && longest > weights.config.maxPositionEmbeddings {
                        throw failure("\(rowName): contexts of \(longest) tokens exceed max_position_embeddings \(weights.config.maxPositionEmbeddings)", code: Exit.dataError)
                    }
                    session = Session(model: model, capacity: row.kvWindow == nil ? longest : nil, kvCache: opts)
                } else {
                    session = Session(model: model, capacity: longest)
                }
            }
            guard longest <= weights.config.maxPositionEmbeddings || row.kvWindow != nil else {
                throw failure("\(rowName): contexts of \(longest) tokens exceed max_position_embeddings \(weights.config.maxPositionEmbeddings) (pass --context)", code: Exit.dataError)
            }
            prepared.append((results.count, model, session, weights.lmHead != nil))
            results.append(Result(row: row))
        }
        var perRun = [[LadderMetrics]](repeating: [], count: results.count)
        for (r, sl) in slices.enumerated() {
            for p in prepared {
                let row = results[p.index].row
                note("run \(r + 1)/\(runs): phase \(row.phase) \(row.name): measuring…")
                perRun[p.index].append(Ladder.measure(p.model, stream: sl.stream, options: row.options, session: p.session,
                                                      untied: p.untied, warmup: warmup))
            }
        }
        for p in prepared { results[p.index].summary = LadderSummary(perRun[p.index]) }

        let kernels = KernelPath.selected
        let s0 = slices[0].stream
        if runs == 1 {
            print("\(m.title): \(s0.tokens.count) tokens of \(corpus), \(s0.segments.count) contexts (longest \(s0.longestSegment)), \(s0.scoredCount) scored; one timed pass per row after \(warmup) warm-up tokens; kernels \(kernels)\n")
        } else {
            print("\(m.title): \(runs) runs, each \(N) tokens of \(corpus) from its own start (\(Self.runsText(slices))); one timed pass per row and run after \(warmup) warm-up tokens; cells: mean ± half-range over the runs; kernels \(kernels)\n")
        }
        print(table([Self.header] + results.map { Self.cells($0, markdown: false) }))
        print("\nlatency: wall-clock µs per decoded token, median and p99 (phase 1–2: one whole-prefix forward); CPU µs = median thread CPU time "
              + "(what the token cost when the machine is shared); read KB/tok = weight bytes streamed per token (OpCounter); "
              + "model KB = parameters as stored; KV KB = cache at the end. computed = from the shape alone, not measured."
              + (runs > 1 ? " a ± b = mean ± half of (max − min) over the \(runs) runs; counted figures that are the same in every run print one number." : ""))
        if let markdown { try write(Self.markdown(m.title, results, slices: slices, corpus: corpus, kernels: kernels), to: markdown) }
        if let csv { try write(Self.csv(results), to: csv) }

        let measured = results.compactMap(\.summary)
        let a = measured.first!, b = measured.last!
        let fields: [(String, String)] = [
            ("rows", "\(results.count)"), ("measured", "\(measured.count)"), ("tokens", "\(s0.tokens.count)"), ("scored", "\(s0.scoredCount)"),
            ("first_logprob", fmt(a.avgLogprob.mean, 4)), ("last_logprob", fmt(b.avgLogprob.mean, 4)),
            ("first_median_us", fmt(a.latencyP50.mean, 2)), ("last_median_us", fmt(b.latencyP50.mean, 2)),
            ("speedup", fmt(a.latencyP50.mean / b.latencyP50.mean, 2)),
            ("first_cpu_us", fmt(a.cpuP50.mean, 2)), ("last_cpu_us", fmt(b.cpuP50.mean, 2)), ("cpu_speedup", fmt(a.cpuP50.mean / b.cpuP50.mean, 2)),
            ("first_model_bytes", "\(a.modelBytes)"), ("last_model_bytes", "\(b.modelBytes)"),
            ("model_bytes_ratio", fmt(Double(a.modelBytes) / Double(b.modelBytes), 2)),
            // Appended (older parsers of the line keep working): runs, the spreads of the quality and
            // CPU figures above, and the kernel path.
            ("runs", "\(runs)"),
            ("first_logprob_spread", fmt(a.avgLogprob.halfRange, 4)), ("last_logprob_spread", fmt(b.avgLogprob.halfRange, 4)),
            ("first_cpu_us_spread", fmt(a.cpuP50.halfRange, 2)), ("last_cpu_us_spread", fmt(b.cpuP50.halfRange, 2)),
            ("kernels", kernels),
        ]
        print(fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
    }

    func write(_ text: String, to path: String) throws {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw failure("\(path): cannot write: \(error.localizedDescription)", code: 73)  // EX_CANTCREAT
        }
        note("wrote \(path)")
    }

    // MARK: The token stream

    /// The tokenized corpus the runs slice: whole token ids and targets, and where contexts may begin.
    struct Source {
        /// Token ids (a text corpus: its first tokens only when `whole` was false).
        var tokens: [Int]
        /// `targets[i]`: the token to predict after `tokens[i]`, −1 when not scored.
        var targets: [Int]
        /// Sim corpus: its segment starts (slices begin at one, contexts are the segments);
        /// nil for text (contexts of `context` tokens from the slice's start).
        var contextStarts: [Int]?
        var context: Int

        /// Run `run`'s slice of `tokens` tokens (LadderStream.sliceStart: run 0 = the corpus start).
        func slice(run: Int, tokens N: Int) -> (offset: Int, stream: LadderStream) {
            let o = LadderStream.sliceStart(run: run, total: tokens.count, length: N, contextStarts: contextStarts ?? [])
            if contextStarts != nil {
                return (o, LadderStream(slicing: tokens, targets: targets, contextStarts: contextStarts!, offset: o, length: N))
            }
            return (o, LadderStream(text: Array(tokens[o..<min(o + N, tokens.count)]), context: context))
        }
    }

    /// `corpus` tokenized: a sim corpus (.jsonl) as the trainer's `SimCorpus` makes it (contexts = its
    /// segments, only intents scored), else text in contexts of `context` tokens (default: the model's
    /// trained sequence length) with every next token scored. `whole`: tokenize all of a text corpus
    /// (the runs need slices beyond its start); else only a prefix long enough for `tokens` tokens.
    static func source(corpus: String, tokenizer: Tokenizer, tokens N: Int, context: Int?, model: String, whole: Bool) throws -> Source {
        if CorpusLoader.isSim(corpus) {
            let s: TokenStream
            do { s = try CorpusLoader.load([corpus], tokenizer: tokenizer) } catch { throw failure("\(error)", code: Exit.dataError) }
            let n = s.tokens.count
            guard n >= 2 else { throw failure("\(corpus): fewer than 2 tokens", code: Exit.dataError) }
            let ids = s.tokens.map(Int.init)
            let targets = (0..<n).map { i -> Int in
                guard i + 1 < n, s.predict?[i + 1] ?? true else { return -1 }
                return Int(s.labels?[i + 1] ?? s.tokens[i + 1])
            }
            return Source(tokens: ids, targets: targets, contextStarts: s.starts ?? [0], context: 0)
        }
        guard let data = FileManager.default.contents(atPath: corpus) else {
            throw failure("\(corpus): cannot read the corpus (missing or unreadable)", code: Exit.noInput)
        }
        // One run: encode a prefix generous enough for N tokens (BPE tokens average well under 16 bytes).
        let ids = whole ? tokenizer.encode(Array(data)) : Array(tokenizer.encode(Array(data.prefix(16 * N + 64))).prefix(N))
        guard ids.count >= 2 else { throw failure("\(corpus): fewer than 2 tokens", code: Exit.dataError) }
        var T = context
        if T == nil { T = (try? TrainingRecord.load(from: URL(fileURLWithPath: model)))??.trainSeqLen }
        return Source(tokens: ids, targets: ids.indices.map { $0 + 1 < ids.count ? ids[$0 + 1] : -1 }, contextStarts: nil, context: T ?? 128)
    }

    /// How run r chose its slice.
    static func seedText(_ r: Int) -> String { r == 0 ? "run 0: the corpus start" : "start drawn with RNG seed \(r)" }

    /// "run r starts at token 0 (r=0), 1234 (r=1), …": the slice starts.
    static func runsText(_ slices: [(offset: Int, stream: LadderStream)]) -> String {
        "run r starts at token " + slices.enumerated().map { "\($0.element.offset) (r=\($0.offset))" }.joined(separator: ", ")
            + "; run 0 = the corpus start, run r ≥ 1 = RNG(seed: r)"
    }

    // MARK: Output

    /// `path` relative to the working directory when it lies inside it.
    static func relative(_ path: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return path.hasPrefix(cwd) ? String(path.dropFirst(cwd.count)) : path
    }

    static let header = ["phase", "name", "log-prob", "entropy", "median µs", "p99 µs", "CPU µs", "read KB/tok", "model KB", "KV KB",
                         "matmuls/tok", "MACs/tok", "status", "notes"]

    static func kb(_ b: Int) -> String { fmt(Double(b) / 1024, 1) }

    static func cells(_ r: Result, markdown: Bool) -> [String] {
        let row = r.row
        var notes = row.note
        if let m = r.summary, row.options.exit != .full { notes = "mean layers \(m.meanLayers.formatted(2, always: false)); " + notes }
        if let m = r.summary {
            // Quality varies with the slice and latency with the run: always mean ± half-range (with
            // more than one run); counted figures print one number when every run agrees.
            func kbs(_ v: LadderSpread) -> String {
                var k = v
                k.mean /= 1024; k.min /= 1024; k.max /= 1024
                return k.formatted(1, always: false)
            }
            return ["\(row.phase)", row.name, m.avgLogprob.formatted(4), m.avgEntropy.formatted(4), m.latencyP50.formatted(1), m.latencyP99.formatted(1),
                    m.cpuP50.formatted(1), kbs(m.weightBytesReadPerToken), kb(m.modelBytes), kbs(m.kvCacheBytes),
                    m.matmulsPerToken.formatted(1, always: false), m.macsPerToken.formatted(0, always: false), r.status, notes]
        }
        if let c = r.computed {
            return ["\(row.phase)", row.name, "-", "-", "-", "-", "-", "-", kb(c.modelBytes), kb(c.kvCacheBytes), "\(c.matmulsPerToken)",
                    fmt(c.macsPerToken, 0), r.status, notes]
        }
        return ["\(row.phase)", row.name, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", r.status, notes]
    }

    static func markdown(_ title: String, _ results: [Result], slices: [(offset: Int, stream: LadderStream)], corpus: String, kernels: String) -> String {
        var s = "### \(title)\n\n"
        if slices.count == 1 {
            let stream = slices[0].stream
            s += "\(stream.tokens.count) tokens of `\(corpus)` in \(stream.segments.count) contexts (longest \(stream.longestSegment)), \(stream.scoredCount) scored; kernels `\(kernels)`.\n\n"
        } else {
            s += "\(slices.count) runs; run r scores every row on its own slice of `\(corpus)` (run 0: the corpus start; run r ≥ 1: "
                + "a start drawn with `RNG(seed: r)`, "
                + "moved back to a context start in a sim corpus) and re-times it. Cells: mean ± half of (max − min) over the runs; "
                + "counted figures that are the same in every run print one number. Kernels `\(kernels)`.\n\n"
            for (r, sl) in slices.enumerated() {
                let st = sl.stream
                s += "- run \(r): tokens \(sl.offset)..<\(sl.offset + st.tokens.count) in \(st.segments.count) contexts (longest \(st.longestSegment)), \(st.scoredCount) scored\n"
            }
            s += "\n"
        }
        s += "| " + header.joined(separator: " | ") + " |\n"
        s += "|" + header.map { _ in " --- " }.joined(separator: "|") + "|\n"
        for r in results {
            s += "| " + cells(r, markdown: true).map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n"
        }
        return s
    }

    /// The per-run figures with `_mean` / `_spread` (half-range) columns, appended after `note` so the
    /// earlier columns keep their names and places (the unsuffixed columns hold the means).
    static let spreadColumns = ["avg_logprob", "avg_entropy", "median_us", "p99_us", "cpu_median_us", "read_bytes_per_token",
                                "kv_cache_bytes", "matmuls_per_token", "macs_per_token", "mean_layers"]

    static func csv(_ results: [Result]) -> String {
        func q(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        let extra = ["runs"] + spreadColumns.flatMap { [$0 + "_mean", $0 + "_spread"] }
        var lines = ["phase,name,status,avg_logprob,avg_entropy,median_us,p99_us,cpu_median_us,weight_bytes,read_bytes_per_token,model_bytes,kv_cache_bytes,matmuls_per_token,macs_per_token,mean_layers,scored,tokens,note,"
                     + extra.joined(separator: ",")]
        for r in results {
            let row = r.row
            var f: [String]
            var g = Array(repeating: "", count: extra.count)
            if let m = r.summary {
                f = [fmt(m.avgLogprob.mean, 5), fmt(m.avgEntropy.mean, 5), fmt(m.latencyP50.mean, 2), fmt(m.latencyP99.mean, 2), fmt(m.cpuP50.mean, 2),
                     "\(m.weightBytes)", fmt(m.weightBytesReadPerToken.mean, 0), "\(m.modelBytes)", fmt(m.kvCacheBytes.mean, 0),
                     fmt(m.matmulsPerToken.mean, 2), fmt(m.macsPerToken.mean, 1), fmt(m.meanLayers.mean, 3), "\(m.scored)", "\(m.tokens)"]
                let spreads: [(LadderSpread, Int)] = [(m.avgLogprob, 5), (m.avgEntropy, 5), (m.latencyP50, 2), (m.latencyP99, 2), (m.cpuP50, 2),
                                                      (m.weightBytesReadPerToken, 0), (m.kvCacheBytes, 0), (m.matmulsPerToken, 2), (m.macsPerToken, 1), (m.meanLayers, 3)]
                g = ["\(m.runs.count)"] + spreads.flatMap { [fmt($0.0.mean, $0.1), fmt($0.0.halfRange, $0.1)] }
            } else if let c = r.computed {
                f = ["", "", "", "", "", "", "", "\(c.modelBytes)", "\(c.kvCacheBytes)", "\(c.matmulsPerToken)", fmt(c.macsPerToken, 1), "", "", ""]
            } else {
                f = Array(repeating: "", count: 14)
            }
            lines.append(([ "\(row.phase)", q(row.name), r.status] + f + [q(row.note)] + g).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
