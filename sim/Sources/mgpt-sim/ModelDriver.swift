import ArgumentParser
import Cognition
import Foundation
import MiniGPT
import Observation
import RobotSim
import Runtime

/// A trained model driving the simulator *in process*, decoded as `mgptd` decodes: instruction
/// sinks, a rolling window of frames each closed by the frame-end marker, one intent per decision
/// under the intent grammar and, with a `robot.json`, the daemon's meta-controller (a gated
/// decision executes the fallback intent). No ZeroMQ and no wall clock, so hundreds of episodes
/// take seconds. Shared by `mgpt-sim dagger` (data) and `mgpt-sim eval` (the closed-loop score).
struct ModelDriver {
    let session: Session
    let tokenizer: Tokenizer
    let vocab: IntentVocabulary
    let encoder = ObservationEncoder()
    /// The meta-controller's thresholds (nil: the proposal is executed as is).
    let thresholds: ControllerThresholds?
    /// Frames kept in the rolling context (`context.window_ticks`).
    let window: Int

    /// What one closed-loop episode did.
    struct Outcome {
        /// Expert-labelled visited states and the episode's metrics (`result.spl` etc.).
        var record: EpisodeRecord
        /// Decisions taken, how many executed intents equalled the expert's, how many were gated.
        var decisions = 0, agreed = 0, gated = 0
    }

    /// Loads the model folder and, with `config`, the controller thresholds and window of a
    /// robot.json (which then replaces `window`). Errors name the folder or the config key.
    init(model: String, config: String?, window: Int) throws {
        let dir = URL(fileURLWithPath: model)
        let weights: ModelWeights
        do {
            weights = try ModelFolder.load(dir)
            tokenizer = try Tokenizer(contentsOf: dir.appendingPathComponent(ModelFolder.tokenizerFile))
        } catch {
            throw ValidationError("\(model): \(error)")
        }
        guard tokenizer.observationTokenCount >= ObservationEncoder.tokenCount + 1 else {
            throw ValidationError("\(model): tokenizer reserves \(tokenizer.observationTokenCount) observation tokens; the encoder needs \(ObservationEncoder.tokenCount) + the frame-end marker")
        }
        if let config {
            do {
                let robot = try RobotConfig.load(path: config)
                thresholds = robot.thresholds
                self.window = robot.windowTicks
            } catch {
                throw ValidationError("\(error)")
            }
        } else {
            thresholds = nil
            self.window = window
        }
        session = Session(model: Transformer(weights: weights))
        vocab = IntentVocabulary(tokenizer: tokenizer)
    }

    /// Runs `scenario` until `DONE` or its tick limit. At each decision the executed intent is the
    /// expert's with probability `beta` (drawn from `rng`), else the deployed model's; the
    /// expert's intent is always what the record holds. `trace` sees (tick, world, expert,
    /// executed model intent, proposal probability) at every decision.
    func run(_ scenario: Scenario, beta: Double, rng: inout SimRNG,
             trace: ((Int, World, Intent, Intent, Float) -> Void)? = nil) -> Outcome {
        var world = World(scenario: scenario)
        var expert = ExpertPolicy(world: world)
        var out = Outcome(record: EpisodeRecord(seed: scenario.seed, family: scenario.family, instruction: world.instruction,
                                                decisions: [], result: EpisodeResult()))
        let tok = tokenizer
        session.reset()
        let sinks = [tok.bosID] + tok.encode(world.instruction)
        session.prefill(sinks)
        var lengths: [Int] = []
        var tokens = [Int]()
        var intent = Intent.stop
        var controller = thresholds.map { MetaController(thresholds: $0) }
        out.record.result.shortestLength = EpisodeResult.shortestLength(world)
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
                if decision?.gated == true { out.gated += 1 }
                out.record.decisions.append(DecisionRecord(obs: tokens, intent: expertIntent.index))
                out.decisions += 1
                if modelIntent == expertIntent { out.agreed += 1 }
                trace?(world.tick, world, expertIntent, modelIntent, proposal.probability)
                intent = rng.uniform() < beta ? expertIntent : modelIntent
                if intent == .done {
                    out.record.result.saidDone = true
                    break
                }
            }
            world.step(intent)
        }
        out.record.result.goalReached = out.record.result.saidDone && world.atGoal
        out.record.result.collisions = world.collisions
        out.record.result.ticks = world.tick
        out.record.result.decisions = out.decisions
        out.record.result.faultTicks = world.faultTicks
        out.record.result.pathLength = world.travelled
        return out
    }
}

/// The scenarios of `mgpt-sim dagger` and `mgpt-sim eval`: episode `i` of seed `S` uses scenario
/// seed `mix(S ^ 0xDA66E5, i)` in a family of `families` chosen by that seed, so both commands
/// (and every model compared) see the same layouts. `faultFraction` of them (by scenario seed)
/// get random sensor faults.
func closedLoopScenarios(episodes: Int, seed: UInt64, families: [ScenarioGenerator.Family],
                         faultFraction: Double = 0) -> [Scenario] {
    (0..<episodes).map { i in
        let s = SimRNG.mix(seed ^ 0xDA66E5, UInt64(i))
        let scenario = ScenarioGenerator.generate(seed: s, family: ScenarioGenerator.family(forSeed: s, among: families))
        return ScenarioGenerator.hasFaults(seed: s, fraction: faultFraction)
            ? ScenarioGenerator.withRandomFaults(scenario, seed: s) : scenario
    }
}
