import ArgumentParser
import Foundation
import MiniGPT
import MiniGPTTrain

/// `mgpt bench train`: training tokens/s of one full step (forward, backward, AdamW) at the default
/// shape, the same step in the numpy reference, and the fraction of this CPU's FP32 FMA peak.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Measure training throughput (tokens/s) against the numpy reference and the CPU's peak.")

    @Option(name: .customLong("model-config"), help: "A config.json for the model shape (default: d=128, 4 layers, 4/2 heads, FFN 320, vocab 512).")
    var modelConfig: String?
    @Option(help: "Sequences per step.")
    var batch = 16
    @Option(help: "Tokens per sequence.")
    var seq = 128
    @Option(help: "Timed steps (after 2 warm-up steps).")
    var steps = 10
    @Option(help: "Worker threads (the batch is split across them).")
    var threads = 2
    @Option(help: "Path of minigpt_ref_backward.py (default: found under Tests/reference).")
    var reference: String?
    @Flag(help: "Skip the numpy reference.")
    var noNumpy = false
    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        guard batch >= 1, seq >= 1, steps >= 1, threads >= 1 else { throw ValidationError("--batch, --seq, --steps and --threads must be ≥ 1.") }
    }

    func run() throws {
        var config = ModelConfig()
        if let path = modelConfig { config = try ModelConfig.load(from: URL(fileURLWithPath: path)) }
        if config.maxPositionEmbeddings < seq { config.maxPositionEmbeddings = seq }
        let model = try TrainableModel(weights: ModelWeights(random: config, seed: 1), batch: batch, seqLen: seq, workers: threads)
        var rng = RNG(seed: 2)
        let n = batch * seq
        let ids = (0..<n).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
        let targets = (0..<n).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
        for _ in 0..<2 { model.step(ids: ids, targets: targets, smoothing: 0.1, lr: 1e-3) }
        var fb = 0.0, opt = 0.0
        for _ in 0..<steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            model.forwardBackward(ids: ids, targets: targets, smoothing: 0.1)
            let t1 = DispatchTime.now().uptimeNanoseconds
            model.applyUpdate(lr: 1e-3)
            let t2 = DispatchTime.now().uptimeNanoseconds
            fb += Double(t1 - t0) / 1e9; opt += Double(t2 - t1) / 1e9
        }
        let secPerStep = (fb + opt) / Double(steps)
        let tokensPerS = Double(n) / secPerStep
        let flops = config.trainingFlops(batch: batch, seqLen: seq)
        let ghz = Self.cpuGHz()
        let cores = min(threads, ProcessInfo.processInfo.activeProcessorCount)
        // Peak FP32: cores × GHz × 2 FMA units × 16 lanes (AVX-512) × 2 flops per FMA.
        let peak = Double(cores) * ghz * 1e9 * 2 * 16 * 2
        let achieved = flops / secPerStep
        var numpy: Double? = nil
        var numpyNote = "skipped"
        if !noNumpy {
            if let script = reference ?? Self.findReference() {
                do { numpy = try Self.numpyTokensPerS(script: script, batch: batch, seq: seq, config: config) ; numpyNote = "ok" }
                catch { numpyNote = "failed: \(error)" }
            } else { numpyNote = "reference script not found (pass --reference)" }
        }
        let ratio = numpy.map { tokensPerS / $0 }
        if json {
            var o: [String: Any] = ["tokens_per_s": tokensPerS, "seconds_per_step": secPerStep,
                                    "forward_backward_s": fb / Double(steps), "optimizer_s": opt / Double(steps),
                                    "gflops": achieved / 1e9, "peak_gflops": peak / 1e9, "peak_frac": achieved / peak,
                                    "cpu_ghz": ghz, "cores": cores, "batch": batch, "seq": seq,
                                    "parameters": model.layout.count, "numpy": numpyNote]
            if let numpy { o["numpy_tokens_per_s"] = numpy }
            if let ratio { o["ratio_vs_numpy"] = ratio }
            let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        func f(_ x: Double, _ d: Int = 1) -> String { String(format: "%.\(d)f", x) }
        print("training step: \(model.layout.count) parameters, batch \(batch) × seq \(seq), \(threads) threads, AdamW")
        print("  forward+backward      \(f(fb / Double(steps) * 1000)) ms")
        print("  AdamW (+clip)         \(f(opt / Double(steps) * 1000)) ms")
        print("  tokens/s (Swift)      \(f(tokensPerS, 0))")
        print("  tokens/s (numpy ref)  \(numpy.map { f($0, 0) } ?? numpyNote)")
        print("  achieved              \(f(achieved / 1e9)) GFLOP/s (\(f(flops / 1e9, 2)) GFLOP per step)")
        print("  peak (\(cores) cores × \(f(ghz, 2)) GHz × 2 FMA × 16 lanes × 2)  \(f(peak / 1e9)) GFLOP/s")
        print("tokens_per_s=\(f(tokensPerS, 0)) ratio_vs_numpy=\(ratio.map { f($0, 2) } ?? "nan") peak_frac=\(f(achieved / peak, 3))")
    }

    /// The clock of the first CPU in /proc/cpuinfo ("cpu MHz"); 2.0 GHz if it cannot be read.
    static func cpuGHz() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return 2.0 }
        for line in text.split(separator: "\n") where line.hasPrefix("cpu MHz") {
            if let v = line.split(separator: ":").last.flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) { return v / 1000 }
        }
        return 2.0
    }

    /// The reference script relative to the working directory or to this source file.
    static func findReference() -> String? {
        let rel = "Tests/reference/minigpt_ref_backward.py"
        let fromSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(rel).path
        return [rel, fromSource].first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Runs the reference in bench mode and reads its tokens/s.
    static func numpyTokensPerS(script: String, batch: Int, seq: Int, config: ModelConfig) throws -> Double {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let configURL = FileManager.default.temporaryDirectory.appendingPathComponent("mgpt-bench-config-\(getpid()).json")
        try config.save(to: configURL)
        defer { try? FileManager.default.removeItem(at: configURL) }
        p.arguments = ["python3", script, "bench", "--batch", "\(batch)", "--seq", "\(seq)", "--steps", "3",
                       "--config", configURL.path]
        let pipe = Pipe(), err = Pipe()
        p.standardOutput = pipe; p.standardError = err
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let tps = obj["tokens_per_s"] as? Double else {
            throw ValidationError("numpy reference exited \(p.terminationStatus): \(String(decoding: errData, as: UTF8.self).suffix(300))")
        }
        return tps
    }
}
