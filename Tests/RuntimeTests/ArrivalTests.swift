import CAllocCounter
import Foundation
import MCAP
import MiniGPT
import Testing
import Wire
@testable import Runtime

/// Decide on arrival (`loop.decide_on_arrival`) and the publisher thread (issue 11, item 5): the
/// live loop thread with real libzmq sockets, in-process and as the built `mgptd`.
@Suite(.serialized) struct ArrivalTests {
    // MARK: configuration

    func configError(_ json: String) -> String {
        do {
            _ = try RobotConfig.parse(data: Data(json.utf8), file: "/etc/robot.json")
            return "no error"
        } catch { return "\(error)" }
    }

    @Test func decideOnArrivalIsValidatedAndOnByDefault() throws {
        let common = #""model":{"path":"m"},"context":{"instruction":"go"}"#
        let on = try RobotConfig.parse(data: Data("{\(common),\"loop\":{\"rate_hz\":100}}".utf8), file: "/x/robot.json")
        #expect(on.decideOnArrival)
        let off = try RobotConfig.parse(data: Data("{\(common),\"loop\":{\"rate_hz\":100,\"decide_on_arrival\":false}}".utf8), file: "/x/robot.json")
        #expect(!off.decideOnArrival)
        for bad in ["\"yes\"", "1", "null", "[]"] {
            let e = configError("{\(common),\"loop\":{\"rate_hz\":100,\"decide_on_arrival\":\(bad)}}")
            #expect(e.hasPrefix("/etc/robot.json: loop.decide_on_arrival: expected true or false"), "\(bad) → \(e)")
        }
    }

    @Test func mgptdExits78OnAWrongTypeNamingTheKey() throws {
        let mgptd = try DaemonFaultTests.binary("mgptd")
        let dir = try TempDir()
        try makeModelFolder(dir.url.appendingPathComponent("model"))
        let cfg = try writeConfig(dir, model: "model", extra: ["loop": ["rate_hz": 100, "decide_on_arrival": "yes"]])
        let check = try Child(mgptd, ["--config", cfg, "--check-config"])
        #expect(check.wait(seconds: 30) == 78)
        #expect(check.stderr.contains("loop.decide_on_arrival") && check.stderr.contains("expected true or false"), "\(check.stderr)")
    }

    // MARK: the live loop thread, in-process

    /// The daemon's loop thread (`DecisionLoop.start`) on inproc sockets: a feeder PUB for `obs`,
    /// an observer SUB on everything the loop publishes, a recording.
    final class LiveLoop {
        let harness: LoopHarness
        let observer: ZMQSocket
        let core: DecisionCore
        var loop: DecisionLoop { harness.loop }
        var recorder: Recorder { harness.recorder }

        init(config: RobotConfig, recording: String) throws {
            let (m, tok) = try Daemon.loadModel(config.modelPath)
            core = try DecisionCore(config: config, model: m, tokenizer: tok, startedAt: monotonicNanos())
            harness = try LoopHarness(config: config, core: core, recording: recording, sendHWM: 100_000)
            observer = try ZMQSocket(context: harness.ctx, type: .sub)
            try observer.setReceiveHWM(100_000)
            try observer.subscribe("")
            try observer.connect(config.publishEndpoint)
        }

        func feed(_ payload: [UInt8]) throws { try harness.feed(payload) }

        /// Stops the loop (final status through the publisher thread), closes the recording.
        func stop() {
            loop.requestStop()
            loop.join()
            recorder.finish()
        }

        /// Everything the observer received, as (topic, JSON object).
        func received() throws -> [(String, [String: Any])] {
            var out: [(String, [String: Any])] = []
            while let parts = try observer.receive(timeoutMs: 300) {
                guard parts.count == 2, let obj = try JSONSerialization.jsonObject(with: Data(parts[1])) as? [String: Any] else { continue }
                out.append((String(decoding: parts[0], as: UTF8.self), obj))
            }
            return out
        }
    }

    func liveConfig(_ dir: TempDir, _ name: String, rate: Int = 50) throws -> RobotConfig {
        try makeModelFolder(dir.url.appendingPathComponent("model"))
        var config = try RobotConfig.load(path: try writeConfig(dir, model: "model", extra: [
            "loop": ["rate_hz": rate, "budget_us": 1_000_000 / rate],
            "log": ["status_interval_ms": 100],
        ]))
        config.sensorEndpoint = "inproc://\(name)-obs"
        config.publishEndpoint = "inproc://\(name)-out"
        return config
    }

    /// Feeds frames at random moments (most between ticks), garbage now and then and one pause
    /// long enough for the watchdog, while the real loop thread runs; `during` sees the loop.
    func runLive(_ live: LiveLoop, seconds: Double, garbage: Bool = true) throws {
        // Slow joiner: resend the first frame until the loop accepted one.
        var i = 0
        let joinBy = Date().addingTimeInterval(5)
        while live.core.counters.framesAccepted == 0 && Date() < joinBy {
            try live.feed(try frameBytes(i))
            usleep(5_000)
        }
        let end = Date().addingTimeInterval(seconds)
        var paused = false
        while Date() < end {
            i += 1
            try live.feed(try frameBytes(i))
            if garbage && i % 17 == 0 { try live.feed(Array("{garbage".utf8)) }
            if !paused && Date().addingTimeInterval(seconds / 2) > end {
                paused = true
                usleep(80_000)  // > controller.stale_after_ms (two periods): the watchdog trips
            }
            usleep(UInt32.random(in: 3_000...30_000))
        }
    }

    @Test("live loop: frames decided on arrival, the recording replays bit for bit, the final status goes out")
    func liveLoopRecordsAndReplaysArrivalDecisions() throws {
        let dir = try TempDir()
        let config = try liveConfig(dir, "arrival-replay")
        let path = dir.path("live.mcap")
        let live = try LiveLoop(config: config, recording: path)
        live.loop.start()
        try runLive(live, seconds: 2.0)
        live.stop()
        let messages = try live.received()
        let intents = messages.filter { $0.0 == "intent" }.map(\.1)
        let statuses = messages.filter { $0.0 == "status" }.map(\.1)
        // Arrival decisions happened, the fixed tick went on (watchdog and repeats), nothing dropped.
        #expect(live.loop.arrivalDecisions > 20, "only \(live.loop.arrivalDecisions) arrival decisions")
        #expect(intents.contains { $0["on_arrival"] as? Bool == true && $0["fresh"] as? Bool == true })
        #expect(intents.contains { $0["on_arrival"] as? Bool == false && $0["fresh"] as? Bool == false })
        #expect(live.core.counters.watchdog > 0 && live.core.counters.framesMalformed > 0)
        #expect(live.loop.ticks >= 70, "\(live.loop.ticks) ticks in ≈ 2.1 s at 50 Hz")
        #expect(live.core.counters.modelRuns <= live.loop.ticks + 1, "at most one model run per period")
        #expect(live.loop.publishDropped == 0 && live.recorder.dropped == 0)
        // The final status left through the publisher thread during the stop.
        let final = try #require(statuses.last)
        #expect(final["state"] as? String == "stopped", "\(final)")
        #expect(final["decisions"] as? Int == Int(live.core.counters.ticks) && final["ticks"] as? Int == Int(live.loop.ticks))
        #expect(final["arrival_decisions"] as? Int == Int(live.loop.arrivalDecisions), "\(final)")
        #expect(final["publish_dropped"] as? Int == 0 && final["publish_queue_full"] as? Int == 0)
        #expect(intents.count >= Int(live.core.counters.ticks) - 3, "\(intents.count) intents for \(live.core.counters.ticks) decisions")

        // Every decision — tick, arrival, early tick, watchdog — replays bit for bit.
        let report = try Replay.run(path: path, config: config)
        #expect(report.ticks == Int(live.core.counters.ticks))
        #expect(report.identical == report.ticks, "\(report.firstDiff.map { "\($0.tick): \($0.what)" } ?? "")")
        let recorded = try MCAPReader(path: path).messages.map { String(decoding: $0.data, as: UTF8.self) }
        #expect(recorded.contains { $0.contains("\"on_arrival\":true") })
    }

    /// The loop thread allocates nothing — libzmq included — while the publisher thread sends
    /// everything. Holds for optimised builds (what runs on a robot); a debug build boxes generic
    /// and closure contexts, so under a debug `swift test` the count is only reported (as in
    /// `aSteadyStateTickAllocatesNothing`); `scripts/soak-daemon.sh` checks the release `mgptd`
    /// (`loop_allocs=0`) and `mgpt bench loop` the release tick path.
    @Test func theLoopThreadAllocatesNothingWithThePublisherThreadRunning() throws {
        try #require(mgac_supported() == 1, "allocation counting needs Linux with glibc")
        let dir = try TempDir()
        let config = try liveConfig(dir, "arrival-alloc", rate: 100)
        let live = try LiveLoop(config: config, recording: dir.path("alloc.mcap"))
        mgac_enable(1)
        live.loop.start()
        // No garbage here: under Swift Testing every rejected frame costs one allocation in the test
        // library's willThrow hook (see frameParserIsAllocationFreeInSteadyState); mgptd has none.
        try runLive(live, seconds: 1.5, garbage: false)
        live.stop()
        mgac_enable(0)
        let n = live.loop.loopThreadAllocations
        #expect(live.loop.arrivalDecisions > 10 && live.loop.publisher.sent > 200)
        #if DEBUG
        print("debug build: \(n) allocations on the loop thread in \(live.loop.ticks) ticks (the release checks are mgpt bench loop and soak-daemon.sh)")
        #else
        #expect(n == 0, "\(n) allocations on the loop thread in \(live.loop.ticks) ticks")
        #endif
    }

    // MARK: the built mgptd over ipc://

    /// mgptd at 4 Hz (period 250 ms) with a test feeder and subscriber on private ipc endpoints.
    final class SlowDaemon {
        let dir: TempDir
        let daemon: Child
        let ctx: ZMQContext
        let feeder: ZMQSocket, sub: ZMQSocket
        static let rateHz = 4
        static let period = 1.0 / Double(rateHz)

        init(decideOnArrival: Bool, keepWarmMicros: Int? = nil) throws {
            dir = try TempDir()
            try makeModelFolder(dir.url.appendingPathComponent("model"))
            let obs = "ipc://\(dir.path("obs.ipc"))", out = "ipc://\(dir.path("out.ipc"))"
            let cfg = try writeConfig(dir, model: "model", extra: [
                "loop": ["rate_hz": Self.rateHz, "budget_us": 200_000, "decide_on_arrival": decideOnArrival]
                    .merging(keepWarmMicros.map { ["keep_warm_us": $0] } ?? [:]) { a, _ in a },
                "io": ["sensor_endpoint": obs, "publish_endpoint": out],
                "controller": ["stale_after_ms": 10_000],
                "record": ["enabled": false],
            ])
            ctx = try ZMQContext()
            feeder = try ZMQSocket(context: ctx, type: .pub)
            try feeder.bind(obs)
            sub = try ZMQSocket(context: ctx, type: .sub)
            try sub.subscribe("intent")
            try sub.subscribe("status")
            try sub.connect(out)
            daemon = try Child(try DaemonFaultTests.binary("mgptd"), ["--config", cfg])
        }

        deinit { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }

        func send(_ seq: Int) throws { _ = try feeder.send([Array("obs".utf8), try frameBytes(seq)]) }

        /// The next message on `topic` (others are skipped), with its receive time.
        func next(_ topic: String = "intent", timeout: Double = 3) throws -> (at: Date, json: [String: Any]) {
            let until = Date().addingTimeInterval(timeout)
            while Date() < until {
                guard let parts = try sub.receive(timeoutMs: 100) else { continue }
                guard parts.count == 2, String(decoding: parts[0], as: UTF8.self) == topic,
                      let obj = try JSONSerialization.jsonObject(with: Data(parts[1])) as? [String: Any] else { continue }
                return (Date(), obj)
            }
            throw TestFailure("no \(topic) message within \(timeout) s; daemon stderr:\n\(daemon.stderr)")
        }

        /// Resends frame 0 until an intent answers it (slow joiner both ways).
        func handshake() throws {
            let until = Date().addingTimeInterval(15)
            while Date() < until {
                try send(0)
                if let m = try? next(timeout: 0.1), m.json["obs_seq"] as? Int == 0 { return }
            }
            throw TestFailure("mgptd never answered frame 0; stderr:\n\(daemon.stderr)")
        }

        /// Waits for a fixed-tick intent (not on arrival): the start of a period.
        func waitForTick() throws {
            while true { if try next().json["on_arrival"] as? Bool == false { return } }
        }

        /// Sends frame `seq` and waits for the intent that answers it (fresh, obs_seq == seq);
        /// also returns whether a fixed-tick intent came in between.
        func answer(_ seq: Int) throws -> (seconds: Double, onArrival: Bool, tickBetween: Bool, json: [String: Any]) {
            let t0 = Date()
            try send(seq)
            var tickBetween = false
            while true {
                let m = try next(timeout: 2)
                if m.json["fresh"] as? Bool == true && m.json["obs_seq"] as? Int == seq {
                    return (m.at.timeIntervalSince(t0), m.json["on_arrival"] as? Bool ?? false, tickBetween, m.json)
                }
                if m.json["on_arrival"] as? Bool == false { tickBetween = true }
            }
        }
    }

    @Test("mgptd answers frame N with an intent carrying obs_seq N on arrival, well before the next tick")
    func decisionOnArrivalEndToEnd() throws {
        let d = try SlowDaemon(decideOnArrival: true)
        try d.handshake()
        for seq in 1...5 {
            try d.waitForTick()
            usleep(UInt32.random(in: 20_000...100_000))  // mid-period: the next tick is ≥ 150 ms away
            let a = try d.answer(seq)
            #expect(a.onArrival, "frame \(seq) was not decided on arrival: \(a.json)")
            #expect(!a.tickBetween, "a tick came before the answer to frame \(seq)")
            #expect(a.seconds < SlowDaemon.period / 2, "frame \(seq) answered after \(a.seconds) s (period \(SlowDaemon.period) s)")
            // The next tick repeats that decision (not fresh) and comes later.
            let tick = try d.next()
            #expect(tick.json["on_arrival"] as? Bool == false && tick.json["fresh"] as? Bool == false && tick.json["obs_seq"] as? Int == seq, "\(tick.json)")
            #expect((tick.json["mono_ns"] as? Int ?? 0) > (a.json["mono_ns"] as? Int ?? .max))
        }
        // At most one model run per period: a second frame in the same period waits for the tick.
        try d.waitForTick()
        usleep(20_000)
        let first = try d.answer(100)
        #expect(first.onArrival, "\(first.json)")
        let second = try d.answer(101)
        #expect(!second.onArrival, "the second frame of a period must wait for the tick: \(second.json)")
        #expect(second.seconds > 0.02, "answered after \(second.seconds) s")
        kill(d.daemon.process.processIdentifier, SIGTERM)
        var final: [String: Any] = [:]
        while let m = try? d.next("status", timeout: 3) { final = m.json; if m.json["state"] as? String == "stopped" { break } }
        #expect(d.daemon.wait(seconds: 10) == 0, "stderr:\n\(d.daemon.stderr)")
        #expect(final["state"] as? String == "stopped", "\(final)")
        #expect((final["arrival_decisions"] as? Int ?? 0) >= 6 && (final["arrivals_deferred"] as? Int ?? 0) >= 1, "\(final)")
        #expect(final["overruns"] as? Int == 0 && final["deadline_misses"] as? Int == 0, "\(final)")
        // loop.keep_warm_us (default 1 ms): the waits between decisions are sliced into keep-warm
        // passes — over these ≥ 2 s hundreds of them, at most one per interval.
        let uptime = final["uptime_ms"] as? Int ?? 0, passes = final["warm_passes"] as? Int ?? -1
        #expect(passes > uptime / 10 && passes <= uptime + 10, "warm_passes \(passes) in \(uptime) ms: \(final)")
    }

    @Test("loop.keep_warm_us: 1000 by default, 0 turns the passes off, other values are refused naming the key")
    func keepWarmConfig() throws {
        let common = #""model":{"path":"m"},"context":{"instruction":"go"}"#
        #expect(try RobotConfig.parse(data: Data("{\(common),\"loop\":{\"rate_hz\":100}}".utf8), file: "/x/robot.json").keepWarmMicros == 1000)
        #expect(try RobotConfig.parse(data: Data("{\(common),\"loop\":{\"rate_hz\":100,\"keep_warm_us\":0}}".utf8), file: "/x/robot.json").keepWarmMicros == 0)
        for bad in ["-1", "\"fast\"", "1.5", "20000000"] {
            let e = configError("{\(common),\"loop\":{\"rate_hz\":100,\"keep_warm_us\":\(bad)}}")
            #expect(e.hasPrefix("/etc/robot.json: loop.keep_warm_us: expected"), "\(bad) → \(e)")
        }
    }

    @Test("with loop.keep_warm_us 0 the loop makes no keep-warm pass (and still decides on arrival)")
    func keepWarmOff() throws {
        let d = try SlowDaemon(decideOnArrival: true, keepWarmMicros: 0)
        try d.handshake()
        try d.waitForTick()
        usleep(20_000)
        #expect(try d.answer(1).onArrival)
        kill(d.daemon.process.processIdentifier, SIGTERM)
        var final: [String: Any] = [:]
        while let m = try? d.next("status", timeout: 3) { final = m.json; if m.json["state"] as? String == "stopped" { break } }
        #expect(d.daemon.wait(seconds: 10) == 0, "stderr:\n\(d.daemon.stderr)")
        #expect(final["warm_passes"] as? Int == 0, "\(final)")
    }

    @Test("with loop.decide_on_arrival false, frames wait for the next tick")
    func decideAtTicksOnly() throws {
        let d = try SlowDaemon(decideOnArrival: false)
        try d.handshake()
        for seq in 1...3 {
            try d.waitForTick()
            usleep(20_000)
            let a = try d.answer(seq)
            #expect(!a.onArrival && a.seconds > 0.1, "frame \(seq): \(a.seconds) s, \(a.json)")
        }
        kill(d.daemon.process.processIdentifier, SIGTERM)
        #expect(d.daemon.wait(seconds: 10) == 0, "stderr:\n\(d.daemon.stderr)")
    }
}
