import Foundation
import Testing

/// `mgpt explain FILE.mcap --tick N` (issue 14, item 5) on a real recording: a real `mgptd` fed by
/// `mgpt-sim feed` with a scenario whose odometry drops out, over ipc:// in a temp folder.
@Suite(.serialized) struct ExplainTests {
    @Test func explainReplaysARecordedTickAndSaysWhyTheGateDecided() throws {
        let mgpt = try DaemonFaultTests.binary("mgpt")
        let s = try DaemonFaultTests.Setup()
        let rec = try s.recordSession(scenario: "sim/scenarios/faults_dropout.json", seconds: 4).recording

        // Every recorded tick explained: the same decision as recorded, and the verdict names the
        // gate's reason. Ticks spread over the session (before the first frame, during the feed).
        var reasons: Set<String> = []
        for tick in [5, 60, 120, 180, 240, 300] {
            let run = try Child(mgpt, ["explain", rec, "--tick", "\(tick)"])   // the config the recording carries
            #expect(run.wait(seconds: 60) == 0, "tick \(tick): \(run.stderr)")
            let out = run.stdout
            let last = out.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.hasPrefix("tick=\(tick) ") && last.contains("replay_matches=true"), "tick \(tick): \(out)")
            let kv = Dictionary(last.split(separator: " ").compactMap { p -> (String, String)? in
                let f = p.split(separator: "=", maxSplits: 1)
                return f.count == 2 ? (String(f[0]), String(f[1])) : nil
            }, uniquingKeysWith: { a, _ in a })
            let reason = try #require(kv["reason"], "\(last)")
            reasons.insert(reason)
            let verdict = try #require(out.split(separator: "\n").first { $0.hasPrefix("verdict: ") }, "\(out)")
            #expect(verdict.contains("(\(reason))"), "tick \(tick): \(verdict) vs reason=\(reason)")
            #expect(verdict.hasPrefix(kv["gated"] == "true" ? "verdict: GATED" : "verdict: accepted"), "\(verdict)")
            if reason != "no_sensor" && reason != "stale_sensor" {
                #expect(out.contains("signals and thresholds:") && out.contains("calibrated confidence"), "\(out)")
            }
        }
        #expect(reasons.contains("no_sensor"), "tick 5 precedes the first frame: \(reasons)")
        #expect(reasons.count >= 2, "reasons: \(reasons)")
        // The recording carries its config (MCAP metadata "mgptd.config"): a replay needs no
        // --config; one with another config is told so (and diverges: other thresholds, model).
        let replay = try Child(mgpt, ["replay", rec])
        #expect(replay.wait(seconds: 60) == 0, "\(replay.stdout)\(replay.stderr)")
        #expect(replay.stdout.contains("first_diff=none") && !replay.stderr.contains("note:"), "\(replay.stdout)\(replay.stderr)")
        let other = try Child(mgpt, ["replay", rec, "--config", DaemonFaultTests.script("Configs/robot.json")])
        _ = other.wait(seconds: 120)
        #expect(other.stderr.contains("note: \(rec) was recorded with \(URL(fileURLWithPath: s.config).standardizedFileURL.path)"), "\(other.stderr)")
        // A tick past the end is refused with a clear error, not a crash.
        let past = try Child(mgpt, ["explain", rec, "--tick", "99999999", "--config", s.config])
        let code = past.wait(seconds: 60)
        #expect(code != nil && code != 0 && past.process.terminationReason == .exit, "exit \(String(describing: code))")
        #expect(past.stderr.contains("99999999"), "\(past.stderr)")
    }
}
