import ArgumentParser
import CAllocCounter
import Foundation
import Histogram
import MiniGPT
import Observation
import Runtime
import Wire

/// `mgpt bench loop`: the daemon's real tick path, offline, as fast as it will go — the latency
/// budget check users run on their own robot. Frames travel over real (inproc) ZeroMQ sockets into
/// the same `DecisionLoop.tickOnce` that `mgptd` runs, and its messages leave through the same
/// publisher thread; HdrHistogram gives the percentiles and the in-process malloc counter the
/// allocations per tick on the loop thread (libzmq included: its sends run on the publisher thread).
struct BenchLoop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loop",
        abstract: "Run the daemon's tick path offline and check its latency budget.",
        discussion: "Exits 3 when p99 exceeds --budget-us or any tick allocated. Last line: p50_us=… p99_us=… p999_us=… max_us=… overruns=… allocs_per_tick=… own_allocs_per_tick=… kernels=… cpu_us_per_decision=… (this thread's CPU time per model run) energy_uj_per_decision=… (RAPL package energy per model run, n/a without readable /sys/class/powercap) idle_us=… keep_warm_us=… (the idle before each measured tick and the keep-warm interval used during it; 0 0 = back to back)")

    @Option(help: "The robot.json whose model and settings to use.") var config: String = "Configs/robot.json"
    @Option(help: "Measured ticks.") var ticks = 5000
    @Option(help: "Unmeasured warm-up ticks (fills the context window).") var warmup = 200
    @Option(help: "Budget for p99 in µs (default: loop.budget_us from the config).") var budgetUs: Int?
    @Option(help: "Seed of the synthetic observation frames.") var seed: UInt64 = 7
    @Option(help: ArgumentHelp("Idle µs between measured ticks (0 = back to back).",
                               discussion: "A live loop waits between frames (50 ms at 20 frames/s) and its caches cool meanwhile; back-to-back ticks find weights and code hot. Use 20000–50000 to see the tick a live daemon runs."))
    var idleUs = 0
    @Option(help: "With --idle-us: warm the caches every N µs while idle, as the daemon does (default: loop.keep_warm_us from the config; 0 = never).")
    var keepWarmUs: Int?
    @Flag(help: "Print the whole result as JSON.") var json = false

    func validate() throws {
        guard ticks > 0, warmup >= 0 else { throw ValidationError("--ticks must be > 0 and --warmup >= 0") }
        guard (0...1_000_000).contains(idleUs) else { throw ValidationError("--idle-us must be in 0...1000000") }
        guard (keepWarmUs ?? 0) >= 0 else { throw ValidationError("--keep-warm-us must be >= 0") }
    }

    func run() throws {
        var cfg: RobotConfig
        do { cfg = try RobotConfig.load(path: config) } catch { throw failure("\(error)", code: 78) }
        cfg.recordEnabled = false
        let id = "mgpt-bench-\(getpid())"
        cfg.sensorEndpoint = "inproc://\(id)-obs"
        cfg.publishEndpoint = "inproc://\(id)-out"
        cfg.staleAfterMillis = 1e9  // offline: ticks run back to back, nothing goes stale
        let budget = budgetUs ?? cfg.budgetMicros
        if let keepWarmUs { cfg.keepWarmMicros = keepWarmUs }
        let keepWarm = cfg.keepWarmMicros
        let (model, tokenizer): (Transformer, Tokenizer)
        do { (model, tokenizer) = try Daemon.loadModel(cfg.modelPath) } catch let e as DaemonError { throw failure(e.message, code: e.code) }
        let core = try DecisionCore(config: cfg, model: model, tokenizer: tokenizer, startedAt: monotonicNanos())
        let ctx = try ZMQContext()
        let feeder = try ZMQSocket(context: ctx, type: .pub)
        try feeder.bind(cfg.sensorEndpoint)
        let sub = try ZMQSocket(context: ctx, type: .sub)
        try sub.subscribe(cfg.topicObs)
        try sub.connect(cfg.sensorEndpoint)
        let pub = try ZMQSocket(context: ctx, type: .pub)
        try pub.bind(cfg.publishEndpoint)
        let loop = DecisionLoop(config: cfg, core: core, sub: sub, pub: pub, recorder: nil)

        // Synthetic frames: a robot wandering with random scans and detections, pre-encoded.
        var rng = RNG(seed: seed)
        let frames: [[UInt8]] = try (0..<256).map { i in
            let ranges = (0..<ObservationFrame.beamCount).map { _ in 0.2 + rng.nextUniform() * 4.8 }
            let colours = ["red", "blue", "green", "yellow"], kinds = ["box", "ball", "door", "cone"]
            let dets = (0..<Int(rng.next() % 3)).map { _ in
                Detection(colour: colours[Int(rng.next() % 4)], kind: kinds[Int(rng.next() % 4)],
                          bearing: rng.nextUniform() - 0.5, distance: 0.3 + rng.nextUniform() * 4)
            }
            let f = ObservationFrame(seq: UInt64(i), t: Double(i) * 0.02, ranges: ranges, rangeMax: 5, detections: dets,
                                     odom: Odometry(x: rng.nextUniform(), y: rng.nextUniform(), theta: rng.nextUniform(), v: rng.nextUniform() * 0.5, w: 0),
                                     bump: rng.next() % 50 == 0, battery: 0.5 + rng.nextUniform() / 2)
            return Array(try f.jsonData())
        }
        let topic = Array(cfg.topicObs.utf8)
        // Slow joiner: inproc connects at once, but make sure the first frame arrives.
        for _ in 0..<100 where core.counters.framesAccepted == 0 {
            _ = try feeder.send([topic, frames[0]])
            loop.tickOnce(deadline: monotonicNanos(), woke: monotonicNanos())
        }
        guard core.counters.framesAccepted > 0 else { throw failure("frames did not arrive over \(cfg.sensorEndpoint)", code: 69) }

        var histogram = Histogram<UInt64>(highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .three)
        var overruns = 0
        let supported = mgac_supported() != 0
        var allocs: Int64 = 0
        // Cost per decision: this thread's CPU time around each measured tick, and package energy
        // (RAPL) over the measured window, both divided by the model runs in that window.
        let energy = EnergyCounter()
        var cpuNanos: UInt64 = 0, runsBefore: UInt64 = 0
        var energyStart: [UInt64]?
        for i in 0..<(warmup + ticks) {
            if i == warmup {
                runsBefore = core.counters.modelRuns
                energyStart = energy.available ? energy.read() : nil
            }
            // Idle as the live loop does, through its own wait (warm passes every keep_warm_us).
            if idleUs > 0 && i >= warmup { loop.idle(until: monotonicNanos() + UInt64(idleUs) * 1000) }
            let frame = frames[i % frames.count]
            topic.withUnsafeBytes { t in frame.withUnsafeBytes { p in _ = try? feeder.send(topic: t, payload: p, dontWait: true) } }
            let measuring = i >= warmup
            let before = mgac_thread_mallocs()
            if measuring { mgac_enable(1) }
            let cpu0 = measuring ? threadCPUNanos() : 0
            let t0 = monotonicNanos()
            loop.tickOnce(deadline: t0, woke: t0)
            let dt = monotonicNanos() - t0
            if measuring {
                cpuNanos += threadCPUNanos() - cpu0
                mgac_enable(0)
                allocs += mgac_thread_mallocs() - before
                histogram.record(dt)
                if dt > UInt64(budget) * 1000 { overruns += 1 }
            }
        }
        let energyEnd = energyStart != nil ? energy.read() : nil
        let decisions = max(1, core.counters.modelRuns - runsBefore)
        let cpuPerDecision = Double(cpuNanos) / 1000 / Double(decisions)
        let energyPerDecision: String
        let energyNote: String
        if let s = energyStart, let e = energyEnd {
            energyPerDecision = fmt(energy.microjoules(from: s, to: e) / Double(decisions), 1)
            energyNote = "energy: RAPL package counters (\(energy.zones.count) zone(s)), whole CPU incl. other processes, over \(decisions) decisions"
        } else {
            energyPerDecision = "n/a"
            energyNote = "energy n/a: \(energy.unavailableReason ?? "a RAPL counter stopped being readable during the run")"
        }
        let perDecision: [(String, String)] = [("cpu_us_per_decision", fmt(cpuPerDecision, 1)), ("energy_uj_per_decision", energyPerDecision)]
        let us = { (v: UInt64) in Double(v) / 1000 }
        let p50 = us(histogram.valueAtPercentile(50)), p99 = us(histogram.valueAtPercentile(99))
        let p999 = us(histogram.valueAtPercentile(99.9)), mx = us(histogram.max)
        let perTick = supported ? Double(allocs) / Double(ticks) : -1
        let ownPerTick = perTick  // libzmq no longer runs on this thread: every allocation is "own"
        loop.finishPublisher()
        let c = core.counters
        let fields: [(String, String)] = [
            ("p50_us", fmt(p50, 1)), ("p99_us", fmt(p99, 1)), ("p999_us", fmt(p999, 1)), ("max_us", fmt(mx, 1)),
            ("overruns", "\(overruns)"), ("allocs_per_tick", supported ? fmt(perTick, 3) : "unsupported"),
            ("own_allocs_per_tick", supported ? fmt(ownPerTick, 3) : "unsupported"),
            ("ticks", "\(ticks)"), ("budget_us", "\(budget)"), ("model_runs", "\(c.modelRuns)"),
            ("frames_accepted", "\(c.framesAccepted)"), ("gated", "\(c.gated)"),
            ("published", "\(loop.publisher.sent)"), ("publish_dropped", "\(loop.publishDropped)"),
            ("publish_delay_p50_us", loop.publisher.queueDelayMicros(percentile: 50).map { fmt($0, 0) } ?? "n/a"),
            ("publish_delay_p99_us", loop.publisher.queueDelayMicros(percentile: 99).map { fmt($0, 0) } ?? "n/a"),
            ("kernels", KernelPath.selected), ("idle_us", "\(idleUs)"), ("keep_warm_us", "\(idleUs > 0 ? keepWarm : 0)"),
        ]
        if json {
            var obj = Dictionary(uniqueKeysWithValues: fields + perDecision)
            obj["energy_note"] = energyNote
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
        } else {
            print("loop benchmark: \(config) (model \(cfg.modelPath)), \(ticks) ticks after \(warmup) warm-up\(idleUs > 0 ? ", \(idleUs) µs idle before each" : ", back to back"), budget \(budget) µs, kernels \(KernelPath.selected)")
            print(table([["p50 µs", "p99 µs", "p99.9 µs", "max µs", "overruns", "allocs/tick", "own allocs/tick"],
                         [fmt(p50, 1), fmt(p99, 1), fmt(p999, 1), fmt(mx, 1), "\(overruns)",
                          supported ? fmt(perTick, 3) : "n/a", supported ? fmt(ownPerTick, 3) : "n/a"]]))
            print("\nallocs/tick counts every malloc on the loop thread, libzmq's receive included; libzmq's sends (a malloc'd")
            print("copy of every message longer than 33 bytes) run on the publisher thread, so own allocs/tick = allocs/tick.")
            print("published \(loop.publisher.sent) messages through the publisher thread, \(loop.publishDropped) dropped; queue delay (publish → zmq_send returned) p50 \(loop.publisher.queueDelayMicros(percentile: 50).map { fmt($0, 0) } ?? "n/a") µs, p99 \(loop.publisher.queueDelayMicros(percentile: 99).map { fmt($0, 0) } ?? "n/a") µs.")
            print("cpu µs/decision: this thread's CPU time (CLOCK_THREAD_CPUTIME_ID) summed over the measured ticks / model runs.")
            print("\(energyNote)\n")
        }
        let lineKeys = ["p50_us", "p99_us", "p999_us", "max_us", "overruns", "allocs_per_tick", "own_allocs_per_tick", "kernels"]
        let line = lineKeys.compactMap { k in fields.first { $0.0 == k } } + perDecision + fields.filter { ["idle_us", "keep_warm_us"].contains($0.0) }
        print(line.map { "\($0.0)=\($0.1)" }.joined(separator: " "))  // … kernels=<path> cpu_us_per_decision=… energy_uj_per_decision=… idle_us=… keep_warm_us=…
        if p99 > Double(budget) || (supported && allocs > 0) {
            throw failure("budget broken: p99 \(fmt(p99, 1)) µs vs \(budget) µs, \(allocs) allocations on the loop thread in \(ticks) ticks", code: Exit.budgetMissed)
        }
    }
}
