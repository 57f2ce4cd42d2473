import Foundation
import MiniGPT
import Cognition
import Observation

/// Counters the daemon publishes in `status` and `telemetry`.
public struct LoopCounters: Sendable, Equatable {
    /// Ticks run.
    public var ticks: UInt64 = 0
    /// Frames parsed and accepted.
    public var framesAccepted: UInt64 = 0
    /// Frames dropped because they did not parse or validate.
    public var framesMalformed: UInt64 = 0
    /// Frames dropped because they exceeded `io.max_message_bytes`.
    public var framesOversized: UInt64 = 0
    /// Frames superseded by a newer one before a tick used them.
    public var framesSkipped: UInt64 = 0
    /// Accepted frames whose `t` follows the previous frame's by less than half of
    /// `context.frame_interval_ms`: the feeder publishes faster than the model was trained for
    /// (its window then covers too little time and the frame checks compare near-identical frames).
    public var framesTooFast: UInt64 = 0
    /// Ticks that ran the model.
    public var modelRuns: UInt64 = 0
    /// Ticks whose published intent was the fallback.
    public var gated: UInt64 = 0
    /// Ticks decided by the watchdog (no fresh observation).
    public var watchdog: UInt64 = 0
    /// Ticks whose work exceeded the budget.
    public var overruns: UInt64 = 0
    /// Ticks that finished after the next tick's deadline.
    public var deadlineMisses: UInt64 = 0
    /// Context records evicted from the KV cache.
    public var evictions: UInt64 = 0
    /// Decisions taken at reduced depth because the previous tick overran (`overrun_policy`
    /// `"early_exit"`: the anytime answer).
    public var anytime: UInt64 = 0
    /// Decisions whose confidence exit (`model.exit_entropy`) stopped before the last layer.
    public var earlyExits: UInt64 = 0
}

/// What one tick decided and the signals behind it.
public struct TickResult: Sendable {
    /// Tick number since start (0-based).
    public var seq: UInt64
    /// The decision published.
    public var decision: Decision
    /// The model's proposal (zeroed when the model did not run).
    public var proposal: IntentProposal
    /// Attention-head disagreement at the intent step (0 when the model did not run).
    public var headDisagreement: Float
    /// Every signal the controller saw for this decision (zero when the model did not run).
    public var signals = DecisionSignals()
    /// True when this tick ran the model on a new observation.
    public var ranModel: Bool
    /// `seq` of the observation the decision is based on (−1: none yet).
    public var observationSeq: Int64
    /// Age of that observation at the tick, in ns (0 when none).
    public var observationAgeNanos: UInt64
    /// Observation tokens fed this tick.
    public var tokensIn: Int
    /// KV-cache positions in use after the tick.
    public var contextPositions: Int
    /// Layers the decision ran fully (the model's depth unless it exited early; 0 before any run).
    public var exitLayer: Int = 0
    /// True when the decision ran at the anytime depth because the previous tick overran.
    public var anytime: Bool = false
}

/// How a tick may use the model: the loop's overrun policy turns an overrun into one of these for
/// the next tick, and a replay reads it back from the recorded intent.
public enum TickMode: Sendable, Equatable {
    /// Decide as configured.
    case normal
    /// Skip the model and publish the safe intent (policy `fallback`, reason `overrun`).
    case hold
    /// Run the model only to the anytime depth (policy `early_exit`).
    case anytime
}

/// The decision tick as a pure function of its inputs (frames with their arrival times, and the
/// tick time): the live loop, `mgpt replay` and `mgpt bench loop` all drive this one object, so a
/// replay of a recording reproduces every decision bit for bit.
///
/// Everything is allocated in `init`; `observe` and `tick` allocate nothing.
public final class DecisionCore {
    /// The validated configuration.
    public let config: RobotConfig
    /// The model session (instruction sinks + rolling window of observation records).
    public let session: Session
    /// Intent block of the vocabulary.
    public let intents: IntentVocabulary
    /// The controller (thresholds replaceable between ticks).
    public var controller: MetaController
    /// Counters since start.
    public private(set) var counters = LoopCounters()

    private let parser = FrameParser()
    private let encoder = ObservationEncoder()
    /// Frame checks (scanner / odometry / camera faults) of each decided frame.
    public let monitor: SensorMonitor
    private var latest = ObservationFrame.preallocated()
    private var scratch = ObservationFrame.preallocated()
    private var hasFrame = false
    private var pendingFresh = false
    private var lastFrameAt: UInt64 = 0
    private let startedAt: UInt64
    private let obsBase: Int
    private let frameEnd: Int
    private let obsTokens: UnsafeMutableBufferPointer<Int>
    private let sinkLength: Int
    // Ring of context records (observation tokens + the intent that followed), oldest first.
    private let recordLengths: UnsafeMutableBufferPointer<Int>
    private var recordHead = 0, recordCount = 0
    private var pendingMarker = -1
    private var last: TickResult
    /// Layer count the exit-agreement probe reads after (0: the model has no exit layer).
    private let probeDepth: Int
    /// Verb distribution of the previous decision (zero before the first).
    private var previousVerbs = SIMD8<Float>.zero
    private let staleNanos: UInt64
    /// Half the frame interval the model was trained for (s): closer frames count as too fast.
    private let minFrameSpacing: Double
    /// Layers an anytime decision runs (nil: no anytime depth configured).
    public let anytimeLayer: Int?
    /// The rule normal decisions use (`.full`, or `.confident` with `model.exit_entropy`).
    private let normalRule: ExitRule

    /// Prefills the instruction. Throws `ConfigError` if the context cannot hold the instruction
    /// plus one observation record.
    public init(config: RobotConfig, model: Transformer, tokenizer: Tokenizer, startedAt: UInt64) throws {
        self.config = config
        self.startedAt = startedAt
        intents = IntentVocabulary(tokenizer: tokenizer)
        controller = MetaController(thresholds: config.thresholds)
        controller.instructionAccepted = config.thresholds.tasks?.accepts(config.instruction) ?? true
        monitor = SensorMonitor(limits: config.thresholds.sensorLimits)
        staleNanos = UInt64(config.staleAfterMillis * 1e6)
        minFrameSpacing = config.frameIntervalMillis / 2000
        guard tokenizer.observationTokenCount >= ObservationEncoder.tokenCount else {
            throw ConfigError(file: config.modelPath, path: "tokenizer.json", message:
                "reserves \(tokenizer.observationTokenCount) observation tokens; the encoder needs \(ObservationEncoder.tokenCount)")
        }
        let layers = model.config.numHiddenLayers
        let exits = model.config.earlyExitLayers
        if let k = config.earlyExitLayer {
            guard k >= 1 && k < layers else {
                throw ConfigError(file: "robot.json", path: "model.early_exit_layer", message:
                    "expected a layer count in 1...\(layers - 1) (the model has \(layers) layers), found \(k)")
            }
            anytimeLayer = k
        } else {
            anytimeLayer = exits.first
        }
        if config.overrunPolicy == "early_exit" && anytimeLayer == nil {
            throw ConfigError(file: "robot.json", path: "loop.overrun_policy", message:
                "\"early_exit\" needs an exit depth: the model lists no early_exit_layers, so set model.early_exit_layer")
        }
        if let h = config.exitEntropy {
            guard !exits.isEmpty else {
                throw ConfigError(file: "robot.json", path: "model.exit_entropy", message:
                    "the model lists no early_exit_layers (config.json), so a confidence exit has nowhere to stop")
            }
            normalRule = .confident(maxEntropy: h)
        } else {
            normalRule = .full
        }
        obsBase = tokenizer.observationTokenID(0)
        frameEnd = tokenizer.frameEndTokenID
        session = Session(model: model)
        // The exit-agreement signal reads the first early-exit head beside the full one, on the
        // observation prefill only (armed in `think`: the marker step and the instruction need none).
        probeDepth = exits.first ?? 0
        let sinks = [tokenizer.bosID] + tokenizer.encode(config.instruction)
        let need = sinks.count + ObservationEncoder.maxTokensPerFrame + 2
        guard need <= session.capacity else {
            throw ConfigError(file: "robot.json", path: "context.instruction", message:
                "\(sinks.count) tokens leave no room for an observation in the model's \(session.capacity)-position context")
        }
        session.prefill(sinks)
        sinkLength = sinks.count
        obsTokens = .allocate(capacity: ObservationEncoder.maxTokensPerFrame)
        obsTokens.initialize(repeating: 0)
        recordLengths = .allocate(capacity: max(config.windowTicks, 1) + 1)
        recordLengths.initialize(repeating: 0)
        last = TickResult(seq: 0, decision: Decision(intent: config.thresholds.fallback, confidence: 0, gated: true, reason: .noSensor),
                          proposal: IntentProposal(index: 0, probability: 0, entropy: 0, grammarMass: 0),
                          headDisagreement: 0, ranModel: false, observationSeq: -1, observationAgeNanos: 0,
                          tokensIn: 0, contextPositions: session.position)
    }

    deinit {
        obsTokens.deallocate()
        recordLengths.deallocate()
    }

    /// Outcome of offering a frame.
    public enum FrameOutcome: Equatable {
        case accepted
        case oversized
        case malformed(FrameParseError)
    }

    /// Offers one received `obs` payload. `truncated` says the transport cut it at
    /// `io.max_message_bytes`. The newest accepted frame wins at the next tick.
    @discardableResult
    public func observe(_ payload: UnsafeRawBufferPointer, truncated: Bool, receivedAt: UInt64) -> FrameOutcome {
        if truncated || payload.count > config.maxMessageBytes {
            counters.framesOversized += 1
            return .oversized
        }
        if let error = parser.parse(payload, into: &scratch) {
            counters.framesMalformed += 1
            return .malformed(error)
        }
        if hasFrame && scratch.t - latest.t < minFrameSpacing { counters.framesTooFast += 1 }
        swap(&latest, &scratch)
        counters.framesAccepted += 1
        if pendingFresh { counters.framesSkipped += 1 }
        pendingFresh = true
        hasFrame = true
        lastFrameAt = receivedAt
        return .accepted
    }

    /// Replaces the controller's thresholds (SIGHUP), keeping its hysteresis state.
    public func setThresholds(_ t: ControllerThresholds) {
        controller.thresholds = t
        controller.instructionAccepted = t.tasks?.accepts(config.instruction) ?? true
        monitor.limits = t.sensorLimits
    }

    /// Records an overrun of the previous tick (counted by the loop, which measures time).
    public func noteOverrun(deadlineMissed: Bool) {
        counters.overruns += 1
        if deadlineMissed { counters.deadlineMisses += 1 }
    }

    /// Runs one tick at monotonic time `now` (ns) and returns its decision. With mode `.hold`
    /// (policy `fallback` after an overrun) the model is skipped and the safe intent published;
    /// a pending frame waits for the next tick. With `.anytime` (policy `early_exit`) a pending
    /// frame is decided at the anytime depth.
    public func tick(now: UInt64, mode: TickMode = .normal) -> TickResult {
        var r = last
        r.seq = counters.ticks
        r.ranModel = false
        r.anytime = false
        r.tokensIn = 0
        if mode == .hold {
            r.decision = controller.decideWithoutInput(.overrun)
        } else if pendingFresh {
            pendingFresh = false
            let anytime = mode == .anytime && anytimeLayer != nil
            r = think(r, rule: anytime ? .after(anytimeLayer!) : normalRule, now: now)
            r.anytime = anytime
            if anytime { counters.anytime += 1 }
        } else if !hasFrame {
            r.decision = controller.decideWithoutInput(.noSensor)
            counters.watchdog += 1
        } else if age(now) > staleNanos {
            r.decision = controller.decideWithoutInput(.staleSensor)
            counters.watchdog += 1
        }
        // else: no new observation yet but the last one is still fresh: repeat the last decision.
        r.observationAgeNanos = hasFrame ? age(now) : 0
        if r.decision.gated { counters.gated += 1 }
        counters.ticks += 1
        r.contextPositions = session.position
        last = r
        return r
    }

    /// Age of the newest frame at `now` (0 if it arrived after `now`).
    @inline(__always) private func age(_ now: UInt64) -> UInt64 { now > lastFrameAt ? now - lastFrameAt : 0 }

    /// read → think → decide on the newest frame.
    private func think(_ base: TickResult, rule: ExitRule, now: UInt64) -> TickResult {
        var r = base
        let n = encoder.encode(latest, into: obsTokens)
        // 1. Complete the previous record with the frame-end marker (deferred to keep it off the
        //    previous tick's latency).
        if pendingMarker >= 0 {
            session.append(pendingMarker, exit: rule)  // its outputs are never read: K/V only at the last layer, no head
            recordLengths[(recordHead + recordCount - 1) % recordLengths.count] += 1
            pendingMarker = -1
        }
        // 2. Keep the window: evict the oldest records (StreamingLLM: the instruction sinks stay).
        while recordCount > 0 && (recordCount >= config.windowTicks
                || session.position + ObservationEncoder.maxTokensPerFrame + 1 > session.capacity) {
            session.evict(from: sinkLength, count: recordLengths[recordHead])
            recordHead = (recordHead + 1) % recordLengths.count
            recordCount -= 1
            counters.evictions += 1
        }
        // 3. Prefill this observation in one batched pass (each weight read once for all tokens).
        for i in 0..<n { obsTokens[i] += obsBase }
        session.probeLayer = probeDepth
        session.prefill(UnsafeBufferPointer(rebasing: obsTokens[0..<n]), exit: rule)
        session.probeLayer = 0
        r.exitLayer = session.lastExitLayer
        if case .confident = rule, r.exitLayer < session.model.config.numHiddenLayers { counters.earlyExits += 1 }
        recordLengths[(recordHead + recordCount) % recordLengths.count] = n
        recordCount += 1
        // 4. Decode one intent under the grammar and gate it.
        let proposal = IntentDecoding.decode(session.logits, vocab: intents)
        var signals = DecisionSignals()
        signals.headDisagreement = HeadSignals.disagreement(session)
        signals.sensors = monitor.check(latest)
        if let probe = session.probeLogits {
            signals.exitDisagreement = DecisionSignals.js(IntentDecoding.decode(probe, vocab: intents).verbs, proposal.verbs)
        }
        if previousVerbs.sum() > 0 { signals.temporalDisagreement = DecisionSignals.js(proposal.verbs, previousVerbs) }
        previousVerbs = proposal.verbs
        signals.frameAgeMs = Float(Double(age(now)) / 1e6)
        var nearest = Float.infinity
        for r in latest.ranges where r < nearest { nearest = r }
        signals.nearestRange = nearest
        signals.routeBearing = latest.route?.bearing ?? .infinity
        r.decision = controller.decide(proposal, signals: &signals)
        r.proposal = proposal
        r.headDisagreement = signals.headDisagreement
        r.signals = signals
        r.ranModel = true
        r.tokensIn = n
        r.observationSeq = Int64(truncatingIfNeeded: latest.seq)
        // The frame ends with the marker, never with an intent: actions do not enter the context.
        // (Fed-back intents made the policy copy itself — measured: with the published intent the
        // robot held STOP for a whole episode, with its own proposal it drove FORWARD into walls.)
        pendingMarker = frameEnd
        counters.modelRuns += 1
        return r
    }

    /// Reads the model's weights and the session's KV cache into the CPU caches ahead of the next
    /// decision (`loop.keep_warm_us`); changes no state, so decisions and replays are unchanged.
    public func warmCaches() { session.warmCaches() }   // an opaque C read: nothing to keep

    /// The newest accepted frame (what the last decision read). Offline inspection (`mgpt explain`).
    public var latestFrame: ObservationFrame { latest }

    /// The observation tokens of the last decision (vocabulary ids). Allocates: offline only.
    public var lastObservationTokens: [Int] {
        var t: [Int] = []
        encoder.encode(latest, into: &t)
        return t.map { $0 + obsBase }
    }

    /// Monotonic time the core was created.
    public var startTime: UInt64 { startedAt }
}
