import ArgumentParser
import Foundation
import MiniGPT

/// `mgpt bench decode`: per-token decode latency at a fixed cache length, side by side with the
/// numpy reference on the same model in the same run (ratios survive machine drift; absolute
/// times do not).
struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Measure single-token decode latency with N positions cached, against numpy.")

    @Option(help: "Model folder (default: a random model of the phase-15 shape).") var model: String?
    @Option(name: .customLong("positions"),
            help: "Positions already in the KV cache when each measured step runs (default: 256, or window − 1 for a model whose kv_cache has a window: the fullest cache it ever attends over). The baseline runs at the same positions.")
    var positionsOption: Int?
    @Option(help: "Measured decode steps.") var tokens = 2000
    @Option(help: "Unmeasured warm-up steps.") var warmup = 200
    @Option(help: "A second model folder to measure in the same run (ratio_vs_baseline = baseline / model).") var baseline: String?
    @Option(help: "Path of the numpy reference script.") var reference = "Tests/reference/minigpt_ref.py"
    @Option(help: "Decode steps the numpy reference times.") var numpyTokens = 200
    @Option(help: "Tokens per measured prefill, batched vs step-by-step (0 = skip).") var prefillTokens = 12
    @Option(help: "Measured prefills of each kind.") var prefillRuns = 300
    @Flag(help: "Skip the numpy reference.") var noNumpy = false
    @Flag(help: "Print the whole result as JSON.") var json = false

    func validate() throws {
        if let positionsOption, positionsOption < 0 { throw ValidationError("--positions must be >= 0") }
        guard tokens > 0, warmup >= 0, numpyTokens > 0 else { throw ValidationError("--tokens and --numpy-tokens must be > 0") }
        guard prefillTokens >= 0, prefillRuns > 0 else { throw ValidationError("--prefill-tokens must be >= 0 and --prefill-runs > 0") }
    }

    /// `tokens` steps, each run at exactly `positions` cached positions: (wall µs per step, the op
    /// counts of one step, KV cache bytes, CPU µs per token).
    static func measure(_ weights: ModelWeights, positions: Int, tokens: Int, warmup: Int) -> ([Double], OpCounter, Int, Double) {
        let session = Session(model: Transformer(weights: weights), capacity: positions + 1)
        var rng = RNG(seed: 99)
        let V = UInt64(weights.config.vocabSize)
        for _ in 0..<positions { session.step(Int(rng.next() % V)) }
        var samples = [Double](repeating: 0, count: tokens)
        var counter = OpCounter()
        var cpuStart: UInt64 = 0
        for i in 0..<(warmup + tokens) {
            if i == warmup { cpuStart = threadCPUNanos() }
            let tok = Int(rng.next() % V)
            session.counter = OpCounter()
            let t0 = monotonicNanos()
            session.step(tok)
            let dt = monotonicNanos() - t0
            session.rewind(to: positions)
            if i >= warmup { samples[i - warmup] = Double(dt) / 1000 }
            counter = session.counter
        }
        let cpuPerToken = Double(threadCPUNanos() - cpuStart) / 1000 / Double(tokens)
        return (samples, counter, session.kvCacheBytes, cpuPerToken)
    }

    /// Prefill of `T` tokens on top of `positions` cached ones, batched (`prefill`) and token by
    /// token (`prefillSequential`), alternating in one loop: (batched wall, sequential wall, batched
    /// CPU µs, sequential CPU µs).
    static func measurePrefill(_ weights: ModelWeights, positions: Int, T: Int, runs: Int) -> (LatencyStats, LatencyStats, Double, Double) {
        let session = Session(model: Transformer(weights: weights), capacity: positions + T)
        var rng = RNG(seed: 7)
        let V = UInt64(weights.config.vocabSize)
        for _ in 0..<positions { session.step(Int(rng.next() % V)) }
        let ids = (0..<T).map { _ in Int(rng.next() % V) }
        var wall: ([Double], [Double]) = ([], [])
        var cpu: (UInt64, UInt64) = (0, 0)
        for i in 0..<(runs + 20) {  // 20 warm-up rounds
            for batched in [true, false] {
                session.rewind(to: positions)
                let c0 = threadCPUNanos(), t0 = monotonicNanos()
                if batched { session.prefill(ids) } else { session.prefillSequential(ids) }
                let dt = Double(monotonicNanos() - t0) / 1000, dc = threadCPUNanos() - c0
                guard i >= 20 else { continue }
                if batched { wall.0.append(dt); cpu.0 += dc } else { wall.1.append(dt); cpu.1 += dc }
            }
        }
        return (LatencyStats(wall.0), LatencyStats(wall.1), Double(cpu.0) / 1000 / Double(runs), Double(cpu.1) / 1000 / Double(runs))
    }

    func run() throws {
        let weights: ModelWeights
        var modelName = "random phase-15 shape (seed 1)"
        var modelDir = model
        if let model {
            weights = try loadWeights(model)
            modelName = model
        } else {
            weights = ModelWeights(random: ModelConfig(), seed: 1)
            let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("mgpt-bench-\(getpid())")
            try ModelFolder.save(weights, to: tmp)
            modelDir = tmp.path
        }
        defer { if model == nil, let modelDir { try? FileManager.default.removeItem(atPath: modelDir) } }
        let c = weights.config
        // A windowed cache never holds more than `window` positions, so a step attends over at most
        // window − 1 cached ones plus itself: measuring past that is a state the model never reaches.
        let positions = positionsOption ?? c.kvCache?.window.map { $0 - 1 } ?? 256
        guard positions < 100_000 else { throw ValidationError("--positions too large") }

        // With a baseline the two models alternate in `rounds` rounds of tokens / rounds steps each, so
        // a drift of the machine (frequency, a neighbour's load) hits both alike; the ratios compare
        // the pooled samples.
        let rounds = baseline == nil ? 1 : 4
        let per = max(1, tokens / rounds)
        let baseWeights = try baseline.map { try loadWeights($0) }
        var mine: [Double] = [], theirs: [Double] = [], cpuMine = 0.0, cpuTheirs = 0.0
        var ops = OpCounter(), kvBytes = 0
        // The floor: one core streaming the weights plus this step's K/V reads from wherever they
        // live, measured in every round right after the model's steps (the same machine state),
        // and the median of the rounds taken: once, apart from the steps, it moved by a third from
        // run to run while the step's median moved by 2 % (Zen 5, docs/performance.md).
        let weightBytes = Transformer(weights: weights).weightBytes
        let kvDType = c.kvCache?.dtype ?? .float32
        let kvRead = 2 * c.numHiddenLayers * c.kvDim * (positions + 1) * kvDType.elementBytes
        var floors: [Double] = []
        for _ in 0..<rounds {
            let m = Self.measure(weights, positions: positions, tokens: per, warmup: warmup)
            mine += m.0; ops = m.1; kvBytes = m.2; cpuMine += m.3 / Double(rounds)
            floors.append(streamingFloorMicros(bytes: weightBytes + kvRead))
            if let bw = baseWeights {
                let b = Self.measure(bw, positions: positions, tokens: per, warmup: warmup)
                theirs += b.0; cpuTheirs += b.3 / Double(rounds)
            }
        }
        while floors.count < 3 { floors.append(streamingFloorMicros(bytes: weightBytes + kvRead)) }
        let stats = LatencyStats(mine), cpuUs = cpuMine
        let floor = LatencyStats(floors).p50

        var numpy: Double?
        if !noNumpy, let modelDir {
            numpy = try Self.runNumpy(script: reference, model: modelDir, positions: positions, tokens: numpyTokens)
        }
        let base: (LatencyStats, String, Double)? = baseline.map { (LatencyStats(theirs), $0, cpuTheirs) }
        let prefill = prefillTokens > 0 ? Self.measurePrefill(weights, positions: positions, T: prefillTokens, runs: prefillRuns) : nil
        // The baseline's batched prefill too (an FP32 baseline: the FP32 GEMM path), same positions.
        let basePrefill = prefillTokens > 0 ? baseWeights.map { Self.measurePrefill($0, positions: positions, T: prefillTokens, runs: prefillRuns) } : nil
        let dt = c.weightDType ?? WeightDTypes()
        let engine = "MiniGPT attention \(dt.attention.rawValue), ffn \(dt.ffn.rawValue)"

        var fields: [(String, String)] = [
            ("median_us", fmt(stats.p50, 2)), ("p99_us", fmt(stats.p99, 2)), ("max_us", fmt(stats.max, 2)),
            ("cpu_us_per_token", fmt(cpuUs, 2)), ("positions", "\(positions)"), ("kv_dtype", kvDType.rawValue), ("matmuls_per_token", "\(ops.matmuls)"), ("macs_per_token", "\(ops.macs)"),
            ("weight_bytes", "\(weightBytes)"), ("kv_cache_bytes", "\(kvBytes)"),
            ("floor_us", fmt(floor, 2)), ("bandwidth_frac", fmt(floor / stats.p50, 3)),
        ]
        if let numpy { fields += [("numpy_median_us", fmt(numpy, 1)), ("ratio_vs_numpy", fmt(numpy / stats.p50, 2))] }
        if let base {
            fields += [("baseline_median_us", fmt(base.0.p50, 2)), ("ratio_vs_baseline", fmt(base.0.p50 / stats.p50, 2)),
                       ("baseline_cpu_us_per_token", fmt(base.2, 2)), ("cpu_ratio_vs_baseline", fmt(base.2 / cpuUs, 2))]
        }
        if let p = prefill {
            fields += [("prefill_tokens", "\(prefillTokens)"), ("prefill_batched_median_us", fmt(p.0.p50, 2)), ("prefill_batched_p99_us", fmt(p.0.p99, 2)),
                       ("prefill_sequential_median_us", fmt(p.1.p50, 2)), ("prefill_batched_cpu_us", fmt(p.2, 2)),
                       ("prefill_sequential_cpu_us", fmt(p.3, 2)), ("prefill_speedup_cpu", fmt(p.3 / p.2, 2))]
        }

        if let p = basePrefill {
            fields += [("baseline_prefill_batched_median_us", fmt(p.0.p50, 2)), ("baseline_prefill_sequential_median_us", fmt(p.1.p50, 2)),
                       ("baseline_prefill_speedup_cpu", fmt(p.3 / p.2, 2))]
        }

        fields.append(("kernels", KernelPath.selected))  // last, so older parsers of the line keep working

        if json {
            var obj: [String: String] = ["model": modelName]
            for (k, v) in fields { obj[k] = v }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("decode benchmark: \(modelName)")
            print("kernels: \(KernelPath.selected) (this CPU supports \(KernelPath.supported.joined(separator: ", ")); MINIGPT_KERNELS forces one)")
            print("shape d=\(c.hiddenSize) layers=\(c.numHiddenLayers) heads=\(c.numAttentionHeads)/\(c.numKeyValueHeads) ffn=\(c.intermediateSize) vocab=\(c.vocabSize); \(positions) positions cached; \(tokens) steps after \(warmup) warm-up\n")
            var rows = [["engine", "median µs", "p99 µs", "tokens/s"]]
            rows.append([engine, fmt(stats.p50, 2), fmt(stats.p99, 2), fmt(1e6 / stats.p50, 0)])
            if let base { rows.append(["baseline \(base.1)", fmt(base.0.p50, 2), fmt(base.0.p99, 2), fmt(1e6 / base.0.p50, 0)]) }
            if let numpy { rows.append(["numpy reference (KV cache)", fmt(numpy, 1), "-", fmt(1e6 / numpy, 0)]) }
            print(table(rows))
            print("\nper token: \(ops.matmuls) matmuls, \(ops.macs) MACs, \(weightBytes) weight bytes + \(kvRead) KV bytes read")
            print("streaming floor (one core reading those bytes): \(fmt(floor, 2)) µs → \(fmt(100 * floor / stats.p50, 1)) % of the bandwidth limit reached")
            if let p = prefill {
                print("prefill of \(prefillTokens) tokens after \(positions) cached: batched median \(fmt(p.0.p50, 1)) µs (p99 \(fmt(p.0.p99, 1)), CPU \(fmt(p.2, 1))), "
                      + "step by step median \(fmt(p.1.p50, 1)) µs (CPU \(fmt(p.3, 1))) → \(fmt(p.3 / p.2, 2))× less CPU batched")
            }
            if let p = basePrefill, let baseline {
                print("baseline \(baseline), same prefill: batched median \(fmt(p.0.p50, 1)) µs (CPU \(fmt(p.2, 1))), "
                      + "step by step median \(fmt(p.1.p50, 1)) µs (CPU \(fmt(p.3, 1))) → \(fmt(p.3 / p.2, 2))× less CPU batched")
            }
            print("")
        }
        print(fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
    }

    /// Runs the numpy reference's decode benchmark and returns its median µs per token.
    static func runNumpy(script: String, model: String, positions: Int, tokens: Int) throws -> Double {
        guard FileManager.default.fileExists(atPath: script) else {
            throw failure("numpy reference not found at \(script) (run from the package root, pass --reference, or --no-numpy)", code: Exit.noInput)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, "bench-decode", "--model", model, "--positions", "\(positions)", "--tokens", "\(tokens)"]
        let out = Pipe()
        p.standardOutput = out
        do { try p.run() } catch { throw failure("cannot start python3: \(error)", code: Exit.unavailable) }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0,
              let last = text.split(separator: "\n").last,
              let field = last.split(separator: " ").first(where: { $0.hasPrefix("median_us=") }),
              let v = Double(field.dropFirst("median_us=".count)) else {
            throw failure("numpy reference failed (exit \(p.terminationStatus)); output:\n\(text)", code: Exit.unavailable)
        }
        return v
    }
}
