import Foundation
import Testing
import ClosedLoop
import Cognition

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The adversarial low-confidence suite with the shipped model and robot.json: every case with a
/// floor holds the fallback at least that often (CI), and the in-process loop is the daemon's core.
@Suite struct AdversarialSuiteTests {
    @Test func shippedControllerHoldsTheFallbackAboveEachFloor() throws {
        let suitePath = root.appendingPathComponent("sim/scenarios/adversarial/suite.json").path
        let suite = try AdversarialSuite.load(path: suitePath)
        #expect(suite.cases.filter { $0.floor != nil }.count >= 3)
        let loop = try ClosedLoop(model: root.appendingPathComponent("Models/robot-phase15").path,
                                  config: root.appendingPathComponent("Configs/robot.json").path)
        let results = try suite.run(loop, base: root.appendingPathComponent("sim/scenarios/adversarial").path)
        for r in results {
            print("case=\(r.name) decisions=\(r.decisions) hold_rate=\(r.holdRate) floor=\(r.floor.map { "\($0)" } ?? "none")")
            #expect(r.decisions > 0, "\(r.name): no adversarial decisions")
            if let f = r.floor { #expect(r.holdRate >= f, "\(r.name): hold rate \(r.holdRate) below its floor \(f)") }
        }
    }

    @Test func suiteErrorsNameTheFileAndField() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adv-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let bad = dir.appendingPathComponent("suite.json")
        try Data(#"{"version":1,"cases":[{"name":"x","description":"","scenario":"s.json","scope":"sometimes","floor":0.5}]}"#.utf8).write(to: bad)
        #expect(throws: ValidationFailure.self) { try AdversarialSuite.load(path: bad.path) }
        do { _ = try AdversarialSuite.load(path: bad.path) } catch { #expect("\(error)".contains("cases[0].scope")) }
    }
}
