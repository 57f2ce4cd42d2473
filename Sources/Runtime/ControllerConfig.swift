import Cognition
import Foundation
import Observation

extension ControllerThresholds {
    /// Reads robot.json's `controller` section (every key optional; defaults in
    /// `ControllerThresholds`). `controller.calibration` is what `mgpt calibrate` writes.
    static func read(_ r: ConfigReader) throws -> ControllerThresholds {
        var t = ControllerThresholds()
        t.maxEntropy = Float(try r.number("controller.max_entropy", default: Double(t.maxEntropy), range: 0...10))
        t.maxHeadDisagreement = Float(try r.number("controller.max_head_disagreement", default: Double(t.maxHeadDisagreement), range: 0...1))
        t.maxExitDisagreement = Float(try r.number("controller.max_exit_disagreement", default: Double(t.maxExitDisagreement), range: 0...1))
        t.minConfidence = Float(try r.number("controller.min_confidence", default: Double(t.minConfidence), range: 0...1))
        t.minGrammarMass = Float(try r.number("controller.min_grammar_mass", default: Double(t.minGrammarMass), range: 0...1))
        t.hysteresisTicks = try r.int("controller.hysteresis_ticks", default: t.hysteresisTicks, range: 0...10_000)
        t.debounceTicks = try r.int("controller.debounce_ticks", default: t.debounceTicks, range: 1...10_000)
        let fallbackText = try r.string("controller.fallback_intent", default: "STOP")
        do { t.fallback = try Intent(parsing: fallbackText) } catch {
            throw r.fail("controller.fallback_intent", "expected an intent such as \"STOP\" or \"BACKUP\", found \"\(fallbackText)\" (\(error))")
        }
        if try r.value("controller.calibration") != nil {
            var w = SIMD32<Float>(repeating: 0)
            var any = false
            for (i, name) in ConfidenceMap.featureNames.enumerated() {
                if let v = try r.optionalNumber("controller.calibration.weights.\(name)", range: -1000...1000) {
                    w[i] = Float(v)
                    any = true
                }
            }
            guard any else {
                throw r.fail("controller.calibration.weights", "missing: expected an object with at least one of \(ConfidenceMap.featureNames.joined(separator: ", "))")
            }
            guard w[0] >= 0 else {
                throw r.fail("controller.calibration.weights.logit_probability",
                             "expected a value ≥ 0 (confidence must not fall when the model's probability rises), found \(w[0])")
            }
            let bias = Float(try r.number("controller.calibration.bias", range: -1000...1000))
            _ = try r.optionalString("controller.calibration.fitted_on")
            t.calibration = ConfidenceMap(weights: w, bias: bias)
        }
        if try r.value("controller.instructions") != nil {
            let templates = try r.stringArray("controller.instructions.templates")
            guard case .object(let slotObject)? = try r.value("controller.instructions.slots") else {
                throw r.fail("controller.instructions.slots", "missing: expected an object of slot name → array of words, e.g. {\"c\": [\"red\", \"blue\"]}")
            }
            var slots: [String: [String]] = [:]
            for name in slotObject.keys.sorted() { slots[name] = try r.stringArray("controller.instructions.slots.\(name)") }
            let g = TaskGrammar(templates: templates, slots: slots)
            if let missing = g.undefinedSlots.first {
                throw r.fail("controller.instructions.slots", "template slot {\(missing)} has no words (define \"\(missing)\": [...])")
            }
            t.tasks = g
        }
        var s = SensorLimits()
        s.enabled = try r.bool("controller.sensor_checks.enabled", default: s.enabled)
        s.scannerJump = Float(try r.number("controller.sensor_checks.scanner_jump_m", default: Double(s.scannerJump), range: 0...100))
        s.odometrySpeedError = Float(try r.number("controller.sensor_checks.odometry_speed_error_mps", default: Double(s.odometrySpeedError), range: 0...100))
        s.odometryTurnError = Float(try r.number("controller.sensor_checks.odometry_turn_error_radps", default: Double(s.odometryTurnError), range: 0...100))
        s.cameraBearingJump = Float(try r.number("controller.sensor_checks.camera_bearing_jump_rad", default: Double(s.cameraBearingJump), range: 0...10))
        s.bumpClearance = Float(try r.number("controller.sensor_checks.bump_clearance_m", default: Double(s.bumpClearance), range: 0...100))
        s.maxStampAge = Float(try r.number("controller.sensor_checks.max_stamp_age_ms", default: Double(s.maxStampAge) * 1000, range: 0...60_000) / 1000)
        t.sensorLimits = s
        // Absent: the same hold as any other gate (configs written before the key behave as before).
        t.sensorHysteresisTicks = try r.int("controller.sensor_checks.hysteresis_ticks", default: t.hysteresisTicks, range: 0...10_000)
        return t
    }
}
