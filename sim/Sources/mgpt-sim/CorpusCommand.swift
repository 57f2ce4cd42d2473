import ArgumentParser
import Foundation
import RobotSim

extension MGPTSim {
    /// Writes the expert corpus as JSON Lines (train / val / heldout files).
    struct Corpus: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write expert episodes as JSON Lines: OUT.train.jsonl, OUT.val.jsonl, OUT.heldout.jsonl.")

        @Option(help: "Episodes from the training families (split ~90/10 into train/val by scenario seed).")
        var episodes: Int = 1000

        @Option(help: "Episodes from the held-out families (default: episodes / 10).")
        var heldout: Int?

        @Option(help: "Corpus seed.")
        var seed: UInt64 = 1

        @Option(help: "Output prefix; a trailing .jsonl is dropped.")
        var out: String

        @Flag(help: "Also write episodes the expert failed.")
        var keepFailed = false

        @Option(help: "Fraction of episodes (0…1, by scenario seed) that get random sensor faults.")
        var faultFraction: Double = 0

        func validate() throws {
            if episodes < 0 { throw ValidationError("--episodes: expected ≥ 0, found \(episodes)") }
            if let h = heldout, h < 0 { throw ValidationError("--heldout: expected ≥ 0, found \(h)") }
            if !(0...1).contains(faultFraction) { throw ValidationError("--fault-fraction: expected 0…1, found \(faultFraction)") }
        }

        func run() throws {
            let prefix = out.hasSuffix(".jsonl") ? String(out.dropLast(6)) : out
            let held = heldout ?? episodes / 10
            let total = episodes + held
            let summary = try CorpusWriter.write(prefix: prefix, episodes: episodes, heldOut: held, seed: seed,
                                                 keepFailed: keepFailed, faultFraction: faultFraction) { done in
                if done % 100 == 0 || done == total {
                    FileHandle.standardError.write(Data("corpus: \(done)/\(total) episodes\n".utf8))
                }
            }
            for split in CorpusWriter.Split.allCases {
                print("\(prefix).\(split.rawValue).jsonl episodes=\(summary.written[split] ?? 0)")
            }
            let written = summary.written.values.reduce(0, +)
            let meanTicks = written > 0 ? Double(summary.decisions) / Double(written) : 0
            let meanObs = summary.decisions > 0 ? Double(summary.obsTokens) / Double(summary.decisions) : 0
            print("written=\(written) skipped_failed=\(summary.skipped) mean_ticks_per_episode=\(fmt(meanTicks, 1)) mean_obs_tokens_per_tick=\(fmt(meanObs, 2))")
        }
    }

    /// Prints a generated scenario as JSON.
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a generated scenario as JSON.")

        @Option(help: "Family (open_room, two_rooms, cluttered, pillars, zigzag).")
        var family: String = "open_room"

        @Option(help: "Scenario seed.")
        var seed: UInt64 = 1

        func validate() throws {
            if ScenarioGenerator.Family(rawValue: family) == nil { throw ValidationError("--family: unknown family '\(family)'") }
        }

        func run() throws {
            let s = ScenarioGenerator.generate(seed: seed, family: ScenarioGenerator.Family(rawValue: family)!)
            print(String(decoding: try s.jsonData(), as: UTF8.self))
        }
    }

    /// Validates scenario files.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate scenario files; errors name the file and key path.")

        @Argument(help: "Scenario JSON files.")
        var files: [String]

        func run() throws {
            var bad = 0
            for f in files {
                do {
                    let s = try Scenario.load(path: f)
                    print("\(f): ok (\(s.family), \(s.objects.count) objects, \(s.faults.count) faults)")
                } catch {
                    print(error.description)
                    bad += 1
                }
            }
            if bad > 0 { throw ExitCode(65) }
        }
    }
}
