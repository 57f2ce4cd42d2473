import Foundation
import Testing

/// End-to-end tests of `mgpt-sim feed` / `mgpt-sim run`: the real binary as a process, talking
/// ZeroMQ to Python (pyzmq) over ipc:// endpoints unique to this test run.
@Suite(.serialized) struct FeedTests {
    /// The `mgpt-sim` executable in the build products folder next to the test bundle.
    func simBinary() throws -> URL {
        var candidates: [URL] = []
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<5 {  // the .xctest bundle may be a folder (macOS) or a file (Linux)
            candidates.append(dir.appendingPathComponent("mgpt-sim"))
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(Bundle.main.bundleURL.appendingPathComponent("mgpt-sim"))
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) { return found }
        Issue.record("mgpt-sim not found next to the test bundle (looked in \(candidates.map(\.path))); run `swift build --product mgpt-sim` with the same --scratch-path first")
        throw CancellationError()
    }

    /// Fails the test with a clear message when python3 cannot import `modules`.
    func requirePython(_ modules: [String]) throws {
        let r = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", "import " + modules.joined(separator: ", ")], timeout: 30)
        if r.status != 0 {
            Issue.record("python3 cannot import \(modules.joined(separator: ", ")): pip install \(modules.map { $0 == "zmq" ? "pyzmq" : $0 }.joined(separator: " ")) (\(r.stderr))")
            throw CancellationError()
        }
    }

    struct Finished { var status: Int32; var stdout: String; var stderr: String }

    /// Starts a process with pipes for stdout/stderr.
    func start(_ exe: URL, _ args: [String]) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, out, err)
    }

    /// Waits for `p` up to `timeout` seconds (then kills it and records an issue).
    func finish(_ p: Process, _ out: Pipe, _ err: Pipe, timeout: Double) -> Finished {
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            p.terminate()
            Issue.record("\(p.executableURL?.lastPathComponent ?? "?") \(p.arguments ?? []) did not finish in \(timeout) s")
        }
        p.waitUntilExit()
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Finished(status: p.terminationStatus, stdout: o, stderr: e)
    }

    func runProcess(_ exe: URL, _ args: [String], timeout: Double) throws -> Finished {
        let (p, o, e) = try start(exe, args)
        return finish(p, o, e, timeout: timeout)
    }

    /// Waits until the Python helper printed "ready" (its socket is set up).
    func waitReady(_ pipe: Pipe) {
        var seen = ""
        let h = pipe.fileHandleForReading
        let deadline = Date().addingTimeInterval(10)
        while !seen.contains("ready") && Date() < deadline {
            let d = h.availableData
            if d.isEmpty { break }
            seen += String(decoding: d, as: UTF8.self)
        }
    }

    /// `key=value` fields of the last line of `text` that contains `key=`.
    func fields(_ text: String, lineWith key: String) -> [String: String] {
        guard let line = text.split(separator: "\n").last(where: { $0.contains("\(key)=") }) else { return [:] }
        var out: [String: String] = [:]
        for part in line.split(separator: " ") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = String(kv[1]) }
        }
        return out
    }

    let root = scenarioDir.deletingLastPathComponent().deletingLastPathComponent()
    let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    @Test func feedIsReceivedByAPythonSubscriber() throws {
        let sim = try simBinary()
        try requirePython(["zmq", "jsonschema"])
        let ep = "ipc:///tmp/mgpt-sim-test-\(tag)-obs"
        let schema = root.appendingPathComponent("docs/schemas/obs.schema.json").path
        let (py, pyOut, pyErr) = try start(URL(fileURLWithPath: "/usr/bin/env"),
                                          ["python3", pyDir.appendingPathComponent("sub_obs.py").path, ep, "3.5", schema])
        // Python prints "ready" first; then the summary line.
        let pyBuffer = pyOut
        waitReady(pyBuffer)
        let feed = try runProcess(sim, ["feed", "--scenario", scenarioDir.appendingPathComponent("simple_room.json").path,
                                        "--rate", "50", "--endpoint", ep, "--seconds", "2"], timeout: 20)
        let sub = finish(py, pyOut, pyErr, timeout: 20)
        #expect(feed.status == 0, "mgpt-sim feed failed: \(feed.stderr)")
        let f = fields(feed.stdout, lineWith: "frames")
        #expect(f["frames"] == "100", "\(feed.stdout)")
        #expect(sub.status == 0, "sub_obs.py failed: \(sub.stderr)")
        let s = fields(sub.stdout, lineWith: "received")
        let received = Int(s["received"] ?? "") ?? 0
        #expect(received >= 80 && received <= 100, "\(sub.stdout) \(sub.stderr)")  // a few may precede the subscription
        #expect(s["last_seq"] == "99")
        #expect(s["monotonic"] == "1")
        #expect(s["v"] == "2")
        #expect(s["beams"] == "16")
        #expect(s["invalid"] == "0", "frames violate docs/schemas/obs.schema.json: \(sub.stderr)")
        try? FileManager.default.removeItem(atPath: "/tmp/mgpt-sim-test-\(tag)-obs")
    }

    @Test func feedPublishesEveryKthTickFasterThanRealTime() throws {
        let sim = try simBinary()
        try requirePython(["zmq", "jsonschema"])
        let ep = "ipc:///tmp/mgpt-sim-test-\(tag)-obs3"
        let schema = root.appendingPathComponent("docs/schemas/obs.schema.json").path
        let (py, pyOut, pyErr) = try start(URL(fileURLWithPath: "/usr/bin/env"),
                                          ["python3", pyDir.appendingPathComponent("sub_obs.py").path, ep, "3", schema])
        waitReady(pyOut)
        // 1 s of wall time at 250 ticks/s = 250 ticks (5 s of simulated time), every 5th published.
        let feed = try runProcess(sim, ["feed", "--family", "cluttered", "--seed", "4", "--rate", "250",
                                        "--publish-every", "5", "--endpoint", ep, "--seconds", "1"], timeout: 20)
        let sub = finish(py, pyOut, pyErr, timeout: 20)
        #expect(feed.status == 0, "mgpt-sim feed failed: \(feed.stderr)")
        let f = fields(feed.stdout, lineWith: "frames")
        #expect(f["frames"] == "50" && f["ticks"] == "250", "\(feed.stdout)")
        let s = fields(sub.stdout, lineWith: "received")
        #expect((Int(s["received"] ?? "") ?? 0) >= 35, "\(sub.stdout) \(sub.stderr)")
        #expect(s["seq_step"] == "5" && s["last_seq"] == "245" && s["invalid"] == "0", "\(sub.stdout)")
        try? FileManager.default.removeItem(atPath: "/tmp/mgpt-sim-test-\(tag)-obs3")
    }

    @Test func runAppliesIntentsFromADaemon() throws {
        let sim = try simBinary()
        try requirePython(["zmq"])
        let obs = "ipc:///tmp/mgpt-sim-test-\(tag)-obs2", intents = "ipc:///tmp/mgpt-sim-test-\(tag)-intent"
        let (py, pyOut, pyErr) = try start(URL(fileURLWithPath: "/usr/bin/env"),
                                          ["python3", pyDir.appendingPathComponent("fake_daemon.py").path, obs, intents, "60"])
        waitReady(pyOut)
        let run = try runProcess(sim, ["run", "--scenario", scenarioDir.appendingPathComponent("simple_room.json").path,
                                       "--rate", "100", "--endpoint", obs, "--intent-endpoint", intents], timeout: 30)
        let daemon = finish(py, pyOut, pyErr, timeout: 20)
        #expect(run.status == 0, "mgpt-sim run failed: \(run.stderr)")
        let m = fields(run.stdout, lineWith: "goal_reached")
        #expect(m["goal_reached"] == "false")           // it only turned, then said DONE far from the box
        #expect(m["collisions"] == "0")
        let ticks = Int(m["ticks"] ?? "") ?? -1
        let stale = Int(m["stale_ticks"] ?? "") ?? -1
        #expect(ticks > 60 && ticks < 1500, "\(run.stdout)")
        #expect(stale >= 0 && stale < ticks / 2, "\(run.stdout)")
        let info = fields(run.stdout, lineWith: "intents")
        #expect(info["said_done"] == "true")
        #expect(info["bad_intents"] == "1")            // FLY(2) is rejected and counted
        #expect((Int(info["intents"] ?? "") ?? 0) >= 60)
        // The daemon saw the robot turn left through odometry (60 frames at 100 Hz of up to 2 rad/s).
        let d = fields(daemon.stdout, lineWith: "theta_moved")
        let moved = Double(d["theta_moved"] ?? "") ?? 0
        #expect(moved > 0.5, "\(daemon.stdout) \(daemon.stderr)")
        for e in [obs, intents] { try? FileManager.default.removeItem(atPath: String(e.dropFirst(6))) }
    }
}
