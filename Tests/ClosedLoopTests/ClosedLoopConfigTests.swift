import Foundation
import Testing
import ClosedLoop
import RobotSim

/// The in-process loop takes the configs mgptd takes, and refuses what mgptd refuses with the
/// key's name instead of crashing in the first episode.
@Suite struct ClosedLoopConfigTests {
    /// Models/robot has no exit heads; the shipped config's overrun policy ("early_exit") needs one,
    /// but in process there are no overruns, so the loop runs it (the phase-15 card's comparison row).
    @Test func modelWithoutExitHeadsRunsUnderTheShippedConfig() throws {
        let loop = try ClosedLoop(model: root.appendingPathComponent("Models/robot").path,
                                  config: root.appendingPathComponent("Configs/robot.json").path)
        var rng = SimRNG(seed: 1)
        var scenario = try Scenario.load(path: root.appendingPathComponent("sim/scenarios/simple_room.json").path)
        scenario.maxTicks = 50
        let out = loop.run(scenario, beta: 0, rng: &rng)
        #expect(out.decisions == 10)
    }

    /// An exit rule the model cannot take is an error naming the key, thrown at load.
    @Test func exitRuleTheModelLacksNamesTheKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("closedloop-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = dir.appendingPathComponent("robot.json")
        let model = root.appendingPathComponent("Models/robot").path
        try Data(#"{"model": {"path": "\#(model)", "exit_entropy": 1.5}, "loop": {"rate_hz": 10}, "context": {"instruction": "find the red box and stop"}}"#.utf8).write(to: config)
        do {
            _ = try ClosedLoop(model: model, config: config.path)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("model.exit_entropy"))
        }
    }
}
