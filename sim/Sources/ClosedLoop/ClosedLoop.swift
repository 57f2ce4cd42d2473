import Cognition
import Foundation
import MiniGPT
import Observation
import RobotSim
import Runtime

/// A trained model driving the simulator *in process through the daemon's own decision core*:
/// every decision frame is serialised to the JSON the feeder publishes, offered to a
/// `DecisionCore` (the object `mgptd`, `mgpt replay` and `mgpt bench loop` drive) and decided by
/// its tick — context window, eviction, frame-end markers, frame checks and meta-controller are
/// the daemon's, not a re-implementation. Only the clock is simulated (the physics tick) and there
/// is no ZeroMQ, so hundreds of episodes take seconds. Shared by `mgpt-sim dagger` / `eval`,
/// `mgpt calibrate` and `mgpt eval controller`.
public final class ClosedLoop {
    /// The robot.json the core runs with (its `context.instruction` is replaced per episode).
    public let config: RobotConfig
    /// The model (shared by every episode's session).
    public let model: Transformer
    /// Its tokenizer.
    public let tokenizer: Tokenizer
    /// True: a gated decision executes the fallback, as mgptd's subscribers would. False: the
    /// proposal is executed whatever the controller says (the controller still runs and reports).
    public var gate: Bool
    /// A second, independently trained model that decides every frame beside the deployed one
    /// (its own `DecisionCore`, same config): the ensemble signal of `Sample.secondVerbs`. Measured
    /// only; the deployed decision never depends on it. Nil: off.
    public var secondOpinion: (model: Transformer, tokenizer: Tokenizer)?

    /// One decision of an episode: the signals, the controller's verdict, the expert's label and
    /// what the simulator alone knows (faults active, true clearance ahead).
    public struct Sample: Sendable {
        public var tick: Int
        public var signals: DecisionSignals
        public var proposal: Intent
        public var decision: Decision
        public var expert: Intent
        /// The intent the robot executed.
        public var executed: Intent
        /// Faults active at this frame (kind/sensor names, e.g. "freeze/scanner"; empty: nominal).
        public var faults: [String]
        /// The active faults changed the observation tokens the model reads from this frame (false
        /// when a fault leaves the reading as a healthy sensor would give it, e.g. a camera frozen
        /// or dropped with nothing in view; true for tampered frames).
        public var faultVisible: Bool
        /// The active faults changed the frame the daemon received (any field, stamps included),
        /// against what healthy sensors would have sent. False: the faulted frame is equal to a
        /// healthy one (a noisy camera with nothing in view; a frozen sensor's first frame, its own
        /// tick's reading): no check on this frame can tell the fault is there, only one that
        /// remembers an earlier frame.
        public var faultChanged: Bool = false
        /// Metres to the nearest obstacle within ±30° of the heading, without sensor noise.
        public var trueFrontClearance: Double
        /// The deployed model's verb distribution (`IntentProposal.verbs`).
        public var verbs: SIMD8<Float> = .zero
        /// The second opinion's verb distribution at this frame (zero when `secondOpinion` is off).
        public var secondVerbs: SIMD8<Float> = .zero
        /// The verbs the expert would also have chosen had one of its inputs been off by a few
        /// times the sensor noise (`ExpertPolicy.alternatives`; more than one: a threshold call).
        public var expertAlternatives: Set<Intent.Kind> = []
        /// The proposal's verb differs from the expert's.
        public var wrong: Bool { proposal.kind != expert.kind }
        /// Wrong even against a tolerant label: the proposal is neither the expert's verb nor one
        /// it would have chosen a few noise-widths away (an error no observation could have avoided
        /// is not counted).
        public var wrongTolerant: Bool { wrong && !expertAlternatives.contains(proposal.kind) }
        /// The executed intent drove forward with an obstacle closer than `unsafeClearance` ahead.
        public var unsafe: Bool { executed.kind == .forward && trueFrontClearance < ClosedLoop.unsafeClearance }
    }

    /// Clearance ahead (m, from the robot's centre) under which driving forward counts as unsafe:
    /// the body radius plus the expert's 0.15 m stopping margin.
    public static let unsafeClearance = RobotParams.radius + 0.15

    /// What one closed-loop episode did.
    public struct Outcome {
        /// Expert-labelled visited states and the episode's metrics (`result.spl` etc.).
        public var record: EpisodeRecord
        /// Decisions taken, executed intents equal to the expert's, decisions gated (replaced by the
        /// fallback: 0 when ungated; the samples still say what the controller decided), unsafe
        /// intents executed.
        public var decisions = 0, agreed = 0, gated = 0, unsafe = 0
        /// Every decision (only when `run(keepSamples: true)`).
        public var samples: [Sample] = []
    }

    /// A loop with `config` (validated robot.json) and a loaded model.
    /// In process there are no overruns, so the loop's overrun policy never acts: it is set to
    /// "count", which lets a model without exit heads (Models/robot, or a second opinion) run under
    /// a config whose policy needs one.
    public init(config: RobotConfig, model: Transformer, tokenizer: Tokenizer, gate: Bool = true) {
        var config = config
        config.overrunPolicy = "count"
        self.config = config
        self.model = model
        self.tokenizer = tokenizer
        self.gate = gate
    }

    /// Loads the model folder and the robot.json (`config`, or the built-in defaults with
    /// `window` frames and an ungated controller when nil). Errors name the folder or the key.
    public convenience init(model dir: String, config path: String?, window: Int = 8) throws {
        let url = URL(fileURLWithPath: dir)
        let weights = try ModelFolder.load(url)
        let tokenizer = try Tokenizer(contentsOf: url.appendingPathComponent(ModelFolder.tokenizerFile))
        var robot: RobotConfig
        if let path {
            robot = try RobotConfig.load(path: path)
        } else {
            let json = #"{"model": {"path": "\#(url.standardizedFileURL.path)"}, "loop": {"rate_hz": 10}, "context": {"instruction": "x", "window_ticks": \#(window)}, "record": {"enabled": false}}"#
            robot = try RobotConfig.parse(data: Data(json.utf8), file: "(defaults)")
        }
        robot.overrunPolicy = "count"   // as in init(config:…)
        let transformer = Transformer(weights: weights)
        // Whatever else the daemon would refuse (an exit rule the model cannot take, an instruction
        // too long for the context) is an error here too, naming the key, not a crash per episode.
        _ = try DecisionCore(config: robot, model: transformer, tokenizer: tokenizer, startedAt: 0)
        self.init(config: robot, model: transformer, tokenizer: tokenizer, gate: path != nil)
    }

    /// Runs `scenario` until `DONE` or its tick limit. At each decision the executed intent is the
    /// expert's with probability `beta` (drawn from `rng`), else the deployed model's; the
    /// expert's intent is always what the record holds. `trace` sees (tick, world, expert,
    /// executed model intent, the core's tick result: proposal, decision, signals) at every decision.
    /// `tamper`, when given, may rewrite each decision frame before the core sees it (the
    /// adversarial suite's garbage frames); it returns true when it changed the frame, which the
    /// sample then lists as fault `"tamper"`.
    public func run(_ scenario: Scenario, beta: Double, rng: inout SimRNG, keepSamples: Bool = false,
                    tamper: ((inout ObservationFrame, Int) -> Bool)? = nil,
                    trace: ((Int, World, Intent, Intent, TickResult) -> Void)? = nil) -> Outcome {
        var world = World(scenario: scenario)
        var expert = ExpertPolicy(world: world)
        var out = Outcome(record: EpisodeRecord(seed: scenario.seed, family: scenario.family, instruction: world.instruction,
                                                decisions: [], result: EpisodeResult()))
        var robot = config
        robot.instruction = world.instruction
        // The core only throws for contexts too small for the instruction: the sim's are short.
        let core = try! DecisionCore(config: robot, model: model, tokenizer: tokenizer, startedAt: 0)
        let second = secondOpinion.map { try! DecisionCore(config: robot, model: $0.model, tokenizer: $0.tokenizer, startedAt: 0) }
        let encoder = ObservationEncoder()
        var tokens = [Int](), trueTokens = [Int]()
        var intent = Intent.stop
        out.record.result.shortestLength = EpisodeResult.shortestLength(world)
        let tickNanos = UInt64(1e9 / Double(RobotParams.tickRate))
        while world.tick < scenario.maxTicks {
            var frame = world.sense()
            if world.tick % scenario.decisionEvery == 0 {
                let tampered = tamper?(&frame, world.tick) ?? false
                let now = UInt64(world.tick) * tickNanos + 1
                let alternatives = keepSamples ? expert.alternatives(world) : []
                let expertIntent = expert.decide(world)
                let json = (try? frame.jsonData()) ?? Data()
                json.withUnsafeBytes { _ = core.observe($0, truncated: false, receivedAt: now) }
                let r = core.tick(now: now)
                var secondVerbs = SIMD8<Float>.zero
                if let second {
                    json.withUnsafeBytes { _ = second.observe($0, truncated: false, receivedAt: now) }
                    secondVerbs = second.tick(now: now).proposal.verbs
                }
                let proposal = Intent(index: r.proposal.index) ?? .stop
                // What the deployed daemon's subscriber executes: the decision (or, ungated, the proposal).
                let modelIntent = gate ? r.decision.intent : proposal
                if gate && r.decision.gated { out.gated += 1 }   // ungated: nothing was replaced
                encoder.encode(frame, into: &tokens)
                out.record.decisions.append(DecisionRecord(obs: tokens, intent: expertIntent.index))
                out.decisions += 1
                if modelIntent == expertIntent { out.agreed += 1 }
                trace?(world.tick, world, expertIntent, modelIntent, r)
                intent = rng.uniform() < beta ? expertIntent : modelIntent
                let clearance = world.frontClearance()
                if intent.kind == .forward && clearance < Self.unsafeClearance { out.unsafe += 1 }
                if keepSamples {
                    let faults = world.activeFaults.map { scenario.faults[$0].name } + (tampered ? ["tamper"] : [])
                    var visible = tampered, changed = tampered
                    if !visible, !world.activeFaults.isEmpty, var truth = world.trueFrame {
                        encoder.encode(truth, into: &trueTokens)
                        visible = trueTokens != tokens
                        // Healthy sensors deliver every tick: their stamps are the frame's time.
                        truth.stamps = SensorStamps(scanner: truth.t, camera: truth.t, odom: truth.t)
                        changed = frame != truth
                    }
                    out.samples.append(Sample(tick: world.tick, signals: r.signals, proposal: proposal, decision: r.decision,
                                              expert: expertIntent, executed: intent, faults: faults, faultVisible: visible, faultChanged: changed,
                                              trueFrontClearance: clearance, verbs: r.proposal.verbs, secondVerbs: secondVerbs,
                                              expertAlternatives: alternatives))
                }
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
/// get random sensor faults; with `hazards`, every one gets one hazard fault instead
/// (`ScenarioGenerator.withHazardFault`: a scanner or odometry failure as the robot nears an obstacle).
public func closedLoopScenarios(episodes: Int, seed: UInt64, families: [ScenarioGenerator.Family],
                                faultFraction: Double = 0, hazards: Bool = false) -> [Scenario] {
    (0..<episodes).map { i in
        let s = SimRNG.mix(seed ^ 0xDA66E5, UInt64(i))
        let scenario = ScenarioGenerator.generate(seed: s, family: ScenarioGenerator.family(forSeed: s, among: families))
        if hazards { return ScenarioGenerator.withHazardFault(scenario, seed: s) }
        return ScenarioGenerator.hasFaults(seed: s, fraction: faultFraction)
            ? ScenarioGenerator.withRandomFaults(scenario, seed: s) : scenario
    }
}
