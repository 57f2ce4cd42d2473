// A small JSON reader (RFC 8259) for tokenizer.json that keeps the byte offset of every value, so a
// bad file is reported as "model.merges[12] (byte 5031): expected ..., found ...". Foundation's
// JSONSerialization loses both the offsets and the key order.

/// One parsed JSON value and the byte offset where it starts in the file.
struct JSONNode {
    /// The value.
    enum Value {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([JSONNode])
        case object([(key: String, value: JSONNode)])
    }
    /// The value.
    var value: Value
    /// Byte offset of the value's first character.
    var offset: Int

    /// A short name of the value's kind for "expected X, found Y" messages.
    var kind: String {
        switch value {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .number(let x): return "number \(x)"
        case .string(let s): return "string \"\(s.count > 40 ? String(s.prefix(40)) + "..." : s)\""
        case .array(let a): return "array of \(a.count)"
        case .object: return "object"
        }
    }

    /// The member `key` of an object (nil when absent or when this is not an object).
    subscript(key: String) -> JSONNode? {
        guard case .object(let members) = value else { return nil }
        return members.first { $0.key == key }?.value
    }
}

/// Parses JSON bytes; syntax errors are `TokenizerError`s naming `file` and the byte offset.
struct JSONReader {
    private let b: [UInt8]
    private let file: String
    private var i = 0
    /// Nesting deeper than this is refused, so a hostile file cannot exhaust the stack.
    private static let maxDepth = 64

    /// Parses `bytes` (the contents of `file`) into one value; trailing non-space bytes are an error.
    static func parse(_ bytes: [UInt8], file: String) throws -> JSONNode {
        var r = JSONReader(b: bytes, file: file)
        r.skipSpace()
        let v = try r.value(depth: 0)
        r.skipSpace()
        guard r.i == bytes.count else { throw r.fail("expected end of file after the top-level value") }
        return v
    }

    private init(b: [UInt8], file: String) { self.b = b; self.file = file }

    private func fail(_ what: String) -> TokenizerError {
        let found = i < b.count ? "'\(Self.show(b[i]))'" : "end of file"
        return TokenizerError(file: file, message: "invalid JSON at byte \(i): \(what), found \(found)")
    }

    private static func show(_ c: UInt8) -> String {
        (0x20..<0x7F).contains(c) ? String(UnicodeScalar(c)) : "\\x" + String(c, radix: 16)
    }

    private mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    private mutating func literal(_ word: String, _ v: JSONNode.Value) throws -> JSONNode {
        let start = i
        for c in word.utf8 {
            guard i < b.count, b[i] == c else { throw fail("expected '\(word)'") }
            i += 1
        }
        return JSONNode(value: v, offset: start)
    }

    private mutating func value(depth: Int) throws -> JSONNode {
        guard depth < Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) levels") }
        guard i < b.count else { throw fail("expected a value") }
        let start = i
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1
            var members: [(key: String, value: JSONNode)] = []
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return JSONNode(value: .object(members), offset: start) }
            while true {
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try string()
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\"") }
                i += 1
                skipSpace()
                members.append((key, try value(depth: depth + 1)))
                skipSpace()
                guard i < b.count else { throw fail("expected ',' or '}'") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return JSONNode(value: .object(members), offset: start) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JSONNode] = []
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return JSONNode(value: .array(items), offset: start) }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard i < b.count else { throw fail("expected ',' or ']'") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return JSONNode(value: .array(items), offset: start) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return JSONNode(value: .string(try string()), offset: start)
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default:
            return JSONNode(value: .number(try number()), offset: start)
        }
    }

    private mutating func number() throws -> Double {
        let start = i
        func digits() -> Int { let s = i; while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }; return i - s }
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard digits() > 0 else { throw fail("expected a value") }
        if i < b.count, b[i] == UInt8(ascii: ".") { i += 1; guard digits() > 0 else { throw fail("expected digits after '.'") } }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("expected exponent digits") }
        }
        guard let x = Double(String(decoding: b[start..<i], as: UTF8.self)) else {
            i = start
            throw fail("expected a number")
        }
        return x
    }

    /// A string starting at the opening quote; handles all escapes including surrogate pairs.
    private mutating func string() throws -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw fail("unterminated string") }
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("control character inside a string (must be escaped)") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < b.count else { throw fail("unterminated escape") }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var v = try hex4()
                if (0xD800..<0xDC00).contains(v) {
                    guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                        throw fail("expected a low surrogate \\uDC00-\\uDFFF after a high surrogate")
                    }
                    i += 2
                    let lo = try hex4()
                    guard (0xDC00..<0xE000).contains(lo) else { throw fail("expected a low surrogate \\uDC00-\\uDFFF") }
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                }
                guard let s = Unicode.Scalar(v) else { throw fail("lone surrogate \\u\(String(v, radix: 16))") }
                out.append(contentsOf: Array(String(s).utf8))
            default:
                i -= 1
                throw fail("unknown escape")
            }
        }
        // Invalid UTF-8 becomes U+FFFD, which no byte-level token contains, so validation catches it later.
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func hex4() throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < b.count, let d = Self.hexValue(b[i]) else { throw fail("expected 4 hex digits after \\u") }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case 0x30...0x39: return UInt32(c - 0x30)
        case 0x41...0x46: return UInt32(c - 0x41 + 10)
        case 0x61...0x66: return UInt32(c - 0x61 + 10)
        default: return nil
        }
    }
}

/// Appends `s` as a JSON string literal (quotes, escapes; non-ASCII written as raw UTF-8).
func appendJSONString(_ s: String, to out: inout String) { out += jsonString(s) }
