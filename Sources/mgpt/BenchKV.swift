import ArgumentParser
import CAllocCounter
import Foundation
import MiniGPT

/// `mgpt bench kv`: KV cache precision × rolling window on a text: next-token quality, agreement
/// with the FP32 reference, cache bytes and decode time per token.
///
/// Each configuration decodes the same `--tokens` tokens of the corpus one `step` at a time with a
/// rolling window (sinks + window, StreamingLLM eviction in chunks of a quarter window). The
/// reference is FP32 with the widest window the model allows (max_position_embeddings, or
/// `--reference-window`) and the same sinks — the "full context" a 256-position model can have
/// on a long text.
struct BenchKV: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv",
        abstract: "Measure KV cache precision and window size: quality, argmax agreement, bytes and µs per token.")

    @Option(help: "The model folder (config.json, model.safetensors, tokenizer.json).") var model: String
    @Option(help: "Text corpus to predict.") var corpus: String
    @Option(help: "Window sizes to measure, comma-separated.") var windows = "32,64,128,256"
    @Option(help: "Cache precisions to measure, comma-separated (float32, float16, int8).") var dtypes = "float32,float16,int8"
    @Option(help: "Sink positions every window keeps.") var sinks = 4
    @Option(help: "Tokens of the corpus to decode per configuration.") var tokens = 4000
    @Option(help: "Window of the FP32 reference (default: max_position_embeddings).") var referenceWindow: Int?
    @Flag(help: "Print the whole result as JSON.") var json = false

    func validate() throws {
        guard tokens >= 2 else { throw ValidationError("--tokens must be ≥ 2, found \(tokens).") }
        guard sinks >= 0 else { throw ValidationError("--sinks must be ≥ 0, found \(sinks).") }
        _ = try parsedWindows()
        _ = try parsedDTypes()
    }

    func parsedWindows() throws -> [Int] {
        try windows.split(separator: ",").enumerated().map { i, s in
            guard let w = Int(s.trimmingCharacters(in: .whitespaces)), w > sinks else {
                throw ValidationError("--windows: item \(i + 1) \"\(s)\" is not an integer > --sinks (\(sinks)).")
            }
            return w
        }
    }

    func parsedDTypes() throws -> [KVCacheDType] {
        try dtypes.split(separator: ",").enumerated().map { i, s in
            guard let d = KVCacheDType(rawValue: s.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--dtypes: item \(i + 1) \"\(s)\" is not float32, float16 or int8.")
            }
            return d
        }
    }

    /// One configuration's pass over the text.
    struct Result {
        var nats = 0.0            // Σ −log p(next token)
        var argmax: [Int32] = []  // predicted next token at each position
        var agree = 0             // argmax equal to the reference's
        var stepMicros: [Double] = []
        var cpuMicros = 0.0       // thread CPU time per token over the whole loop (evictions included)
        var bytesPerPosition = 0, totalBytes = 0
        var allocations: Int64 = -1  // heap allocations by this thread during the decode loop (-1: not countable)
    }

    /// Decodes `ids` token by token; position i's logits score ids[i + 1].
    static func run(_ model: Transformer, ids: [Int], options: KVCacheOptions) -> Result {
        let s = Session(model: model, kvCache: options)
        var r = Result()
        r.argmax.reserveCapacity(ids.count - 1)
        r.stepMicros.reserveCapacity(ids.count - 1)
        r.bytesPerPosition = s.kvCache.bytesPerPosition
        r.totalBytes = s.kvCacheBytes
        let counting = mgac_supported() == 1
        if counting { mgac_enable(1) }
        let mallocs0 = mgac_thread_mallocs()
        let cpu0 = threadCPUNanos()
        for i in 0..<(ids.count - 1) {
            let t0 = monotonicNanos()
            let l = s.step(ids[i])
            r.stepMicros.append(Double(monotonicNanos() - t0) / 1000)
            var m = l[0], best = 0
            for j in 1..<l.count where l[j] > m { (m, best) = (l[j], j) }
            var sum = 0.0
            for v in l { sum += Double(Foundation.exp(v - m)) }
            r.nats += Double(m) + Foundation.log(sum) - Double(l[ids[i + 1]])
            r.argmax.append(Int32(best))
        }
        r.cpuMicros = Double(threadCPUNanos() - cpu0) / 1000 / Double(ids.count - 1)
        if counting {
            r.allocations = mgac_thread_mallocs() - mallocs0
            mgac_enable(0)
        }
        return r
    }

    func run() throws {
        let weights = try loadWeights(model)
        let tokenizer = try loadTokenizer(URL(fileURLWithPath: model).appendingPathComponent(ModelFolder.tokenizerFile).path)
        guard let data = FileManager.default.contents(atPath: corpus) else {
            throw failure("\(corpus): cannot read the corpus file", code: Exit.noInput)
        }
        let all = tokenizer.encode(Array(data))
        guard all.count >= 2 else { throw failure("\(corpus): fewer than 2 tokens after tokenizing", code: Exit.dataError) }
        let ids = Array(all.prefix(tokens))
        let c = weights.config
        let context = c.maxPositionEmbeddings
        let ws = try parsedWindows(), dts = try parsedDTypes()
        if let w = ws.first(where: { $0 > context }) {
            throw failure("--windows: \(w) exceeds the model's trained positions (max_position_embeddings \(context))", code: Exit.dataError)
        }
        let refWindow = referenceWindow ?? context
        guard sinks < refWindow, refWindow <= context else {
            throw failure("--reference-window \(refWindow) must be > --sinks (\(sinks)) and ≤ max_position_embeddings (\(context))", code: Exit.dataError)
        }
        // Bytes each prediction covers, for bits per byte: the UTF-8 of the predicted tokens.
        let predictedBytes = ids.dropFirst().reduce(0) { $0 + tokenizer.tokenBytes($1).count }
        let transformer = Transformer(weights: weights)
        let reference = Self.run(transformer, ids: ids, options: KVCacheOptions(window: refWindow, sinks: sinks))
        let n = ids.count - 1

        var rows = [["kv dtype", "window", "nats/token", "bits/byte", "Δnats vs ref", "argmax = ref", "KV B/position", "KV bytes", "CPU µs/token", "wall p50 µs", "allocs"]]
        var fields: [(String, String)] = [("tokens", "\(n)"), ("sinks", "\(sinks)"), ("ref_window", "\(refWindow)"), ("ref_nats_per_token", fmt(reference.nats / Double(n), 4))]
        var records: [[String: Any]] = []
        for dt in dts {
            for w in ws {
                var r = Self.run(transformer, ids: ids, options: KVCacheOptions(dtype: dt, window: w, sinks: sinks))
                r.agree = zip(r.argmax, reference.argmax).filter { $0 == $1 }.count
                let nats = r.nats / Double(n)
                let stats = LatencyStats(r.stepMicros)
                rows.append([dt.rawValue, "\(w)", fmt(nats, 4), fmt(r.nats / Foundation.log(2) / Double(predictedBytes), 4),
                             String(format: "%+.4f", nats - reference.nats / Double(n)), fmt(100 * Double(r.agree) / Double(n), 2) + " %",
                             "\(r.bytesPerPosition)", "\(r.totalBytes)", fmt(r.cpuMicros, 2), fmt(stats.p50, 2), "\(r.allocations)"])
                let key = "\(dt.rawValue)_w\(w)"
                fields += [("\(key)_nats", fmt(nats, 4)), ("\(key)_agree", fmt(Double(r.agree) / Double(n), 4)),
                           ("\(key)_kv_bytes", "\(r.totalBytes)"), ("\(key)_cpu_us", fmt(r.cpuMicros, 2)),
                           ("\(key)_allocs", "\(r.allocations)")]
                records.append(["dtype": dt.rawValue, "window": w, "nats_per_token": nats, "argmax_agreement": Double(r.agree) / Double(n),
                                "kv_bytes_per_position": r.bytesPerPosition, "kv_bytes": r.totalBytes,
                                "cpu_us_per_token": r.cpuMicros, "us_per_token_p50": stats.p50, "allocations": r.allocations])
            }
        }
        if json {
            let obj: [String: Any] = ["model": model, "corpus": corpus, "tokens": n, "sinks": sinks,
                                      "reference_nats_per_token": reference.nats / Double(n), "results": records]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("KV cache benchmark: \(model) on \(corpus): \(n) next-token predictions, one step at a time, \(sinks) sinks")
            print("reference: float32, window \(refWindow)\(refWindow == context ? " (max_position_embeddings)" : ""): \(fmt(reference.nats / Double(n), 4)) nats/token\n")
            print(table(rows))
            print("")
        }
        print(fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
    }
}
