import ArgumentParser
import Foundation
import MiniGPT

/// `mgpt bench tokenizer`: encode / decode throughput of the byte-level BPE tokenizer (and training
/// time when it trains its own), on a corpus file or a generated one.
struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer", abstract: "Measure tokenizer encode and decode throughput on a corpus.")

    @Option(help: "The tokenizer.json to measure (default: train vocab 512 on the corpus and time that too).") var tokenizer: String?
    @Option(help: "Corpus file (default: generated text, see --bytes).") var corpus: String?
    @Option(help: "Size in bytes of the generated corpus.") var bytes = 5_000_000
    @Option(help: "Timed passes of encode and decode; the median is reported.") var repeats = 3
    @Flag(help: "Print the whole result as JSON.") var json = false

    func validate() throws {
        guard repeats > 0 else { throw ValidationError("--repeats must be > 0") }
        guard bytes > 0 else { throw ValidationError("--bytes must be > 0") }
    }

    /// Deterministic mixed text: words, contractions, digits, punctuation, whitespace runs, newlines,
    /// accented letters, CJK and emoji.
    static func generatedCorpus(bytes: Int, seed: UInt64 = 1) -> [UInt8] {
        let words = ["the", "robot", "moves", "left", "right", "forward", "back", "obstacle", "sensor", "battery",
                     "is", "a", "to", "of", "and", "in", "at", "goal", "reached", "turning", "slowly", "quickly",
                     "distance", "meters", "wall", "door", "corridor", "charging", "station", "The", "Robot",
                     "it's", "don't", "we'll", "they're", "I'm", "you've", "she'd", "café", "naïve", "über",
                     "Straße", "日本語", "中文", "データ", "🤖", "😀", "x1", "v2.0", "3.5m", "-12", "100%"]
        let seps = [" ", " ", " ", " ", " ", " ", ", ", ". ", ".\n", "; ", ": ", "! ", "? ", "\n", "\n\n",
                    "\t", " - ", " (", ") ", "\"", "  ", "   "]
        var rng = RNG(seed: seed)
        var out: [UInt8] = []
        out.reserveCapacity(bytes + 32)
        while out.count < bytes {
            if rng.next() % 100 < 7 { out += Array(String(rng.next() % 10_000).utf8) } else {
                out += Array(words[Int(rng.next() % UInt64(words.count))].utf8)
            }
            out += Array(seps[Int(rng.next() % UInt64(seps.count))].utf8)
        }
        return Array(out.prefix(bytes))
    }

    private static func now() -> UInt64 { monotonicNanos() }

    private static func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    func run() throws {
        let text: [UInt8]
        var corpusName = "generated (\(bytes) bytes, seed 1)"
        if let corpus {
            guard let data = FileManager.default.contents(atPath: corpus) else {
                throw failure("\(corpus): cannot read corpus file", code: Exit.noInput)
            }
            text = [UInt8](data)
            corpusName = corpus
        } else {
            text = Self.generatedCorpus(bytes: bytes)
        }
        guard !text.isEmpty else { throw failure("\(corpusName): corpus is empty", code: Exit.dataError) }
        let mb = Double(text.count) / 1e6

        var trainSeconds: Double? = nil
        let tok: Tokenizer
        var tokName = "trained here: vocab 512 (64 observation + 32 intent)"
        if let tokenizer {
            tok = try loadTokenizer(tokenizer)
            tokName = tokenizer
        } else {
            let t0 = Self.now()
            do { tok = try Tokenizer.train(corpus: [text], vocabSize: 512) } catch { throw failure("\(error)", code: Exit.dataError) }
            trainSeconds = Double(Self.now() - t0) / 1e9
        }

        // Each pass records wall time (what a caller waits) and this thread's CPU time (what the code
        // costs: on a shared machine the wall figure also counts time spent descheduled).
        func timed<T>(_ body: () -> T) -> (T, wall: Double, cpu: Double) {
            let w0 = monotonicNanos(), c0 = threadCPUNanos()
            let r = body()
            return (r, Double(monotonicNanos() - w0) / 1e9, Double(threadCPUNanos() - c0) / 1e9)
        }
        tok.clearEncodeCache()
        var (ids, coldSeconds, coldCPU) = timed { tok.encode(text) }
        var encodeTimes: [Double] = [], encodeCPU: [Double] = []
        for _ in 0..<repeats {
            let r = timed { tok.encode(text) }
            ids = r.0
            encodeTimes.append(r.wall)
            encodeCPU.append(r.cpu)
        }
        var decodeTimes: [Double] = [], decodeCPU: [Double] = []
        var decoded: [UInt8] = []
        for _ in 0..<repeats {
            let r = timed { tok.decode(ids) }
            decoded = r.0
            decodeTimes.append(r.wall)
            decodeCPU.append(r.cpu)
        }
        guard decoded == text else { throw failure("round trip failed: decode(encode(corpus)) differs from the corpus", code: Exit.dataError) }

        let encodeMBs = mb / Self.median(encodeTimes), encodeCPUMBs = mb / Self.median(encodeCPU)
        let coldMBs = mb / coldSeconds, coldCPUMBs = mb / coldCPU
        let decodeMBs = mb / Self.median(decodeTimes), decodeCPUMBs = mb / Self.median(decodeCPU)
        let bytesPerToken = Double(text.count) / Double(ids.count)

        if json {
            var fields = [
                "\"corpus\": \"\(corpusName.replacingOccurrences(of: "\"", with: "'"))\"",
                "\"tokenizer\": \"\(tokName.replacingOccurrences(of: "\"", with: "'"))\"",
                "\"bytes\": \(text.count)", "\"vocab_size\": \(tok.vocabSize)", "\"tokens\": \(ids.count)",
                "\"bytes_per_token\": \(fmt(bytesPerToken, 4))", "\"encode_mb_per_s\": \(fmt(encodeMBs, 3))",
                "\"encode_cold_mb_per_s\": \(fmt(coldMBs, 3))", "\"decode_mb_per_s\": \(fmt(decodeMBs, 3))",
                "\"encode_cpu_mb_per_s\": \(fmt(encodeCPUMBs, 3))", "\"encode_cold_cpu_mb_per_s\": \(fmt(coldCPUMBs, 3))",
                "\"decode_cpu_mb_per_s\": \(fmt(decodeCPUMBs, 3))",
                "\"repeats\": \(repeats)",
            ]
            if let trainSeconds { fields.append("\"train_s\": \(fmt(trainSeconds, 3))") }
            print("{" + fields.joined(separator: ", ") + "}")
            return
        }
        print("corpus: \(corpusName)\ntokenizer: \(tokName)\n")
        var rows = [["measure", "wall s", "MB/s (wall)", "MB/s (thread CPU)"]]
        if let trainSeconds { rows.append(["train (vocab 512)", fmt(trainSeconds, 3), fmt(mb / trainSeconds, 2), ""]) }
        rows.append(["encode, cold cache", fmt(coldSeconds, 3), fmt(coldMBs, 2), fmt(coldCPUMBs, 2)])
        rows.append(["encode, warm (median of \(repeats))", fmt(Self.median(encodeTimes), 3), fmt(encodeMBs, 2), fmt(encodeCPUMBs, 2)])
        rows.append(["decode (median of \(repeats))", fmt(Self.median(decodeTimes), 4), fmt(decodeMBs, 1), fmt(decodeCPUMBs, 1)])
        print(table(rows))
        print("\nvocab \(tok.vocabSize), \(text.count) bytes -> \(ids.count) tokens, round trip exact\n")
        print("encode_mb_per_s=\(fmt(encodeMBs, 2)) decode_mb_per_s=\(fmt(decodeMBs, 1)) tokens=\(ids.count) bytes_per_token=\(fmt(bytesPerToken, 3)) encode_cold_mb_per_s=\(fmt(coldMBs, 2)) encode_cpu_mb_per_s=\(fmt(encodeCPUMBs, 2)) decode_cpu_mb_per_s=\(fmt(decodeCPUMBs, 1))" + (trainSeconds.map { " train_s=\(fmt($0, 3))" } ?? ""))
    }
}
