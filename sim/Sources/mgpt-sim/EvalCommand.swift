import ArgumentParser
import Foundation
import ClosedLoop
import Observation
import RobotSim

/// `mgpt-sim eval`: the closed-loop score of a model as deployed — the model drives generated
/// scenarios in process through the daemon's meta-controller (`--config`), and the expert drives
/// the very same scenarios in the same run, so every figure has its reference beside it.
///
/// SPL (success weighted by path length, Anderson et al. 2018, "On Evaluation of Embodied
/// Navigation Agents"): the mean over episodes of `S · ℓ / max(p, ℓ)`, with `S` success (said
/// `DONE` within reach), `ℓ` the shortest path from the start to the success region (0.8 m from
/// the target's centre) around the static geometry on the planner's 0.1 m grid, and `p` the path
/// the robot's centre travelled. The expert itself scores below 1: it keeps a clearance from
/// walls and boxes that the shortest path does not.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Closed-loop evaluation of a model through the daemon's meta-controller, with the expert on the same scenarios.",
        discussion: "Last line: goal_rate=… collisions=… mean_ticks=… spl=… gated_rate=… expert_goal_rate=… (then expert_spl, spl_ratio, expert_collisions, expert_agreement, episodes, fault_episodes).")

    @Option(help: "Model folder (with tokenizer.json).") var model: String
    @Option(help: "A robot.json: its controller gates the model as mgptd does, its context.window_ticks sets the window. Without it the model's proposals are executed ungated.")
    var config: String?
    @Option(help: "Episodes to run.") var episodes = 200
    @Option(help: "Scenario families: training, heldout, or a comma-separated list.") var families = "heldout"
    @Option(help: "Seed of the scenarios (same seed, same scenarios as mgpt-sim dagger).") var seed: UInt64 = 5
    @Option(help: "Fraction of episodes (0…1, by scenario seed) given 1–3 random sensor faults.") var faultFraction = 0.0
    @Option(help: "Frames in the rolling context when there is no --config.") var window = 8
    @Flag(help: "Print one line per episode (model and expert side by side).") var verbose = false
    @Flag(help: "Print every decision to stderr: episode, tick, pose, distance to the target, true clearance ahead, the expert's intent, the executed one and the proposal's probability.")
    var trace = false
    @Option(help: "Evaluate this scenario file (sim/scenarios/*.json) instead of generated ones (--episodes, --families, --seed, --fault-fraction are then ignored).")
    var scenario: String?

    func validate() throws {
        if episodes < 1 { throw ValidationError("--episodes: expected ≥ 1, found \(episodes)") }
        if !(0...1).contains(faultFraction) { throw ValidationError("--fault-fraction: expected 0…1, found \(faultFraction)") }
        if window < 1 { throw ValidationError("--window: expected ≥ 1, found \(window)") }
        _ = try parseFamilies(families)
    }

    /// Sums over episodes of one policy.
    struct Tally {
        var episodes = 0, goals = 0, collisions = 0, ticks = 0, spl = 0.0
        mutating func add(_ r: EpisodeResult) {
            episodes += 1
            if r.goalReached { goals += 1 }
            collisions += r.collisions
            ticks += r.ticks
            spl += r.spl
        }
        var goalRate: Double { Double(goals) / Double(max(episodes, 1)) }
        var meanSPL: Double { spl / Double(max(episodes, 1)) }
        var meanTicks: Double { Double(ticks) / Double(max(episodes, 1)) }
    }

    func run() throws {
        let driver: ClosedLoop
        do { driver = try ClosedLoop(model: model, config: config, window: window) } catch {
            throw ValidationError("\(model): \(error)")
        }
        let scenarios: [Scenario]
        if let scenario {
            do { scenarios = [try Scenario.load(path: scenario)] } catch { throw ValidationError("\(error)") }
        } else {
            scenarios = closedLoopScenarios(episodes: episodes, seed: seed, families: try parseFamilies(families),
                                            faultFraction: faultFraction)
        }
        var rng = SimRNG(seed: seed ^ 0xDA66E5)
        var modelTally = Tally(), expertTally = Tally()
        var perFamily: [String: (model: Tally, expert: Tally)] = [:]
        var decisions = 0, agreed = 0, gated = 0, faultEpisodes = 0
        for (i, scenario) in scenarios.enumerated() {
            let out = driver.run(scenario, beta: 0, rng: &rng, trace: !trace ? nil : { tick, world, expert, executed, r in
                let f = { (v: Double) in String(format: "%.2f", v) }
                let proposal = Intent(index: r.proposal.index).map { "\($0)" } ?? "none"
                FileHandle.standardError.write(Data("trace episode=\(i) tick=\(tick) x=\(f(world.position.x)) y=\(f(world.position.y)) heading=\(f(world.heading)) dist=\(f(world.distanceToTarget)) clearance=\(f(world.frontClearance())) expert=\(expert) proposal=\(proposal) p=\(f(Double(r.proposal.probability))) confidence=\(f(Double(r.signals.confidence))) reason=\(r.decision.reason) executed=\(executed)\n".utf8))
            })
            let expert = Episode.runExpert(scenario, record: false).result
            let r = out.record.result
            modelTally.add(r)
            expertTally.add(expert)
            perFamily[scenario.family, default: (Tally(), Tally())].model.add(r)
            perFamily[scenario.family, default: (Tally(), Tally())].expert.add(expert)
            decisions += out.decisions
            agreed += out.agreed
            gated += out.gated
            if !scenario.faults.isEmpty { faultEpisodes += 1 }
            if verbose {
                print("seed=\(scenario.seed) family=\(scenario.family) faults=\(scenario.faults.count) goal_reached=\(r.goalReached) said_done=\(r.saidDone) collisions=\(r.collisions) ticks=\(r.ticks) spl=\(fmt(r.spl)) gated=\(out.gated)/\(out.decisions) expert_goal=\(expert.goalReached) expert_ticks=\(expert.ticks) expert_spl=\(fmt(expert.spl))")
            }
        }
        for (family, t) in perFamily.sorted(by: { $0.key < $1.key }) {
            print("family=\(family) episodes=\(t.model.episodes) goal_rate=\(fmt(t.model.goalRate)) collisions=\(t.model.collisions) spl=\(fmt(t.model.meanSPL)) expert_goal_rate=\(fmt(t.expert.goalRate)) expert_spl=\(fmt(t.expert.meanSPL))")
        }
        let splRatio = expertTally.meanSPL > 0 ? modelTally.meanSPL / expertTally.meanSPL : 0
        print("goal_rate=\(fmt(modelTally.goalRate)) collisions=\(modelTally.collisions) mean_ticks=\(fmt(modelTally.meanTicks, 1)) spl=\(fmt(modelTally.meanSPL)) gated_rate=\(fmt(Double(gated) / Double(max(decisions, 1)))) expert_goal_rate=\(fmt(expertTally.goalRate)) expert_spl=\(fmt(expertTally.meanSPL)) spl_ratio=\(fmt(splRatio)) expert_collisions=\(expertTally.collisions) expert_mean_ticks=\(fmt(expertTally.meanTicks, 1)) expert_agreement=\(fmt(Double(agreed) / Double(max(decisions, 1)))) episodes=\(scenarios.count) fault_episodes=\(faultEpisodes)")
    }
}
