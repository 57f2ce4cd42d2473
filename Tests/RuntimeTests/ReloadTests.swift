import Foundation
import MCAP
import Testing
@testable import Runtime

/// SIGHUP reloads the controller thresholds of a running `mgptd` from its config file, and the
/// recording keeps the reload (`/config`, at the decision it applied to), so `mgpt replay` stays
/// bit-identical across it. Real processes over ipc:// in a temp folder.
@Suite(.serialized) struct ReloadTests {
    @Test func sighupReloadsTheThresholdsAndTheReplayFollowsIt() throws {
        let mgpt = try DaemonFaultTests.binary("mgpt")
        let s = try DaemonFaultTests.Setup()
        let (rec, log) = try s.recordSession(scenario: "sim/scenarios/simple_room.json", seconds: 5) { daemon in
            usleep(2_000_000)
            // The fallback intent changes from STOP (default) to BACKUP: every gated decision shows it.
            var root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.config))) as? [String: Any])
            var controller = root["controller"] as? [String: Any] ?? [:]
            controller["fallback_intent"] = "BACKUP"
            root["controller"] = controller
            try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: s.config))
            kill(daemon, SIGHUP)
        }
        #expect(log.contains("SIGHUP: controller thresholds reloaded"), "\(log)")

        let reader = try MCAPReader(path: rec)
        let topic = Dictionary(uniqueKeysWithValues: reader.channels.map { ($0.key, $0.value.topic) })
        let reloads = reader.messages.filter { topic[$0.channelID] == RecordChannel.config.topic }
        try #require(reloads.count == 1, "expected one /config record, found \(reloads.count)")
        let at = reloads[0].sequence
        #expect(try RobotConfig.parse(data: Data(reloads[0].data), file: s.config).thresholds.fallback == .backup)
        // The live daemon: gated decisions before the reload fell back to STOP, from it on to BACKUP.
        var before: Set<String> = [], after: Set<String> = []
        for m in reader.messages where topic[m.channelID] == RecordChannel.intent.topic {
            let j = try #require(try JSONSerialization.jsonObject(with: Data(m.data)) as? [String: Any])
            // Decisions taken at this tick (`fresh`): a tick without a new frame republishes the
            // decision before it, whatever the thresholds are now.
            guard j["gated"] as? Bool == true, j["fresh"] as? Bool == true, let intent = j["intent"] as? String else { continue }
            if m.sequence < at { before.insert(intent) } else { after.insert(intent) }
        }
        #expect(before == ["STOP"] && after == ["BACKUP"], "gated intents before tick \(at): \(before), from it: \(after)")
        // The replay applies the reload at the same decision: every decision identical.
        let replay = try Child(mgpt, ["replay", rec, "--verbose"])
        #expect(replay.wait(seconds: 120) == 0, "\(replay.stdout)\(replay.stderr)")
        #expect(replay.stdout.contains("first_diff=none"), "\(replay.stdout)")
    }
}
