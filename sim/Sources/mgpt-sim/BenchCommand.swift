import ArgumentParser
import Foundation
import Observation
import RobotSim

extension MGPTSim {
    /// Times one physics tick plus sensing and fusion.
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the cost of one simulation tick (physics + sensors + fusion); last line step_us=….")

        @OptionGroup var source: ScenarioOptions

        @Option(help: "Ticks to time.")
        var ticks: Int = 20_000

        func run() throws {
            let scenario = try source.load(fallback: .cluttered)
            var world = World(scenario: scenario)
            let encoder = ObservationEncoder()
            var tokens = [Int](); tokens.reserveCapacity(ObservationEncoder.maxTokensPerFrame)
            // A fixed drive pattern: mostly forward, turning now and then (bumps walls too).
            let pattern: [Intent] = [.forward(level: 3), .forward(level: 2), .turnLeft(level: 1), .forward(level: 3), .turnRight(level: 2)]
            var sink = 0
            var stepNs: UInt64 = 0, senseNs: UInt64 = 0, encodeNs: UInt64 = 0
            for k in 0..<ticks {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let frame = world.sense()
                let t1 = DispatchTime.now().uptimeNanoseconds
                sink &+= encoder.encode(frame, into: &tokens)
                let t2 = DispatchTime.now().uptimeNanoseconds
                world.step(pattern[(k / 50) % pattern.count])
                let t3 = DispatchTime.now().uptimeNanoseconds
                senseNs += t1 - t0; encodeNs += t2 - t1; stepNs += t3 - t2
                if world.tick % 3000 == 0 { world = World(scenario: scenario) }
            }
            let n = Double(ticks)
            print("scenario=\(scenario.name) ticks=\(ticks) collisions_seen=\(world.collisions) tokens=\(sink)")
            print("physics_us=\(fmt(Double(stepNs) / n / 1000)) sense_us=\(fmt(Double(senseNs) / n / 1000)) encode_us=\(fmt(Double(encodeNs) / n / 1000))")
            print("step_us=\(fmt(Double(stepNs + senseNs) / n / 1000))")
        }
    }
}
