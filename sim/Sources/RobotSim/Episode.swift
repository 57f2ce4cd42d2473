import Observation

/// What happened in one episode (the simulator's own metrics; frames never carry these).
public struct EpisodeResult: Sendable, Equatable {
    /// The policy said `DONE` within `RobotParams.reachDistance` of the target.
    public var goalReached = false
    /// The policy said `DONE` at all (maybe in the wrong place).
    public var saidDone = false
    /// Collisions (contacts begun).
    public var collisions = 0
    /// Physics ticks simulated.
    public var ticks = 0
    /// Policy decisions taken.
    public var decisions = 0
    /// Ticks with at least one active sensor fault.
    public var faultTicks = 0
    /// Metres travelled by the robot's centre.
    public var pathLength = 0.0
    /// Length (m) of the shortest path from the start to the success region
    /// (`RoutePlanner.shortestPathLength`): ℓ of SPL (Anderson et al. 2018); the straight distance
    /// to the success region when there is none.
    public var shortestLength = 0.0

    /// Success weighted by path length for this episode: `shortestLength / max(pathLength,
    /// shortestLength)` when the goal was reached, else 0.
    public var spl: Double {
        guard goalReached else { return 0 }
        return shortestLength / max(pathLength, shortestLength, 1e-9)
    }

    /// ℓ of SPL for the world at its start.
    public static func shortestLength(_ world: World) -> Double {
        RoutePlanner.shortestPathLength(world) ?? max(0, world.distanceToTarget - RobotParams.reachDistance)
    }

    /// An empty result.
    public init() {}
}

/// One recorded decision: the observation tokens of the frame and the intent taken.
public struct DecisionRecord: Sendable, Equatable {
    /// Observation token indices (`ObservationEncoder`), at most `maxTokensPerFrame`.
    public var obs: [Int]
    /// Intent index (`Intent.index`).
    public var intent: Int

    /// A decision with every field given.
    public init(obs: [Int], intent: Int) {
        self.obs = obs
        self.intent = intent
    }
}

/// A recorded expert episode, ready for the corpus.
public struct EpisodeRecord: Sendable, Equatable {
    /// Scenario seed.
    public var seed: UInt64
    /// Layout family.
    public var family: String
    /// Instruction text.
    public var instruction: String
    /// One entry per decision (every `decisionEvery` ticks).
    public var decisions: [DecisionRecord]
    /// Metrics.
    public var result: EpisodeResult

    /// A record with every field given.
    public init(seed: UInt64, family: String, instruction: String, decisions: [DecisionRecord], result: EpisodeResult) {
        self.seed = seed
        self.family = family
        self.instruction = instruction
        self.decisions = decisions
        self.result = result
    }
}

/// Runs episodes closed-loop with the expert.
public enum Episode {
    /// Runs `scenario` with the expert deciding every `decisionEvery` ticks and holding its
    /// intent in between; records observation tokens and intents when `record` is true. The
    /// episode ends when the expert says `DONE` or at `maxTicks`. `trace` sees every decision.
    public static func runExpert(_ scenario: Scenario, record: Bool = true,
                                 trace: ((World, Intent) -> Void)? = nil) -> EpisodeRecord {
        var world = World(scenario: scenario)
        var expert = ExpertPolicy(world: world)
        let encoder = ObservationEncoder()
        var tokens = [Int]()
        tokens.reserveCapacity(ObservationEncoder.maxTokensPerFrame)
        var rec = EpisodeRecord(seed: scenario.seed, family: scenario.family, instruction: world.instruction,
                                decisions: [], result: EpisodeResult())
        var intent = Intent.stop
        rec.result.shortestLength = EpisodeResult.shortestLength(world)
        while world.tick < scenario.maxTicks {
            let frame = world.sense()
            if world.tick % scenario.decisionEvery == 0 {
                intent = expert.decide(world)
                trace?(world, intent)
                rec.result.decisions += 1
                if record {
                    encoder.encode(frame, into: &tokens)
                    rec.decisions.append(DecisionRecord(obs: tokens, intent: intent.index))
                }
                if intent == .done {
                    rec.result.saidDone = true
                    rec.result.goalReached = world.atGoal
                    break
                }
            }
            world.step(intent)
        }
        rec.result.ticks = world.tick
        rec.result.collisions = world.collisions
        rec.result.faultTicks = world.faultTicks
        rec.result.pathLength = world.travelled
        return rec
    }
}
