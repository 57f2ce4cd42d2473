import Foundation
import MCAP
import MiniGPT
import Testing
import Wire
@testable import Runtime

/// Early exit in the daemon: the anytime decision after an overrun (`loop.overrun_policy`
/// `"early_exit"`) and the confidence exit (`model.exit_entropy`).
@Suite(.serialized) struct EarlyExitDaemonTests {
    /// Keeps each test's temporary folders alive until the test ends.
    final class Folders { var all: [TempDir] = [] }
    let folders = Folders()

    func setUp(exits: [Int], extra: [String: Any]) throws -> (TempDir, RobotConfig) {
        let dir = try TempDir()
        folders.all.append(dir)
        try makeModelFolder(dir.url.appendingPathComponent("model"), earlyExitLayers: exits)
        return (dir, try RobotConfig.load(path: try writeConfig(dir, model: "model", extra: extra)))
    }

    func core(_ config: RobotConfig) throws -> DecisionCore {
        let (m, tok) = try Daemon.loadModel(config.modelPath)
        return try DecisionCore(config: config, model: m, tokenizer: tok, startedAt: 0)
    }

    func expectConfigError(_ config: RobotConfig, path: String) {
        do {
            _ = try core(config)
            Issue.record("accepted a config that should fail at \(path)")
        } catch let e as ConfigError {
            #expect(e.path == path, "\(e)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func exitSettingsTheModelCannotHonourAreConfigErrors() throws {
        // No early_exit_layers in the model and no explicit depth: the policy has nothing to run.
        let (_, a) = try setUp(exits: [], extra: ["loop": ["overrun_policy": "early_exit"]])
        expectConfigError(a, path: "loop.overrun_policy")
        // The test model has 2 layers: an anytime depth must be 1.
        let (_, b) = try setUp(exits: [], extra: ["model": ["path": "model", "early_exit_layer": 2]])
        expectConfigError(b, path: "model.early_exit_layer")
        let (_, c) = try setUp(exits: [], extra: ["model": ["path": "model", "exit_entropy": 1.0]])
        expectConfigError(c, path: "model.exit_entropy")
        // An explicit depth works without early_exit_layers in the model.
        let (_, d) = try setUp(exits: [], extra: ["model": ["path": "model", "early_exit_layer": 1],
                                                  "loop": ["overrun_policy": "early_exit"]])
        #expect(try core(d).anytimeLayer == 1)
    }

    @Test func anAnytimeTickRunsTheShallowDepthAndCountsIt() throws {
        let (_, config) = try setUp(exits: [1], extra: ["loop": ["overrun_policy": "early_exit"]])
        let c = try core(config)
        #expect(c.anytimeLayer == 1)
        try frameBytes(1).withUnsafeBytes { _ = c.observe($0, truncated: false, receivedAt: 10) }
        let full = c.tick(now: 20)
        #expect(full.ranModel && full.exitLayer == 2 && !full.anytime)
        try frameBytes(2).withUnsafeBytes { _ = c.observe($0, truncated: false, receivedAt: 30) }
        let shallow = c.tick(now: 40, mode: .anytime)
        #expect(shallow.ranModel && shallow.exitLayer == 1 && shallow.anytime)
        #expect(c.counters.anytime == 1)
        // Without a fresh frame an anytime tick only repeats the decision (not counted, not anytime).
        let repeated = c.tick(now: 50, mode: .anytime)
        #expect(!repeated.ranModel && !repeated.anytime && c.counters.anytime == 1)
        // The shallow answer differs from what the full model says on the same context.
        let (_, plain) = try setUp(exits: [1], extra: [:])
        let c2 = try core(plain)
        try frameBytes(1).withUnsafeBytes { _ = c2.observe($0, truncated: false, receivedAt: 10) }
        _ = c2.tick(now: 20)
        try frameBytes(2).withUnsafeBytes { _ = c2.observe($0, truncated: false, receivedAt: 30) }
        let deep = c2.tick(now: 40)
        #expect(deep.exitLayer == 2)
        #expect(deep.proposal.entropy.bitPattern != shallow.proposal.entropy.bitPattern)
    }

    @Test func aConfidenceExitStopsEarlyOnlyWhenConfident() throws {
        // A huge threshold: every decision exits at the first listed layer; a zero one: never.
        let (_, loose) = try setUp(exits: [1], extra: ["model": ["path": "model", "exit_entropy": 20.0]])
        let (_, strict) = try setUp(exits: [1], extra: ["model": ["path": "model", "exit_entropy": 0.0]])
        for (config, depth) in [(loose, 1), (strict, 2)] {
            let c = try core(config)
            for i in 0..<5 {
                try frameBytes(i).withUnsafeBytes { _ = c.observe($0, truncated: false, receivedAt: UInt64(i) * 100) }
                #expect(c.tick(now: UInt64(i) * 100 + 50).exitLayer == depth)
            }
            #expect(c.counters.earlyExits == (depth == 1 ? 5 : 0))
        }
    }

    /// Anytime ticks and confidence exits are recorded (`exit_layer`, `anytime`) and replay bit for bit.
    @Test func earlyExitSessionsReplayBitIdentically() throws {
        let (dir, base) = try setUp(exits: [1], extra: ["loop": ["overrun_policy": "early_exit"],
                                                        "model": ["path": "model", "exit_entropy": 4.0]])
        var config = base
        config.sensorEndpoint = "inproc://ee-obs"
        config.publishEndpoint = "inproc://ee-out"
        let c = try core(config)
        let path = dir.path("ee.mcap")
        let h = try LoopHarness(config: config, core: c, recording: path)
        for i in 0..<60 {
            try h.feed(try frameBytes(i))
            usleep(300)
            let now = monotonicNanos()
            h.loop.tickOnce(deadline: now, woke: now, mode: i % 4 == 1 ? .anytime : .normal)
        }
        h.recorder.finish()
        #expect(c.counters.anytime > 5)
        let report = try Replay.run(path: path, config: config)
        #expect(report.ticks == 60)
        #expect(report.identical == report.ticks, "\(report.firstDiff.map { "\($0.tick): \($0.what)" } ?? "")")
        // The recording carries the fields.
        let reader = try MCAPReader(path: path)
        let texts = reader.messages.map { String(decoding: $0.data, as: UTF8.self) }
        #expect(texts.contains { $0.contains("\"anytime\":true") && $0.contains("\"exit_layer\":1") })
    }
}
