import Foundation
import Testing
import Observation
@testable import Cognition

/// The calibrated controller: debounce, hysteresis, fallback, sensor gate, calibration map and
/// the statistics `mgpt calibrate` / `mgpt eval controller` rest on.
@Suite struct CalibratedControllerTests {
    func proposal(p: Float = 0.9, h: Float = 0.3) -> IntentProposal {
        IntentProposal(index: 4, probability: p, entropy: h, grammarMass: 0.9)
    }

    @Test func debounceWaitsForConsecutiveSuspectDecisions() {
        var t = ControllerThresholds()
        t.hysteresisTicks = 0
        t.debounceTicks = 3
        var c = MetaController(thresholds: t)
        var s = DecisionSignals()
        #expect(c.decide(proposal(), signals: &s).reason == .ok)
        // Two low-confidence decisions pass (debounced), the third trips the gate.
        let low = (0..<3).map { _ in c.decide(proposal(p: 0.1), signals: &s) }
        #expect(low.map(\.gated) == [false, false, true])
        #expect(low[2].reason == .lowConfidence && low[2].intent == .stop && low[2].confidence == 0)
        // A clean decision resets the count.
        #expect(c.decide(proposal(), signals: &s).reason == .ok)
        #expect(!c.decide(proposal(p: 0.1), signals: &s).gated)
    }

    @Test func instructionsOutsideTheTaskGrammarAreRefused() {
        let g = TaskGrammar(templates: ["go to the {c} {k}", "the {c} {k} is your goal"],
                            slots: ["c": ["red", "Blue"], "k": ["box"]])
        #expect(g.accepts("go to the red box") && g.accepts("  Go to the BLUE box. ") && g.accepts("the red box is your goal!"))
        #expect(!g.accepts("go to the green box"))          // colour outside its slot
        #expect(!g.accepts("go to the red duck"))           // kind outside its slot
        #expect(!g.accepts("dance on the table and sing"))  // no template
        #expect(!g.accepts("go to the red box now") && !g.accepts("go to the red") && !g.accepts(""))
        #expect(TaskGrammar(templates: ["go to {x}"], slots: [:]).undefinedSlots == ["x"])
        // The controller gates every decision of a session whose instruction failed, at once.
        var t = ControllerThresholds()
        t.hysteresisTicks = 0
        t.debounceTicks = 5
        var c = MetaController(thresholds: t)
        var s = DecisionSignals()
        #expect(c.decide(proposal(), signals: &s).reason == .ok)
        c.instructionAccepted = false
        let d = c.decide(proposal(p: 0.99, h: 0.01), signals: &s)
        #expect(d.gated && d.reason == .unknownInstruction && d.intent == .stop && d.reason.name.description == "unknown_instruction")
    }

    @Test func sensorFaultsGateAtOnceDespiteDebounceAndHoldWithHysteresis() {
        var t = ControllerThresholds()
        t.debounceTicks = 5
        t.hysteresisTicks = 2
        t.fallback = .backup
        var c = MetaController(thresholds: t)
        var clean = DecisionSignals()
        _ = (0..<3).map { _ in c.decide(proposal(), signals: &clean) }   // leave the start-up hold
        var faulty = DecisionSignals()
        faulty.sensors.flags = 1 << UInt16(SensorCheck.scannerFrozen.rawValue)
        let d = c.decide(proposal(p: 0.99), signals: &faulty)
        #expect(d.gated && d.reason == .sensorFault && d.intent == .backup)
        let after = (0..<3).map { _ in c.decide(proposal(), signals: &clean).reason }
        #expect(after == [.holding, .holding, .ok])
        // Checks measured but not gating when disabled.
        t.sensorLimits.enabled = false
        var quiet = MetaController(thresholds: t)
        _ = (0..<3).map { _ in quiet.decide(proposal(), signals: &clean) }
        #expect(quiet.decide(proposal(), signals: &faulty).reason == .ok)
    }

    @Test func aFrameCheckHoldsTheFallbackLongerThanAModelGate() {
        var t = ControllerThresholds()
        t.hysteresisTicks = 1
        t.sensorHysteresisTicks = 4
        var c = MetaController(thresholds: t)
        var clean = DecisionSignals()
        _ = (0..<2).map { _ in c.decide(proposal(), signals: &clean) }   // leave the start-up hold
        // A model gate: one clean decision held, then the proposal again.
        var s = DecisionSignals()
        #expect(c.decide(proposal(p: 0.1), signals: &s).reason == .lowConfidence)
        #expect((0..<2).map { _ in c.decide(proposal(), signals: &clean).reason } == [.holding, .ok])
        // A frame check: four clean decisions held; a model gate inside the hold does not shorten it.
        var faulty = DecisionSignals()
        faulty.sensors.flags = 1 << UInt16(SensorCheck.scannerNoisy.rawValue)
        #expect(c.decide(proposal(), signals: &faulty).reason == .sensorFault)
        #expect(c.requiredCleanTicks == 4)
        #expect(c.decide(proposal(), signals: &clean).reason == .holding)
        #expect(c.decide(proposal(p: 0.1), signals: &s).reason == .lowConfidence)
        #expect((0..<5).map { _ in c.decide(proposal(), signals: &clean).reason } == [.holding, .holding, .holding, .holding, .ok])
        // Released: the next model gate holds for hysteresis_ticks only.
        #expect(c.requiredCleanTicks == 1)
        #expect(c.decide(proposal(p: 0.1), signals: &s).reason == .lowConfidence)
        #expect((0..<2).map { _ in c.decide(proposal(), signals: &clean).reason } == [.holding, .ok])
        // Never shorter than hysteresis_ticks.
        t.hysteresisTicks = 3
        t.sensorHysteresisTicks = 0
        var d = MetaController(thresholds: t)
        _ = (0..<4).map { _ in d.decide(proposal(), signals: &clean) }
        #expect(d.decide(proposal(), signals: &faulty).reason == .sensorFault)
        #expect((0..<4).map { _ in d.decide(proposal(), signals: &clean).reason } == [.holding, .holding, .holding, .ok])
    }

    @Test func publishedConfidenceIsTheCalibratedOne() {
        var t = ControllerThresholds()
        t.hysteresisTicks = 0
        var w = SIMD32<Float>(repeating: 0)
        w[0] = 0.5
        t.calibration = ConfidenceMap(weights: w, bias: 0)  // tempers p = 0.9 to ≈ 0.75
        t.minConfidence = 0.8
        var c = MetaController(thresholds: t)
        var s = DecisionSignals()
        let d = c.decide(proposal(p: 0.9), signals: &s)
        let expected = 1 / (1 + expf(-0.5 * logf(0.9 / 0.1)))
        #expect(abs(s.confidence - expected) < 1e-5)
        #expect(d.gated && d.reason == .lowConfidence)   // 0.75 < 0.8 although the raw 0.9 is not
        t.minConfidence = 0.7
        c.thresholds = t
        let ok = c.decide(proposal(p: 0.9), signals: &s)
        #expect(!ok.gated && abs(ok.confidence - expected) < 1e-5)
    }

    @Test("frame features: the proposed verb's indicator and its products with obstacle nearness and route alignment")
    func frameFeatures() throws {
        let names = ConfidenceMap.featureNames
        #expect(names.count == 22 && names.count <= 32 && Set(names).count == names.count)
        var s = DecisionSignals()
        s.probability = 0.8
        #expect(s.features.indices.filter { $0 >= 7 }.allSatisfy { s.features[$0] == 0 }, "no proposal yet: no verb features")
        s.verbLane = DecisionSignals.lane(.forward)
        s.nearestRange = 0.3
        s.routeBearing = -0.2
        let f = s.features
        let at = { (n: String) in names.firstIndex(of: n)! }
        #expect(f[at("verb_forward")] == 1 && abs(f[at("near_obstacle_forward")] - expf(-1)) < 1e-6 && abs(f[at("route_ahead_forward")] - expf(-1)) < 1e-6)
        #expect(f[at("verb_stop")] == 0 && f[at("near_obstacle_turn_left")] == 0)
        s.nearestRange = .infinity; s.routeBearing = .infinity   // no scan, no route hint
        #expect(s.features[at("near_obstacle_forward")] == 0 && s.features[at("route_ahead_forward")] == 0 && s.features[at("verb_forward")] == 1)
        s.verbLane = DecisionSignals.lane(.done)                  // DONE is the reference verb
        #expect(s.features.indices.filter { $0 >= 7 }.allSatisfy { s.features[$0] == 0 })
        // A map that distrusts FORWARD near obstacles: the controller fills the verb from the
        // proposal and gates a confident FORWARD beside a wall, not the same FORWARD in the open.
        var w = ConfidenceMap.identity.weights
        w[at("near_obstacle_forward")] = -6
        var t = ControllerThresholds()
        t.hysteresisTicks = 0
        t.calibration = ConfidenceMap(weights: w, bias: 0)
        t.minConfidence = 0.5
        var c = MetaController(thresholds: t)
        let forward = try #require((0..<Intent.tokenCount).first { Intent(index: $0)?.kind == .forward })
        var near = DecisionSignals(), open = DecisionSignals()
        near.nearestRange = 0.2; open.nearestRange = 3
        let p = IntentProposal(index: forward, probability: 0.9, entropy: 0.3, grammarMass: 1)
        let dn = c.decide(p, signals: &near), dOpen = c.decide(p, signals: &open)
        #expect(near.verbLane == DecisionSignals.lane(.forward))
        #expect(dn.gated && dn.reason == .lowConfidence && near.confidence < 0.5, "\(near.confidence)")
        #expect(!dOpen.gated && open.confidence > 0.85, "\(open.confidence)")
    }

    /// Synthetic decisions: correct with probability `truth(p)`, which the raw probability overstates.
    func synthetic(_ n: Int, seed: UInt64) -> [(DecisionSignals, Bool)] {
        var state = seed
        func u() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }
        return (0..<n).map { _ in
            var s = DecisionSignals()
            s.probability = 0.3 + 0.7 * u()
            s.entropy = 1 - s.probability
            let truth = 0.6 * s.probability    // an overconfident model
            return (s, u() < truth)
        }
    }

    @Test func fittedMapIsCalibratedAndMonotoneInProbability() {
        let train = synthetic(4000, seed: 1), test = synthetic(4000, seed: 2)
        let map = ConfidenceMap.fit(train)
        #expect(map.weights[0] >= 0)
        // Monotone: raising the model's probability (others fixed) never lowers confidence.
        var s = DecisionSignals()
        var last: Float = -1
        for k in 1..<100 {
            s.probability = Float(k) / 100
            let c = map.confidence(s)
            #expect(c >= last)
            last = c
        }
        let raw = Calibration.ece(test.map { Double($0.0.probability) }, test.map(\.1))
        let fitted = Calibration.ece(test.map { Double(map.confidence($0.0)) }, test.map(\.1))
        #expect(raw > 0.08 && fitted < 0.04, "ECE raw \(raw) fitted \(fitted)")
        // A feature anti-correlated with correctness cannot make the probability weight negative.
        let flipped = train.map { s, ok in (s, !ok) }
        #expect(ConfidenceMap.fit(flipped, use: ["logit_probability"]).weights[0] == 0)
    }

    @Test func aurocEceAndRiskCoverageOnKnownInputs() {
        #expect(Calibration.auroc([0.1, 0.2, 0.8, 0.9], [false, false, true, true]) == 1)
        #expect(Calibration.auroc([0.9, 0.8, 0.2, 0.1], [false, false, true, true]) == 0)
        #expect(Calibration.auroc([0.5, 0.5, 0.5, 0.5], [false, true, false, true]) == 0.5)
        #expect(Calibration.auroc([1, 2], [true, true]) == nil)
        #expect(abs(Calibration.ece([0.9, 0.9, 0.9, 0.9], [true, true, true, false]) - 0.15) < 1e-9)
        let (curve, aurc) = Calibration.riskCoverage([0.9, 0.8, 0.7, 0.6], [false, false, true, true])
        #expect(curve.map(\.risk) == [0, 0, 1.0 / 3, 0.5])
        #expect(abs(aurc - (0 + 0 + 1.0 / 3 + 0.5) / 4) < 1e-12)
    }

    @Test func conformalThresholdControlsTheJointErrorRate() {
        // 1000 decisions, confidence i/1000, wrong when i < 100 (the least confident 10 %).
        let conf = (0..<1000).map { Double($0) / 1000 }
        let wrong = (0..<1000).map { $0 < 100 }
        // α = 0.05: accept at most ≈ 49 wrong ones: λ just above 0.050.
        let lambda = Calibration.conformalThreshold(conf, wrong, alpha: 0.05)
        let acceptedWrong = conf.indices.filter { conf[$0] >= lambda && wrong[$0] }.count
        #expect((Double(acceptedWrong) + 1) / 1001 <= 0.05)
        #expect((Double(acceptedWrong) + 2) / 1001 > 0.05)   // the smallest such threshold
        // α below 1 / (n + 1): nothing qualifies.
        #expect(Calibration.conformalThreshold(conf, wrong, alpha: 0.0005) == 1)
        // Conformal limit: ≤ δ of nominal scores exceed it.
        let scores = (0..<999).map(Double.init)
        #expect(Calibration.conformalLimit(scores, delta: 0.01) == 989)   // the 990th smallest of 999
        #expect(Calibration.conformalLimit([1, 2, 3], delta: 0.01) == .infinity)
    }
}

@Suite struct SensorMonitorTests {
    func frame(_ t: Double, ranges: [Float], odom: Odometry, detections: [Detection] = [], bump: Bool = false) -> ObservationFrame {
        ObservationFrame(seq: UInt64(t * 50), t: t, ranges: ranges, rangeMax: 6, detections: detections,
                         odom: odom, bump: bump, battery: 1, route: nil)
    }
    func scan(_ k: Int) -> [Float] { (0..<16).map { i in 1.0 + Float((i * 7 + k * 3) % 11) * 0.001 } }
    let moving = Odometry(x: 1, y: 1, theta: 0, v: 0.3, w: 0)
    func moved(_ dt: Float) -> Odometry { Odometry(x: 1 + 0.3 * dt, y: 1, theta: 0, v: 0.3, w: 0) }

    /// With stamps, a sensor whose reading lags the frame by more than `maxStampAge` is stale.
    @Test func staleStampsTripTheirSensorsCheck() {
        let m = SensorMonitor()
        var f = frame(1.0, ranges: scan(0), odom: moving)
        f.stamps = SensorStamps(scanner: 1.0, camera: 0.96, odom: nil)   // fresh, 40 ms, not reported
        #expect(m.check(f).isHealthy)
        f = frame(1.1, ranges: scan(1), odom: moved(0.1))
        f.stamps = SensorStamps(scanner: 1.0, camera: 1.1, odom: 0.9)     // scan and odometry stalled
        let h = m.check(f)
        #expect(h.has(.scannerStale) && h.has(.odometryStale) && !h.has(.cameraStale))
        #expect(h.names.contains("scanner_stale") && h.names.contains("odometry_stale"))
        var limits = SensorLimits()
        limits.maxStampAge = 0.5
        let lenient = SensorMonitor(limits: limits)
        #expect(lenient.check(f).isHealthy)
    }

    @Test func nominalFramesPassAndEachFaultTripsItsCheck() {
        let m = SensorMonitor()
        #expect(m.check(frame(0.0, ranges: scan(0), odom: moving)).isHealthy)
        #expect(m.check(frame(0.1, ranges: scan(1), odom: moved(0.1))).isHealthy)
        // Scanner frozen: every beam repeats exactly.
        #expect(m.check(frame(0.2, ranges: scan(1), odom: moved(0.2))).has(.scannerFrozen))
        // Scanner missing, and noisy (every beam off by ≈ 0.3 m).
        #expect(m.check(frame(0.3, ranges: [], odom: moved(0.3))).has(.scannerMissing))
        _ = m.check(frame(0.4, ranges: scan(4), odom: moved(0.4)))
        let noisy = scan(5).enumerated().map { i, r in r + (i % 2 == 0 ? 0.3 : -0.3) }
        #expect(m.check(frame(0.5, ranges: noisy, odom: moved(0.5))).has(.scannerNoisy))
        // Bumper pressed with nothing near: contradiction.
        #expect(m.check(frame(0.6, ranges: scan(6), odom: moved(0.6), bump: true)).has(.contradiction))
        // Odometry: all zeros after real readings; pose frozen while the speed says moving.
        #expect(m.check(frame(0.7, ranges: scan(7), odom: Odometry(x: 0, y: 0, theta: 0, v: 0, w: 0))).has(.odometryMissing))
        _ = m.check(frame(0.8, ranges: scan(8), odom: moved(0.8)))
        #expect(m.check(frame(0.9, ranges: scan(9), odom: moved(0.8))).has(.odometryFrozen))
        // Odometry speed inconsistent with its own pose.
        _ = m.check(frame(1.0, ranges: scan(10), odom: moved(1.0)))
        let fast = Odometry(x: 1 + 0.3 * 1.1, y: 1, theta: 0, v: 0.9, w: 0)
        #expect(m.check(frame(1.1, ranges: scan(11), odom: fast)).has(.odometryNoisy))
    }

    @Test func aVanishedObjectStillInViewIsMissingForAtMostTheLatchLength() {
        let m = SensorMonitor()
        let far: [Float] = Array(repeating: 5, count: 16)   // line of sight clear in every direction
        let red = Detection(colour: "red", kind: "box", bearing: 0.1, distance: 2)
        let still = Odometry(x: 1, y: 1, theta: 0, v: 0, w: 0)
        var t = 0.0
        for k in 0..<2 {   // seen twice: a track
            var d = red
            d.distance = 2 + Float(k) * 0.001
            #expect(m.check(frame(t, ranges: far.map { $0 + Float(k) * 0.002 }, odom: still, detections: [d])).isHealthy)
            t += 0.1
        }
        var flagged: [Bool] = []
        for k in 0..<14 {   // the camera goes dark while the robot stands still
            flagged.append(m.check(frame(t, ranges: far.map { $0 + Float(k % 3) * 0.003 }, odom: still)).has(.cameraMissing))
            t += 0.1
        }
        #expect(flagged == Array(repeating: true, count: 10) + Array(repeating: false, count: 4))
        // An occluder in front (the scanner sees something nearer than the object): no alarm.
        let n = SensorMonitor()
        _ = n.check(frame(0, ranges: far, odom: still, detections: [red]))
        _ = n.check(frame(0.1, ranges: far.map { $0 + 0.002 }, odom: still, detections: [red]))
        var blocked = far
        blocked[0] = 0.8
        #expect(!n.check(frame(0.2, ranges: blocked, odom: still)).has(.cameraMissing))
    }

    @Test func cameraChecksAndResetForgetTheLastFrame() {
        let m = SensorMonitor()
        let red = Detection(colour: "red", kind: "box", bearing: 0.2, distance: 2)
        _ = m.check(frame(0.0, ranges: scan(0), odom: moving, detections: [red]))
        var redMoved = red
        redMoved.distance = 1.97
        #expect(m.check(frame(0.1, ranges: scan(1), odom: moved(0.1), detections: [redMoved])).isHealthy)
        #expect(m.check(frame(0.2, ranges: scan(2), odom: moved(0.2), detections: [redMoved])).has(.cameraFrozen))
        var jumped = redMoved
        jumped.bearing = 0.6
        jumped.distance = 1.94
        let h = m.check(frame(0.3, ranges: scan(3), odom: moved(0.3), detections: [jumped]))
        #expect(h.has(.cameraNoisy) && abs(h.cameraBearingJump - 0.4) < 1e-4)
        m.reset()
        #expect(m.check(frame(0.4, ranges: scan(3), odom: moved(0.3), detections: [jumped])).isHealthy)
    }
}
