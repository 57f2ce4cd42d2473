import Foundation
import Observation

/// Why a decision is what it is. Raw values are stable: they go on the wire and into recordings.
public enum GateReason: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// The model's proposal passed every gate.
    case ok = 0
    /// The intent distribution is too flat (entropy above `maxEntropy`).
    case highEntropy = 1
    /// The attention heads disagree about what matters (above `maxHeadDisagreement`).
    case headDisagreement = 2
    /// The chosen intent's probability is below `minConfidence`.
    case lowConfidence = 3
    /// The unconstrained model barely expects an intent here (grammar mass below `minGrammarMass`).
    case offGrammar = 4
    /// No fresh observation within the watchdog's limit.
    case staleSensor = 5
    /// No observation received since start.
    case noSensor = 6
    /// The previous tick overran its budget and the policy says to hold the safe intent.
    case overrun = 7
    /// Gates pass again, but hysteresis holds the fallback for a few more clean ticks.
    case holding = 8
    /// A frame check found a faulty sensor (`SensorMonitor`): the observation cannot be trusted.
    case sensorFault = 9
    /// The early-exit head and the full model disagree about the verb (above `maxExitDisagreement`).
    case exitDisagreement = 10
    /// `context.instruction` matches none of `controller.instructions`' templates: the model was
    /// never trained on such a task, so nothing it proposes is trusted (`TaskGrammar`).
    case unknownInstruction = 11

    /// The snake_case name used on the wire.
    public var name: StaticString {
        switch self {
        case .ok: return "ok"
        case .highEntropy: return "high_entropy"
        case .headDisagreement: return "head_disagreement"
        case .lowConfidence: return "low_confidence"
        case .offGrammar: return "off_grammar"
        case .staleSensor: return "stale_sensor"
        case .noSensor: return "no_sensor"
        case .overrun: return "overrun"
        case .holding: return "holding"
        case .sensorFault: return "sensor_fault"
        case .exitDisagreement: return "exit_disagreement"
        case .unknownInstruction: return "unknown_instruction"
        }
    }

    public var description: String { name.description }
}

/// The meta-controller's thresholds: from `robot.json` (`controller.*`), reloadable with SIGHUP.
public struct ControllerThresholds: Sendable, Equatable {
    /// Gate when the intent entropy (nats) exceeds this. ln(13) ≈ 2.56 is a uniform guess.
    public var maxEntropy: Float = 1.0
    /// Gate when mean pairwise head JS divergence (0…1) exceeds this (1 = off, the default: on the
    /// trained model it is 0.8–1.0 for every input and carries no error information, AUROC 0.47 —
    /// docs/controller.md).
    public var maxHeadDisagreement: Float = 1
    /// Gate when the chosen intent's *calibrated* confidence (`calibration`) is below this.
    public var minConfidence: Float = 0.35
    /// Gate when the exit-head vs final-head verb disagreement (0…1) exceeds this (1 = off).
    public var maxExitDisagreement: Float = 1
    /// Signals → calibrated confidence (`controller.calibration`, fitted by `mgpt calibrate`).
    public var calibration: ConfidenceMap = .identity
    /// Consecutive decisions a model-uncertainty gate must trip before the fallback engages
    /// (1 = at once). Sensor faults and the watchdog never wait.
    public var debounceTicks: Int = 1
    /// Frame checks (`controller.sensor_checks`).
    public var sensorLimits = SensorLimits()
    /// Gate when the unconstrained model's mass on intent tokens is below this.
    public var minGrammarMass: Float = 0.05
    /// Clean ticks required before leaving the fallback (0 = leave at once).
    public var hysteresisTicks: Int = 2
    /// Clean ticks required before leaving a fallback that a frame check (`sensorFault`) engaged
    /// during the hold; never fewer than `hysteresisTicks`. A noisy sensor trips its check on
    /// some frames and not on others (its noise only sometimes exceeds the nominal spread), so a
    /// sensor that has just been caught is trusted again only after a few clean frames in a row:
    /// trip fast, clear slow, as fault managers debounce recovery.
    public var sensorHysteresisTicks: Int = 2
    /// The safe intent published whenever a gate trips.
    public var fallback: Intent = .stop
    /// The instructions the model was trained on (`controller.instructions`); nil: no check.
    public var tasks: TaskGrammar?

    /// Defaults.
    public init() {}
}

/// The controller's verdict for one tick.
public struct Decision: Sendable, Equatable {
    /// Intent to execute (the proposal, or the fallback when gated).
    public var intent: Intent
    /// Confidence in `intent` in [0, 1]: the proposal's probability when it passed, 0 when the
    /// fallback was published because the controller is unsure.
    public var confidence: Float
    /// True when the fallback replaced the proposal.
    public var gated: Bool
    /// Why.
    public var reason: GateReason

    /// A decision with every field given.
    public init(intent: Intent, confidence: Float, gated: Bool, reason: GateReason) {
        self.intent = intent
        self.confidence = confidence
        self.gated = gated
        self.reason = reason
    }
}

/// Gates the model's intent on its uncertainty signals and the health of the inputs, falling
/// back to a safe intent when unsure. Deterministic and allocation-free.
public struct MetaController: Sendable {
    /// Current thresholds.
    public var thresholds: ControllerThresholds
    /// Consecutive ticks whose proposal passed every gate.
    public private(set) var cleanStreak: Int
    /// True while the fallback is being held.
    public private(set) var holding = true
    /// A frame check engaged the fallback since the hold began (the hold then needs
    /// `max(hysteresisTicks, sensorHysteresisTicks)` clean decisions).
    public private(set) var holdingForSensor = false
    /// Clean ticks the current hold requires before the proposal is published again.
    public var requiredCleanTicks: Int {
        holdingForSensor ? max(thresholds.hysteresisTicks, thresholds.sensorHysteresisTicks) : thresholds.hysteresisTicks
    }
    /// Consecutive decisions on which a model-uncertainty gate tripped.
    public private(set) var suspectStreak = 0
    /// False when the session's instruction failed `thresholds.tasks` (set by the owner, which
    /// knows the instruction): every decision is then gated with `unknownInstruction`.
    public var instructionAccepted = true

    /// A controller that starts in the fallback (nothing has been seen yet).
    public init(thresholds: ControllerThresholds = .init()) {
        self.thresholds = thresholds
        cleanStreak = 0
    }

    /// The decision when there is no usable observation (watchdog): fallback, confidence 0.
    public mutating func decideWithoutInput(_ reason: GateReason) -> Decision {
        cleanStreak = 0
        holding = true
        return Decision(intent: thresholds.fallback, confidence: 0, gated: true, reason: reason)
    }

    /// Decides on the model's proposal given its head disagreement only (no frame checks, no
    /// exit signal): the signals of `decide(_:signals:)` with every other field neutral.
    public mutating func decide(_ p: IntentProposal, headDisagreement: Float) -> Decision {
        var s = DecisionSignals()
        s.headDisagreement = headDisagreement
        return decide(p, signals: &s)
    }

    /// Decides on the model's proposal given every signal; fills `signals.confidence` (and the
    /// proposal's raw fields) so telemetry publishes what the gates saw.
    public mutating func decide(_ p: IntentProposal, signals s: inout DecisionSignals) -> Decision {
        let t = thresholds
        s.probability = p.probability
        s.entropy = p.entropy
        s.grammarMass = p.grammarMass
        s.margin = p.margin
        s.verbLane = Intent(index: p.index).map { DecisionSignals.lane($0.kind) } ?? -1
        s.confidence = t.calibration.confidence(s)
        if !instructionAccepted {
            suspectStreak = 0
            return fallback(.unknownInstruction)
        }
        if t.sensorLimits.enabled && !s.sensors.isHealthy {
            suspectStreak = 0
            return fallback(.sensorFault)
        }
        var reason = GateReason.ok
        if p.grammarMass < t.minGrammarMass { reason = .offGrammar }
        else if p.entropy > t.maxEntropy { reason = .highEntropy }
        else if s.headDisagreement > t.maxHeadDisagreement { reason = .headDisagreement }
        else if s.exitDisagreement > t.maxExitDisagreement { reason = .exitDisagreement }
        else if s.confidence < t.minConfidence { reason = .lowConfidence }
        if reason != .ok {
            suspectStreak += 1
            if suspectStreak >= max(t.debounceTicks, 1) { return fallback(reason) }
        } else {
            suspectStreak = 0
        }
        guard let intent = Intent(index: p.index) else { return fallback(.offGrammar) }
        cleanStreak += 1
        if holding && cleanStreak <= requiredCleanTicks {
            return Decision(intent: t.fallback, confidence: 0, gated: true, reason: .holding)
        }
        holding = false
        holdingForSensor = false
        return Decision(intent: intent, confidence: s.confidence, gated: false, reason: .ok)
    }

    private mutating func fallback(_ reason: GateReason) -> Decision {
        cleanStreak = 0
        holding = true
        if reason == .sensorFault { holdingForSensor = true }
        return Decision(intent: thresholds.fallback, confidence: 0, gated: true, reason: reason)
    }
}
