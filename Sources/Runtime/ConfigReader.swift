import Foundation
import MiniGPT

/// A configuration error: the file, the key path, what was expected and what was found.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    /// The config file.
    public var file: String
    /// Dotted key path, e.g. `loop.rate_hz`.
    public var path: String
    /// What is wrong.
    public var message: String
    public var description: String { "\(file): \(path.isEmpty ? "" : "\(path): ")\(message)" }
}

/// Walks a JSON object by key path, recording which keys were read so that unknown keys (typos)
/// can be rejected, and producing `ConfigError`s that name the path.
final class ConfigReader {
    let file: String
    private var consumed: Set<String> = []
    private let root: [String: JSONValue]

    init(file: String, data: Data) throws {
        self.file = file
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw ConfigError(file: file, path: "", message: "not valid JSON: \(Self.describe(error))")
        }
        guard case .object(let o) = value else {
            throw ConfigError(file: file, path: "", message: "expected a JSON object at the top level, found \(value.kindDescription)")
        }
        root = o
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let c) = error {
            return (c.underlyingError.map { "\($0)" } ?? c.debugDescription)
        }
        return "\(error)"
    }

    func fail(_ path: String, _ message: String) -> ConfigError { ConfigError(file: file, path: path, message: message) }

    /// The value at `path` ("a.b.c"), or nil when absent. Marks the path and its parents as known.
    /// A section on the way that is present but not an object (`"io": "tcp://…"`) is an error
    /// naming that section — never read as "absent, use the defaults".
    func value(_ path: String) throws -> JSONValue? {
        var parts = path.split(separator: ".").map(String.init)
        var node: JSONValue = .object(root)
        var prefix = ""
        while !parts.isEmpty {
            let k = parts.removeFirst()
            guard case .object(let o) = node else {
                throw fail(prefix, "expected an object (a section with keys such as \"\(k)\"), found \(node.kindDescription)")
            }
            prefix = prefix.isEmpty ? k : prefix + "." + k
            consumed.insert(prefix)
            guard let next = o[k] else { return nil }
            node = next
        }
        return node
    }

    func number(_ path: String, default d: Double? = nil, range: ClosedRange<Double>? = nil, integer: Bool = false) throws -> Double {
        guard let v = try value(path) else {
            if let d { return d }
            throw fail(path, "missing required key (expected \(integer ? "an integer" : "a number")\(range.map { " in \($0.lowerBound)...\($0.upperBound)" } ?? ""))")
        }
        guard case .number(let n) = v else { throw fail(path, "expected \(integer ? "an integer" : "a number"), found \(v.kindDescription)") }
        if integer && n != n.rounded() { throw fail(path, "expected an integer, found \(n)") }
        if let range, !range.contains(n) {
            throw fail(path, "expected a value in \(range.lowerBound)...\(range.upperBound), found \(n)")
        }
        return n
    }

    /// A number that may be absent (or JSON `null`): nil then.
    func optionalNumber(_ path: String, range: ClosedRange<Double>? = nil, integer: Bool = false) throws -> Double? {
        guard let v = try value(path) else { return nil }
        if case .null = v { return nil }
        return try number(path, range: range, integer: integer)
    }

    /// An integer that may be absent (or JSON `null`): nil then.
    func optionalInt(_ path: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        try optionalNumber(path, range: range.map { Double($0.lowerBound)...Double($0.upperBound) }, integer: true).map { Int($0) }
    }

    func int(_ path: String, default d: Int? = nil, range: ClosedRange<Int>? = nil) throws -> Int {
        Int(try number(path, default: d.map(Double.init), range: range.map { Double($0.lowerBound)...Double($0.upperBound) }, integer: true))
    }

    func bool(_ path: String, default d: Bool? = nil) throws -> Bool {
        guard let v = try value(path) else {
            if let d { return d }
            throw fail(path, "missing required key (expected true or false)")
        }
        guard case .bool(let b) = v else { throw fail(path, "expected true or false, found \(v.kindDescription)") }
        return b
    }

    func string(_ path: String, default d: String? = nil, oneOf choices: [String]? = nil) throws -> String {
        guard let v = try value(path) else {
            if let d { return d }
            throw fail(path, "missing required key (expected a string\(choices.map { ": one of \($0.joined(separator: ", "))" } ?? ""))")
        }
        guard case .string(let s) = v else { throw fail(path, "expected a string, found \(v.kindDescription)") }
        if let choices, !choices.contains(s) {
            throw fail(path, "expected one of \(choices.map { "\"\($0)\"" }.joined(separator: ", ")), found \"\(s)\"")
        }
        return s
    }

    /// A string that may be absent (or JSON `null`): nil then.
    func optionalString(_ path: String) throws -> String? {
        guard let v = try value(path) else { return nil }
        if case .null = v { return nil }
        return try string(path)
    }

    /// A non-empty array of non-empty strings.
    func stringArray(_ path: String) throws -> [String] {
        guard let v = try value(path) else { throw fail(path, "missing required key (expected an array of strings)") }
        guard case .array(let a) = v, !a.isEmpty else { throw fail(path, "expected a non-empty array of strings, found \(v.kindDescription)") }
        return try a.enumerated().map { i, e in
            guard case .string(let s) = e, !s.isEmpty else { throw fail("\(path)[\(i)]", "expected a non-empty string, found \(e.kindDescription)") }
            return s
        }
    }

    func intArray(_ path: String, default d: [Int]) throws -> [Int] {
        guard let v = try value(path) else { return d }
        guard case .array(let a) = v else { throw fail(path, "expected an array of integers, found \(v.kindDescription)") }
        return try a.enumerated().map { i, e in
            guard case .number(let n) = e, n == n.rounded(), n >= 0, n < 4096 else {
                throw fail("\(path)[\(i)]", "expected a non-negative integer, found \(e.kindDescription)")
            }
            return Int(n)
        }
    }

    /// Throws for the first key present in the file that no reader asked for.
    func rejectUnknownKeys() throws {
        func walk(_ o: [String: JSONValue], _ prefix: String) throws {
            for k in o.keys.sorted() {
                let p = prefix.isEmpty ? k : prefix + "." + k
                guard consumed.contains(p) else {
                    throw fail(p, "unknown key (a typo? the accepted keys are listed in docs/config.md)")
                }
                if case .object(let child) = o[k]! { try walk(child, p) }
            }
        }
        try walk(root, "")
    }
}
