import Foundation

/// Writes expert episodes as JSON Lines for the trainer (format in `docs/sim.md`):
///
/// `{"seed":…,"family":"…","instruction":"…","ticks":[{"obs":[…],"intent":k},…]}`
///
/// Three files from one prefix: `<prefix>.train.jsonl` and `<prefix>.val.jsonl` (training
/// families, split by scenario seed) and `<prefix>.heldout.jsonl` (held-out families only).
/// Lines are written by hand in a fixed key order, so the same seed gives the same bytes.
public struct CorpusWriter {
    /// Which file an episode goes to.
    public enum Split: String, Sendable, CaseIterable {
        /// Training split.
        case train
        /// Validation split (same families, different scenario seeds).
        case val
        /// Held-out layout families.
        case heldout
    }

    /// Counts of what was written.
    public struct Summary: Sendable, Equatable {
        /// Episodes written per split.
        public var written: [Split: Int] = [:]
        /// Expert failures skipped (not written unless `keepFailed`).
        public var skipped = 0
        /// Decisions (lines' `ticks` entries) written.
        public var decisions = 0
        /// Total observation tokens written.
        public var obsTokens = 0
    }

    /// Scenario seed of corpus episode `i` (training families) for corpus seed `seed`.
    public static func trainingSeed(_ seed: UInt64, _ i: Int) -> UInt64 { SimRNG.mix(seed, UInt64(i)) }
    /// Scenario seed of held-out episode `i`.
    public static func heldOutSeed(_ seed: UInt64, _ i: Int) -> UInt64 { SimRNG.mix(seed ^ 0x48E1_D0C7, UInt64(i)) }
    /// True when a training-family scenario seed belongs to the validation split (1 in 10).
    public static func isValidation(_ scenarioSeed: UInt64) -> Bool { SimRNG.mix(scenarioSeed, 0x5A1) % 10 == 0 }

    /// One JSON line (without the newline) for `episode`.
    public static func line(_ episode: EpisodeRecord) -> String {
        var s = "{\"seed\":\(episode.seed),\"family\":\(jsonString(episode.family)),"
        s += "\"instruction\":\(jsonString(episode.instruction)),\"ticks\":["
        for (k, d) in episode.decisions.enumerated() {
            if k > 0 { s += "," }
            s += "{\"obs\":["
            for (j, t) in d.obs.enumerated() { s += j == 0 ? "\(t)" : ",\(t)" }
            s += "],\"intent\":\(d.intent)}"
        }
        return s + "]}"
    }

    /// Runs the expert on `episodes` training-family scenarios and `heldOut` held-out scenarios
    /// and writes the three files under `prefix`. `progress` is called after each episode.
    /// `faultFraction` of the episodes (chosen by scenario seed) get random sensor faults
    /// (`ScenarioGenerator.withRandomFaults`); the expert still sees the true state.
    public static func write(prefix: String, episodes: Int, heldOut: Int, seed: UInt64, keepFailed: Bool = false,
                             faultFraction: Double = 0, progress: (Int) -> Void = { _ in }) throws -> Summary {
        var summary = Summary()
        var handles: [Split: FileHandle] = [:]
        defer { for h in handles.values { try? h.close() } }
        for split in Split.allCases {
            let path = "\(prefix).\(split.rawValue).jsonl"
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CorpusError(message: "\(path): cannot create file (does the folder exist?)")
            }
            handles[split] = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            summary.written[split] = 0
        }
        var done = 0
        func emit(_ generated: Scenario, _ split: Split) throws {
            let scenario = ScenarioGenerator.hasFaults(seed: generated.seed, fraction: faultFraction)
                ? ScenarioGenerator.withRandomFaults(generated, seed: generated.seed) : generated
            let ep = Episode.runExpert(scenario)
            done += 1
            progress(done)
            guard ep.result.goalReached || keepFailed else { summary.skipped += 1; return }
            try handles[split]!.write(contentsOf: Data((line(ep) + "\n").utf8))
            summary.written[split, default: 0] += 1
            summary.decisions += ep.decisions.count
            summary.obsTokens += ep.decisions.reduce(0) { $0 + $1.obs.count }
        }
        for i in 0..<episodes {
            let s = trainingSeed(seed, i)
            let family = ScenarioGenerator.family(forSeed: s, among: ScenarioGenerator.Family.training)
            try emit(ScenarioGenerator.generate(seed: s, family: family), isValidation(s) ? .val : .train)
        }
        for i in 0..<heldOut {
            let s = heldOutSeed(seed, i)
            let family = ScenarioGenerator.family(forSeed: s, among: ScenarioGenerator.Family.heldOut)
            try emit(ScenarioGenerator.generate(seed: s, family: family), .heldout)
        }
        return summary
    }

    /// `s` as a JSON string literal.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

/// A corpus that could not be written.
public struct CorpusError: Error, CustomStringConvertible, Sendable {
    /// Which file and why.
    public let message: String
    /// Same as `message`.
    public var description: String { message }
}
