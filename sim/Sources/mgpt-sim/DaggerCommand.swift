import ArgumentParser
import Cognition
import Foundation
import MiniGPT
import Observation
import RobotSim
import Runtime

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
    @Option(help: "Frames kept in the rolling context (context.window_ticks of robot.json).") var window = 8
    @Option(help: "Write the visited states with the expert's labels here (corpus JSONL).") var out: String?
    @Option(help: "A robot.json whose meta-controller gates the model's proposals as mgptd does (a gated tick executes the fallback intent); its context.window_ticks replaces --window. Without it the model's proposal is executed as is.")
    var config: String?
    @Flag(help: "Print every decision to stderr: episode, tick, distance to the target, expert and model intent, the model's probability.")
    var trace = false

    func run() throws {
        let dir = URL(fileURLWithPath: model)
        let weights: ModelWeights, tok: Tokenizer
        do {
            weights = try ModelFolder.load(dir)
            tok = try Tokenizer(contentsOf: dir.appendingPathComponent(ModelFolder.tokenizerFile))
        } catch {
            throw ValidationError("\(model): \(error)")
        }
        let fams: [ScenarioGenerator.Family]
        switch families {
        case "training": fams = ScenarioGenerator.Family.training
        case "heldout": fams = ScenarioGenerator.Family.heldOut
        default:
            fams = try families.split(separator: ",").map { name in
                guard let f = ScenarioGenerator.Family(rawValue: String(name)) else {
                    throw ValidationError("--families: unknown family \"\(name)\"")
                }
                return f
            }
        }
        var thresholds: ControllerThresholds?
        var window = self.window
        if let config {
            do {
                let robot = try RobotConfig.load(path: config)
                thresholds = robot.thresholds
                window = robot.windowTicks
            } catch {
                throw ValidationError("\(error)")
            }
        }
        var gatedTotal = 0
        let session = Session(model: Transformer(weights: weights))
        let vocab = IntentVocabulary(tokenizer: tok)
        let encoder = ObservationEncoder()
        var rng = SimRNG(seed: seed ^ 0xDA66E5)
        var lines: [String] = []
        var goals = 0, collisions = 0, ticksTotal = 0, agree = 0, decisionsTotal = 0
        for i in 0..<episodes {
            let sSeed = SimRNG.mix(seed ^ 0xDA66E5, UInt64(i))
            let scenario = ScenarioGenerator.generate(seed: sSeed, family: ScenarioGenerator.family(forSeed: sSeed, among: fams))
            var world = World(scenario: scenario)
            var expert = ExpertPolicy(world: world)
            var rec = EpisodeRecord(seed: scenario.seed, family: scenario.family, instruction: world.instruction,
                                    decisions: [], result: EpisodeResult())
            session.reset()
            let sinks = [tok.bosID] + tok.encode(world.instruction)
            session.prefill(sinks)
            var lengths: [Int] = []
            var tokens = [Int]()
            var intent = Intent.stop
            var controller = thresholds.map { MetaController(thresholds: $0) }
            while world.tick < scenario.maxTicks {
                let frame = world.sense()
                if world.tick % scenario.decisionEvery == 0 {
                    let expertIntent = expert.decide(world)
                    encoder.encode(frame, into: &tokens)
                    while !lengths.isEmpty && (lengths.count >= window || session.position + tokens.count + 1 > session.capacity) {
                        session.evict(from: sinks.count, count: lengths.removeFirst())
                    }
                    session.prefill(tokens.map(tok.observationTokenID))
                    let proposal = IntentDecoding.decode(session.logits, vocab: vocab)
                    let decision = controller?.decide(proposal, headDisagreement: HeadSignals.disagreement(session))
                    session.step(tok.frameEndTokenID)
                    lengths.append(tokens.count + 1)
                    // What the deployed daemon would execute: the proposal, or the fallback when gated.
                    let modelIntent = decision?.intent ?? Intent(index: proposal.index) ?? .stop
                    if decision?.gated == true { gatedTotal += 1 }
                    rec.decisions.append(DecisionRecord(obs: tokens, intent: expertIntent.index))
                    decisionsTotal += 1
                    if modelIntent == expertIntent { agree += 1 }
                    if trace {
                        let dist = String(format: "%.2f", world.distanceToTarget), p = String(format: "%.2f", proposal.probability)
                        FileHandle.standardError.write(Data("trace episode=\(i) tick=\(world.tick) dist=\(dist) expert=\(expertIntent) model=\(modelIntent) p=\(p)\n".utf8))
                    }
                    intent = rng.uniform() < beta ? expertIntent : modelIntent
                    if intent == .done {
                        rec.result.saidDone = true
                        break
                    }
                }
                world.step(intent)
            }
            rec.result.goalReached = world.atGoal
            rec.result.collisions = world.collisions
            rec.result.ticks = world.tick
            if world.atGoal { goals += 1 }
            collisions += world.collisions
            ticksTotal += world.tick
            if out != nil { lines.append(CorpusWriter.line(rec)) }
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
