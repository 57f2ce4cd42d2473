import Foundation
import Testing
@testable import Runtime

@Suite struct RobotConfigTests {
    @Test func shippedDefaultIsValidAndResolvesPathsAgainstItsFolder() throws {
        let path = packageRoot.appendingPathComponent("Configs/robot.json").path
        let c = try RobotConfig.load(path: path)
        #expect(c.modelPath == packageRoot.appendingPathComponent("Models/robot-phase15").path)
        #expect(c.recordDir == packageRoot.appendingPathComponent("recordings").path)
        #expect(c.rateHz == 100 && c.periodNanos == 10_000_000)
        #expect(c.sensorEndpoint == "tcp://127.0.0.1:5555" && c.publishEndpoint == "tcp://127.0.0.1:5556")
    }

    func error(_ json: String) -> String {
        do {
            _ = try RobotConfig.parse(data: Data(json.utf8), file: "/etc/robot.json")
            return "no error"
        } catch { return "\(error)" }
    }

    let common = #""model":{"path":"m"},"context":{"instruction":"go"}"#
    var base: String { common + #","loop":{"rate_hz":100}"# }

    @Test func errorsNameTheKeyPathExpectedAndFound() {
        let cases: [(String, [String])] = [
            ("{\(common),\"loop\":{\"rate_hz\":\"fast\"}}", ["loop.rate_hz", "expected a number", "a string \"fast\""]),
            ("{\(base),\"lopo\":{}}", ["lopo", "unknown key"]),
            ("{\(base),\"io\":{\"sensor_endpoint\":\"127.0.0.1:5555\"}}", ["io.sensor_endpoint", "ZeroMQ endpoint"]),
            (#"{"model":{"path":"m"},"loop":{"rate_hz":100,"budget_us":20000},"context":{"instruction":"go"}}"#, ["loop.budget_us", "at most the period"]),
            (#"{"model":{"path":"m"},"loop":{"rate_hz":100}}"#, ["context.instruction", "missing required key"]),
            ("{\(base),\"controller\":{\"fallback_intent\":\"FLY\"}}", ["controller.fallback_intent", "FLY"]),
            ("{\(base),\"controller\":{\"max_head_disagreement\":1.5}}", ["controller.max_head_disagreement", "0.0...1.0", "1.5"]),
            ("{\(common),\"loop\":{\"rate_hz\":100,\"realtime\":{\"priority\":2.5}}}", ["loop.realtime.priority", "integer"]),
            ("{\(base),\"io\":{\"topics\":{\"intnet\":\"x\"}}}", ["io.topics.intnet", "unknown key"]),
            ("[1,2]", ["top level", "an array"]),
            ("{\"model\":", ["not valid JSON"]),
        ]
        for (json, needles) in cases {
            let e = error(json)
            #expect(e.hasPrefix("/etc/robot.json"), "\(e)")
            for n in needles { #expect(e.contains(n), "\(e) should mention \(n)") }
        }
    }

    /// A section (or nested object) of the wrong JSON type is an error naming it, never "absent,
    /// use the defaults": `"io": "tcp://127.0.0.1:1"` used to pass --check-config.
    @Test func everySectionRejectsAWrongJSONType() {
        let sections: [(String, String)] = [
            ("io", #""tcp://127.0.0.1:1""#), ("loop", "100"), ("model", "[]"), ("context", "true"),
            ("controller", "null"), ("record", #""on""#), ("log", "1"),
        ]
        for (key, value) in sections {
            var fields = ["model": #"{"path":"m"}"#, "context": #"{"instruction":"go"}"#, "loop": #"{"rate_hz":100}"#]
            fields[key] = value
            let json = "{" + fields.map { "\"\($0.key)\":\($0.value)" }.sorted().joined(separator: ",") + "}"
            let e = error(json)
            #expect(e.contains("/etc/robot.json: \(key): expected an object"), "\(json) → \(e)")
        }
        let nested: [(String, String, String)] = [
            ("{\(base),\"io\":{\"topics\":\"intent\"}}", "io.topics", "a string \"intent\""),
            ("{\(common),\"loop\":{\"rate_hz\":100,\"realtime\":[1]}}", "loop.realtime", "an array of 1"),
        ]
        for (json, path, found) in nested {
            let e = error(json)
            #expect(e.contains("\(path): expected an object") && e.contains(found), "\(e)")
        }
    }

    @Test func defaultsFillEverythingOptional() throws {
        let c = try RobotConfig.parse(data: Data("{\(base)}".utf8), file: "/x/robot.json")
        #expect(c.budgetMicros == 10_000)
        #expect(c.staleAfterMillis == 20)  // two periods
        #expect(c.topicIntent == "intent" && c.windowTicks == 8 && c.thresholds.fallback == .stop)
        #expect(c.modelPath == "/x/m")
    }
}
