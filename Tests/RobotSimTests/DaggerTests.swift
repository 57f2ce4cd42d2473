import Foundation
import Testing

/// `mgpt-sim dagger --config`: the real binary with the shipped model, the daemon's meta-controller
/// in the loop. A controller that trusts nothing gates every decision (the robot executes the STOP
/// fallback and never moves); the shipped controller lets most decisions through.
extension FeedTests {
    var packageRoot: URL { scenarioDir.deletingLastPathComponent().deletingLastPathComponent() }

    func dagger(config: [String: Any]?, path given: String? = nil, in dir: URL) throws -> [String: String] {
        let sim = try simBinary()
        var args = ["dagger", "--model", packageRoot.appendingPathComponent("Models/robot-phase15").path,
                    "--episodes", "2", "--seed", "5", "--families", "heldout"]
        if let config {
            let path = dir.appendingPathComponent("robot-\(UUID().uuidString).json")
            try JSONSerialization.data(withJSONObject: config).write(to: path)
            args += ["--config", path.path]
        }
        if let given { args += ["--config", given] }
        let run = try runProcess(sim, args, timeout: 120)
        #expect(run.status == 0, "mgpt-sim dagger failed: \(run.stderr)")
        return fields(run.stdout, lineWith: "goal_rate")
    }

    @Test func daggerGatesThroughTheDaemonsController() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mgpt-dagger-\(tag)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let base: [String: Any] = ["model": ["path": "unused"], "loop": ["rate_hz": 100], "context": ["instruction": "unused", "window_ticks": 8]]
        var strict = base
        strict["controller"] = ["min_confidence": 1.0]  // no proposal is ever that sure
        let gatedAll = try dagger(config: strict, in: dir)
        #expect(gatedAll["gated_rate"] == "1.000", "\(gatedAll)")
        #expect(gatedAll["goal_rate"] == "0.000" && gatedAll["collisions"] == "0", "\(gatedAll)")
        let open = try dagger(config: nil, in: dir)
        #expect(open["gated_rate"] == "0.000", "\(open)")
        let shipped = try dagger(config: nil, path: packageRoot.appendingPathComponent("Configs/robot.json").path, in: dir)
        let rate = Double(shipped["gated_rate"] ?? "") ?? -1
        #expect(rate > 0 && rate < 0.5, "\(shipped)")
    }
}
