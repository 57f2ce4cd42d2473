import Foundation
import Cognition
import Observation

/// `robot.json`: everything `mgptd` needs, validated at start-up (DESIGN.md "Configuration").
/// Every key is documented in docs/config.md; an error names the key path, what was expected and
/// what was found, and `mgptd` exits with 78 (EX_CONFIG).
public struct RobotConfig: Sendable {
    /// The file it was read from (absolute; "" when parsed from memory without one) and its text:
    /// recordings carry both (`Recorder`, metadata "mgptd.config") so a replay finds the config.
    public var sourceFile = ""
    public var sourceJSON = ""
    /// Model folder (config.json, model.safetensors, tokenizer.json). `model.path`.
    public var modelPath: String
    /// Identifier published with every intent (`model.id`; default: the folder's name).
    public var modelID: String
    /// Layers an anytime (early-exit) decision runs (`model.early_exit_layer`; nil: the model's first
    /// `early_exit_layers` entry). Used after an overrun with `loop.overrun_policy` `"early_exit"`.
    public var earlyExitLayer: Int?
    /// Confidence exit on every decision (`model.exit_entropy`, nats; nil = off): the model stops at
    /// the first of its `early_exit_layers` whose next-token entropy is at most this.
    public var exitEntropy: Float?

    /// Decision rate. `loop.rate_hz`.
    public var rateHz: Double
    /// Tick budget in µs (`loop.budget_us`; default: the whole period).
    public var budgetMicros: Int
    /// What a tick that overran its budget causes: `"count"` (count and warn), `"fallback"`
    /// (also publish the safe intent on the next tick), or `"early_exit"` (the next decision runs
    /// only `earlyExitLayer` layers: the anytime answer). `loop.overrun_policy`.
    public var overrunPolicy: String
    /// SCHED_FIFO priority 1...99 for the loop thread (0 = leave the default scheduler). `loop.realtime.priority`.
    public var realtimePriority: Int
    /// CPUs the loop thread may run on (empty = any). `loop.realtime.cpu_affinity`.
    public var cpuAffinity: [Int]
    /// Lock all memory (mlockall) so no page fault hits the loop. `loop.realtime.mlockall`.
    public var lockMemory: Bool

    /// The daemon's SUB connects here (the sensor side binds). `io.sensor_endpoint`.
    public var sensorEndpoint: String
    /// The daemon's PUB binds here. `io.publish_endpoint`.
    public var publishEndpoint: String
    /// Topic names (`io.topics.obs`, `.intent`, `.telemetry`, `.status`).
    public var topicObs: String, topicIntent: String, topicTelemetry: String, topicStatus: String
    /// High-water marks (messages). `io.rcv_hwm`, `io.snd_hwm`.
    public var receiveHWM: Int, sendHWM: Int
    /// Frames larger than this are dropped and counted. `io.max_message_bytes`.
    public var maxMessageBytes: Int

    /// The task instruction kept at the head of the context (the attention sinks). `context.instruction`.
    public var instruction: String
    /// Observation ticks kept in the rolling context. `context.window_ticks`.
    public var windowTicks: Int

    /// Meta-controller thresholds (`controller.*`).
    public var thresholds: ControllerThresholds
    /// Watchdog: an observation older than this is stale (`controller.stale_after_ms`; default two periods).
    public var staleAfterMillis: Double

    /// Record every tick to MCAP (`record.enabled`).
    public var recordEnabled: Bool
    /// Folder for recordings (`record.dir`).
    public var recordDir: String

    /// Log level: `debug`, `info`, `warning`, `error` (`log.level`).
    public var logLevel: String
    /// Status heartbeat interval (`log.status_interval_ms`).
    public var statusIntervalMillis: Int
    /// Decide as soon as a fresh frame arrives instead of at the next tick (`loop.decide_on_arrival`,
    /// default true): the loop waits on the sensor socket until the next deadline and runs the
    /// model at once for a new frame, at most once per period (a frame too close to the next
    /// deadline makes the tick run early); the fixed tick keeps the watchdog, overrun policy and
    /// status (docs/protocol.md, "Decide on arrival"). false: frames wait for the next tick.
    public var decideOnArrival: Bool = true
    /// While it waits between decisions the loop reads the model's weights and KV cache back into
    /// the CPU caches every `loop.keep_warm_us` µs (default 1000; 0 = never): on a machine shared
    /// with other work they leave the caches within milliseconds, and the first decision after a
    /// wait then runs from DRAM (measured: `mgpt bench loop --idle-us`, docs/performance.md).
    public var keepWarmMicros: Int = 1000
    /// Spacing of the frames the model was trained on (`context.frame_interval_ms`, default 100 ms:
    /// the sim's 10 Hz decisions). Frames closer than half of it are counted (`frames_too_fast`).
    public var frameIntervalMillis: Double = 100

    /// The loop period in nanoseconds.
    public var periodNanos: UInt64 { UInt64((1e9 / rateHz).rounded()) }

    /// Reads and validates `path`; relative paths inside resolve against the file's folder.
    public static func load(path: String) throws -> RobotConfig {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigError(file: path, path: "", message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(data: data, file: path)
    }

    /// Validates config JSON; `file` names it in errors and anchors relative paths.
    public static func parse(data: Data, file: String) throws -> RobotConfig {
        let r = try ConfigReader(file: file, data: data)
        let base = URL(fileURLWithPath: file).deletingLastPathComponent()
        func resolve(_ p: String) -> String {
            p.hasPrefix("/") ? p : base.appendingPathComponent(p).standardizedFileURL.path
        }
        let modelPath = resolve(try r.string("model.path"))
        let modelID = try r.string("model.id", default: URL(fileURLWithPath: modelPath).lastPathComponent)
        let exitLayer = try r.optionalInt("model.early_exit_layer", range: 1...1000)
        let exitEntropy = try r.optionalNumber("model.exit_entropy", range: 0...20).map { Float($0) }
        let rate = try r.number("loop.rate_hz", range: 1...2000)
        let periodUs = Int(1e6 / rate)
        let budget = try r.int("loop.budget_us", default: periodUs, range: 10...10_000_000)
        if budget > periodUs {
            throw r.fail("loop.budget_us", "expected at most the period (\(periodUs) µs at \(rate) Hz), found \(budget)")
        }
        let overrun = try r.string("loop.overrun_policy", default: "count", oneOf: ["count", "fallback", "early_exit"])
        let prio = try r.int("loop.realtime.priority", default: 0, range: 0...99)
        let cpus = try r.intArray("loop.realtime.cpu_affinity", default: [])
        let lock = try r.bool("loop.realtime.mlockall", default: false)
        let onArrival = try r.bool("loop.decide_on_arrival", default: true)
        let keepWarm = try r.int("loop.keep_warm_us", default: 1000, range: 0...10_000_000)

        func endpoint(_ key: String, _ d: String) throws -> String {
            let e = try r.string(key, default: d)
            guard ["tcp://", "ipc://", "inproc://"].contains(where: { e.hasPrefix($0) }) else {
                throw r.fail(key, "expected a ZeroMQ endpoint (tcp://host:port, ipc://path), found \"\(e)\"")
            }
            return e
        }
        let sensor = try endpoint("io.sensor_endpoint", "tcp://127.0.0.1:5555")
        let publish = try endpoint("io.publish_endpoint", "tcp://127.0.0.1:5556")
        func topic(_ k: String) throws -> String {
            let t = try r.string("io.topics.\(k)", default: k)
            guard !t.isEmpty, t.utf8.count <= 32 else { throw r.fail("io.topics.\(k)", "expected 1 to 32 bytes, found \"\(t)\"") }
            return t
        }
        let (tObs, tIntent, tTel, tStatus) = (try topic("obs"), try topic("intent"), try topic("telemetry"), try topic("status"))
        let rcvHWM = try r.int("io.rcv_hwm", default: 100, range: 1...1_000_000)
        let sndHWM = try r.int("io.snd_hwm", default: 1000, range: 1...1_000_000)
        let maxBytes = try r.int("io.max_message_bytes", default: 16_384, range: 256...16_777_216)

        let instruction = try r.string("context.instruction")
        guard !instruction.isEmpty, instruction.utf8.count <= 512 else {
            throw r.fail("context.instruction", "expected 1 to 512 bytes of text, found \(instruction.utf8.count) bytes")
        }
        let window = try r.int("context.window_ticks", default: 8, range: 1...1000)
        let frameInterval = try r.number("context.frame_interval_ms", default: 100, range: 1...60_000)

        let t = try ControllerThresholds.read(r)
        let stale = try r.number("controller.stale_after_ms", default: 2000 / rate, range: 0.1...60_000)

        let recordEnabled = try r.bool("record.enabled", default: true)
        let recordDir = resolve(try r.string("record.dir", default: "recordings"))
        let level = try r.string("log.level", default: "info", oneOf: ["debug", "info", "warning", "error"])
        let statusMs = try r.int("log.status_interval_ms", default: 1000, range: 10...3_600_000)
        try r.rejectUnknownKeys()

        var config = RobotConfig(modelPath: modelPath, modelID: modelID, earlyExitLayer: exitLayer, exitEntropy: exitEntropy, rateHz: rate, budgetMicros: budget,
                           overrunPolicy: overrun, realtimePriority: prio, cpuAffinity: cpus, lockMemory: lock,
                           sensorEndpoint: sensor, publishEndpoint: publish, topicObs: tObs, topicIntent: tIntent,
                           topicTelemetry: tTel, topicStatus: tStatus, receiveHWM: rcvHWM, sendHWM: sndHWM,
                           maxMessageBytes: maxBytes, instruction: instruction, windowTicks: window,
                           thresholds: t, staleAfterMillis: stale, recordEnabled: recordEnabled,
                           recordDir: recordDir, logLevel: level, statusIntervalMillis: statusMs,
                           decideOnArrival: onArrival, keepWarmMicros: keepWarm, frameIntervalMillis: frameInterval)
        config.sourceFile = URL(fileURLWithPath: file).standardizedFileURL.path
        config.sourceJSON = String(decoding: data, as: UTF8.self)
        return config
    }
}
