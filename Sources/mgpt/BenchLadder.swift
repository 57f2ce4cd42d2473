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
            last_model_bytes=… model_bytes_ratio=…
            """)

    @Option(help: "Ladder manifest (JSON; model paths relative to it).") var manifest: String
    @Option(help: "Corpus: a text file, or a sim corpus (.jsonl) tokenized as the trainer does.") var corpus: String
    @Option(help: "Tokens of the stream (default: the manifest's tokens, else 512).") var tokens: Int?
    @Option(help: "Context length for a text corpus (default: the first model's trained sequence length).") var context: Int?
    @Option(help: "Untimed warm-up tokens per row.") var warmup = 32
    @Option(help: "Write the table as markdown to this file.") var markdown: String?
    @Option(help: "Write the table as CSV to this file.") var csv: String?

    func validate() throws {
        if let tokens, tokens < 2 { throw ValidationError("--tokens must be ≥ 2, found \(tokens).") }
        if let context, context < 1 { throw ValidationError("--context must be ≥ 1, found \(context).") }
        if warmup < 0 { throw ValidationError("--warmup must be ≥ 0, found \(warmup).") }
    }

    /// One printed row: measured, computed from the shape, or a note.
    struct Result {
        var row: LadderRow
        var metrics: LadderMetrics?
        var computed: (modelBytes: Int, matmulsPerToken: Int, macsPerToken: Double, kvCacheBytes: Int)?
        var status: String { metrics != nil ? "measured" : computed != nil ? "computed" : "not measured" }
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
        let stream = try Self.stream(corpus: corpus, tokenizer: tokenizer, tokens: N, context: context, model: firstModel)
        note("stream: \(stream.tokens.count) tokens of \(corpus) in \(stream.segments.count) contexts (longest \(stream.longestSegment)), \(stream.scoredCount) scored")

        var results: [Result] = []
        for (i, row) in m.rows.enumerated() {
            let rowName = "\(manifest): rows[\(i)] (phase \(row.phase) \"\(row.name)\")"
            guard row.measured else {
                var r = Result(row: row)
                if !row.shapeChange.isEmpty, let path = row.model ?? first.model {
                    let base = try loadWeights(path).config
                    do {
                        r.computed = Ladder.computed(try row.shapeChange.applied(to: base), positions: stream.longestSegment)
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
                    if row.kvWindow == nil && stream.longestSegment > weights.config.maxPositionEmbeddings {
                        throw failure("\(rowName): contexts of \(stream.longestSegment) tokens exceed max_position_embeddings \(weights.config.maxPositionEmbeddings)", code: Exit.dataError)
                    }
                    session = Session(model: model, capacity: row.kvWindow == nil ? stream.longestSegment : nil, kvCache: opts)
                } else {
                    session = Session(model: model, capacity: stream.longestSegment)
                }
            }
            guard stream.longestSegment <= weights.config.maxPositionEmbeddings || row.kvWindow != nil else {
                throw failure("\(rowName): contexts of \(stream.longestSegment) tokens exceed max_position_embeddings \(weights.config.maxPositionEmbeddings) (pass --context)", code: Exit.dataError)
            }
            note("phase \(row.phase) \(row.name): measuring…")
            let metrics = Ladder.measure(model, stream: stream, options: row.options, session: session, untied: weights.lmHead != nil, warmup: warmup)
            results.append(Result(row: row, metrics: metrics))
        }

        print("\(m.title): \(stream.tokens.count) tokens of \(corpus), \(stream.segments.count) contexts (longest \(stream.longestSegment)), \(stream.scoredCount) scored; one timed pass per row after \(warmup) warm-up tokens\n")
        print(table([Self.header] + results.map { Self.cells($0, markdown: false) }))
        print("\nlatency: wall-clock µs per decoded token, median and p99 (phase 1–2: one whole-prefix forward); CPU µs = median thread CPU time "
              + "(what the token cost when the machine is shared); read KB/tok = weight bytes streamed per token (OpCounter); "
              + "model KB = parameters as stored; KV KB = cache at the end. computed = from the shape alone, not measured.")
        if let markdown { try write(Self.markdown(m.title, results, stream: stream, corpus: corpus), to: markdown) }
        if let csv { try write(Self.csv(results), to: csv) }

        let measured = results.filter { $0.metrics != nil }
        let a = measured.first!.metrics!, b = measured.last!.metrics!
        let fields: [(String, String)] = [
            ("rows", "\(results.count)"), ("measured", "\(measured.count)"), ("tokens", "\(stream.tokens.count)"), ("scored", "\(stream.scoredCount)"),
            ("first_logprob", fmt(a.avgLogprob, 4)), ("last_logprob", fmt(b.avgLogprob, 4)),
            ("first_median_us", fmt(a.latency.p50, 2)), ("last_median_us", fmt(b.latency.p50, 2)), ("speedup", fmt(a.latency.p50 / b.latency.p50, 2)),
            ("first_cpu_us", fmt(a.cpu.p50, 2)), ("last_cpu_us", fmt(b.cpu.p50, 2)), ("cpu_speedup", fmt(a.cpu.p50 / b.cpu.p50, 2)),
            ("first_model_bytes", "\(a.modelBytes)"), ("last_model_bytes", "\(b.modelBytes)"),
            ("model_bytes_ratio", fmt(Double(a.modelBytes) / Double(b.modelBytes), 2)),
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

    /// The first `tokens` tokens of `corpus`: a sim corpus (.jsonl) as the trainer's `SimCorpus` makes
    /// it (contexts = its segments, only intents scored), else text in contexts of `context` tokens
    /// (default: the model's trained sequence length) with every next token scored.
    static func stream(corpus: String, tokenizer: Tokenizer, tokens N: Int, context: Int?, model: String) throws -> LadderStream {
        if CorpusLoader.isSim(corpus) {
            let s: TokenStream
            do { s = try CorpusLoader.load([corpus], tokenizer: tokenizer) } catch { throw failure("\(error)", code: Exit.dataError) }
            let n = min(N, s.tokens.count)
            guard n >= 2 else { throw failure("\(corpus): fewer than 2 tokens", code: Exit.dataError) }
            let ids = s.tokens[0..<n].map(Int.init)
            let targets = (0..<n).map { i -> Int in
                guard i + 1 < n, s.predict?[i + 1] ?? true else { return -1 }
                return Int(s.labels?[i + 1] ?? s.tokens[i + 1])
            }
            var cuts = (s.starts ?? [0]).filter { $0 > 0 && $0 < n }
            cuts = [0] + cuts + [n]
            let segs = zip(cuts, cuts.dropFirst()).map { $0..<$1 }.filter { !$0.isEmpty }
            // A target is scored only inside its context: the last token of a segment predicts nothing.
            var t = targets
            for seg in segs.dropLast() { t[seg.upperBound - 1] = -1 }
            return LadderStream(tokens: ids, targets: t, segments: segs)
        }
        guard let data = FileManager.default.contents(atPath: corpus) else {
            throw failure("\(corpus): cannot read the corpus (missing or unreadable)", code: Exit.noInput)
        }
        // Encode a prefix generous enough for N tokens (BPE tokens average well under 16 bytes).
        let ids = Array(tokenizer.encode(Array(data.prefix(16 * N + 64))).prefix(N))
        guard ids.count >= 2 else { throw failure("\(corpus): fewer than 2 tokens", code: Exit.dataError) }
        var T = context
        if T == nil { T = (try? TrainingRecord.load(from: URL(fileURLWithPath: model)))??.trainSeqLen }
        return LadderStream(text: ids, context: T ?? 128)
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
        if let m = r.metrics, row.options.exit != .full { notes = "mean layers \(fmt(m.meanLayers, 2)); " + notes }
        if let m = r.metrics {
            return ["\(row.phase)", row.name, fmt(m.avgLogprob, 4), fmt(m.avgEntropy, 4), fmt(m.latency.p50, 1), fmt(m.latency.p99, 1),
                    fmt(m.cpu.p50, 1), kb(Int(m.weightBytesReadPerToken)), kb(m.modelBytes), kb(m.kvCacheBytes), fmt(m.matmulsPerToken, 1), fmt(m.macsPerToken, 0), r.status, notes]
        }
        if let c = r.computed {
            return ["\(row.phase)", row.name, "-", "-", "-", "-", "-", "-", kb(c.modelBytes), kb(c.kvCacheBytes), "\(c.matmulsPerToken)",
                    fmt(c.macsPerToken, 0), r.status, notes]
        }
        return ["\(row.phase)", row.name, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", r.status, notes]
    }

    static func markdown(_ title: String, _ results: [Result], stream: LadderStream, corpus: String) -> String {
        var s = "### \(title)\n\n"
        s += "\(stream.tokens.count) tokens of `\(corpus)` in \(stream.segments.count) contexts (longest \(stream.longestSegment)), \(stream.scoredCount) scored.\n\n"
        s += "| " + header.joined(separator: " | ") + " |\n"
        s += "|" + header.map { _ in " --- " }.joined(separator: "|") + "|\n"
        for r in results {
            s += "| " + cells(r, markdown: true).map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n"
        }
        return s
    }

    static func csv(_ results: [Result]) -> String {
        func q(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        var lines = ["phase,name,status,avg_logprob,avg_entropy,median_us,p99_us,cpu_median_us,weight_bytes,read_bytes_per_token,model_bytes,kv_cache_bytes,matmuls_per_token,macs_per_token,mean_layers,scored,tokens,note"]
        for r in results {
            let row = r.row
            var f: [String]
            if let m = r.metrics {
                f = [fmt(m.avgLogprob, 5), fmt(m.avgEntropy, 5), fmt(m.latency.p50, 2), fmt(m.latency.p99, 2), fmt(m.cpu.p50, 2), "\(m.weightBytes)", fmt(m.weightBytesReadPerToken, 0), "\(m.modelBytes)",
                     "\(m.kvCacheBytes)", fmt(m.matmulsPerToken, 2), fmt(m.macsPerToken, 1), fmt(m.meanLayers, 3), "\(m.scored)", "\(m.tokens)"]
            } else if let c = r.computed {
                f = ["", "", "", "", "", "", "", "\(c.modelBytes)", "\(c.kvCacheBytes)", "\(c.matmulsPerToken)", fmt(c.macsPerToken, 1), "", "", ""]
            } else {
                f = Array(repeating: "", count: 14)
            }
            lines.append(([ "\(row.phase)", q(row.name), r.status] + f + [q(row.note)]).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
