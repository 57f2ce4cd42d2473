import ArgumentParser
import Foundation
import Observation
import RobotSim

extension MGPTSim {
    /// Runs the expert closed-loop on seeded scenarios and prints its success rate.
    struct Expert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the expert policy on seeded scenarios; last line success_rate=… collisions=… mean_ticks=….")

        @Option(help: "Number of episodes.")
        var episodes: Int = 100

        @Option(help: "Base seed (episode i uses the corpus's scenario seed i).")
        var seed: UInt64 = 1

        @Option(help: "Families: 'training' (default), 'heldout', or a comma-separated list.")
        var families: String = "training"

        @Option(help: "Run one scenario file instead of generated ones.")
        var scenario: String?

        @Option(help: "Fraction of generated episodes (0…1, by scenario seed) that get random sensor faults.")
        var faultFraction: Double = 0

        @Flag(help: "Print one line per episode.")
        var verbose = false

        @Flag(help: "Print every decision (tick, true pose, distance to target, intent).")
        var trace = false

        func validate() throws {
            if episodes < 1 { throw ValidationError("--episodes: expected ≥ 1, found \(episodes)") }
            _ = try parseFamilies(families)
            if !(0...1).contains(faultFraction) { throw ValidationError("--fault-fraction: expected 0…1, found \(faultFraction)") }
        }

        func run() throws {
            var scenarios: [Scenario] = []
            if let path = scenario {
                do { scenarios = [try Scenario.load(path: path)] } catch { throw SimError(error.description) }
            } else {
                let fams = try parseFamilies(families)
                let held = families == "heldout"
                for i in 0..<episodes {
                    let s = held ? CorpusWriter.heldOutSeed(seed, i) : CorpusWriter.trainingSeed(seed, i)
                    var sc = ScenarioGenerator.generate(seed: s, family: ScenarioGenerator.family(forSeed: s, among: fams))
                    if ScenarioGenerator.hasFaults(seed: s, fraction: faultFraction) { sc = ScenarioGenerator.withRandomFaults(sc, seed: s) }
                    scenarios.append(sc)
                }
            }
            var success = 0, collisions = 0, ticks = 0, collisionEpisodes = 0, faultTicks = 0
            var perFamily: [String: (Int, Int)] = [:]
            for s in scenarios {
                let ep = Episode.runExpert(s, record: false, trace: !trace ? nil : { w, i in
                    print("tick=\(w.tick) x=\(fmt(w.position.x, 2)) y=\(fmt(w.position.y, 2)) heading=\(fmt(w.heading, 2)) v=\(fmt(w.speed, 2)) dist=\(fmt(w.distanceToTarget, 2)) intent=\(i)")
                })
                let r = ep.result
                if r.goalReached { success += 1 }
                collisions += r.collisions
                if r.collisions > 0 { collisionEpisodes += 1 }
                ticks += r.ticks
                faultTicks += r.faultTicks
                perFamily[s.family, default: (0, 0)].0 += r.goalReached ? 1 : 0
                perFamily[s.family, default: (0, 0)].1 += 1
                if verbose {
                    print("seed=\(s.seed) family=\(s.family) goal_reached=\(r.goalReached) collisions=\(r.collisions) ticks=\(r.ticks) fault_ticks=\(r.faultTicks) instruction=\"\(ep.instruction)\"")
                }
            }
            for (f, c) in perFamily.sorted(by: { $0.key < $1.key }) { print("family=\(f) success=\(c.0)/\(c.1)") }
            let n = Double(scenarios.count)
            print("episodes=\(scenarios.count) episodes_with_collision=\(collisionEpisodes) fault_ticks=\(faultTicks)")
            print("success_rate=\(fmt(Double(success) / n)) collisions=\(collisions) mean_ticks=\(fmt(Double(ticks) / n, 1))")
        }
    }
}

/// Parses `training`, `heldout` or a comma-separated family list (`ScenarioGenerator.Family.list`).
func parseFamilies(_ text: String) throws -> [ScenarioGenerator.Family] {
    do { return try ScenarioGenerator.Family.list(text) } catch { throw ValidationError("--families: \(error)") }
}
