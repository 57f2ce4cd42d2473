import Foundation
import Testing
import Cognition
@testable import Runtime

/// `controller.calibration`, `controller.sensor_checks` and `controller.debounce_ticks`: read,
/// validated, and every error names the key path.
@Suite struct ControllerConfigTests {
    let base = #""model":{"path":"m"},"context":{"instruction":"go"},"loop":{"rate_hz":100}"#

    func parse(_ controller: String) throws -> RobotConfig {
        try RobotConfig.parse(data: Data("{\(base),\"controller\":\(controller)}".utf8), file: "/etc/robot.json")
    }
    func error(_ controller: String) -> String {
        do { _ = try parse(controller); return "no error" } catch { return "\(error)" }
    }

    @Test func shippedConfigCarriesAFittedCalibration() throws {
        let c = try RobotConfig.load(path: packageRoot.appendingPathComponent("Configs/robot.json").path)
        let t = c.thresholds
        #expect(t.calibration != .identity && t.calibration.weights[0] > 0)
        #expect(t.sensorLimits.enabled && t.minConfidence > 0 && t.minConfidence < 1)
        // The shipped task grammar accepts the shipped instruction and refuses one off the templates.
        #expect(t.tasks?.accepts(c.instruction) == true && t.tasks?.accepts("dance on the table and sing") == false)
    }

    @Test func instructionGrammarIsReadAndItsErrorsNameTheKey() throws {
        let t = try parse(#"{"instructions":{"templates":["go to the {c} {k}"],"slots":{"c":["red"],"k":["box","ball"]}}}"#).thresholds
        #expect(t.tasks?.accepts("go to the red ball") == true && t.tasks?.accepts("go to the red cone") == false)
        #expect(try parse("{}").thresholds.tasks == nil)   // absent: no check
        let cases: [(String, [String])] = [
            (#"{"instructions":{"slots":{"c":["red"]}}}"#, ["controller.instructions.templates", "missing required key"]),
            (#"{"instructions":{"templates":[],"slots":{}}}"#, ["controller.instructions.templates", "non-empty array"]),
            (#"{"instructions":{"templates":["go {c}"]}}"#, ["controller.instructions.slots", "slot name"]),
            (#"{"instructions":{"templates":["go {c}"],"slots":{"c":[1]}}}"#, ["controller.instructions.slots.c[0]", "non-empty string"]),
            (#"{"instructions":{"templates":["go {c} {k}"],"slots":{"c":["red"]}}}"#, ["controller.instructions.slots", "{k}"]),
            (#"{"instructions":{"templates":["go"],"slots":{},"extra":1}}"#, ["controller.instructions.extra", "unknown key"]),
        ]
        for (json, parts) in cases {
            let e = error(json)
            for p in parts { #expect(e.contains(p), "\(json) → \(e)") }
        }
    }

    @Test func calibrationAndChecksAreRead() throws {
        let c = try parse(#"{"calibration":{"weights":{"logit_probability":1.5,"entropy":-0.25},"bias":-0.5,"fitted_on":"test"},"debounce_ticks":2,"max_exit_disagreement":0.4,"sensor_checks":{"enabled":false,"scanner_jump_m":0.2,"odometry_turn_error_radps":0.3,"max_stamp_age_ms":120}}"#)
        let t = c.thresholds
        #expect(t.calibration.weights[0] == 1.5 && t.calibration.weights[1] == -0.25 && t.calibration.bias == -0.5)
        // The frame features by name (a calibration from before them names none: they stay 0).
        let f = try parse(#"{"calibration":{"weights":{"logit_probability":1,"near_obstacle_forward":-1.25,"route_ahead_turn_left":0.5},"bias":0}}"#).thresholds.calibration
        let names = ConfidenceMap.featureNames
        #expect(f.weights[names.firstIndex(of: "near_obstacle_forward")!] == -1.25 && f.weights[names.firstIndex(of: "route_ahead_turn_left")!] == 0.5)
        #expect((0..<32).filter { f.weights[$0] != 0 }.count == 3)
        #expect(t.debounceTicks == 2 && t.maxExitDisagreement == 0.4)
        #expect(!t.sensorLimits.enabled && t.sensorLimits.scannerJump == 0.2 && t.sensorLimits.odometryTurnError == 0.3)
        #expect(abs(t.sensorLimits.maxStampAge - 0.12) < 1e-6)
        #expect(try parse("{}").thresholds.calibration == .identity)
        // The hold after a frame check: its own key, else the same as any other gate's.
        let held = try parse(#"{"hysteresis_ticks":1,"sensor_checks":{"hysteresis_ticks":3}}"#).thresholds
        #expect(held.hysteresisTicks == 1 && held.sensorHysteresisTicks == 3)
        #expect(try parse(#"{"hysteresis_ticks":5}"#).thresholds.sensorHysteresisTicks == 5)
    }

    @Test func errorsNameTheKeyPath() {
        let cases: [(String, [String])] = [
            (#"{"calibration":{"weights":{"logit_probability":-1},"bias":0}}"#, ["controller.calibration.weights.logit_probability", "≥ 0"]),
            (#"{"calibration":{"weights":{"logit_probabilty":1},"bias":0}}"#, ["controller.calibration.weights", "at least one of"]),
            (#"{"calibration":{"weights":{"logit_probability":1}}}"#, ["controller.calibration.bias", "missing required key"]),
            (#"{"calibration":{"weights":{"logit_probability":1,"entrpy":2},"bias":0}}"#, ["controller.calibration.weights.entrpy", "unknown key"]),
            (#"{"calibration":"fitted"}"#, ["controller.calibration", "expected an object"]),
            (#"{"sensor_checks":{"scanner_jump_m":"far"}}"#, ["controller.sensor_checks.scanner_jump_m", "expected a number"]),
            (#"{"sensor_checks":[]}"#, ["controller.sensor_checks", "expected an object"]),
            (#"{"debounce_ticks":0}"#, ["controller.debounce_ticks", "1.0...10000.0"]),
            (#"{"sensor_checks":{"hysteresis_ticks":-1}}"#, ["controller.sensor_checks.hysteresis_ticks", "0.0...10000.0"]),
        ]
        for (json, parts) in cases {
            let e = error(json)
            for p in parts { #expect(e.contains(p), "\(json) → \(e)") }
        }
    }
}

/// `context.frame_interval_ms`: frames published faster than the model was trained for are
/// counted (status `frames_too_fast`), never dropped.
@Suite(.serialized) struct FrameRateTests {
    @Test func framesFasterThanHalfTheTrainedIntervalAreCounted() throws {
        let dir = try TempDir()
        try makeModelFolder(dir.url.appendingPathComponent("model"))
        let config = try RobotConfig.load(path: try writeConfig(dir, model: "model"))
        #expect(config.frameIntervalMillis == 100)
        let (m, tok) = try Daemon.loadModel(config.modelPath)
        func feed(every dt: Double) throws -> LoopCounters {
            let core = try DecisionCore(config: config, model: m, tokenizer: tok, startedAt: 0)
            for i in 0..<6 {
                var f = sampleFrame(i)
                f.t = Double(i) * dt
                let bytes = Array(try f.jsonData())
                bytes.withUnsafeBytes { #expect(core.observe($0, truncated: false, receivedAt: UInt64(i) * 1_000_000) == .accepted) }
            }
            return core.counters
        }
        let fast = try feed(every: 0.02), trained = try feed(every: 0.1)
        #expect(fast.framesTooFast == 5 && fast.framesAccepted == 6)
        #expect(trained.framesTooFast == 0 && trained.framesAccepted == 6)
        let bad = #"{"model":{"path":"m"},"loop":{"rate_hz":100},"context":{"instruction":"go","frame_interval_ms":"10 Hz"}}"#
        do { _ = try RobotConfig.parse(data: Data(bad.utf8), file: "/etc/robot.json"); Issue.record("accepted") } catch {
            #expect("\(error)".contains("context.frame_interval_ms") && "\(error)".contains("expected a number"))
        }
    }
}

/// `mgpt calibrate --out` rewrites the limits it fits inside `controller.sensor_checks` and keeps
/// the keys it does not fit (a user's stamp age and sensor hysteresis), on the shipped model.
@Suite struct CalibrateOutputTests {
    @Test func calibrateKeepsTheCheckKeysItDoesNotFit() throws {
        let mgpt = try DaemonFaultTests.binary("mgpt")
        let dir = try TempDir()
        let shipped = packageRoot.appendingPathComponent("Configs/robot.json")
        var root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: shipped)) as? [String: Any])
        var model = try #require(root["model"] as? [String: Any])
        model["path"] = packageRoot.appendingPathComponent("Models/robot-phase15").path
        root["model"] = model
        var controller = try #require(root["controller"] as? [String: Any])
        var checks = try #require(controller["sensor_checks"] as? [String: Any])
        checks["max_stamp_age_ms"] = 120
        checks["hysteresis_ticks"] = 7
        checks["scanner_jump_m"] = 99
        controller["sensor_checks"] = checks
        root["controller"] = controller
        let input = dir.path("in.json"), output = dir.path("out.json")
        try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: input))
        let run = try Child(mgpt, ["calibrate", "--config", input, "--episodes", "4", "--fault-episodes", "0",
                                   "--check-episodes", "0", "--out", output])
        #expect(run.wait(seconds: 120) == 0, "\(run.stderr)")
        let written = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any])
        let out = try #require((written["controller"] as? [String: Any])?["sensor_checks"] as? [String: Any])
        #expect(out["max_stamp_age_ms"] as? Int == 120 && out["hysteresis_ticks"] as? Int == 7)
        let fitted = try #require(out["scanner_jump_m"] as? Double)
        #expect(fitted > 0 && fitted < 1, "the fit replaces the limit it computes")
        // And the daemon reads what calibrate wrote.
        let t = try RobotConfig.load(path: output).thresholds
        #expect(t.sensorHysteresisTicks == 7 && abs(t.sensorLimits.maxStampAge - 0.12) < 1e-6)
    }
}
