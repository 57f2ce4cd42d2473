import Cognition
import Foundation
import Observation
import RobotSim

/// The adversarial low-confidence suite (the seed's "validate fallback policies with adversarial
/// prompts"): versioned cases in `sim/scenarios/adversarial/suite.json`, each a scenario with an
/// instruction outside the template family, contradictory sensors, an unseen colour, garbage
/// frames or frozen sensors, and the floor of the rate at which the gate must hold the fallback
/// during the adversarial decisions. Run by `mgpt eval adversarial` and by CI (ClosedLoopTests).
public struct AdversarialSuite: Decodable, Sendable {
    /// Suite format version (1).
    public var version: Int
    /// The cases.
    public var cases: [Case]

    /// One case.
    public struct Case: Decodable, Sendable {
        /// Unique name.
        public var name: String
        /// What it probes, for humans.
        public var description: String
        /// Scenario file, relative to the suite file.
        public var scenario: String
        /// Replaces the scenario's instruction.
        public var instruction: String?
        /// Replaces the scenario's faults.
        public var faults: [FaultSpec]?
        /// Physics ticks `[from, to)` during which every decision frame is replaced by noise
        /// (random ranges, a random detection, random odometry): garbage observation tokens.
        public var garbage: [Int]?
        /// Which decisions are adversarial: `"faults"` (while a fault or garbage is active) or `"all"`.
        public var scope: String
        /// Minimum hold rate (gated fraction of the adversarial decisions); null = measured only,
        /// a known gap of the controller (the suite says so rather than setting a floor of 0).
        public var floor: Double?
    }

    /// What a case measured.
    public struct Result: Sendable {
        public var name: String
        public var decisions: Int
        public var held: Int
        public var floor: Double?
        public var collisions: Int
        public var unsafe: Int
        public var holdRate: Double { decisions == 0 ? 0 : Double(held) / Double(decisions) }
        public var passed: Bool { decisions > 0 && holdRate >= (floor ?? 0) }
    }

    /// Reads `path`; errors name the file and what is wrong.
    public static func load(path: String) throws -> AdversarialSuite {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationFailure("\(path): cannot read the suite")
        }
        let suite: AdversarialSuite
        do { suite = try JSONDecoder().decode(AdversarialSuite.self, from: data) } catch let e as DecodingError {
            throw ValidationFailure("\(path): \(decodingErrorDescription(e))")
        } catch {
            throw ValidationFailure("\(path): \(error)")
        }
        guard suite.version == 1 else { throw ValidationFailure("\(path): version: expected 1, found \(suite.version)") }
        for (i, c) in suite.cases.enumerated() {
            guard ["faults", "all"].contains(c.scope) else {
                throw ValidationFailure("\(path): cases[\(i)].scope: expected \"faults\" or \"all\", found \"\(c.scope)\"")
            }
            if let g = c.garbage, g.count != 2 || g[0] >= g[1] {
                throw ValidationFailure("\(path): cases[\(i)].garbage: expected [from, to] with from < to, found \(g)")
            }
        }
        return suite
    }

    /// Runs every case (gate on) with `loop`; `base` is the suite file's folder.
    public func run(_ loop: ClosedLoop, base: String) throws -> [Result] {
        let gate = loop.gate
        loop.gate = true
        defer { loop.gate = gate }
        return try cases.map { c in
            var scenario: Scenario
            do { scenario = try Scenario.load(path: URL(fileURLWithPath: base).appendingPathComponent(c.scenario).path) } catch {
                throw ValidationFailure("case \(c.name): \(error)")
            }
            if let text = c.instruction { scenario.task.instruction = text }
            if let f = c.faults { scenario.faults = f }
            var noise = SimRNG(seed: scenario.seed ^ 0x6A7BA6E)
            let tamper: ((inout ObservationFrame, Int) -> Bool)? = c.garbage.map { g in
                { frame, tick in
                    guard tick >= g[0] && tick < g[1] else { return false }
                    for i in frame.ranges.indices { frame.ranges[i] = Float((noise.uniform() * 6 * 1000).rounded() / 1000) }
                    let colours = ["teal", "violet", "red", "green"], kinds = ["box", "ball", "cone"]
                    frame.detections = [Detection(colour: colours[Int(noise.uniform() * 4) % 4], kind: kinds[Int(noise.uniform() * 3) % 3],
                                                  bearing: Float(noise.uniform() * 2 - 1), distance: Float(noise.uniform() * 5))]
                    frame.odom = Odometry(x: Float(noise.uniform() * 10), y: Float(noise.uniform() * 10), theta: Float(noise.uniform() * 6 - 3),
                                          v: Float(noise.uniform() * 0.6), w: Float(noise.uniform() * 4 - 2))
                    frame.route = noise.uniform() < 0.5 ? nil : Route(bearing: Float(noise.uniform() * 6 - 3), distance: Float(noise.uniform() * 5))
                    return true
                }
            }
            var rng = SimRNG(seed: scenario.seed)
            let out = loop.run(scenario, beta: 0, rng: &rng, keepSamples: true, tamper: tamper)
            let adversarial = c.scope == "all" ? out.samples : out.samples.filter { !$0.faults.isEmpty }
            return Result(name: c.name, decisions: adversarial.count, held: adversarial.filter(\.decision.gated).count,
                          floor: c.floor, collisions: out.record.result.collisions, unsafe: out.unsafe)
        }
    }
}

/// An error with a message naming the file and what is wrong.
public struct ValidationFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
