import Foundation
import MCAP
import Testing

/// Faults the daemon must survive (issue 12, item 5), on the real built `mgptd` with real feeders
/// over ipc:// in a temp folder. Helpers (`Child`, `python`, `productsDir`, `writeConfig`, …) are
/// the ones `EndToEndTests` uses.
@Suite(.serialized) struct DaemonFaultTests {
    /// The loop rate of the test config; the storm runs at 10× this.
    static let rateHz = 100
    /// `io.max_message_bytes` of the test config: frames above it are "oversized".
    static let maxMessageBytes = 4096

    /// A temp folder with a small model and a robot.json on private ipc endpoints, recording on.
    struct Setup {
        let dir: TempDir
        let config: String
        let obs: String, out: String
        init() throws {
            dir = try TempDir()
            try makeModelFolder(dir.url.appendingPathComponent("model"))
            obs = "ipc://\(dir.path("obs.ipc"))"
            out = "ipc://\(dir.path("out.ipc"))"
            config = try writeConfig(dir, model: "model", extra: [
                "loop": ["rate_hz": DaemonFaultTests.rateHz, "budget_us": 9000],
                "io": ["sensor_endpoint": obs, "publish_endpoint": out, "max_message_bytes": DaemonFaultTests.maxMessageBytes],
                "log": ["status_interval_ms": 200],
            ])
        }
        /// The one recording the daemon wrote (nil while none exists).
        var recording: String? {
            let recDir = dir.path("rec")
            guard let name = (try? FileManager.default.contentsOfDirectory(atPath: recDir))?.first(where: { $0.hasSuffix(".mcap") }) else { return nil }
            return (recDir as NSString).appendingPathComponent(name)
        }
    }

    static func binary(_ name: String) throws -> String {
        let path = productsDir.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw TestFailure("missing \(path): build the package first") }
        return path
    }

    static func script(_ relative: String) -> String { packageRoot.appendingPathComponent(relative).path }

    /// The last stdout line of `child` as a JSON object.
    static func lastJSON(_ child: Child) throws -> [String: Any] {
        let line = child.stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw TestFailure("expected a JSON line, got stdout:\n\(child.stdout)\nstderr:\n\(child.stderr)")
        }
        return obj
    }

    /// Record frames of an MCAP file (spec: magic, then opcode u8 + length u64 LE + content):
    /// (offset, opcode, content length) of every complete record.
    static func records(_ bytes: [UInt8]) -> [(offset: Int, opcode: UInt8, length: Int)] {
        var out: [(Int, UInt8, Int)] = []
        var at = 8
        while bytes.count - at >= 9 {
            let length = (0..<8).reduce(0) { $0 | Int(bytes[at + 1 + $1]) << (8 * $1) }
            guard length <= bytes.count - at - 9 else { break }
            out.append((at, bytes[at], length))
            at += 9 + length
        }
        return out
    }

    // MARK: (a) SIGKILL mid-record

    @Test("SIGKILL mid-record: python mcap and mgpt replay read the file up to its last complete record")
    func sigkillMidRecord() throws {
        try requirePython("zmq, mcap")
        let (mgptd, sim, mgpt) = (try Self.binary("mgptd"), try Self.binary("mgpt-sim"), try Self.binary("mgpt"))
        let s = try Setup()
        let daemon = try Child(mgptd, ["--config", s.config])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        usleep(300_000)
        let feed = try Child(sim, ["feed", "--scenario", Self.script("sim/scenarios/simple_room.json"),
                                   "--rate", "50", "--endpoint", s.obs, "--seconds", "8"])
        defer { if feed.process.isRunning { kill(feed.process.processIdentifier, SIGKILL) } }
        // Kill while frames flow and the writer thread appends a batch every few ms: once the
        // recording holds well over a hundred ticks (≈ 40 KB), at an arbitrary moment.
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let r = s.recording, let size = (try? FileManager.default.attributesOfItem(atPath: r))?[.size] as? Int, size > 40_000 { break }
            usleep(50_000)
        }
        usleep(UInt32.random(in: 0..<100_000))
        #expect(daemon.process.isRunning, "the daemon died before the kill: \(daemon.stderr)")
        kill(daemon.process.processIdentifier, SIGKILL)
        let code = daemon.wait(seconds: 10)
        #expect(daemon.process.terminationReason == .uncaughtSignal && code == SIGKILL, "exit \(String(describing: code))")
        kill(feed.process.processIdentifier, SIGKILL)
        _ = feed.wait(seconds: 10)

        let killed = try #require(s.recording, "no recording in \(s.dir.path("rec"))")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: killed)))
        let recs = Self.records(bytes)
        let lastMessage = try #require(recs.last { $0.opcode == MCAPOpcode.message.rawValue }, "no Message record")

        // The killed file itself, then copies torn inside the last Message record: in its record
        // header, in its fixed fields, and in its data — a kill can land between any two bytes.
        var files: [(path: String, validLength: Int?)] = [(killed, nil)]
        for (name, cut) in [("torn-header", lastMessage.offset + 4), ("torn-fields", lastMessage.offset + 9 + 5),
                            ("torn-data", lastMessage.offset + 9 + lastMessage.length - 3)] {
            let path = s.dir.path("\(name).mcap")
            try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: path))
            files.append((path, lastMessage.offset))
        }
        for (path, expectedValid) in files {
            let name = (path as NSString).lastPathComponent
            let swiftReader = try MCAPReader(path: path)
            #expect(swiftReader.truncated, "\(name): a killed daemon writes no Footer")
            if let v = expectedValid { #expect(swiftReader.validLength == UInt64(v), "\(name)") }

            let py = try python(Self.script("Tests/RuntimeTests/py/read_mcap.py"), [path, "--allow-truncated"])
            #expect(py.wait(seconds: 30) == 0, "\(name): read_mcap.py: \(py.stderr)")
            let summary = try Self.lastJSON(py)
            let intents = (summary["counts"] as? [String: Int])?["/intent"] ?? 0
            #expect(summary["truncated"] as? Bool == true, "\(name): \(summary)")
            #expect(summary["bad_intents"] as? Int == 0, "\(name): \(summary)")
            #expect(intents > 50, "\(name): only \(intents) intents: \(summary)")
            #expect(UInt64(summary["valid_bytes"] as? Int ?? -1) == swiftReader.validLength, "\(name): python and Swift disagree on the last complete record: \(summary)")

            let replay = try Child(mgpt, ["replay", path, "--config", s.config])
            #expect(replay.wait(seconds: 60) == 0, "\(name): \(replay.stdout)\(replay.stderr)")
            #expect(replay.stdout.contains("file truncated"), "\(name): \(replay.stdout)")
            // Both readers stop at the same record: the replay re-decides every recorded intent.
            #expect(replay.stdout.contains("ticks=\(intents) identical=\(intents) first_diff=none"), "\(name): python saw \(intents) intents; \(replay.stdout)")
        }
    }

    // MARK: (b) frame storm

    @Test("frame storm at 10x the rate (fuzzed, oversized, NaN, wrong versions): alive, every frame counted, no overrun caused")
    func frameStorm() throws {
        try requirePython("zmq")
        let mgptd = try Self.binary("mgptd")
        let s = try Setup()
        let daemon = try Child(mgptd, ["--config", s.config])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let status = try python(Self.script("clients/python/subscriber.py"), ["--endpoint", s.out, "--topics", "status", "--json", "--seconds", "60"])
        defer { if status.process.isRunning { kill(status.process.processIdentifier, SIGKILL) } }
        usleep(300_000)
        let storm = try python(Self.script("Tests/RuntimeTests/py/storm_feeder.py"),
                               [s.obs, s.out, "--rate", "\(10 * Self.rateHz)", "--seconds", "3",
                                "--max-bytes", "\(Self.maxMessageBytes)", "--seed", "\(Int.random(in: 1...1_000_000))"])
        #expect(storm.wait(seconds: 40) == 0, "storm_feeder: \(storm.stderr)\ndaemon: \(daemon.stderr)")
        let r = try Self.lastJSON(storm)
        #expect(daemon.process.isRunning, "the daemon died in the storm: \(daemon.stderr)")

        let before = try #require(r["before"] as? [String: Int]), after = try #require(r["after"] as? [String: Int])
        let cat = try #require(r["by_category"] as? [String: Int])
        func delta(_ k: String) -> Int { (after[k] ?? 0) - (before[k] ?? 0) }
        let (accepted, malformed, oversized) = (delta("frames_accepted"), delta("frames_malformed"), delta("frames_oversized"))
        // Every frame counted. The feeder starts the storm only after the daemon reported an accepted
        // marker frame (the subscription provably exists, so PUB/SUB's slow-joiner loss is over),
        // reads "before" after a quiet spell that drained every marker, sends with SNDHWM 0 (no PUB
        // drop; the daemon's RCVHWM pushes back rather than drops), and reads "after" once the daemon
        // drained the storm. So the counters must add up to what was sent, exactly; "filtered" frames
        // (another topic) must never reach the daemon.
        let sent = try #require(r["sent_to_daemon"] as? Int)
        #expect(accepted + malformed + oversized == sent, "counted \(accepted)+\(malformed)+\(oversized) of \(sent) frames: \(r)")
        // Per counter: oversized is decided by size alone; a bit flip may keep a frame valid ("either").
        let either = cat["either"] ?? 0
        #expect(oversized == cat["oversized"], "\(r)")
        #expect(accepted >= cat["accepted"] ?? 0 && accepted <= (cat["accepted"] ?? 0) + either, "\(r)")
        #expect(malformed >= cat["malformed"] ?? 0 && malformed <= (cat["malformed"] ?? 0) + either, "\(r)")
        // No overrun caused. A storm tick drains ≈ 10 frames (parse ≤ a few µs each; an oversized one
        // costs libzmq's copy of at most 1 MB, ≈ 100 µs) beside a ≈ 0.1–1 ms model run, against a 9 ms
        // budget: the storm itself cannot overrun. What can is the OS preempting the loop for > 9 ms on
        // this shared 2-core machine while the feeder (Python, busy at 1 kHz) competes for a core; so
        // allow 2 plus 1 % of the storm's ticks for that, not for the daemon.
        let stormTicks = (after["seq"] ?? 0) - (before["seq"] ?? 0)
        let tolerance = 2 + stormTicks / 100
        #expect(delta("overruns") <= tolerance, "overruns +\(delta("overruns")) in \(stormTicks) ticks (tolerance \(tolerance)): \(r)")
        #expect(delta("deadline_misses") <= tolerance, "deadline misses +\(delta("deadline_misses")) in \(stormTicks) ticks: \(r)")
        #expect(stormTicks >= 3 * Self.rateHz * 8 / 10, "the loop ran only \(stormTicks) ticks in the storm: \(r)")

        // Alive until SIGTERM, then a clean stop whose final status has the same counts.
        kill(daemon.process.processIdentifier, SIGTERM)
        let code = daemon.wait(seconds: 10)
        #expect(code == 0, "exit \(String(describing: code)); stderr:\n\(daemon.stderr)")
        // The subscriber prints each status as it arrives; stop it once the final one is in. SIGKILL:
        // children of the test runner inherit its dispatch thread's signal mask, SIGTERM blocked.
        let until = Date().addingTimeInterval(5)
        while !status.stdout.contains("\"state\": \"stopped\"") && Date() < until { usleep(50_000) }
        kill(status.process.processIdentifier, SIGKILL)
        _ = status.wait(seconds: 10)
        let statuses = status.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let final = try #require(statuses.last, "no status received: \(status.stderr)")
        #expect(final["state"] as? String == "stopped", "\(final)")
        for k in ["frames_accepted", "frames_malformed", "frames_oversized"] {
            #expect(final[k] as? Int == after[k], "\(k): final status \(final[k] ?? "-") vs after the storm \(after[k] ?? -1)")
        }
    }
}

extension DaemonFaultTests.Setup {
    /// Runs a real `mgptd` on this setup's config (`env` entries such as `MINIGPT_KERNELS=portable`
    /// first), feeds it `scenario` with `mgpt-sim feed` at 50 Hz for `seconds`, stops it with
    /// SIGTERM and returns the recording's path and the daemon's log. `during` runs once the feed
    /// has started, with the daemon's process ID (e.g. to send it SIGHUP mid-session).
    func recordSession(scenario: String, seconds: Int, env: [String] = [],
                       during: (pid_t) throws -> Void = { _ in }) throws -> (recording: String, log: String) {
        let (mgptd, sim) = (try DaemonFaultTests.binary("mgptd"), try DaemonFaultTests.binary("mgpt-sim"))
        let daemon = try Child("/usr/bin/env", env + [mgptd, "--config", config])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        usleep(300_000)
        let feed = try Child(sim, ["feed", "--scenario", DaemonFaultTests.script(scenario), "--rate", "50", "--endpoint", obs, "--seconds", "\(seconds)"])
        defer { if feed.process.isRunning { kill(feed.process.processIdentifier, SIGKILL) } }
        try during(daemon.process.processIdentifier)
        #expect(feed.wait(seconds: Double(seconds) + 30) == 0, "feed: \(feed.stderr)")
        kill(daemon.process.processIdentifier, SIGTERM)
        #expect(daemon.wait(seconds: 15) == 0, "mgptd: \(daemon.stderr)")
        return (try #require(recording, "no recording in \(dir.path("rec"))"), daemon.stderr)
    }
}
