#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Observation

// Allocation-free JSON parser for observation frames (the `obs` topic, schema in
// docs/schemas/obs.schema.json), used inside the decision tick where `JSONDecoder` is not allowed.
//
// One road, top to bottom: the error type, the public parser, the frame / detection / odometry
// object walkers, then the JSON lexer (`FrameReader`): whitespace, strings (escapes, UTF-8
// validation), numbers (grammar check by hand, conversion by strtof/strtod on a stack buffer),
// literals, and a skipper for values under unknown keys. JSON grammar: RFC 8259.

/// Why a frame was rejected, where, and under which key. Building it never allocates; only
/// `description` does, when printed.
public struct FrameParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: UInt8, Sendable {
        /// Not JSON: unexpected byte, unterminated string, bad escape, invalid UTF-8, end of input.
        case syntax
        /// `v` is not `ObservationFrame.version`.
        case wrongVersion
        /// A required key is absent (reported at the closing `}` of its object).
        case missingKey
        /// A value of the wrong JSON type (e.g. a string where a number belongs).
        case wrongType
        /// More than `FrameParser.maxRanges` ranges or `FrameParser.maxDetections` detections.
        case tooManyItems
        /// A malformed number, one out of range for its field, or one too long to convert.
        case badNumber
        /// A string longer than `FrameParser.maxStringBytes` UTF-8 bytes.
        case stringTooLong
        /// Something other than whitespace after the frame's closing `}`.
        case trailingBytes
        /// A key present twice in the same object.
        case duplicateKey
    }

    /// The kind of failure.
    public var code: Code
    /// Byte offset into the input where the problem was found (`0...input.count`; the input's
    /// length means "unexpected end").
    public var offset: Int
    /// Key path of the value concerned, e.g. `"detections.bearing"`; `""` for the frame itself.
    public var key: StaticString
    /// What the parser expected there, e.g. `"a finite number"`.
    public var expected: StaticString

    /// An error with every field given.
    public init(code: Code, offset: Int, key: StaticString, expected: StaticString) {
        self.code = code
        self.offset = offset
        self.key = key
        self.expected = expected
    }

    /// E.g. `observation frame: detections.bearing: expected a finite number (badNumber) at byte 312`.
    public var description: String {
        let path = key.utf8CodeUnitCount == 0 ? "<frame>" : "\(key)"
        return "observation frame: \(path): expected \(expected) (\(code)) at byte \(offset)"
    }

    /// Same code, offset, key and expectation (`StaticString` is compared by its text).
    public static func == (a: FrameParseError, b: FrameParseError) -> Bool {
        a.code == b.code && a.offset == b.offset && sameText(a.key, b.key) && sameText(a.expected, b.expected)
    }

    private static func sameText(_ a: StaticString, _ b: StaticString) -> Bool {
        a.withUTF8Buffer { x in b.withUTF8Buffer { y in x.elementsEqual(y) } }
    }
}

/// Parses `obs` JSON into an `ObservationFrame` without touching the heap.
///
/// Strict: every key of the schema present exactly once, the right JSON types, finite numbers that
/// fit their field, `v == ObservationFrame.version`, nothing after the frame. Unknown keys are
/// skipped whatever their value (forward compatibility). For valid frames the values are exactly
/// those `JSONDecoder` gives: floats are converted from the text by `strtof` / `strtod` (correctly
/// rounded, like the decoder), integers exactly, strings unescaped.
///
/// Limits (each an error, never a crash): `maxRanges` ranges, `maxDetections` detections, strings of
/// `maxStringBytes` UTF-8 bytes (Swift keeps strings that short inline, without allocating), numbers
/// of 63 characters, nesting 32 deep inside skipped values.
public struct FrameParser: Sendable {
    /// Most range readings a frame may carry (the scanner has `ObservationFrame.beamCount`).
    public static let maxRanges = 64
    /// Most detections a frame may carry.
    public static let maxDetections = 8
    /// Longest colour / kind string in UTF-8 bytes: the longest Swift string stored inline.
    public static let maxStringBytes = 15

    /// A parser; it holds no state, so one instance serves every tick.
    public init() {}

    /// Parses `bytes` into `frame` in place and returns nil, or returns why the bytes are not a frame.
    ///
    /// Allocation-free when `frame`'s arrays are uniquely referenced and have capacity (start from
    /// `ObservationFrame.preallocated()`) and its strings fit `maxStringBytes`. On error `frame` may
    /// be partly overwritten: parse into a scratch frame and `swap(&current, &scratch)` on success
    /// (an assignment `current = scratch` would share the arrays, and the next parse would copy them).
    public func parse(_ bytes: UnsafeRawBufferPointer, into frame: inout ObservationFrame) -> FrameParseError? {
        // strtof / strtod read the decimal point from LC_NUMERIC: pin the C locale on this thread.
        let previousLocale = uselocale(cNumericLocale.handle)
        defer { uselocale(previousLocale) }
        var reader = FrameReader(bytes)
        do throws(FrameParseError) {
            try reader.frame(into: &frame)
            return nil
        } catch {
            return error
        }
    }
}

extension ObservationFrame {
    /// An all-zero frame whose arrays already hold `FrameParser.maxRanges` / `maxDetections` of
    /// capacity, so that `FrameParser.parse` into it never allocates.
    public static func preallocated() -> ObservationFrame {
        var frame = ObservationFrame(seq: 0, t: 0, ranges: [], rangeMax: 0, detections: [],
                                     odom: Odometry(x: 0, y: 0, theta: 0, v: 0, w: 0),
                                     bump: false, battery: 0)
        frame.ranges.reserveCapacity(FrameParser.maxRanges)
        frame.detections.reserveCapacity(FrameParser.maxDetections)
        return frame
    }
}

/// The C ("POSIX") locale, created once; number conversion runs under it so that a process-wide
/// `setlocale` (say, to de_DE with its decimal comma) cannot change what strtof / strtod read.
struct CNumericLocale: @unchecked Sendable {   // an immutable handle, never freed
    let handle: locale_t?
}
let cNumericLocale = CNumericLocale(handle: newlocale(LC_NUMERIC_MASK, "C", nil))

// MARK: - Frame, detection and odometry objects

extension FrameReader {
    /// frame = { "v": 2, "seq": u64, "t": f64, "ranges": [f32], "range_max": f32,
    ///           "detections": [detection], "odom": odometry, "bump": bool, "battery": f32,
    ///           "route": route | null, "stamps"?: stamps | null }
    mutating func frame(into frame: inout ObservationFrame) throws(FrameParseError) {
        let key: StaticString = ""
        var object = try openObject(key: key)
        var seen: UInt16 = 0
        frame.stamps = nil   // optional: a frame without the key must not inherit the last one's
        while let name = try nextMember(&object, key: key) {
            switch name {
            case "v":
                try markSeen(&seen, 1 << 0, key: "v")
                let at = i
                frame.v = try int(key: "v")
                guard frame.v == ObservationFrame.version else {
                    throw FrameParseError(code: .wrongVersion, offset: at, key: "v", expected: "version 2")
                }
            case "seq":
                try markSeen(&seen, 1 << 1, key: "seq")
                frame.seq = try uint64(key: "seq")
            case "t":
                try markSeen(&seen, 1 << 2, key: "t")
                frame.t = try double(key: "t")
            case "ranges":
                try markSeen(&seen, 1 << 3, key: "ranges")
                frame.ranges.removeAll(keepingCapacity: true)
                var array = try openArray(key: "ranges")
                while try nextElement(&array, key: "ranges") {
                    guard frame.ranges.count < FrameParser.maxRanges else {
                        throw FrameParseError(code: .tooManyItems, offset: i, key: "ranges",
                                              expected: "at most 64 ranges")
                    }
                    frame.ranges.append(try float(key: "ranges"))
                }
            case "range_max":
                try markSeen(&seen, 1 << 4, key: "range_max")
                frame.rangeMax = try float(key: "range_max")
            case "detections":
                try markSeen(&seen, 1 << 5, key: "detections")
                frame.detections.removeAll(keepingCapacity: true)
                var array = try openArray(key: "detections")
                while try nextElement(&array, key: "detections") {
                    guard frame.detections.count < FrameParser.maxDetections else {
                        throw FrameParseError(code: .tooManyItems, offset: i, key: "detections",
                                              expected: "at most 8 detections")
                    }
                    var detection = Detection(colour: "", kind: "", bearing: 0, distance: 0)
                    try self.detection(into: &detection)
                    frame.detections.append(detection)
                }
            case "odom":
                try markSeen(&seen, 1 << 6, key: "odom")
                try odometry(into: &frame.odom)
            case "bump":
                try markSeen(&seen, 1 << 7, key: "bump")
                frame.bump = try bool(key: "bump")
            case "battery":
                try markSeen(&seen, 1 << 8, key: "battery")
                frame.battery = try float(key: "battery")
            case "route":
                try markSeen(&seen, 1 << 9, key: "route")
                if peek() == UInt8(ascii: "n") {
                    try literal("null", key: "route")
                    frame.route = nil
                } else {
                    var route = Route(bearing: 0, distance: 0)
                    try self.route(into: &route)
                    frame.route = route
                }
            case "stamps":
                try markSeen(&seen, 1 << 10, key: "stamps")
                if peek() == UInt8(ascii: "n") {
                    try literal("null", key: "stamps")
                    frame.stamps = nil
                } else {
                    var stamps = SensorStamps()
                    try self.stamps(into: &stamps)
                    frame.stamps = stamps
                }
            default:
                try skipValue(key: key, depth: 0)
            }
        }
        let end = i - 1   // the closing brace
        if seen & (1 << 0) == 0 { throw missing("v", at: end) }
        if seen & (1 << 1) == 0 { throw missing("seq", at: end) }
        if seen & (1 << 2) == 0 { throw missing("t", at: end) }
        if seen & (1 << 3) == 0 { throw missing("ranges", at: end) }
        if seen & (1 << 4) == 0 { throw missing("range_max", at: end) }
        if seen & (1 << 5) == 0 { throw missing("detections", at: end) }
        if seen & (1 << 6) == 0 { throw missing("odom", at: end) }
        if seen & (1 << 7) == 0 { throw missing("bump", at: end) }
        if seen & (1 << 8) == 0 { throw missing("battery", at: end) }
        if seen & (1 << 9) == 0 { throw missing("route", at: end) }
        skipWhitespace()
        guard i == count else {
            throw FrameParseError(code: .trailingBytes, offset: i, key: "", expected: "the end of the input")
        }
    }

    /// detection = { "colour": string, "kind": string, "bearing": f32, "distance": f32 }
    mutating func detection(into detection: inout Detection) throws(FrameParseError) {
        let key: StaticString = "detections"
        var object = try openObject(key: key)
        var seen: UInt8 = 0
        while let name = try nextMember(&object, key: key) {
            switch name {
            case "colour":
                try markSeen(&seen, 1 << 0, key: "detections.colour")
                detection.colour = try string(key: "detections.colour")
            case "kind":
                try markSeen(&seen, 1 << 1, key: "detections.kind")
                detection.kind = try string(key: "detections.kind")
            case "bearing":
                try markSeen(&seen, 1 << 2, key: "detections.bearing")
                detection.bearing = try float(key: "detections.bearing")
            case "distance":
                try markSeen(&seen, 1 << 3, key: "detections.distance")
                detection.distance = try float(key: "detections.distance")
            default:
                try skipValue(key: key, depth: 0)
            }
        }
        let end = i - 1
        if seen & (1 << 0) == 0 { throw missing("detections.colour", at: end) }
        if seen & (1 << 1) == 0 { throw missing("detections.kind", at: end) }
        if seen & (1 << 2) == 0 { throw missing("detections.bearing", at: end) }
        if seen & (1 << 3) == 0 { throw missing("detections.distance", at: end) }
    }

    /// odometry = { "x": f32, "y": f32, "theta": f32, "v": f32, "w": f32 }
    mutating func odometry(into odom: inout Odometry) throws(FrameParseError) {
        let key: StaticString = "odom"
        var object = try openObject(key: key)
        var seen: UInt8 = 0
        while let name = try nextMember(&object, key: key) {
            switch name {
            case "x":
                try markSeen(&seen, 1 << 0, key: "odom.x")
                odom.x = try float(key: "odom.x")
            case "y":
                try markSeen(&seen, 1 << 1, key: "odom.y")
                odom.y = try float(key: "odom.y")
            case "theta":
                try markSeen(&seen, 1 << 2, key: "odom.theta")
                odom.theta = try float(key: "odom.theta")
            case "v":
                try markSeen(&seen, 1 << 3, key: "odom.v")
                odom.v = try float(key: "odom.v")
            case "w":
                try markSeen(&seen, 1 << 4, key: "odom.w")
                odom.w = try float(key: "odom.w")
            default:
                try skipValue(key: key, depth: 0)
            }
        }
        let end = i - 1
        if seen & (1 << 0) == 0 { throw missing("odom.x", at: end) }
        if seen & (1 << 1) == 0 { throw missing("odom.y", at: end) }
        if seen & (1 << 2) == 0 { throw missing("odom.theta", at: end) }
        if seen & (1 << 3) == 0 { throw missing("odom.v", at: end) }
        if seen & (1 << 4) == 0 { throw missing("odom.w", at: end) }
    }

    /// route = { "bearing": f32, "distance": f32 }
    mutating func route(into route: inout Route) throws(FrameParseError) {
        let key: StaticString = "route"
        var object = try openObject(key: key)
        var seen: UInt8 = 0
        while let name = try nextMember(&object, key: key) {
            switch name {
            case "bearing":
                try markSeen(&seen, 1 << 0, key: "route.bearing")
                route.bearing = try float(key: "route.bearing")
            case "distance":
                try markSeen(&seen, 1 << 1, key: "route.distance")
                route.distance = try float(key: "route.distance")
            default:
                try skipValue(key: key, depth: 0)
            }
        }
        let end = i - 1
        if seen & (1 << 0) == 0 { throw missing("route.bearing", at: end) }
        if seen & (1 << 1) == 0 { throw missing("route.distance", at: end) }
    }

    /// stamps = { "scanner": f64 | null, "camera": f64 | null, "odom": f64 | null }, every key optional
    mutating func stamps(into stamps: inout SensorStamps) throws(FrameParseError) {
        let key: StaticString = "stamps"
        var object = try openObject(key: key)
        var seen: UInt8 = 0
        while let name = try nextMember(&object, key: key) {
            switch name {
            case "scanner":
                try markSeen(&seen, 1 << 0, key: "stamps.scanner")
                stamps.scanner = try optionalDouble(key: "stamps.scanner")
            case "camera":
                try markSeen(&seen, 1 << 1, key: "stamps.camera")
                stamps.camera = try optionalDouble(key: "stamps.camera")
            case "odom":
                try markSeen(&seen, 1 << 2, key: "stamps.odom")
                stamps.odom = try optionalDouble(key: "stamps.odom")
            default:
                try skipValue(key: key, depth: 0)
            }
        }
    }

    /// A number or `null`.
    mutating func optionalDouble(key: StaticString) throws(FrameParseError) -> Double? {
        if peek() == UInt8(ascii: "n") {
            try literal("null", key: key)
            return nil
        }
        return try double(key: key)
    }

    /// Records that a key was read; a second time is a `duplicateKey` error at the key.
    func markSeen<Mask: FixedWidthInteger>(_ seen: inout Mask, _ bit: Mask,
                                           key: StaticString) throws(FrameParseError) {
        guard seen & bit == 0 else {
            throw FrameParseError(code: .duplicateKey, offset: keyOffset, key: key, expected: "each key once")
        }
        seen |= bit
    }

    func missing(_ key: StaticString, at offset: Int) -> FrameParseError {
        FrameParseError(code: .missingKey, offset: offset, key: key, expected: "this required key")
    }
}

// MARK: - JSON lexer

/// A cursor over the input bytes with the JSON reading primitives. Every read checks `i < count`
/// first: the reader never looks past the buffer.
struct FrameReader {
    let bytes: UnsafeRawBufferPointer
    let count: Int
    /// Offset of the next byte to read.
    var i = 0
    /// Offset of the opening quote of the last key read by `nextMember` (for `duplicateKey`).
    var keyOffset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.count = bytes.count
    }

    /// Where the members of one object (or elements of one array) are: before the first or after one.
    struct Container {
        var first = true
    }

    mutating func skipWhitespace() {
        while i < count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1   // space, tab, line feed, carriage return
            default: return
            }
        }
    }

    /// The next non-whitespace byte (not consumed), or nil at the end of the input.
    mutating func peek() -> UInt8? {
        skipWhitespace()
        return i < count ? bytes[i] : nil
    }

    func syntax(_ expected: StaticString, key: StaticString, at offset: Int) -> FrameParseError {
        FrameParseError(code: .syntax, offset: min(offset, count), key: key, expected: expected)
    }

    /// Consumes `{`; a value of another type is `wrongType`.
    mutating func openObject(key: StaticString) throws(FrameParseError) -> Container {
        guard let b = peek() else { throw syntax("an object", key: key, at: i) }
        guard b == UInt8(ascii: "{") else {
            throw FrameParseError(code: .wrongType, offset: i, key: key, expected: "an object")
        }
        i += 1
        return Container()
    }

    /// Reads the next `"key":` of an open object and returns the key (unescaped, first 16 bytes),
    /// or consumes the closing `}` and returns nil.
    mutating func nextMember(_ object: inout Container, key: StaticString) throws(FrameParseError) -> ShortString? {
        guard let b = peek() else { throw syntax("a key or '}'", key: key, at: i) }
        if b == UInt8(ascii: "}") {
            i += 1
            return nil
        }
        if !object.first {
            guard b == UInt8(ascii: ",") else { throw syntax("',' or '}'", key: key, at: i) }
            i += 1
            guard peek() == UInt8(ascii: "\"") else { throw syntax("a key after ','", key: key, at: i) }
        } else if b != UInt8(ascii: "\"") {
            throw syntax("a key or '}'", key: key, at: i)
        }
        object.first = false
        keyOffset = i
        var name = ShortString()
        try readString(into: &name, key: key)
        guard peek() == UInt8(ascii: ":") else { throw syntax("':'", key: key, at: i) }
        i += 1
        return name
    }

    /// Consumes `[`; a value of another type is `wrongType`.
    mutating func openArray(key: StaticString) throws(FrameParseError) -> Container {
        guard let b = peek() else { throw syntax("an array", key: key, at: i) }
        guard b == UInt8(ascii: "[") else {
            throw FrameParseError(code: .wrongType, offset: i, key: key, expected: "an array")
        }
        i += 1
        return Container()
    }

    /// Positions the cursor on the next element of an open array and returns true, or consumes the
    /// closing `]` and returns false.
    mutating func nextElement(_ array: inout Container, key: StaticString) throws(FrameParseError) -> Bool {
        guard let b = peek() else { throw syntax("a value or ']'", key: key, at: i) }
        if b == UInt8(ascii: "]") {
            i += 1
            return false
        }
        if !array.first {
            guard b == UInt8(ascii: ",") else { throw syntax("',' or ']'", key: key, at: i) }
            i += 1
            guard let next = peek(), next != UInt8(ascii: "]") else {
                throw syntax("a value after ','", key: key, at: i)   // [1,]
            }
        }
        array.first = false
        return true
    }

    // MARK: Strings

    /// A string value of at most `FrameParser.maxStringBytes` bytes, built inline (no allocation).
    mutating func string(key: StaticString) throws(FrameParseError) -> String {
        guard let b = peek() else { throw syntax("a string", key: key, at: i) }
        guard b == UInt8(ascii: "\"") else {
            throw FrameParseError(code: .wrongType, offset: i, key: key, expected: "a string")
        }
        let start = i
        var text = ShortString()
        try readString(into: &text, key: key)
        guard text.count <= FrameParser.maxStringBytes else {
            throw FrameParseError(code: .stringTooLong, offset: start, key: key, expected: "at most 15 UTF-8 bytes")
        }
        return text.string
    }

    /// Reads the string whose opening quote is at the cursor: unescapes it, checks its UTF-8, and
    /// keeps its first 16 bytes in `text` (`text.count` counts them all).
    mutating func readString(into text: inout ShortString, key: StaticString) throws(FrameParseError) {
        i += 1   // opening quote (checked by the caller)
        while true {
            guard i < count else { throw syntax("'\"' closing the string", key: key, at: i) }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return
            } else if b == UInt8(ascii: "\\") {
                try readEscape(into: &text, key: key)
            } else if b < 0x20 {
                throw syntax("no raw control character in a string", key: key, at: i)
            } else if b < 0x80 {
                text.append(b)
                i += 1
            } else {
                let n = utf8SequenceLength(at: i)
                guard n > 0 else { throw syntax("valid UTF-8", key: key, at: i) }
                for k in 0..<n { text.append(bytes[i + k]) }
                i += n
            }
        }
    }

    /// The length of the well-formed UTF-8 sequence starting with the lead byte at `at`
    /// (Unicode 15, table 3-7), or 0 when it is ill-formed or cut by the end of the input.
    func utf8SequenceLength(at: Int) -> Int {
        let lead = bytes[at]
        let n: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF   // range of the second byte
        switch lead {
        case 0xC2...0xDF: n = 2
        case 0xE0: n = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: n = 3
        case 0xED: n = 3; high = 0x9F                  // no UTF-16 surrogates
        case 0xF0: n = 4; low = 0x90
        case 0xF1...0xF3: n = 4
        case 0xF4: n = 4; high = 0x8F                  // nothing above U+10FFFF
        default: return 0
        }
        guard at + n <= count else { return 0 }
        guard (low...high).contains(bytes[at + 1]) else { return 0 }
        for k in 2..<n where bytes[at + k] & 0xC0 != 0x80 { return 0 }
        return n
    }

    /// Reads one escape (`\` at the cursor) and appends its UTF-8 to `text`.
    mutating func readEscape(into text: inout ShortString, key: StaticString) throws(FrameParseError) {
        let start = i
        guard i + 1 < count else { throw syntax("an escape after '\\'", key: key, at: count) }
        let e = bytes[i + 1]
        i += 2
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(e)
        case UInt8(ascii: "b"): text.append(0x08)
        case UInt8(ascii: "f"): text.append(0x0C)
        case UInt8(ascii: "n"): text.append(0x0A)
        case UInt8(ascii: "r"): text.append(0x0D)
        case UInt8(ascii: "t"): text.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4(key: key)
            if (0xD800...0xDBFF).contains(scalar) {
                // A high surrogate must be followed by an escaped low one (RFC 8259 §7).
                guard i + 1 < count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                    throw syntax("a low surrogate escape after a high one", key: key, at: i)
                }
                i += 2
                let low = try hex4(key: key)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw syntax("a low surrogate (\\uDC00-\\uDFFF)", key: key, at: i - 6)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw syntax("no lone low surrogate", key: key, at: start)
            }
            text.appendUTF8(scalar)
        default:
            throw syntax("one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u", key: key, at: start)
        }
    }

    /// Four hex digits at the cursor, as a number.
    mutating func hex4(key: StaticString) throws(FrameParseError) -> UInt32 {
        guard i + 4 <= count else { throw syntax("four hex digits after \\u", key: key, at: count) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw syntax("four hex digits after \\u", key: key, at: i)
            }
            value = value << 4 | UInt32(digit)
            i += 1
        }
        return value
    }

    // MARK: Literals

    mutating func bool(key: StaticString) throws(FrameParseError) -> Bool {
        guard let b = peek() else { throw syntax("true or false", key: key, at: i) }
        if b == UInt8(ascii: "t") { try literal("true", key: key); return true }
        if b == UInt8(ascii: "f") { try literal("false", key: key); return false }
        throw FrameParseError(code: .wrongType, offset: i, key: key, expected: "true or false")
    }

    /// Consumes exactly `word` at the cursor.
    mutating func literal(_ word: StaticString, key: StaticString) throws(FrameParseError) {
        let n = word.utf8CodeUnitCount
        let start = i
        for k in 0..<n {
            guard start + k < count, bytes[start + k] == word.utf8Start[k] else {
                throw syntax(word, key: key, at: start + k)
            }
        }
        i = start + n
    }

    // MARK: Numbers

    /// Where a number's text is and what the grammar check learnt about it.
    struct NumberText {
        var start: Int
        var end: Int
        /// No fraction and no exponent.
        var isInteger: Bool
        /// Some digit of the significand is not 0 (so a zero result means underflow).
        var nonZero: Bool
    }

    /// Checks the JSON number at the cursor, `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, and
    /// consumes it. A value that does not start like a number is `wrongType`.
    mutating func numberText(key: StaticString, expected: StaticString) throws(FrameParseError) -> NumberText {
        guard let first = peek() else { throw syntax(expected, key: key, at: i) }
        guard first == UInt8(ascii: "-") || isDigit(first) else {
            throw FrameParseError(code: .wrongType, offset: i, key: key, expected: expected)
        }
        let start = i
        var text = NumberText(start: start, end: start, isInteger: true, nonZero: false)
        let bad = FrameParseError(code: .badNumber, offset: start, key: key, expected: expected)
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < count, isDigit(bytes[i]) else { throw bad }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < count, isDigit(bytes[i]) { throw bad }   // no leading zeros
        } else {
            while i < count, isDigit(bytes[i]) { i += 1; text.nonZero = true }
        }
        if i < count, bytes[i] == UInt8(ascii: ".") {
            text.isInteger = false
            i += 1
            guard i < count, isDigit(bytes[i]) else { throw bad }
            while i < count, isDigit(bytes[i]) {
                if bytes[i] != UInt8(ascii: "0") { text.nonZero = true }
                i += 1
            }
        }
        if i < count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            text.isInteger = false
            i += 1
            if i < count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < count, isDigit(bytes[i]) else { throw bad }
            while i < count, isDigit(bytes[i]) { i += 1 }
        }
        text.end = i
        return text
    }

    func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    /// A finite Float, correctly rounded from the text like `JSONDecoder` (which also refuses a
    /// non-zero text that rounds to 0 or overflows).
    mutating func float(key: StaticString) throws(FrameParseError) -> Float {
        let text = try numberText(key: key, expected: "a finite number")
        let value = withNulTerminated(text) { strtof($0, nil) }
        guard let value, value.isFinite, value != 0 || !text.nonZero else {
            throw FrameParseError(code: .badNumber, offset: text.start, key: key, expected: "a number within Float range")
        }
        return value
    }

    /// A finite Double, correctly rounded from the text (same rules as `float`).
    mutating func double(key: StaticString) throws(FrameParseError) -> Double {
        let text = try numberText(key: key, expected: "a finite number")
        let value = withNulTerminated(text) { strtod($0, nil) }
        guard let value, value.isFinite, value != 0 || !text.nonZero else {
            throw FrameParseError(code: .badNumber, offset: text.start, key: key, expected: "a number within Double range")
        }
        return value
    }

    /// Runs `convert` on a NUL-terminated copy of the number on the stack; nil if longer than 63.
    func withNulTerminated<R>(_ text: NumberText, _ convert: (UnsafePointer<CChar>) -> R) -> R? {
        let n = text.end - text.start
        guard n < 64 else { return nil }
        var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &buffer) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[text.start..<text.end]))
            raw[n] = 0
            return convert(raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
    }

    /// An Int. Like `JSONDecoder`, a fraction or exponent is accepted when the value is a whole
    /// number (`1.0`, `1e0`); the conversion is exact.
    mutating func int(key: StaticString) throws(FrameParseError) -> Int {
        let text = try numberText(key: key, expected: "an integer")
        let (magnitude, negative) = try integer(text, key: key)
        let limit = UInt64(Int.max) + (negative ? 1 : 0)
        guard magnitude <= limit else {
            throw FrameParseError(code: .badNumber, offset: text.start, key: key, expected: "an integer within Int range")
        }
        return negative ? Int(truncatingIfNeeded: 0 &- magnitude) : Int(magnitude)
    }

    /// A UInt64 (same rules as `int`; `-0` is 0, anything below is an error).
    mutating func uint64(key: StaticString) throws(FrameParseError) -> UInt64 {
        let text = try numberText(key: key, expected: "a non-negative integer")
        let (magnitude, negative) = try integer(text, key: key)
        guard !negative || magnitude == 0 else {
            throw FrameParseError(code: .badNumber, offset: text.start, key: key, expected: "a non-negative integer")
        }
        return magnitude
    }

    /// The exact integer value of a checked number text: its magnitude and sign. A value with a
    /// non-zero fractional part, or beyond UInt64, is `badNumber`.
    func integer(_ text: NumberText, key: StaticString) throws(FrameParseError) -> (UInt64, Bool) {
        let bad = FrameParseError(code: .badNumber, offset: text.start, key: key, expected: "a whole number within range")
        let negative = bytes[text.start] == UInt8(ascii: "-")
        guard text.nonZero else { return (0, negative) }
        // The significand's digits (integer then fraction part) end at `e` / `E` or the end.
        let digitsStart = negative ? text.start + 1 : text.start
        var digitsEnd = digitsStart
        var digitCount = 0, fractionDigits = 0, trailingZeros = 0, inFraction = false
        while digitsEnd < text.end, bytes[digitsEnd] | 0x20 != UInt8(ascii: "e") {
            let b = bytes[digitsEnd]
            if b == UInt8(ascii: ".") {
                inFraction = true
            } else {
                digitCount += 1
                if inFraction { fractionDigits += 1 }
                trailingZeros = b == UInt8(ascii: "0") ? trailingZeros + 1 : 0
            }
            digitsEnd += 1
        }
        var exponent = 0
        if digitsEnd < text.end {
            var e = digitsEnd + 1
            let exponentNegative = bytes[e] == UInt8(ascii: "-")
            if bytes[e] == UInt8(ascii: "+") || exponentNegative { e += 1 }
            while e < text.end {
                exponent = min(exponent * 10 + Int(bytes[e] - UInt8(ascii: "0")), 100_000)   // saturate
                e += 1
            }
            if exponentNegative { exponent = -exponent }
        }
        // value = (significand without its trailing zeros) · 10^scale: whole only if scale ≥ 0, and
        // a non-zero value times 10^20 or more exceeds UInt64.
        let scale = exponent - fractionDigits + trailingZeros
        guard scale >= 0, scale < 20 else { throw bad }
        var magnitude: UInt64 = 0
        var taken = 0
        var k = digitsStart
        while taken < digitCount - trailingZeros {
            let b = bytes[k]
            k += 1
            if b == UInt8(ascii: ".") { continue }
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(b - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw bad }
            magnitude = sum
            taken += 1
        }
        for _ in 0..<scale {
            let (times10, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            guard !overflow else { throw bad }
            magnitude = times10
        }
        return (magnitude, negative)
    }

    // MARK: Skipping unknown values

    /// Consumes one JSON value of any type, checking its syntax (unknown keys may hold anything).
    mutating func skipValue(key: StaticString, depth: Int) throws(FrameParseError) {
        guard let b = peek() else { throw syntax("a value", key: key, at: i) }
        switch b {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard depth < 32 else { throw syntax("nesting at most 32 deep", key: key, at: i) }
            if b == UInt8(ascii: "{") {
                var object = try openObject(key: key)
                while try nextMember(&object, key: key) != nil { try skipValue(key: key, depth: depth + 1) }
            } else {
                var array = try openArray(key: key)
                while try nextElement(&array, key: key) { try skipValue(key: key, depth: depth + 1) }
            }
        case UInt8(ascii: "\""):
            var scratch = ShortString()
            try readString(into: &scratch, key: key)
        case UInt8(ascii: "t"): try literal("true", key: key)
        case UInt8(ascii: "f"): try literal("false", key: key)
        case UInt8(ascii: "n"): try literal("null", key: key)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try numberText(key: key, expected: "a number")
        default:
            throw syntax("a value", key: key, at: i)
        }
    }
}

// MARK: - Short strings

/// The first 16 bytes of a string being read, kept inline, and its full length in bytes.
struct ShortString {
    var storage: (UInt64, UInt64) = (0, 0)
    /// Length of the whole string (may exceed the 16 bytes kept).
    var count = 0

    mutating func append(_ byte: UInt8) {
        if count < 16 {
            let at = count
            withUnsafeMutableBytes(of: &storage) { $0[at] = byte }
        }
        count += 1
    }

    /// Appends a Unicode scalar (not a surrogate) as UTF-8.
    mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            append(UInt8(scalar))
        case 0x80..<0x800:
            append(UInt8(0xC0 | scalar >> 6))
            append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            append(UInt8(0xE0 | scalar >> 12))
            append(UInt8(0x80 | scalar >> 6 & 0x3F))
            append(UInt8(0x80 | scalar & 0x3F))
        default:
            append(UInt8(0xF0 | scalar >> 18))
            append(UInt8(0x80 | scalar >> 12 & 0x3F))
            append(UInt8(0x80 | scalar >> 6 & 0x3F))
            append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// The text as a `String`; ≤ 15 bytes, so Swift stores it inline without allocating.
    var string: String {
        var copy = storage
        let n = min(count, 16)
        return withUnsafeBytes(of: &copy) { raw in
            String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<n]).assumingMemoryBound(to: UInt8.self),
                   as: UTF8.self)
        }
    }

    /// Whether this is exactly the text of `key` (used by `switch name { case "v": ... }`).
    static func ~= (key: StaticString, name: ShortString) -> Bool {
        guard name.count == key.utf8CodeUnitCount, name.count <= 16 else { return false }
        var copy = name.storage
        return withUnsafeBytes(of: &copy) { raw in
            key.withUTF8Buffer { k in
                for j in 0..<k.count where raw[j] != k[j] { return false }
                return true
            }
        }
    }
}
