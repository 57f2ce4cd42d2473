import Foundation
import Testing

/// clients/c/latency_probe.c — the wire protocol read from C with plain libzmq — built with the
/// system C compiler and run as the feeder of a real `mgptd` over ipc:// (issue 11, item 5).
@Suite(.serialized) struct CClientTests {
    @Test func theCLatencyProbeFeedsMgptdAndMatchesItsIntents() throws {
        let mgptd = try DaemonFaultTests.binary("mgptd")
        let s = try DaemonFaultTests.Setup()
        let probe = s.dir.path("latency_probe")
        let source = DaemonFaultTests.script("clients/c/latency_probe.c")
        let build = try Child("/bin/sh", ["-c", "cc -O2 -std=c11 -Wall -Wextra -Werror -o '\(probe)' '\(source)' $(pkg-config --cflags --libs libzmq) -lm"])
        #expect(build.wait(seconds: 120) == 0, "cc: \(build.stderr)")
        let daemon = try Child(mgptd, ["--config", s.config])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        usleep(300_000)
        let run = try Child(probe, ["--obs", s.obs, "--out", s.out, "--frames", "40", "--rate", "20", "--seed", "3"])
        #expect(run.wait(seconds: 60) == 0, "probe: \(run.stderr)\ndaemon: \(daemon.stderr)")
        kill(daemon.process.processIdentifier, SIGTERM)
        _ = daemon.wait(seconds: 15)
        let last = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let kv = Dictionary(last.split(separator: " ").compactMap { p -> (String, String)? in
            let f = p.split(separator: "=", maxSplits: 1)
            return f.count == 2 ? (String(f[0]), String(f[1])) : nil
        }, uniquingKeysWith: { a, _ in a })
        // Every frame the daemon decided on is matched by its obs_seq (PUB/SUB: none lost after the
        // probe's slow-joiner wait on a quiet ipc link), and the latencies are real numbers.
        let matched = Int(kv["matched"] ?? "") ?? 0, p50 = Double(kv["e2e_p50_us"] ?? "") ?? -1, p99 = Double(kv["e2e_p99_us"] ?? "") ?? -1
        #expect(kv["sent"] == "40" && matched >= 36, "\(last)")
        #expect(p50 > 0 && p99 >= p50, "\(last)")
        // Bad arguments: exit 2 with the usage line.
        let bad = try Child(probe, ["--obs"])
        #expect(bad.wait(seconds: 10) == 2 && bad.stderr.contains("usage:"), "\(bad.stderr)")
    }
}
