import ArgumentParser
import ClosedLoop
import Cognition
import Foundation
import MiniGPT
import RobotSim
import Runtime

// `mgpt calibrate` and `mgpt eval controller`: the meta-controller measured and calibrated on
// closed-loop episodes the model drives itself (the states it will meet when deployed), decided
// by the daemon's own DecisionCore (sim/Sources/ClosedLoop). Error = the proposed verb differs
// from the expert's at the same state. docs/controller.md explains the method and the figures.

/// Options shared by both commands.
struct ControllerDataOptions: ParsableArguments {
    @Option(help: "Model folder (with tokenizer.json).") var model = "Models/robot-phase15"
    @Option(help: "robot.json whose controller is measured (its context.window_ticks sets the window).") var config = "Configs/robot.json"
    @Option(help: "Nominal closed-loop episodes.") var episodes = 200
    @Option(help: "Episodes with 1–3 random sensor faults each (the fault set).") var faultEpisodes = 100
    @Option(help: "Episodes with one hazard fault each: a scanner or odometry failure that begins as the robot nears an obstacle (eval controller only).") var hazardEpisodes = 100
    @Option(help: "Scenario families: training, heldout, or a comma-separated list.") var families = "heldout"

    func validate() throws {
        if episodes < 1 { throw ValidationError("--episodes: expected ≥ 1, found \(episodes)") }
        if faultEpisodes < 0 { throw ValidationError("--fault-episodes: expected ≥ 0, found \(faultEpisodes)") }
        if hazardEpisodes < 0 { throw ValidationError("--hazard-episodes: expected ≥ 0, found \(hazardEpisodes)") }
        _ = try families(families)
    }

    func families(_ text: String) throws -> [ScenarioGenerator.Family] {
        do { return try ScenarioGenerator.Family.list(text) } catch { throw ValidationError("--families: \(error)") }
    }

    func loop(config path: String? = nil) throws -> ClosedLoop {
        do { return try ClosedLoop(model: model, config: path ?? config) } catch let e as ConfigError {
            throw failure("\(e)", code: 78)
        } catch {
            throw failure("\(model): \(error)", code: Exit.dataError)
        }
    }

    /// Which faults a set of episodes carries.
    enum EpisodeSet: String, CaseIterable {
        case nominal, faulted, hazard
        /// Prefix of the set's closed-loop keys in the result line.
        var label: String { switch self { case .nominal: ""; case .faulted: "fault_"; case .hazard: "hazard_" } }
    }

    /// The `n` scenarios of `set` for seed `seed`.
    func scenarios(_ set: EpisodeSet, n: Int, seed: UInt64) throws -> [Scenario] {
        closedLoopScenarios(episodes: n, seed: seed, families: try families(families),
                            faultFraction: set == .faulted ? 1 : 0, hazards: set == .hazard)
    }

    /// The decisions of `n` episodes of `set` for seed `seed`, the model driving ungated.
    func samples(_ loop: ClosedLoop, n: Int, seed: UInt64, set: EpisodeSet) throws -> [ClosedLoop.Sample] {
        let scenarios = try scenarios(set, n: n, seed: seed)
        var rng = SimRNG(seed: seed ^ 0xDA66E5)
        let gate = loop.gate
        loop.gate = false
        defer { loop.gate = gate }
        return scenarios.flatMap { loop.run($0, beta: 0, rng: &rng, keepSamples: true).samples }
    }
}

/// One signal as an error detector: higher score = more suspicious.
struct SignalScore: Sendable {
    let name: String
    let score: @Sendable (DecisionSignals) -> Double
    static let all: [SignalScore] = [
        SignalScore(name: "probability") { 1 - Double($0.probability) },
        SignalScore(name: "entropy") { Double($0.entropy) },
        SignalScore(name: "grammar_mass") { -Double($0.grammarMass) },
        SignalScore(name: "margin") { -Double($0.margin) },
        SignalScore(name: "head_disagreement") { Double($0.headDisagreement) },
        SignalScore(name: "exit_disagreement") { Double($0.exitDisagreement) },
        SignalScore(name: "temporal_disagreement") { Double($0.temporalDisagreement) },
        SignalScore(name: "frame_age") { Double($0.frameAgeMs) },
        SignalScore(name: "confidence") { 1 - Double($0.confidence) },
    ]
}

/// `mgpt calibrate`: fits the confidence map and picks the thresholds, writes a robot.json.
struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Fit the meta-controller's confidence map and thresholds on held-out closed-loop episodes; write a robot.json.",
        discussion: """
        Confidence: logistic regression of verb correctness on the signal features (multi-feature \
        Platt scaling; monotone in the model's probability). min_confidence: conformal risk control \
        (Angelopoulos et al. 2022; Ren et al. 2023): the lowest threshold whose loss 1{accepted and \
        wrong} stays ≤ α = target_error × min_coverage on new decisions, so error among accepted \
        decisions ≤ target_error whenever coverage ≥ min_coverage. Sensor-check limits: split-conformal \
        upper limits of the nominal scores at false-alarm rate --false-alarm. \
        Last line: confidence_weights=… min_confidence=… crc_threshold=… closed_loop_gated_rate=… alpha=… coverage=… selective_error=… ece=… scanner_jump_m=… odometry_speed_error_mps=… camera_bearing_jump_rad=… decisions=… out=…
        """)

    @OptionGroup var data: ControllerDataOptions
    @Option(help: "Seed of the calibration episodes (keep it apart from the evaluation seed, 5 by default).") var seed: UInt64 = 7
    @Option(help: "Target error among accepted decisions.") var targetError = 0.02
    @Option(help: "Coverage the target is meant for (α = target × this).") var minCoverage = 0.9
    @Option(help: "Per-check false-alarm rate on nominal frames for the sensor limits.") var falseAlarm = 0.002
    @Option(help: "Where to write the calibrated robot.json (default: print the controller section only).") var out: String?
    @Option(help: "Closed-loop check: episodes driven with the gate on at the chosen threshold (0 = skip; 30 misjudged a threshold by 3× in closed loop, measured).") var checkEpisodes = 100
    @Option(help: "Closed-loop check: highest gated rate allowed; the threshold is lowered (bisection, 6 steps) until it holds.") var maxGated = 0.05

    func validate() throws {
        if !(0 < targetError && targetError < 1) { throw ValidationError("--target-error: expected 0 < e < 1, found \(targetError)") }
        if !(0 < minCoverage && minCoverage <= 1) { throw ValidationError("--min-coverage: expected 0 < c ≤ 1, found \(minCoverage)") }
        if !(0 < falseAlarm && falseAlarm < 1) { throw ValidationError("--false-alarm: expected 0 < δ < 1, found \(falseAlarm)") }
        // Fail before minutes of closed-loop episodes, not after them.
        if let out, !FileManager.default.isWritableFile(atPath: URL(fileURLWithPath: out).deletingLastPathComponent().path) {
            throw ValidationError("--out: cannot write into the folder of \(out)")
        }
    }

    func run() throws {
        let loop = try data.loop()
        note("calibrate: \(data.episodes) nominal episodes, seed \(seed), model driving ungated")
        let nominal = try data.samples(loop, n: data.episodes, seed: seed, set: .nominal)
        // 1. Sensor limits: conformal upper limits of the nominal scores.
        var limits = loop.config.thresholds.sensorLimits
        func limit(_ f: (SensorHealth) -> Float) -> Float {
            let l = Calibration.conformalLimit(nominal.map { Double(f($0.signals.sensors)) }, delta: falseAlarm)
            return Float(l.isFinite ? l * 1.1 + 1e-3 : 1e3)   // 10 % above the order statistic
        }
        limits.scannerJump = limit(\.scannerJump)
        limits.odometrySpeedError = limit(\.odometrySpeedError)
        limits.odometryTurnError = limit(\.odometryTurnError)
        limits.cameraBearingJump = limit(\.cameraBearingJump)
        // 2. Confidence map on the decisions the frame checks pass.
        let clean = nominal.filter { $0.signals.sensors.isHealthy }
        let map = ConfidenceMap.fit(clean.map { ($0.signals, !$0.wrong) })
        var conf: [Double] = [], wrong: [Bool] = []
        for s in clean {
            var sig = s.signals
            sig.confidence = map.confidence(sig)
            conf.append(Double(sig.confidence)); wrong.append(s.wrong)
        }
        // 3. Threshold by conformal risk control.
        let alpha = targetError * minCoverage
        let lambda = Calibration.conformalThreshold(conf, wrong, alpha: alpha)
        // 3b. The deployment check: a gated decision stops the robot, and a robot stopped mid-route is
        //     a state the policy rarely saw, so in closed loop uncertainty can feed on itself. Lower
        //     the threshold (bisection) until the gate-on closed-loop gated rate is within --max-gated.
        var shipped = lambda
        var closedGated = Double.nan
        if checkEpisodes > 0 {
            let scenarios = closedLoopScenarios(episodes: checkEpisodes, seed: seed ^ 0xC4EC, families: try data.families(data.families))
            func gatedRate(_ threshold: Double) -> Double {
                var t = loop.config.thresholds
                t.calibration = map
                t.sensorLimits = limits
                t.minConfidence = Float(threshold)
                var robot = loop.config
                robot.thresholds = t
                let check = ClosedLoop(config: robot, model: loop.model, tokenizer: loop.tokenizer, gate: true)
                var gated = 0, decisions = 0
                for sc in scenarios {
                    var rng = SimRNG(seed: sc.seed)
                    let o = check.run(sc, beta: 0, rng: &rng)
                    gated += o.gated; decisions += o.decisions
                }
                let rate = Double(gated) / Double(max(decisions, 1))
                note("calibrate: min_confidence \(fmt(threshold, 4)) → closed-loop gated rate \(fmt(rate, 4)) over \(checkEpisodes) episodes")
                return rate
            }
            closedGated = gatedRate(lambda)
            if closedGated > maxGated {
                // Bisection for the highest threshold that keeps the gated rate within bounds
                // (the rate rises with the threshold); 0 is the floor.
                var lo = 0.0, hi = lambda, loRate = Double.nan
                for _ in 0..<6 {
                    let mid = 0.5 * (lo + hi)
                    let r = gatedRate(mid)
                    if r <= maxGated { lo = mid; loRate = r } else { hi = mid }
                }
                shipped = lo
                closedGated = loRate.isNaN ? gatedRate(lo) : loRate
            }
        }
        let accepted = conf.indices.filter { conf[$0] >= shipped }
        let coverage = Double(accepted.count) / Double(max(conf.count, 1))
        let selErr = Double(accepted.filter { wrong[$0] }.count) / Double(max(accepted.count, 1))
        let ece = Calibration.ece(conf, wrong.map { !$0 })
        // 4. The controller section.
        var weights: [String: Double] = [:]
        for (i, name) in ConfidenceMap.featureNames.enumerated() { weights[name] = (Double(map.weights[i]) * 1e5).rounded() / 1e5 }
        let section: [String: Any] = [
            "calibration": ["weights": weights, "bias": (Double(map.bias) * 1e5).rounded() / 1e5,
                            "fitted_on": "\(URL(fileURLWithPath: data.model).lastPathComponent): \(data.episodes) \(data.families) episodes, seed \(seed), \(clean.count) decisions"],
            "min_confidence": (shipped * 1e5).rounded(.down) / 1e5,
            "sensor_checks": ["enabled": limits.enabled, "scanner_jump_m": r4(limits.scannerJump),
                              "odometry_speed_error_mps": r4(limits.odometrySpeedError),
                              "odometry_turn_error_radps": r4(limits.odometryTurnError),
                              "camera_bearing_jump_rad": r4(limits.cameraBearingJump),
                              "bump_clearance_m": r4(limits.bumpClearance)],
        ]
        if let out {
            guard let raw = FileManager.default.contents(atPath: data.config),
                  var root = try JSONSerialization.jsonObject(with: raw) as? [String: Any] else {
                throw failure("\(data.config): cannot read it as a JSON object", code: Exit.noInput)
            }
            var controller = root["controller"] as? [String: Any] ?? [:]
            for (k, v) in section {
                // Merge the checks' limits into the user's sensor_checks object: keys this fit
                // does not compute (max_stamp_age_ms, hysteresis_ticks) keep their values.
                if k == "sensor_checks", let fitted = v as? [String: Any] {
                    var checks = controller[k] as? [String: Any] ?? [:]
                    for (name, value) in fitted { checks[name] = value }
                    controller[k] = checks
                } else {
                    controller[k] = v
                }
            }
            root["controller"] = controller
            // Relative paths of the source config keep pointing at the same places from `out`.
            if var model = root["model"] as? [String: Any], let p = model["path"] as? String, !p.hasPrefix("/") {
                model["path"] = relocate(p, from: data.config, to: out)
                root["model"] = model
            }
            if var record = root["record"] as? [String: Any], let p = record["dir"] as? String, !p.hasPrefix("/") {
                record["dir"] = relocate(p, from: data.config, to: out)
                root["record"] = record
            }
            let json = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            try (json + Data("\n".utf8)).write(to: URL(fileURLWithPath: out))
            _ = try RobotConfig.load(path: out)   // what we wrote must load
        } else {
            let json = try JSONSerialization.data(withJSONObject: ["controller": section], options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: json, as: UTF8.self))
        }
        let w = ConfidenceMap.featureNames.enumerated().map { "\($0.element):\(fmt(Double(map.weights[$0.offset]), 3))" }.joined(separator: ",")
        print("confidence_weights=\(w),bias:\(fmt(Double(map.bias), 3)) min_confidence=\(fmt(shipped, 4)) crc_threshold=\(fmt(lambda, 4)) closed_loop_gated_rate=\(closedGated.isNaN ? "n/a" : fmt(closedGated, 4)) alpha=\(fmt(alpha, 4)) coverage=\(fmt(coverage, 3)) selective_error=\(fmt(selErr, 4)) ece=\(fmt(ece, 4)) scanner_jump_m=\(fmt(Double(limits.scannerJump), 3)) odometry_speed_error_mps=\(fmt(Double(limits.odometrySpeedError), 3)) odometry_turn_error_radps=\(fmt(Double(limits.odometryTurnError), 3)) camera_bearing_jump_rad=\(fmt(Double(limits.cameraBearingJump), 3)) decisions=\(clean.count) out=\(out ?? "-")")
    }

    func r4(_ x: Float) -> Double { (Double(x) * 1e4).rounded() / 1e4 }

    /// `path` (relative to `from`'s folder) relative to `to`'s folder.
    func relocate(_ path: String, from: String, to: String) -> String {
        let abs = URL(fileURLWithPath: from).deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL.pathComponents
        let base = URL(fileURLWithPath: to).deletingLastPathComponent().standardizedFileURL.pathComponents
        var i = 0
        while i < abs.count && i < base.count && abs[i] == base[i] { i += 1 }
        return (Array(repeating: "..", count: base.count - i) + abs[i...]).joined(separator: "/")
    }
}

/// `mgpt eval controller`: how well the configured controller's signals and gates work, offline
/// on held-out decisions and in closed loop (gate on vs off vs the expert, nominal and faulted).
struct EvalControllerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
        abstract: "Evaluate the meta-controller: AUROC per signal, risk–coverage and AURC, ECE, fault gating, closed-loop safety.",
        discussion: """
        Offline: the model drives --episodes nominal, --fault-episodes faulted and --hazard-episodes \
        hazard held-out episodes ungated; every decision is scored by the configured controller. \
        Closed loop: the same scenarios with the gate on and off, and the expert (the hazard set \
        also per fault kind). Prints per-signal and per-fault lines, \
        then the last line: auroc_probability=… auroc_entropy=… auroc_head_disagreement=… \
        auroc_exit_disagreement=… auroc_confidence=… aurc=… ece=… coverage=… selective_error=… \
        nominal_gated_rate=… nominal_held_rate=… fault_gated_rate=… fault_visible_gated_rate=… \
        fault_changed_gated_rate=… sensor_false_alarm_rate=… goal_rate_on=… goal_rate_off=… \
        expert_goal_rate=… collisions_on=… collisions_off=… unsafe_on=… unsafe_off=… (each closed-loop \
        figure also as fault_* and hazard_*; hazard_fault_gated_rate=… offline).
        """)

    @OptionGroup var data: ControllerDataOptions
    @Option(help: "Seed of the evaluation episodes (calibration uses 7 by default).") var seed: UInt64 = 5
    @Option(help: "Write the risk–coverage curve as PREFIX.svg and PREFIX.csv.") var plot: String?
    @Flag(help: "Skip the closed-loop part (offline figures only).") var offlineOnly = false
    @Option(help: "Write every offline decision (signals, expert, proposal, faults) as CSV to this file.") var dump: String?
    @Option(help: "A second, independently trained model folder deciding beside the deployed one (measured only): adds the ensemble_disagreement signal (JS of the two verb distributions) to the AUROC lines and the dump.") var secondOpinion: String?

    func run() throws {
        let loop = try data.loop()
        if let dir = secondOpinion {
            do {
                let url = URL(fileURLWithPath: dir)
                let weights = try ModelFolder.load(url)
                loop.secondOpinion = (Transformer(weights: weights), try Tokenizer(contentsOf: url.appendingPathComponent(ModelFolder.tokenizerFile)))
            } catch {
                throw failure("--second-opinion \(dir): \(error)", code: Exit.dataError)
            }
        }
        let t = loop.config.thresholds
        let nominal = try data.samples(loop, n: data.episodes, seed: seed, set: .nominal)
        let faulted = try data.samples(loop, n: data.faultEpisodes, seed: seed, set: .faulted)
        let hazard = try data.samples(loop, n: data.hazardEpisodes, seed: seed, set: .hazard)
        if let dump {
            var csv = "set,tick,probability,entropy,grammar_mass,margin,head_disagreement,exit_disagreement,temporal_disagreement,confidence,sensor_flags,proposal,expert,wrong,gated,reason,faults,wrong_tolerant,ensemble_disagreement,nearest_range,route_bearing\n"
            for (set, rows) in [("nominal", nominal), ("faulted", faulted), ("hazard", hazard)] {
                for x in rows {
                    let g = x.signals
                    csv += "\(set),\(x.tick),\(g.probability),\(g.entropy),\(g.grammarMass),\(g.margin),\(g.headDisagreement),\(g.exitDisagreement),\(g.temporalDisagreement),\(g.confidence),\(g.sensors.flags),\(x.proposal),\(x.expert),\(x.wrong ? 1 : 0),\(x.decision.gated ? 1 : 0),\(x.decision.reason.name),\(x.faults.joined(separator: "+")),\(x.wrongTolerant ? 1 : 0),\(secondOpinion == nil ? "" : "\(DecisionSignals.js(x.verbs, x.secondVerbs))"),\(g.nearestRange),\(g.routeBearing)\n"
                }
            }
            try csv.write(toFile: dump, atomically: true, encoding: .utf8)
        }
        // Offline signal quality on nominal decisions the frame checks pass.
        let clean = nominal.filter { $0.signals.sensors.isHealthy }
        let wrong = clean.map(\.wrong)
        var au: [String: Double] = [:]
        for s in SignalScore.all {
            let a = Calibration.auroc(clean.map { s.score($0.signals) }, wrong)
            au[s.name] = a
            print("signal=\(s.name) auroc=\(a.map { fmt($0, 3) } ?? "n/a") decisions=\(clean.count) errors=\(wrong.filter { $0 }.count)")
        }
        if secondOpinion != nil {
            let a = Calibration.auroc(clean.map { Double(DecisionSignals.js($0.verbs, $0.secondVerbs)) }, wrong)
            au["ensemble_disagreement"] = a
            print("signal=ensemble_disagreement auroc=\(a.map { fmt($0, 3) } ?? "n/a") decisions=\(clean.count) errors=\(wrong.filter { $0 }.count)")
        }
        // Which verbs the errors confuse (expert → proposal), most frequent first.
        var confusion: [String: Int] = [:]
        for s in clean where s.wrong { confusion["\(s.expert.kind.rawValue)->\(s.proposal.kind.rawValue)", default: 0] += 1 }
        print("errors " + confusion.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(8).map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        let conf = clean.map { Double($0.signals.confidence) }
        let (curve, aurc) = Calibration.riskCoverage(conf, wrong)
        let ece = Calibration.ece(conf, wrong.map { !$0 })
        let accepted = clean.indices.filter { !clean[$0].decision.gated || clean[$0].decision.reason == .holding }
        let coverage = Double(accepted.count) / Double(max(clean.count, 1))
        let selErr = Double(accepted.filter { wrong[$0] }.count) / Double(max(accepted.count, 1))
        let nominalGated = Double(nominal.filter { $0.decision.gated && $0.decision.reason != .holding }.count) / Double(max(nominal.count, 1))
        let falseAlarm = Double(nominal.filter { !$0.signals.sensors.isHealthy }.count) / Double(max(nominal.count, 1))
        // Hysteresis holds after a gate (not counted in nominal_gated_rate), without each
        // episode's start-up hold (the decisions before its first published proposal).
        var held = 0, released = false, lastTick = Int.min
        for s in nominal {
            if s.tick < lastTick { released = false }   // the next episode
            lastTick = s.tick
            if !s.decision.gated { released = true } else if released && s.decision.reason == .holding { held += 1 }
        }
        let nominalHeld = Double(held) / Double(max(nominal.count, 1))
        // Sensor-check scores on nominal frames against their limits.
        func p999(_ f: (SensorHealth) -> Float) -> String {
            let v = nominal.map { Double(f($0.signals.sensors)) }.sorted()
            return v.isEmpty ? "n/a" : fmt(v[min(v.count - 1, Int(Double(v.count) * 0.999))], 3)
        }
        print("sensor_scores nominal_p999 scanner_jump=\(p999(\.scannerJump)) odometry_speed_error=\(p999(\.odometrySpeedError)) odometry_turn_error=\(p999(\.odometryTurnError)) camera_bearing_jump=\(p999(\.cameraBearingJump)) limits scanner_jump=\(fmt(Double(t.sensorLimits.scannerJump), 3)) odometry_speed_error=\(fmt(Double(t.sensorLimits.odometrySpeedError), 3)) odometry_turn_error=\(fmt(Double(t.sensorLimits.odometryTurnError), 3)) camera_bearing_jump=\(fmt(Double(t.sensorLimits.cameraBearingJump), 3))")
        for c in SensorCheck.allCases {
            let n = nominal.filter { $0.signals.sensors.has(c) }.count
            if n > 0 { print("false_alarm check=\(c.name) decisions=\(n)") }
        }
        var reasons: [GateReason: Int] = [:]
        for s in nominal where s.decision.gated { reasons[s.decision.reason, default: 0] += 1 }
        print("nominal_gate_reasons " + reasons.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.name)=\($0.value)" }.joined(separator: " "))
        // Fault decisions: gated rate per fault.
        let faultDecisions = faulted.filter { !$0.faults.isEmpty }
        let hazardDecisions = hazard.filter { !$0.faults.isEmpty }
        for (prefix, set) in [("", faultDecisions), ("hazard_", hazardDecisions)] {
            var perFault: [String: [ClosedLoop.Sample]] = [:]
            for s in set { for f in s.faults { perFault[f, default: []].append(s) } }
            for (f, v) in perFault.sorted(by: { $0.key < $1.key }) {
                let visible = v.filter(\.faultVisible), changed = v.filter(\.faultChanged)
                print("\(prefix)fault=\(f) decisions=\(v.count) gated_rate=\(fmt(gatedRate(v), 3)) visible_decisions=\(visible.count) visible_gated_rate=\(fmt(gatedRate(visible), 3)) changed_decisions=\(changed.count) changed_gated_rate=\(fmt(gatedRate(changed), 3))")
            }
        }
        let faultGated = gatedRate(faultDecisions)
        let visibleFaults = faultDecisions.filter(\.faultVisible), changedFaults = faultDecisions.filter(\.faultChanged)
        if let plot { try writePlot(curve, aurc: aurc, prefix: plot) }
        for c in [0.8, 0.9, 0.95] {   // selective error at fixed coverages
            if let p = curve.first(where: { $0.coverage >= c }) { print("risk_at_coverage coverage=\(fmt(p.coverage, 3)) error=\(fmt(p.risk, 4)) threshold=\(fmt(p.threshold, 4))") }
        }
        // The same against the tolerant label: threshold calls of the expert (either verb as good)
        // are not errors.
        let wrongTolerant = clean.map(\.wrongTolerant)
        let (tolerantCurve, tolerantAurc) = Calibration.riskCoverage(conf, wrongTolerant)
        var tolerantRisk90 = Double.nan
        for c in [0.8, 0.9, 0.95] {
            if let p = tolerantCurve.first(where: { $0.coverage >= c }) {
                if c == 0.9 { tolerantRisk90 = p.risk }
                print("tolerant_risk_at_coverage coverage=\(fmt(p.coverage, 3)) error=\(fmt(p.risk, 4)) threshold=\(fmt(p.threshold, 4))")
            }
        }
        let ambiguous = clean.filter { $0.expertAlternatives.count > 1 }.count
        print("tolerant_label decisions=\(clean.count) threshold_calls=\(ambiguous) errors=\(wrong.filter { $0 }.count) tolerant_errors=\(wrongTolerant.filter { $0 }.count) auroc_entropy=\(f3(Calibration.auroc(clean.map { Double($0.signals.entropy) }, wrongTolerant))) auroc_confidence=\(f3(Calibration.auroc(clean.map { 1 - Double($0.signals.confidence) }, wrongTolerant))) aurc=\(fmt(tolerantAurc, 4))")
        var line = "auroc_probability=\(f3(au["probability"])) auroc_entropy=\(f3(au["entropy"])) auroc_margin=\(f3(au["margin"])) auroc_grammar_mass=\(f3(au["grammar_mass"])) auroc_head_disagreement=\(f3(au["head_disagreement"])) auroc_exit_disagreement=\(f3(au["exit_disagreement"])) auroc_temporal_disagreement=\(f3(au["temporal_disagreement"])) auroc_confidence=\(f3(au["confidence"])) aurc=\(fmt(aurc, 4)) tolerant_error_rate=\(fmt(Double(wrongTolerant.filter { $0 }.count) / Double(max(clean.count, 1)), 4)) tolerant_risk_at_90=\(fmt(tolerantRisk90, 4)) ece=\(fmt(ece, 4)) coverage=\(fmt(coverage, 3)) selective_error=\(fmt(selErr, 4)) nominal_gated_rate=\(fmt(nominalGated, 4)) nominal_held_rate=\(fmt(nominalHeld, 4)) fault_gated_rate=\(fmt(faultGated, 3)) fault_decisions=\(faultDecisions.count) fault_visible_gated_rate=\(fmt(gatedRate(visibleFaults), 3)) fault_visible_decisions=\(visibleFaults.count) fault_changed_gated_rate=\(fmt(gatedRate(changedFaults), 3)) fault_changed_decisions=\(changedFaults.count) hazard_fault_gated_rate=\(fmt(gatedRate(hazardDecisions), 3)) hazard_fault_decisions=\(hazardDecisions.count) sensor_false_alarm_rate=\(fmt(falseAlarm, 4)) decisions=\(nominal.count)"
        if !offlineOnly {
            let sets: [(ControllerDataOptions.EpisodeSet, Int)] = [(.nominal, data.episodes), (.faulted, data.faultEpisodes), (.hazard, data.hazardEpisodes)]
            for (set, n) in sets where n > 0 {
                let label = set.label
                let scenarios = try data.scenarios(set, n: n, seed: seed)
                var on = Tally(), off = Tally(), expert = Tally()
                var perKind: [String: (on: Tally, off: Tally)] = [:]   // hazard set: by the episode's fault
                var closedReasons: [GateReason: Int] = [:]
                var closedChecks: [String: Int] = [:]   // checks tripped on fault-free frames
                for sc in scenarios {
                    var rng = SimRNG(seed: sc.seed)
                    loop.gate = true
                    let a = loop.run(sc, beta: 0, rng: &rng, keepSamples: true)
                    for x in a.samples where x.decision.gated { closedReasons[x.decision.reason, default: 0] += 1 }
                    for x in a.samples where x.faults.isEmpty { for c in SensorCheck.allCases where x.signals.sensors.has(c) { closedChecks[c.name, default: 0] += 1 } }
                    loop.gate = false
                    let b = loop.run(sc, beta: 0, rng: &rng)
                    let e = loop.run(sc, beta: 1, rng: &rng)   // the expert executes, through the same loop
                    on.add(a); off.add(b); expert.add(e)
                    if set == .hazard {
                        let kind = sc.faults.map(\.name).joined(separator: "+")
                        perKind[kind, default: (Tally(), Tally())].on.add(a)
                        perKind[kind, default: (Tally(), Tally())].off.add(b)
                    }
                }
                let d = Double(max(n, 1))
                for (kind, t) in perKind.sorted(by: { $0.key < $1.key }) {
                    print("closed_loop set=hazard fault=\(kind) episodes=\(t.on.episodes) gate_on goal_rate=\(fmt(Double(t.on.goals) / Double(t.on.episodes), 3)) collisions=\(t.on.collisions) unsafe=\(t.on.unsafe) gate_off goal_rate=\(fmt(Double(t.off.goals) / Double(t.off.episodes), 3)) collisions=\(t.off.collisions) unsafe=\(t.off.unsafe)")
                }
                print("closed_loop_gate_reasons set=\(set.rawValue) " + closedReasons.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.name)=\($0.value)" }.joined(separator: " ")
                      + " false_alarms " + closedChecks.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
                print("closed_loop set=\(set.rawValue) episodes=\(n) gate_on goal_rate=\(fmt(Double(on.goals) / d, 3)) collisions=\(on.collisions) unsafe=\(on.unsafe) gated_rate=\(fmt(Double(on.gated) / Double(max(on.decisions, 1)), 4)) gate_off goal_rate=\(fmt(Double(off.goals) / d, 3)) collisions=\(off.collisions) unsafe=\(off.unsafe) expert goal_rate=\(fmt(Double(expert.goals) / d, 3)) collisions=\(expert.collisions) unsafe=\(expert.unsafe)")
                line += " \(label)goal_rate_on=\(fmt(Double(on.goals) / d, 3)) \(label)goal_rate_off=\(fmt(Double(off.goals) / d, 3)) \(label)expert_goal_rate=\(fmt(Double(expert.goals) / d, 3)) \(label)collisions_on=\(on.collisions) \(label)collisions_off=\(off.collisions) \(label)expert_collisions=\(expert.collisions) \(label)unsafe_on=\(on.unsafe) \(label)unsafe_off=\(off.unsafe) \(label)gated_rate_on=\(fmt(Double(on.gated) / Double(max(on.decisions, 1)), 4))"
            }
        }
        print(line)
    }

    func f3(_ x: Double?) -> String { x.map { fmt($0, 3) } ?? "n/a" }

    /// Fraction of `x` the controller gated.
    func gatedRate(_ x: [ClosedLoop.Sample]) -> Double { Double(x.filter(\.decision.gated).count) / Double(max(x.count, 1)) }

    /// Closed-loop sums over episodes of one policy.
    struct Tally {
        var episodes = 0, goals = 0, collisions = 0, unsafe = 0, gated = 0, decisions = 0
        mutating func add(_ o: ClosedLoop.Outcome) {
            episodes += 1
            if o.record.result.goalReached { goals += 1 }
            collisions += o.record.result.collisions
            unsafe += o.unsafe
            gated += o.gated
            decisions += o.decisions
        }
    }

    /// The risk–coverage curve as CSV and as a small SVG (coverage on x, selective risk on y).
    func writePlot(_ curve: [Calibration.RiskPoint], aurc: Double, prefix: String) throws {
        var csv = "coverage,risk,threshold\n"
        for p in curve { csv += "\(fmt(p.coverage, 5)),\(fmt(p.risk, 5)),\(fmt(p.threshold, 5))\n" }
        try csv.write(toFile: prefix + ".csv", atomically: true, encoding: .utf8)
        let (W, H, m) = (480.0, 320.0, 48.0)
        let maxRisk = max(0.05, (curve.map(\.risk).max() ?? 0) * 1.1)
        func x(_ c: Double) -> Double { m + c * (W - 2 * m) }
        func y(_ r: Double) -> Double { H - m - r / maxRisk * (H - 2 * m) }
        let pts = curve.map { "\(fmt(x($0.coverage), 1)),\(fmt(y($0.risk), 1))" }.joined(separator: " ")
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<line x1=\"\(m)\" y1=\"\(H - m)\" x2=\"\(W - m)\" y2=\"\(H - m)\" stroke=\"black\"/><line x1=\"\(m)\" y1=\"\(m)\" x2=\"\(m)\" y2=\"\(H - m)\" stroke=\"black\"/>\n"
        for k in 0...4 {
            let c = Double(k) / 4, r = maxRisk * Double(k) / 4
            svg += "<text x=\"\(fmt(x(c), 1))\" y=\"\(H - m + 14)\" text-anchor=\"middle\">\(fmt(c, 2))</text>"
            svg += "<text x=\"\(m - 4)\" y=\"\(fmt(y(r) + 4, 1))\" text-anchor=\"end\">\(fmt(r, 3))</text>\n"
        }
        svg += "<text x=\"\(W / 2)\" y=\"\(H - 10)\" text-anchor=\"middle\">coverage (fraction of decisions accepted)</text>\n"
        svg += "<text x=\"14\" y=\"\(H / 2)\" transform=\"rotate(-90 14 \(H / 2))\" text-anchor=\"middle\">error among accepted</text>\n"
        svg += "<text x=\"\(W / 2)\" y=\"20\" text-anchor=\"middle\">risk–coverage of the calibrated confidence (AURC \(fmt(aurc, 4)))</text>\n"
        svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"\(pts)\"/>\n</svg>\n"
        try svg.write(toFile: prefix + ".svg", atomically: true, encoding: .utf8)
    }
}

/// `mgpt eval adversarial`: the adversarial low-confidence suite through the configured controller.
struct EvalAdversarialCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adversarial",
        abstract: "Run the adversarial low-confidence suite (sim/scenarios/adversarial/suite.json): the rate at which the gate holds per case, against its floor.",
        discussion: "One line per case: case=… decisions=… hold_rate=… floor=… passed=…; last line: cases=… passed=… mean_hold_rate=…. Exit 1 when a case is below its floor.")

    @Option(help: "Model folder.") var model = "Models/robot-phase15"
    @Option(help: "robot.json whose controller is tested.") var config = "Configs/robot.json"
    @Option(help: "The suite file.") var suite = "sim/scenarios/adversarial/suite.json"

    func run() throws {
        let loop: ClosedLoop
        do { loop = try ClosedLoop(model: model, config: config) } catch let e as ConfigError {
            throw failure("\(e)", code: 78)
        } catch { throw failure("\(model): \(error)", code: Exit.dataError) }
        let s: AdversarialSuite
        do { s = try AdversarialSuite.load(path: suite) } catch { throw failure("\(error)", code: Exit.dataError) }
        let results = try s.run(loop, base: URL(fileURLWithPath: suite).deletingLastPathComponent().path)
        for r in results {
            print("case=\(r.name) decisions=\(r.decisions) hold_rate=\(fmt(r.holdRate, 3)) floor=\(r.floor.map { fmt($0, 2) } ?? "none") collisions=\(r.collisions) unsafe=\(r.unsafe) passed=\(r.passed)")
        }
        let mean = results.map(\.holdRate).reduce(0, +) / Double(max(results.count, 1))
        print("cases=\(results.count) passed=\(results.filter(\.passed).count) mean_hold_rate=\(fmt(mean, 3))")
        if results.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }
}
