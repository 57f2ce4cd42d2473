import ArgumentParser
import Foundation
import Observation
import RobotSim

/// `mgpt-sim`: the simulated robot world — benchmark, expert runs, corpus writing and the ZeroMQ
/// sensor feeder.
@main
struct MGPTSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mgpt-sim",
        abstract: "Simulated 2-D robot world, expert policy, corpus writer and ZeroMQ feeder.",
        version: "0.1.0",
        subcommands: [Bench.self, Expert.self, Corpus.self, Generate.self, Check.self, Feed.self, Run.self, DaggerCommand.self, EvalCommand.self])
}

/// Where a command gets its scenario: a JSON file, or a generated family + seed.
struct ScenarioOptions: ParsableArguments {
    @Option(name: .long, help: "Scenario JSON file (sim/scenarios/*.json).")
    var scenario: String?

    @Option(name: .long, help: "Generate a scenario of this family instead (open_room, two_rooms, cluttered, pillars, zigzag).")
    var family: String?

    @Option(name: .long, help: "Seed for --family.")
    var seed: UInt64 = 1

    func validate() throws {
        if scenario != nil && family != nil { throw ValidationError("give --scenario or --family, not both") }
        if let f = family, ScenarioGenerator.Family(rawValue: f) == nil {
            throw ValidationError("--family: unknown family '\(f)', expected one of "
                + ScenarioGenerator.Family.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    /// Loads or generates the scenario; `fallback` is used when neither option is given.
    func load(fallback: ScenarioGenerator.Family? = nil) throws -> Scenario {
        if let path = scenario {
            do { return try Scenario.load(path: path) } catch { throw SimError(error.description) }
        }
        if let f = family.flatMap(ScenarioGenerator.Family.init(rawValue:)) ?? fallback {
            return ScenarioGenerator.generate(seed: seed, family: f)
        }
        throw ValidationError("give --scenario FILE or --family NAME")
    }
}

/// A failure that is not a usage error (bad scenario file, socket trouble): printed as
/// `Error: <message>`, exit status 1.
struct SimError: Error, CustomStringConvertible {
    /// What went wrong, naming the file / key / endpoint.
    let description: String
    init(_ message: String) { description = message }
}

/// Formats a number with fixed decimals for metric lines.
func fmt(_ x: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", x) }
