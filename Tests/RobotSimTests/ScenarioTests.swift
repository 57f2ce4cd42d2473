import Foundation
import Testing
@testable import RobotSim

@Suite struct ScenarioTests {
    @Test func shippedScenariosLoad() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: scenarioDir.path).filter { $0.hasSuffix(".json") }
        #expect(files.count >= 3 && files.count <= 6)
        for f in files {
            let s = try Scenario.load(path: scenarioDir.appendingPathComponent(f).path)
            #expect(s.name + ".json" == f)
        }
    }

    /// Loads `json` and returns the error text (or records an issue when it loads).
    func errorText(_ json: String) -> String {
        do {
            _ = try Scenario.decode(Data(json.utf8), file: "bad.json")
            Issue.record("accepted: \(json)")
            return ""
        } catch {
            return error.description
        }
    }

    let base = """
    {"width": 5, "height": 4, "objects": [{"id": "t", "colour": "red", "kind": "box", "x": 4, "y": 3}],
     "robot": {"x": 1, "y": 1}, "task": {"target": "t"} REST}
    """

    @Test func errorsNameFileAndKeyPath() {
        #expect(errorText(base.replacingOccurrences(of: "\"x\": 4", with: "\"x\": \"far\"").replacingOccurrences(of: " REST", with: ""))
            == "bad.json: objects[0].x: Expected to decode Double but found a string instead.")
        #expect(errorText(base.replacingOccurrences(of: "\"robot\": {\"x\": 1, ", with: "\"robot\": {"
            ).replacingOccurrences(of: " REST", with: "")) == "bad.json: robot.x: required key is missing")
        #expect(errorText(base.replacingOccurrences(of: "\"target\": \"t\"", with: "\"target\": \"u\"").replacingOccurrences(of: " REST", with: ""))
            .hasPrefix("bad.json: task.target: expected the id of an object (t), found 'u'"))
        #expect(errorText(base.replacingOccurrences(of: " REST", with: ", \"faults\": [{\"kind\": \"noise\", \"sensor\": \"scanner\", \"from\": 1, \"to\": 5}]"))
            == "bad.json: faults[0].sigma: required for kind 'noise'")
        #expect(errorText(base.replacingOccurrences(of: " REST", with: ", \"faults\": [{\"kind\": \"melt\", \"from\": 1, \"to\": 5}]"))
            .hasPrefix("bad.json: faults[0].kind:"))
        #expect(errorText(base.replacingOccurrences(of: " REST", with: ", \"obstacles\": [{\"x\": 0.8, \"y\": 0.8, \"w\": 0.5, \"h\": 0.5}]"))
            == "bad.json: robot: start (1.0, 1.0) overlaps obstacles[0]")
        #expect(errorText(base.replacingOccurrences(of: " REST", with: ", \"faults\": [{\"kind\": \"dropout\", \"sensor\": \"scanner\", \"from\": 1, \"to\": 5, \"when_within\": -1}]"))
            == "bad.json: faults[0].when_within: expected > 0 metres, found -1.0")
        #expect(errorText("{\"width\": 5,").hasPrefix("bad.json: <root>: The given data was not valid JSON."))
    }

    @Test func missingFileIsNamed() {
        do {
            _ = try Scenario.load(path: "/nonexistent/x.json")
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.description.hasPrefix("/nonexistent/x.json: cannot read file"))
        }
    }

    @Test func generatedScenariosAreValidAndRoundTrip() throws {
        for family in ScenarioGenerator.Family.allCases {
            for seed in UInt64(1)...3 {
                let s = ScenarioGenerator.generate(seed: seed, family: family)
                #expect(s.validationProblem() == nil)
                #expect(s.family == family.rawValue)
                #expect(try Scenario.decode(s.jsonData()) == s)
                let h = ScenarioGenerator.withHazardFault(s, seed: seed)
                #expect(h.validationProblem() == nil)
                #expect(!h.faults.isEmpty && h.faults.allSatisfy { $0.whenWithin != nil })
                #expect(try Scenario.decode(h.jsonData()) == h)   // `when_within` round-trips
            }
        }
    }
}
