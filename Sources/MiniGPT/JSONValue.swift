import Foundation

/// A parsed JSON value that keeps booleans, numbers and strings apart (JSONSerialization does not
/// reliably on Linux), so a config or manifest error can say exactly what type was found
/// (robot.json in Runtime, ladder manifests here).
public enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    /// What this value is, for error messages ("a string \"fast\"", "a number 3").
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "a boolean \(b)"
        case .number(let n): return "a number \(n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : String(n))"
        case .string(let s): return "a string \"\(s)\""
        case .array(let a): return "an array of \(a.count)"
        case .object: return "an object"
        }
    }
}
