import CAllocCounter
import Foundation
import MCAP
import MiniGPT
import Observation
import Testing
import Wire
@testable import Cognition
@testable import Runtime

@Suite(.serialized) struct DecisionCoreTests {
    let dir: TempDir
    let config: RobotConfig

    init() throws {
        dir = try TempDir()
        try makeModelFolder(dir.url.appendingPathComponent("model"))
        config = try RobotConfig.load(path: try writeConfig(dir, model: "model"))
    }

    func core(at t0: UInt64 = 1_000_000_000) throws -> DecisionCore {
        let (m, tok) = try Daemon.loadModel(config.modelPath)
        return try DecisionCore(config: config, model: m, tokenizer: tok, startedAt: t0)
    }

    @Test func withoutFramesTheWatchdogPublishesTheFallback() throws {
        let c = try core()
        let r = c.tick(now: 1_000_000_000)
        #expect(!r.ranModel && r.decision.reason == .noSensor && r.decision.gated && r.decision.confidence == 0)
        #expect(r.decision.intent == .stop)
    }

    @Test func aFrameRunsTheModelAndStaleFramesTripTheWatchdog() throws {
        let c = try core()
        let t0: UInt64 = 1_000_000_000
        let bytes = try frameBytes(1)
        bytes.withUnsafeBytes { #expect(c.observe($0, truncated: false, receivedAt: t0) == .accepted) }
        let r1 = c.tick(now: t0 + 1_000_000)
        #expect(r1.ranModel && r1.tokensIn > 0 && r1.observationSeq == 1)
        #expect(r1.proposal.entropy >= 0 && r1.proposal.grammarMass > 0 && r1.proposal.grammarMass <= 1)
        // Next tick within the stale limit (20 ms at 100 Hz): repeat, no model run.
        let r2 = c.tick(now: t0 + 11_000_000)
        #expect(!r2.ranModel && r2.decision == r1.decision)
        // Past the limit: fallback with confidence 0 within two periods.
        let r3 = c.tick(now: t0 + 21_000_000)
        #expect(r3.decision.reason == .staleSensor && r3.decision.confidence == 0 && r3.decision.gated)
        #expect(c.counters.watchdog == 1)
    }

    @Test func badFramesAreDroppedAndCountedNeverFatal() throws {
        let c = try core()
        let bad: [[UInt8]] = [Array("{".utf8), Array("not json".utf8), [0xff, 0xfe, 0x00],
                              Array(#"{"v":2,"seq":1}"#.utf8), Array(#"{"v":1}"#.utf8), Array(#"{"v":3}"#.utf8), []]
        for b in bad { b.withUnsafeBytes { if case .accepted = c.observe($0, truncated: false, receivedAt: 1) { Issue.record("accepted \(b)") } } }
        let big = [UInt8](repeating: 0x20, count: 10)
        big.withUnsafeBytes { #expect(c.observe($0, truncated: true, receivedAt: 1) == .oversized) }
        #expect(c.counters.framesMalformed == UInt64(bad.count) && c.counters.framesOversized == 1)
        #expect(c.counters.framesAccepted == 0)
        #expect(c.tick(now: 2).decision.reason == .noSensor)
    }

    @Test func sameInputsGiveBitIdenticalDecisions() throws {
        func run() throws -> [TickResult] {
            let c = try core()
            var out: [TickResult] = []
            for i in 0..<40 {
                let t = UInt64(1_000_000_000 + i * 10_000_000)
                try frameBytes(i).withUnsafeBytes { _ = c.observe($0, truncated: false, receivedAt: t) }
                out.append(c.tick(now: t + 500_000))
            }
            return out
        }
        let a = try run(), b = try run()
        for (x, y) in zip(a, b) {
            #expect(x.decision == y.decision && x.proposal == y.proposal
                    && x.headDisagreement.bitPattern == y.headDisagreement.bitPattern)
        }
    }

    @Test func theContextWindowStaysBoundedForever() throws {
        let c = try core()
        let sinks = c.session.position
        var maxPos = 0
        for i in 0..<600 {
            let t = UInt64(1_000_000_000 + i * 10_000_000)
            try frameBytes(i).withUnsafeBytes { _ = c.observe($0, truncated: false, receivedAt: t) }
            maxPos = max(maxPos, c.tick(now: t).contextPositions)
        }
        #expect(maxPos <= sinks + config.windowTicks * (ObservationEncoder.maxTokensPerFrame + 1))
        #expect(c.counters.evictions > 500)
    }

    /// Holds for optimised builds, which is what runs on a robot: unoptimised (debug) Swift boxes
    /// generic and closure contexts on the heap (≈ 17 mallocs per tick here), so under `swift test`
    /// in debug this test only reports the count; `scripts/test.sh` runs the release check
    /// (`mgpt bench loop`, which fails on any allocation of ours) on every CI run.
    @Test func aSteadyStateTickAllocatesNothing() throws {
        guard mgac_supported() != 0 else { Issue.record("malloc counter unsupported on this platform"); return }
        let c = try core()
        let frames = try (0..<8).map(frameBytes)
        for i in 0..<50 {  // warm up: fill the window so eviction runs too
            frames[i % 8].withUnsafeBytes { _ = c.observe($0, truncated: false, receivedAt: UInt64(i)) }
            _ = c.tick(now: UInt64(i))
        }
        // Thread-local count: other suites allocate in parallel on other threads.
        mgac_enable(1)
        let before = mgac_thread_mallocs()
        for i in 50..<250 {
            frames[i % 8].withUnsafeBytes { _ = c.observe($0, truncated: false, receivedAt: UInt64(i)) }
            _ = c.tick(now: UInt64(i))
        }
        let n = mgac_thread_mallocs() - before
        mgac_enable(0)
        #if DEBUG
        print("debug build: \(n) allocations in 200 ticks (the release check is `mgpt bench loop`)")
        #else
        #expect(n == 0, "\(n) allocations in 200 ticks")
        #endif
    }
}

@Suite(.serialized) struct RecordReplayTests {
    /// Runs the real loop tick (sockets, formatting, recorder) for `ticks` ticks, then replays.
    @Test func aRecordedSessionReplaysBitIdentically() throws {
        let dir = try TempDir()
        try makeModelFolder(dir.url.appendingPathComponent("model"))
        var config = try RobotConfig.load(path: try writeConfig(dir, model: "model"))
        config.sensorEndpoint = "inproc://rr-obs"
        config.publishEndpoint = "inproc://rr-out"
        let (m, tok) = try Daemon.loadModel(config.modelPath)
        let core = try DecisionCore(config: config, model: m, tokenizer: tok, startedAt: monotonicNanos())
        let path = dir.path("session.mcap")
        let h = try LoopHarness(config: config, core: core, recording: path)
        for i in 0..<120 {
            // Some ticks get no frame (watchdog / repeat), some two, some a malformed one.
            if i % 7 != 3 { try h.feed(try frameBytes(i)) }
            if i % 11 == 5 { try h.feed(Array("{garbage".utf8)) }
            if i % 13 == 0 { try h.feed(try frameBytes(1000 + i)) }
            usleep(i % 29 == 0 ? 25_000 : 300)  // now and then, long enough to go stale
            let now = monotonicNanos()
            h.loop.tickOnce(deadline: now, woke: now)
        }
        h.recorder.finish()
        let reader = try MCAPReader(path: path)
        #expect(!reader.truncated)
        #expect(reader.messages.count >= 120)
        let report = try Replay.run(path: path, config: config)
        #expect(report.ticks == 120)
        #expect(report.identical == report.ticks, "\(report.firstDiff.map { "\($0.tick): \($0.what)" } ?? "")")
        #expect(core.counters.framesMalformed > 0 && core.counters.watchdog > 0)

        // A killed daemon: cut the file mid-way; replay what is complete.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = dir.path("cut.mcap")
        try data.prefix(data.count * 2 / 3).write(to: URL(fileURLWithPath: cut))
        let partial = try Replay.run(path: cut, config: config)
        #expect(partial.truncated && partial.ticks > 10 && partial.identical == partial.ticks)
    }
}
