import ArgumentParser
import Foundation
import ClosedLoop
import RobotSim

/// `mgpt-sim dagger`: runs a trained model in closed loop *in process* (same decoding as mgptd:
/// instruction sinks, rolling window of frames ending with the frame-end marker, one intent per
/// frame under the grammar), as fast as the CPU allows, and
/// - with `--out`, writes DAgger data (Ross et al. 2011): the states the *model* visits, labelled
///   with the expert's intents, in the corpus format — the fix for behaviour cloning's covariate
///   shift (the model never saw the expert's mistakes, so it cannot recover from its own);
/// - always prints closed-loop metrics: the model's goal rate without ZeroMQ or wall-clock time.
///
/// This executable wires the simulator to the engine; the `RobotSim` library itself still knows
/// nothing of the engine (DESIGN.md).
struct DaggerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dagger",
        abstract: "Drive scenarios with a model in process; write expert-labelled DAgger data and print the goal rate.",
        discussion: "Last line: goal_rate=… collisions=… mean_ticks=… episodes=… expert_agreement=… gated_rate=…")

    @Option(help: "Model folder (with tokenizer.json).") var model: String
    @Option(help: "Episodes to run.") var episodes = 100
    @Option(help: "Seed of the scenarios (and of the expert/model mixing).") var seed: UInt64 = 1
    @Option(help: "Probability that the expert's intent is executed instead of the model's (β of DAgger).") var beta = 0.0
    @Option(help: "Scenario families: training, heldout, or a comma-separated list.") var families = "training"
    @Option(help: "Fraction of episodes (0…1, by scenario seed) given 1–3 random sensor faults: with --config, the data then hold the fallback's standstills during a fault and the recoveries after it.") var faultFraction = 0.0
    @Option(help: "Frames kept in the rolling context (context.window_ticks of robot.json).") var window = 8
    @Option(help: "Write the visited states with the expert's labels here (corpus JSONL).") var out: String?
    @Option(help: "A robot.json whose meta-controller gates the model's proposals as mgptd does (a gated tick executes the fallback intent); its context.window_ticks replaces --window. Without it the model's proposal is executed as is.")
    var config: String?
    @Flag(help: "Print every decision to stderr: episode, tick, distance to the target, expert and model intent, the model's probability.")
    var trace = false

    func validate() throws {
        if episodes < 1 { throw ValidationError("--episodes: expected ≥ 1, found \(episodes)") }
        if !(0...1).contains(beta) { throw ValidationError("--beta: expected 0…1, found \(beta)") }
        if window < 1 { throw ValidationError("--window: expected ≥ 1, found \(window)") }
        if !(0...1).contains(faultFraction) { throw ValidationError("--fault-fraction: expected 0…1, found \(faultFraction)") }
        _ = try parseFamilies(families)
    }

    func run() throws {
        let driver: ClosedLoop
        do { driver = try ClosedLoop(model: model, config: config, window: window) } catch {
            throw ValidationError("\(model): \(error)")
        }
        var rng = SimRNG(seed: seed ^ 0xDA66E5)
        var lines: [String] = []
        var goals = 0, collisions = 0, ticksTotal = 0, agree = 0, decisionsTotal = 0, gatedTotal = 0
        let scenarios = closedLoopScenarios(episodes: episodes, seed: seed, families: try parseFamilies(families),
                                            faultFraction: faultFraction)
        for (i, scenario) in scenarios.enumerated() {
            let out = driver.run(scenario, beta: beta, rng: &rng, trace: !trace ? nil : { tick, world, expert, model, r in
                let dist = String(format: "%.2f", world.distanceToTarget), p = String(format: "%.2f", r.proposal.probability)
                FileHandle.standardError.write(Data("trace episode=\(i) tick=\(tick) dist=\(dist) expert=\(expert) model=\(model) p=\(p)\n".utf8))
            })
            let r = out.record.result
            if r.goalReached { goals += 1 }
            collisions += r.collisions
            ticksTotal += r.ticks
            agree += out.agreed
            decisionsTotal += out.decisions
            gatedTotal += out.gated
            if self.out != nil { lines.append(CorpusWriter.line(out.record)) }
        }
        if let out {
            try (lines.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
            FileHandle.standardError.write(Data("wrote \(lines.count) episodes to \(out)\n".utf8))
        }
        let n = Double(max(episodes, 1))
        print(String(format: "goal_rate=%.3f collisions=%d mean_ticks=%.1f episodes=%d expert_agreement=%.3f gated_rate=%.3f",
                     Double(goals) / n, collisions, Double(ticksTotal) / n, episodes,
                     Double(agree) / Double(max(decisionsTotal, 1)), Double(gatedTotal) / Double(max(decisionsTotal, 1))))
    }
}
