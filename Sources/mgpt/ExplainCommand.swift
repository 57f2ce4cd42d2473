import ArgumentParser
import Cognition
import Foundation
import MiniGPT
import Observation
import Runtime

/// `mgpt explain FILE.mcap --tick N`: why the controller decided what it did at one recorded tick.
/// Replays the recording deterministically up to tick N (the same DecisionCore as `mgpt replay`),
/// then prints the observation tokens, the intent distribution, per-head attention summaries,
/// every signal next to its threshold, and the gate's verdict with the rule that produced it.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain one recorded decision: tokens, intent distribution, heads, signals, thresholds, verdict.",
        discussion: "Last line: tick=… intent=… gated=… reason=… confidence=… replay_matches=true|false. Exit 0; 1 when tick N is not in the recording.")

    @Argument(help: "The .mcap recording.") var file: String
    @Option(help: "The tick (intent seq) to explain.") var tick: UInt32
    @Option(help: "The robot.json to replay with; default: the one the recording carries (mgptd writes it), else Configs/robot.json.") var config: String?

    func run() throws {
        guard FileManager.default.fileExists(atPath: file) else { throw failure("\(file): no such recording", code: Exit.noInput) }
        let recorded = try recordedMetadata(file)
        try followRecordedKernels(recorded, recording: file)
        let cfg = try replayConfig(recorded, recording: file, option: config)
        var found = false
        do {
            _ = try Replay.walk(path: file, config: cfg) { seq, json, r, core in
                guard seq == tick else { return seq < tick }
                found = true
                explain(json, r, core)
                return false
            }
        } catch let e as DaemonError {
            throw failure(e.message, code: e.code)
        } catch {
            throw failure("\(error)", code: Exit.dataError)
        }
        if !found { throw failure("\(file): no tick \(tick) in the recording", code: 1) }
    }

    func explain(_ recorded: [String: Any], _ r: TickResult, _ core: DecisionCore) {
        let t = core.controller.thresholds
        let s = r.signals
        let tok = core.session.model.config
        print("== tick \(r.seq)  observation seq \(r.observationSeq)  age \(fmt(Double(r.observationAgeNanos) / 1e6, 1)) ms  \(r.ranModel ? "model ran on a fresh frame" : "no fresh frame this tick: the signals below are those of the last decision (on observation seq \(r.observationSeq)), repeated or replaced by the watchdog")")
        if r.ranModel {
            print("observation tokens (\(r.tokensIn), vocabulary ids): \(core.lastObservationTokens)")
            print("context: \(r.contextPositions) positions in the KV cache, exit layer \(r.exitLayer) of \(tok.numHiddenLayers)\(r.anytime ? " (anytime depth)" : "")")
            // Intent distribution over the grammar (softmax over the intent block).
            let logits = core.session.logits
            let ids = (0..<Intent.tokenCount).map { core.intents.tokenID($0) }
            let m = ids.map { logits[$0] }.max() ?? 0
            let e = ids.map { expf(logits[$0] - m) }
            let z = e.reduce(0, +)
            print("intent distribution (top 6):")
            for (k, p) in e.enumerated().sorted(by: { $0.element > $1.element }).prefix(6) {
                print("  \(Intent(index: k).map { "\($0)" } ?? "?")\(String(repeating: " ", count: max(1, 16 - "\(Intent(index: k).map { "\($0)" } ?? "?")".count)))p=\(fmt(Double(p / z), 4))\(k == r.proposal.index ? "  ← proposal" : "")")
            }
            // Per-head attention of the last layer that ran fully, at the decision position.
            print("attention heads (last full layer, decision position over \(core.session.position) positions):")
            for h in 0..<tok.numAttentionHeads {
                let a = core.session.attention(head: h)
                var ent: Float = 0
                for p in a where p > 0 { ent -= p * logf(p) }
                let top = a.enumerated().sorted { $0.element > $1.element }.prefix(3).map { "pos \($0.offset)=\(fmt(Double($0.element), 2))" }
                print("  head \(h): entropy \(fmt(Double(ent), 2)) nats, top \(top.joined(separator: ", "))")
            }
        }
        let sensors = s.sensors.isHealthy ? "healthy" : s.sensors.names
        print("signals and thresholds:")
        let rows: [(String, String, String)] = [
            ("sensor checks", sensors, "enabled \(t.sensorLimits.enabled) (scanner_jump \(fmt(Double(s.sensors.scannerJump), 3)) m ≤ \(fmt(Double(t.sensorLimits.scannerJump), 3)); odometry speed \(fmt(Double(s.sensors.odometrySpeedError), 3)) ≤ \(fmt(Double(t.sensorLimits.odometrySpeedError), 3)), turn \(fmt(Double(s.sensors.odometryTurnError), 3)) ≤ \(fmt(Double(t.sensorLimits.odometryTurnError), 3)); camera jump \(fmt(Double(s.sensors.cameraBearingJump), 3)) ≤ \(fmt(Double(t.sensorLimits.cameraBearingJump), 3)))"),
            ("grammar mass", fmt(Double(s.grammarMass), 4), "≥ \(fmt(Double(t.minGrammarMass), 3))"),
            ("verb entropy", fmt(Double(s.entropy), 4), "≤ \(fmt(Double(t.maxEntropy), 3)) nats"),
            ("head disagreement", fmt(Double(s.headDisagreement), 4), "≤ \(fmt(Double(t.maxHeadDisagreement), 3))"),
            ("exit disagreement", fmt(Double(s.exitDisagreement), 4), "≤ \(fmt(Double(t.maxExitDisagreement), 3))"),
            ("temporal disagreement", fmt(Double(s.temporalDisagreement), 4), "(calibration feature)"),
            ("verb probability", fmt(Double(s.probability), 4), "(raw; margin \(fmt(Double(s.margin), 4)))"),
            ("nearest obstacle", s.nearestRange.isFinite ? "\(fmt(Double(s.nearestRange), 3)) m" : "no scan",
             "(calibration feature with the proposed verb: nearness \(fmt(Double(s.nearObstacle), 3)))"),
            ("route hint bearing", s.routeBearing.isFinite ? "\(fmt(Double(s.routeBearing), 3)) rad" : "no hint",
             "(calibration feature with the proposed verb: alignment \(fmt(Double(s.routeAhead), 3)))"),
            ("calibrated confidence", fmt(Double(s.confidence), 4), "≥ \(fmt(Double(t.minConfidence), 4))"),
            ("frame age", "\(fmt(Double(s.frameAgeMs), 1)) ms", "stale after \(fmt(core.config.staleAfterMillis, 0)) ms"),
        ]
        for (name, value, limit) in rows { print("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(value.padding(toLength: 10, withPad: " ", startingAt: 0)) \(limit)") }
        let d = r.decision
        let why: String
        switch d.reason {
        case .ok: why = "every gate passed: the proposal \(d.intent) is published with confidence \(fmt(Double(d.confidence), 4))"
        case .sensorFault: why = "a frame check tripped (\(sensors)): the observation cannot be trusted, fallback \(d.intent)"
        case .offGrammar: why = "grammar mass \(fmt(Double(s.grammarMass), 4)) < \(fmt(Double(t.minGrammarMass), 3)): the context looks unlike training, fallback \(d.intent)"
        case .highEntropy: why = "verb entropy \(fmt(Double(s.entropy), 4)) > \(fmt(Double(t.maxEntropy), 3)): the model is torn between verbs, fallback \(d.intent)"
        case .headDisagreement: why = "head disagreement \(fmt(Double(s.headDisagreement), 4)) > \(fmt(Double(t.maxHeadDisagreement), 3)), fallback \(d.intent)"
        case .exitDisagreement: why = "exit-head vs final disagreement \(fmt(Double(s.exitDisagreement), 4)) > \(fmt(Double(t.maxExitDisagreement), 3)), fallback \(d.intent)"
        case .lowConfidence: why = "calibrated confidence \(fmt(Double(s.confidence), 4)) < \(fmt(Double(t.minConfidence), 4)), fallback \(d.intent)"
        case .holding:
            let c = core.controller
            why = "gates pass again, but hysteresis holds the fallback: clean decision \(c.cleanStreak) of the \(c.requiredCleanTicks + 1) needed before publishing (\(c.holdingForSensor ? "a frame check tripped during this hold: the larger of controller.hysteresis_ticks and controller.sensor_checks.hysteresis_ticks" : "controller.hysteresis_ticks") = \(c.requiredCleanTicks))"
        case .staleSensor: why = "no fresh frame for longer than \(fmt(core.config.staleAfterMillis, 0)) ms: watchdog fallback"
        case .noSensor: why = "no frame received yet: watchdog fallback"
        case .overrun: why = "the previous tick overran its budget and loop.overrun_policy holds the fallback"
        case .unknownInstruction: why = "context.instruction \"\(core.config.instruction)\" matches none of controller.instructions' templates: no proposal is trusted, fallback \(d.intent)"
        }
        print("verdict: \(d.gated ? "GATED" : "accepted") (\(d.reason.name)): \(why)")
        let recordedIntent = recorded["intent_index"] as? Int ?? -1
        let recordedReason = recorded["reason"] as? String ?? ""
        let matches = recordedIntent == d.intent.index && recordedReason == d.reason.name.description
        print("tick=\(r.seq) intent=\(d.intent) gated=\(d.gated) reason=\(d.reason.name) confidence=\(fmt(Double(d.confidence), 4)) replay_matches=\(matches)")
    }
}
