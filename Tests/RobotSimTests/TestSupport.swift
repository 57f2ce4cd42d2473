import Foundation
import Observation
@testable import RobotSim

/// The shipped scenario files.
let scenarioDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("sim/scenarios")

/// The Python helpers beside the tests.
let pyDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("py")

/// Loads a shipped scenario by base name.
func shipped(_ name: String) throws -> Scenario {
    try Scenario.load(path: scenarioDir.appendingPathComponent("\(name).json").path)
}

/// A frame with the given scanner readings and detections (everything else quiet).
func makeFrame(ranges: [Float] = [Float](repeating: 6, count: 16), detections: [Detection] = [],
               v: Float = 0, bump: Bool = false, battery: Float = 1) -> ObservationFrame {
    ObservationFrame(seq: 0, t: 0, ranges: ranges, rangeMax: 6, detections: detections,
                     odom: Odometry(x: 0, y: 0, theta: 0, v: v, w: 0), bump: bump, battery: battery)
}

/// Runs a world for `ticks` ticks with the expert driving and returns every frame.
func expertFrames(_ scenario: Scenario, ticks: Int) -> [ObservationFrame] {
    var world = World(scenario: scenario)
    var expert = ExpertPolicy(world: world)
    var intent = Intent.stop
    var frames: [ObservationFrame] = []
    for _ in 0..<ticks {
        let f = world.sense()
        frames.append(f)
        if world.tick % scenario.decisionEvery == 0 { intent = expert.decide(world) }
        world.step(intent == .done ? .stop : intent)
    }
    return frames
}
