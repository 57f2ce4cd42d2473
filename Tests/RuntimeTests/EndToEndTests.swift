import Foundation
import Testing
@testable import Runtime

/// The build products folder (mgptd, mgpt-sim and mgpt sit beside the test executable).
let productsDir: URL = {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    for candidate in [exe.deletingLastPathComponent(), exe.deletingLastPathComponent().deletingLastPathComponent()]
        where FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent("mgptd").path) {
        return candidate
    }
    return packageRoot.appendingPathComponent(".build/debug")
}()

/// A child process with captured output.
final class Child: @unchecked Sendable {
    let process = Process()
    let out = Pipe(), err = Pipe()
    private var outData = Data(), errData = Data()
    private let lock = NSLock()

    init(_ executable: String, _ args: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        process.currentDirectoryURL = packageRoot
        process.standardOutput = out
        process.standardError = err
        out.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            self?.lock.withLock { self?.outData.append(d) }
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            self?.lock.withLock { self?.errData.append(d) }
        }
        try process.run()
    }

    /// Waits up to `seconds`; returns the exit status, or nil (and kills it) on timeout.
    func wait(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate(); process.waitUntilExit(); return nil }
        process.waitUntilExit()
        usleep(50_000)
        return process.terminationStatus
    }

    var stdout: String { lock.withLock { String(decoding: outData, as: UTF8.self) } }
    var stderr: String { lock.withLock { String(decoding: errData, as: UTF8.self) } }
}

func python(_ script: String, _ args: [String]) throws -> Child {
    try Child("/usr/bin/env", ["python3", script] + args)
}

func requirePython(_ modules: String) throws {
    let probe = try Child("/usr/bin/env", ["python3", "-c", "import \(modules)"])
    if probe.wait(seconds: 30) != 0 {
        throw TestFailure("this test needs Python packages \(modules): pip install pyzmq mcap (or run scripts/setup.sh)")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

@Suite(.serialized) struct EndToEndTests {
    @Test("mgpt-sim feed → mgptd → pyzmq subscriber; bad frames; SIGTERM; recording replays")
    func fullPipeline() throws {
        try requirePython("zmq, mcap")
        let mgptd = productsDir.appendingPathComponent("mgptd").path
        let sim = productsDir.appendingPathComponent("mgpt-sim").path
        let mgpt = productsDir.appendingPathComponent("mgpt").path
        for exe in [mgptd, sim, mgpt] {
            #expect(FileManager.default.isExecutableFile(atPath: exe), "missing \(exe): build the package first")
        }
        let dir = try TempDir()
        try makeModelFolder(dir.url.appendingPathComponent("model"))
        let obs = "ipc://\(dir.path("obs.ipc"))", out = "ipc://\(dir.path("out.ipc"))"
        let cfg = try writeConfig(dir, model: "model", extra: [
            "io": ["sensor_endpoint": obs, "publish_endpoint": out, "max_message_bytes": 4096],
            "log": ["status_interval_ms": 200],
        ])

        // Invalid config: exit 78 naming the key.
        let badCfg = try writeConfig(dir, model: "model", extra: ["loop": ["rate_hz": "fast"]], name: "bad.json")
        let check = try Child(mgptd, ["--config", badCfg, "--check-config"])
        #expect(check.wait(seconds: 30) == 78)
        #expect(check.stderr.contains("loop.rate_hz"), "\(check.stderr)")
        let good = try Child(mgptd, ["--config", cfg, "--check-config"])
        #expect(good.wait(seconds: 30) == 0, "\(good.stderr)")

        let daemon = try Child(mgptd, ["--config", cfg])
        let sub = try python(packageRoot.appendingPathComponent("clients/python/subscriber.py").path,
                             ["--endpoint", out, "--topics", "intent,status", "--seconds", "9", "--json"])
        usleep(400_000)
        let feed = try Child(sim, ["feed", "--scenario", packageRoot.appendingPathComponent("sim/scenarios/simple_room.json").path,
                                   "--rate", "50", "--endpoint", obs, "--seconds", "3"])
        #expect(feed.wait(seconds: 30) == 0, "feed: \(feed.stderr)")
        let bad = try python(packageRoot.appendingPathComponent("Tests/RuntimeTests/py/bad_feeder.py").path, [obs, "10000"])
        #expect(bad.wait(seconds: 30) == 0, "bad_feeder: \(bad.stderr)")
        usleep(300_000)
        #expect(daemon.process.isRunning, "the daemon died: \(daemon.stderr)")
        let t0 = Date()
        kill(daemon.process.processIdentifier, SIGTERM)
        let code = daemon.wait(seconds: 10)
        let stopTime = Date().timeIntervalSince(t0)
        #expect(code == 0, "exit \(String(describing: code)); stderr:\n\(daemon.stderr)")
        #expect(stopTime < 1.0, "took \(stopTime) s to stop")
        _ = sub.wait(seconds: 20)

        // The subscriber saw intents with every required key, and the final status.
        let lines = sub.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let intents = lines.filter { $0["topic"] as? String == "intent" }
        let statuses = lines.filter { $0["topic"] as? String == "status" }
        #expect(intents.count > 100, "only \(intents.count) intents; daemon stderr:\n\(daemon.stderr)")
        #expect(intents.contains { $0["fresh"] as? Bool == true })
        let final = try #require(statuses.last)
        #expect(final["state"] as? String == "stopped")
        #expect((final["frames_malformed"] as? Int ?? 0) >= 3, "\(final)")
        #expect((final["frames_oversized"] as? Int ?? 0) >= 1, "\(final)")
        #expect((final["frames_accepted"] as? Int ?? 0) >= 100, "\(final)")

        // The recording: readable by the Python mcap package, and replays bit-identically.
        let recDir = dir.path("rec")
        let rec = try #require(try FileManager.default.contentsOfDirectory(atPath: recDir).first { $0.hasSuffix(".mcap") })
        let recPath = (recDir as NSString).appendingPathComponent(rec)
        let reader = try python(packageRoot.appendingPathComponent("Tests/RuntimeTests/py/read_mcap.py").path, [recPath])
        #expect(reader.wait(seconds: 30) == 0, "\(reader.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(reader.stdout.utf8)) as? [String: Any])
        let counts = summary["counts"] as? [String: Int] ?? [:]
        #expect((counts["/intent"] ?? 0) == intents.count || (counts["/intent"] ?? 0) >= intents.count, "\(summary)")
        #expect((counts["/obs"] ?? 0) >= 100 && (counts["/obs_rejected"] ?? 0) >= 2, "\(summary)")
        #expect(summary["bad_intents"] as? Int == 0)
        let replay = try Child(mgpt, ["replay", recPath, "--config", cfg])
        #expect(replay.wait(seconds: 60) == 0, "\(replay.stdout)\(replay.stderr)")
        #expect(replay.stdout.contains("first_diff=none"), "\(replay.stdout)")
    }
}
