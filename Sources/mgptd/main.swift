import ArgumentParser
import Foundation
import MiniGPT
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// `mgptd --config robot.json`: the real-time decision daemon.
struct MGPTD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mgptd",
        abstract: "Run the MiniGPT decision loop: observations in over ZeroMQ, gated intents out.",
        discussion: """
        Exit codes: 0 clean stop, 65 bad model data, 66 model folder missing, 69 socket error, \
        73 recording cannot be created, 78 invalid robot.json. Signals: SIGTERM/SIGINT stop after \
        the current tick; SIGHUP reloads the controller thresholds from the config file.
        """,
        version: "0.1.0")

    @Option(help: "The robot.json configuration.") var config: String
    @Flag(help: "Validate the configuration (and the model folder it names) and exit.") var checkConfig = false
    @Option(help: "Stop after this many seconds (default: run until SIGTERM/SIGINT).") var seconds: Double?
    @Flag(help: "Print only warnings and errors.") var quiet = false

    func run() throws {
        let log: (String) -> Void = { line in if !quiet { FileHandle.standardError.write(Data("mgptd: \(line)\n".utf8)) } }
        func die(_ code: Int32, _ message: String) -> ExitCode {
            FileHandle.standardError.write(Data("mgptd: error: \(message)\n".utf8))
            return ExitCode(code)
        }
        // MINIGPT_KERNELS is configuration too: a refused value exits 78 like a bad robot.json.
        let kernels: String
        do { kernels = try KernelPath.configure() } catch { throw die(DaemonExit.config, "\(error)") }
        let cfg: RobotConfig
        do { cfg = try RobotConfig.load(path: config) } catch { throw die(DaemonExit.config, "\(error)") }
        if checkConfig {
            do { _ = try Daemon.loadModel(cfg.modelPath) } catch let e as DaemonError { throw die(e.code, e.message) }
            print("\(config): ok (model \(cfg.modelPath), \(cfg.rateHz) Hz, budget \(cfg.budgetMicros) µs, sensor \(cfg.sensorEndpoint), publish \(cfg.publishEndpoint))")
            return
        }
        // Block the signals in every thread; this thread takes them synchronously with sigtimedwait,
        // so no handler ever runs on the real-time thread.
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, s) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let daemon: Daemon
        do { daemon = try Daemon(config: cfg, log: log) } catch let e as DaemonError { throw die(e.code, e.message) }
        log("kernels \(kernels) (this CPU supports \(KernelPath.supported.joined(separator: ", ")); MINIGPT_KERNELS forces one)")
        log("loop \(cfg.rateHz) Hz (period \(cfg.periodNanos / 1000) µs, budget \(cfg.budgetMicros) µs, overrun policy \(cfg.overrunPolicy), \(cfg.decideOnArrival ? "decides on frame arrival" : "decides at ticks only")); sensor SUB \(cfg.sensorEndpoint) topic \"\(cfg.topicObs)\"; PUB \(cfg.publishEndpoint)")
        if let r = daemon.recorder { log("recording to \(r.path)") }
        // The soak's release-build check of the loop thread (scripts/soak-daemon.sh): count every
        // allocation the loop thread makes and report it at the stop (`loop_allocs=`, 0 expected).
        let countAllocations = ProcessInfo.processInfo.environment["MGPTD_COUNT_ALLOCATIONS"] == "1" && DecisionLoop.allocationCountingSupported
        if countAllocations { DecisionLoop.countAllocations(true) }
        daemon.start()
        usleep(20_000)
        for line in daemon.loop.setupReport { log(line) }

        let started = Date()
        var lastReport = Date()
        var ts = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        loop: while true {
            let sig = sigtimedwait(&signals, nil, &ts)
            switch sig {
            case SIGTERM, SIGINT:
                log("signal \(sig == SIGTERM ? "SIGTERM" : "SIGINT"): stopping after the current tick")
                break loop
            case SIGHUP:
                do {
                    let fresh = try RobotConfig.load(path: config)
                    daemon.loop.reload(fresh.thresholds, json: fresh.sourceJSON)
                    log("SIGHUP: controller thresholds reloaded from \(config)")
                    if daemon.recorder != nil && fresh.sourceJSON.utf8.count > cfg.maxMessageBytes {
                        log("SIGHUP: the config (\(fresh.sourceJSON.utf8.count) bytes) exceeds io.max_message_bytes \(cfg.maxMessageBytes): the recording cannot hold it, so a replay of this session will use the old thresholds from here on")
                    }
                } catch {
                    log("SIGHUP: kept the old thresholds; \(error)")
                }
            default:
                break
            }
            if let seconds, Date().timeIntervalSince(started) >= seconds { break loop }
            if Date().timeIntervalSince(lastReport) >= 10 {
                lastReport = Date()
                let c = daemon.loop.core.counters
                log("ticks=\(daemon.loop.ticks) decisions=\(c.ticks) on_arrival=\(daemon.loop.arrivalDecisions) model_runs=\(c.modelRuns) frames=\(c.framesAccepted) malformed=\(c.framesMalformed) oversized=\(c.framesOversized) gated=\(c.gated) watchdog=\(c.watchdog) overruns=\(c.overruns) deadline_misses=\(c.deadlineMisses) max_tick_us=\(daemon.loop.maxTickNanos / 1000)")
            }
        }
        daemon.stop()
        let c = daemon.loop.core.counters
        log("stopped: ticks=\(daemon.loop.ticks) decisions=\(c.ticks) on_arrival=\(daemon.loop.arrivalDecisions) frames=\(c.framesAccepted) malformed=\(c.framesMalformed) oversized=\(c.framesOversized) overruns=\(c.overruns) deadline_misses=\(c.deadlineMisses) max_tick_us=\(daemon.loop.maxTickNanos / 1000) publish_dropped=\(daemon.loop.publishDropped) publish_delay_p50_us=\(daemon.loop.publisher.queueDelayMicros(percentile: 50).map { "\($0)" } ?? "n/a") publish_delay_p99_us=\(daemon.loop.publisher.queueDelayMicros(percentile: 99).map { "\($0)" } ?? "n/a") loop_allocs=\(countAllocations ? "\(daemon.loop.loopThreadAllocations)" : "n/a")\(daemon.recorder.map { " recording=\($0.path)" } ?? "")")
    }
}

MGPTD.main()
