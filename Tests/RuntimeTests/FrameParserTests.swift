import Foundation
import Observation
import Testing
import Runtime

// FrameParser against the reference, JSONDecoder: random frames (bit-exact), hand-written JSON,
// one test per error code, and seeded mutations of valid frames (no crash, offsets in range, and
// anything accepted agrees with JSONDecoder).

/// SplitMix64: a tiny seeded generator so every run sees the same cases.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Parses `json` with a fresh preallocated frame; returns the frame or the error.
func parseFrame(_ json: some Collection<UInt8>) -> Result<ObservationFrame, FrameParseError> {
    // An exact-size copy, so a read past the end trips the buffer's bounds check.
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: json.count, alignment: 1)
    defer { buffer.deallocate() }
    buffer.copyBytes(from: json)
    var frame = ObservationFrame.preallocated()
    if let error = FrameParser().parse(UnsafeRawBufferPointer(buffer), into: &frame) { return .failure(error) }
    return .success(frame)
}

func parseFrame(_ json: String) -> Result<ObservationFrame, FrameParseError> { parseFrame(Array(json.utf8)) }

/// Same values bit for bit (unlike `==`, tells -0.0 from 0.0).
func bitIdentical(_ a: ObservationFrame, _ b: ObservationFrame) -> Bool {
    a.v == b.v && a.seq == b.seq && a.t.bitPattern == b.t.bitPattern
        && a.ranges.map(\.bitPattern) == b.ranges.map(\.bitPattern)
        && a.rangeMax.bitPattern == b.rangeMax.bitPattern
        && a.detections.count == b.detections.count
        && zip(a.detections, b.detections).allSatisfy {
            $0.colour == $1.colour && $0.kind == $1.kind
                && $0.bearing.bitPattern == $1.bearing.bitPattern && $0.distance.bitPattern == $1.distance.bitPattern
        }
        && [a.odom.x, a.odom.y, a.odom.theta, a.odom.v, a.odom.w].map(\.bitPattern)
            == [b.odom.x, b.odom.y, b.odom.theta, b.odom.v, b.odom.w].map(\.bitPattern)
        && a.bump == b.bump && a.battery.bitPattern == b.battery.bitPattern
        && a.route?.bearing.bitPattern == b.route?.bearing.bitPattern
        && a.route?.distance.bitPattern == b.route?.distance.bitPattern
        && (a.stamps == nil) == (b.stamps == nil)
        && [a.stamps?.scanner, a.stamps?.camera, a.stamps?.odom].map { $0?.bitPattern }
            == [b.stamps?.scanner, b.stamps?.camera, b.stamps?.odom].map { $0?.bitPattern }
}

/// Strings of at most 15 UTF-8 bytes, with characters that need escaping and multi-byte ones.
let sampleStrings = ["red", "green", "", "orange", "box", "door", "a\"b\\c", "tab\there", "nl\nx/y",
                     "é", "😀😀😀", "\u{1}\u{1f}", "ünïcødé ok", "exactly15bytes!", "日本語の箱"]

/// A random finite Float: anything from a random bit pattern to plain sensor-like values.
func randomFloat(_ rng: inout TestRNG) -> Float {
    switch rng.next() % 6 {
    case 0: while true { let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())); if f.isFinite { return f } }
    case 1: return [0, -0.0, 1, -1, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                    .leastNonzeroMagnitude, .leastNormalMagnitude, 16_777_216, 0.1][Int(rng.next() % 10)]
    case 2: return Float.random(in: -10...10, using: &rng)
    default: return Float.random(in: 0...5, using: &rng)
    }
}

func randomDouble(_ rng: inout TestRNG) -> Double {
    switch rng.next() % 4 {
    case 0: while true { let d = Double(bitPattern: rng.next()); if d.isFinite { return d } }
    case 1: return [0, -0.0, 0.1 + 0.2, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e16][Int(rng.next() % 6)]
    default: return Double(rng.next() % 100_000) * 0.05
    }
}

func randomFrame(_ rng: inout TestRNG) -> ObservationFrame {
    let rangeCount = rng.next() % 4 == 0 ? Int(rng.next() % 65) : ObservationFrame.beamCount
    let detectionCount = Int(rng.next() % 9)
    return ObservationFrame(
        seq: rng.next() % 3 == 0 ? rng.next() : rng.next() % 10_000,
        t: randomDouble(&rng),
        ranges: (0..<rangeCount).map { _ in randomFloat(&rng) },
        rangeMax: randomFloat(&rng),
        detections: (0..<detectionCount).map { _ in
            Detection(colour: sampleStrings[Int(rng.next() % UInt64(sampleStrings.count))],
                      kind: sampleStrings[Int(rng.next() % UInt64(sampleStrings.count))],
                      bearing: randomFloat(&rng), distance: randomFloat(&rng))
        },
        odom: Odometry(x: randomFloat(&rng), y: randomFloat(&rng), theta: randomFloat(&rng),
                       v: randomFloat(&rng), w: randomFloat(&rng)),
        bump: rng.next() & 1 == 1,
        battery: randomFloat(&rng),
        route: rng.next() % 4 == 0 ? nil : Route(bearing: randomFloat(&rng), distance: randomFloat(&rng)),
        stamps: rng.next() % 3 == 0 ? nil : SensorStamps(
            scanner: rng.next() % 4 == 0 ? nil : randomDouble(&rng), camera: rng.next() % 4 == 0 ? nil : randomDouble(&rng),
            odom: rng.next() % 4 == 0 ? nil : randomDouble(&rng)))
}

/// A plain valid frame as JSON text, for the hand-written cases.
let baseJSON = """
{"v":2,"seq":7,"t":1.5,"ranges":[1,2.5,0.125],"range_max":8,"detections":[{"colour":"red","kind":"box","bearing":0.25,"distance":1.5}],"odom":{"x":0.5,"y":-1,"theta":3.1415927,"v":0.2,"w":-0.1},"bump":false,"route":{"bearing":-0.5,"distance":2.25},"battery":0.9}
"""

/// `baseJSON` with every `old` replaced by `new`.
func replaced(_ old: String, _ new: String) -> String { baseJSON.replacingOccurrences(of: old, with: new) }

/// Bad input and the error it must give; the offset is where `marker` first occurs, plus `plus`.
struct ErrorCase: Sendable, CustomTestStringConvertible {
    var json: String, code: FrameParseError.Code, key: String, offset: Int
    /// JSONDecoder rejects it too (it accepts trailing commas, deep nesting, duplicates, and knows
    /// nothing of our size limits).
    var decoderRejects = true
    init(_ json: String, _ code: FrameParseError.Code, _ key: String, at marker: String, plus: Int = 0,
         decoderRejects: Bool = true) {
        (self.json, self.code, self.key, self.decoderRejects) = (json, code, key, decoderRejects)
        let range = json.range(of: marker)!
        offset = json.utf8.distance(from: json.startIndex, to: range.lowerBound) + plus
    }
    init(_ json: String, _ code: FrameParseError.Code, _ key: String, offset: Int) {
        (self.json, self.code, self.key, self.offset) = (json, code, key, offset)
    }
    var testDescription: String { "\(code) \(key) @\(offset)" }
}

let errorCases: [ErrorCase] = [
    ErrorCase("", .syntax, "", offset: 0),
    ErrorCase("[1]", .wrongType, "", offset: 0),
    ErrorCase("{\"v\":2", .syntax, "", offset: 6),                                      // cut short
    ErrorCase(replaced("\"v\":2", "\"v\":1"), .wrongVersion, "v", at: "1,"),         // v1: no route
    ErrorCase(replaced("\"v\":2", "\"v\":3"), .wrongVersion, "v", at: "3,"),
    ErrorCase(replaced(",\"route\":{\"bearing\":-0.5,\"distance\":2.25}", ""), .missingKey, "route",
              offset: replaced(",\"route\":{\"bearing\":-0.5,\"distance\":2.25}", "").utf8.count - 1),   // the closing brace
    ErrorCase(replaced("\"bearing\":-0.5,", ""), .missingKey, "route.bearing", at: "},\"battery\""),
    ErrorCase(replaced("\"distance\":2.25", "\"distance\":\"far\""), .wrongType, "route.distance", at: "\"far\""),
    ErrorCase(replaced("{\"bearing\":-0.5,\"distance\":2.25}", "[]"), .wrongType, "route", at: "[]"),
    ErrorCase(replaced(",\"battery\":0.9", ""), .missingKey, "battery", offset: baseJSON.utf8.count - 15),
    ErrorCase(replaced("\"x\":0.5,", ""), .missingKey, "odom.x", at: "},\"bump\""),
    ErrorCase(replaced("\"kind\":\"box\",", ""), .missingKey, "detections.kind", at: "}],\"odom\""),
    ErrorCase(replaced("\"bump\":false", "\"bump\":null"), .wrongType, "bump", at: "null"),
    ErrorCase(replaced("[1,2.5,0.125]", "\"1\""), .wrongType, "ranges", at: "\"1\""),
    ErrorCase(replaced("0.25", "\"0.25\""), .wrongType, "detections.bearing", at: "\"0.25\""),
    ErrorCase(replaced("\"red\"", "7"), .wrongType, "detections.colour", at: "7,\"kind\""),
    ErrorCase(replaced("[1,2.5,0.125]", "[" + Array(repeating: "1", count: 65).joined(separator: ",") + "]"),
              .tooManyItems, "ranges", at: "[1,1", plus: 1 + 64 * 2, decoderRejects: false),                    // the 65th
    ErrorCase(replaced("\"seq\":7", "\"seq\":07"), .badNumber, "seq", at: "07"),
    ErrorCase(replaced("\"seq\":7", "\"seq\":-1"), .badNumber, "seq", at: "-1"),
    ErrorCase(replaced("\"seq\":7", "\"seq\":7.5"), .badNumber, "seq", at: "7.5"),
    ErrorCase(replaced("\"seq\":7", "\"seq\":18446744073709551616"), .badNumber, "seq", at: "1844"),
    ErrorCase(replaced("\"t\":1.5", "\"t\":1e309"), .badNumber, "t", at: "1e309"),
    ErrorCase(replaced("\"range_max\":8", "\"range_max\":3.5e38"), .badNumber, "range_max", at: "3.5e38"),
    ErrorCase(replaced("\"range_max\":8", "\"range_max\":1e-50"), .badNumber, "range_max", at: "1e-50"),
    ErrorCase(replaced("\"range_max\":8", "\"range_max\":1."), .badNumber, "range_max", at: "1.,"),
    ErrorCase(replaced("\"range_max\":8", "\"range_max\":NaN"), .wrongType, "range_max", at: "NaN"),
    ErrorCase(replaced("\"red\"", "\"sixteen-bytes-xx\""), .stringTooLong, "detections.colour", at: "\"sixteen", decoderRejects: false),
    ErrorCase(baseJSON + " x", .trailingBytes, "", at: " x", plus: 1),
    ErrorCase(replaced("\"seq\":7,", "\"seq\":7,\"seq\":8,"), .duplicateKey, "seq", at: "\"seq\":8", decoderRejects: false),
    ErrorCase(replaced("\"red\"", "\"\\ud800x\""), .syntax, "detections.colour", at: "\\ud800", plus: 6),    // lone high surrogate
    ErrorCase(replaced("\"red\"", "\"\\udc00\""), .syntax, "detections.colour", at: "\\udc00"), // lone low surrogate
    ErrorCase(replaced("\"red\"", "\"\\q\""), .syntax, "detections.colour", at: "\\q"),
    ErrorCase(replaced("\"red\"", "\"a\nb\""), .syntax, "detections.colour", at: "\n"),
    ErrorCase(replaced("[1,2.5,0.125]", "[1,]"), .syntax, "ranges", at: ",]", plus: 1, decoderRejects: false),
    ErrorCase(replaced("\"odom\":{", "\"odom\":{\"x\":1,}"), .syntax, "odom", at: ",}", plus: 1, decoderRejects: false),
    ErrorCase(replaced("\"v\":2,", "\"v\":2,\"x\":" + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + ","),
              .syntax, "", at: "[[[", plus: 32, decoderRejects: false),                                          // nesting limit
]

/// `json` with numbers like `0e1` spelt `0.0e1`: valid JSON (RFC 8259 §6) that JSONSerialization
/// and Python read, but that JSONDecoder (swift-foundation, Swift 6.3) rejects, while it accepts
/// `-0e1` and `0.0e1`. The parser follows the RFC.
func jsonDecoderCompatible(_ json: [UInt8]) -> Data {
    var out = Data()
    var inString = false, escaped = false
    for (k, b) in json.enumerated() {
        out.append(b)
        if inString {
            if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
            continue
        }
        if b == UInt8(ascii: "\"") { inString = true; continue }
        let before = k > 0 ? json[k - 1] : 0
        if b == UInt8(ascii: "0"), k + 1 < json.count, json[k + 1] | 0x20 == UInt8(ascii: "e"),
           !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(before), before != UInt8(ascii: ".") {
            out.append(contentsOf: Array(".0".utf8))
        }
    }
    return out
}

@Suite struct FrameParserTests {
    @Test func randomFramesMatchJSONDecoderBitForBit() throws {
        var rng = TestRNG(seed: 0x0B5_F4A3E)
        var frame = ObservationFrame.preallocated()
        let parser = FrameParser()
        for n in 0..<1500 {
            let original = randomFrame(&rng)
            let json = try original.jsonData()
            let reference = try ObservationFrame.decode(json: json)
            #expect(bitIdentical(reference, original), "JSONEncoder/JSONDecoder round trip, case \(n)")
            let error = json.withUnsafeBytes { parser.parse($0, into: &frame) }   // reused frame, as in the daemon
            #expect(error == nil, "case \(n): \(error.map { "\($0)" } ?? "")")
            #expect(bitIdentical(frame, reference), "case \(n): \(String(decoding: json, as: UTF8.self))")
            if error != nil || !bitIdentical(frame, reference) { return }
        }
    }

    /// Prints the mean parse time of a simulator-like frame (16 ranges, 3 detections); the bound
    /// only catches a pathological slowdown, even in a debug build on a busy machine.
    @Test func parsesAFrameInMicroseconds() throws {
        let parser = FrameParser()
        var frame = ObservationFrame.preallocated()
        let rounds = 2000
        var failures = 0
        let elapsed = steadyStateFrameJSON.withUnsafeBytes { json in
            ContinuousClock().measure {
                for _ in 0..<rounds where parser.parse(json, into: &frame) != nil { failures += 1 }
            }
        }
        let micros = Double(elapsed.components.attoseconds) / 1e12 / Double(rounds)
            + Double(elapsed.components.seconds) * 1e6 / Double(rounds)
        print("FrameParser: \(steadyStateFrameJSON.count)-byte frame in \(String(format: "%.2f", micros)) µs (mean of \(rounds))")
        #expect(failures == 0)
        #expect(micros < 2000)
    }

    @Test func handWrittenJSONMatchesJSONDecoder() throws {
        let cases = [
            baseJSON,
            // Whitespace everywhere, keys in another order, `v` spelt with an escape.
            " \r\n\t{ \"battery\" : 0.9 ,\n \"bump\"\t:\ttrue , \"odom\" : { \"w\" : -0.1 , \"v\" : 0.2 , \"theta\" : 3.1415927 , \"y\" : -1 , \"x\" : 0.5 } , \"detections\" : [ ] , \"range_max\" : 8 , \"ranges\" : [ ] , \"t\" : 0 , \"seq\" : 0 , \"route\" : null , \"\\u0076\" : 2 } \n ",
            // Unknown keys of every type, nested, at each level; escapes in strings.
            """
            {"future":{"a":[1,{"b":null},"x\\"y",true,false,-1.5e-3,[]],"c":{}},"v":2,"seq":18446744073709551615,
             "t":1e-7,"ranges":[0,-0,1E+2,3.4028235e38,1e-45],"range_max":8,"extra":[[[["deep"]]]],
             "detections":[{"colour":"\\u00e9\\u00E9\\ud83d\\ude00","kind":"a\\/b\\\\c\\"d","bearing":-0.0,
             "distance":2,"confidence":0.5},{"kind":"\\b\\f\\n\\r\\t","colour":"","distance":1,"bearing":0}],
             "odom":{"x":1,"y":2,"theta":3,"v":4,"w":5,"covariance":[1,0,0,1]},"bump":true,"battery":1,"note":"ünï",
             "route":{"distance":0,"frame":"map","bearing":3.14159}}
            """,
            // Whole numbers written with a fraction or exponent are integers to JSONDecoder too.
            baseJSON.replacingOccurrences(of: "\"seq\":7", with: "\"seq\":7.0e2")
                .replacingOccurrences(of: "\"v\":2,", with: "\"v\":20E-1,"),
            baseJSON.replacingOccurrences(of: "\"seq\":7", with: "\"seq\":-0"),
            // Longest accepted strings: 15 bytes.
            baseJSON.replacingOccurrences(of: "\"red\"", with: "\"exactly15bytes!\"")
                .replacingOccurrences(of: "\"box\"", with: "\"日本語の箱\""),
            // Numbers that need correct rounding (halfway cases, many digits).
            baseJSON.replacingOccurrences(of: "\"t\":1.5", with: "\"t\":2.2250738585072011e-308")
                .replacingOccurrences(of: "\"battery\":0.9", with: "\"battery\":1.00000005960464477539062500001"),
            baseJSON.replacingOccurrences(of: "\"t\":1.5", with: "\"t\":9007199254740993")
                .replacingOccurrences(of: "\"battery\":0.9", with: "\"battery\":16777217"),
        ]
        for (n, json) in cases.enumerated() {
            let reference = try ObservationFrame.decode(json: Data(json.utf8))
            switch parseFrame(json) {
            case .success(let frame): #expect(bitIdentical(frame, reference), "case \(n)")
            case .failure(let error): Issue.record("case \(n): \(error)")
            }
        }
        let frame = try parseFrame(cases[2]).get()
        #expect(frame.detections[0].colour == "éé😀" && frame.detections[0].kind == "a/b\\c\"d")
        #expect(frame.ranges[1].sign == .minus && frame.seq == .max)
    }

    /// `stamps` is optional: read when present (null fields stay nil), and a frame without it does
    /// not keep the previous frame's stamps in the reused buffer.
    @Test func stampsAreOptionalAndNotCarriedOver() throws {
        let stamped = baseJSON.replacingOccurrences(of: "\"battery\":0.9}", with: "\"battery\":0.9,\"stamps\":{\"scanner\":1.48,\"camera\":null,\"odom\":1.5}}")
        let parser = FrameParser()
        var frame = ObservationFrame.preallocated()
        for (json, expected) in [(stamped, SensorStamps(scanner: 1.48, camera: nil, odom: 1.5)), (baseJSON, nil),
                                 (baseJSON.replacingOccurrences(of: "\"battery\":0.9}", with: "\"battery\":0.9,\"stamps\":null}"), nil)] {
            let bytes = Array(json.utf8)
            #expect(bytes.withUnsafeBytes { parser.parse($0, into: &frame) } == nil)
            #expect(frame.stamps == expected, "\(json)")
            #expect(try ObservationFrame.decode(json: Data(json.utf8)).stamps == expected)
        }
        let original = try ObservationFrame.decode(json: Data(stamped.utf8))
        #expect(try ObservationFrame.decode(json: original.jsonData()) == original)
        #expect(!String(decoding: try ObservationFrame.decode(json: Data(baseJSON.utf8)).jsonData(), as: UTF8.self).contains("stamps"))
        guard case .failure(let e) = parseFrame(baseJSON.replacingOccurrences(of: "\"battery\":0.9}", with: "\"battery\":0.9,\"stamps\":{\"odom\":\"late\"}}")) else {
            Issue.record("accepted a string stamp"); return
        }
        #expect(e.key.description == "stamps.odom", "\(e)")
    }

    /// Each error code, with the key and offset it must report.
    @Test(arguments: errorCases)
    func errorsNameCodeKeyAndOffset(_ c: ErrorCase) {
        let (json, code, key, offset) = (c.json, c.code, c.key, c.offset)
        guard case .failure(let error) = parseFrame(json) else {
            Issue.record("accepted: \(json)")
            return
        }
        #expect(error.code == code, "\(error)")
        #expect(error.key.description == key, "\(error)")
        #expect(error.offset == offset, "\(error)")
        #expect(error.description.contains("at byte \(offset)"))
        if c.decoderRejects {
            #expect(throws: FrameDecodingError.self) { try ObservationFrame.decode(json: Data(json.utf8)) }
        }
    }

    @Test func invalidUTF8IsRejected() {
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]] {
            var json = Array(baseJSON.utf8)
            let colour = Array("\"red\"".utf8)
            let start = json.indices.first { json[$0...].starts(with: colour) }!
            json.replaceSubrange(start + 1..<start + 4, with: bad)
            guard case .failure(let error) = parseFrame(json) else {
                Issue.record("accepted invalid UTF-8 \(bad)")
                continue
            }
            #expect(error.code == .syntax && error.offset == start + 1, "\(error)")
        }
    }

    @Test func errorEqualityComparesKeyText() {
        let a = FrameParseError(code: .syntax, offset: 3, key: "odom.x", expected: "a value")
        #expect(a == FrameParseError(code: .syntax, offset: 3, key: "odom.x", expected: "a value"))
        #expect(a != FrameParseError(code: .syntax, offset: 3, key: "odom.y", expected: "a value"))
        #expect(a.description == "observation frame: odom.x: expected a value (syntax) at byte 3")
    }

    /// ~20k seeded mutations and truncations of valid frames: never a crash, never a read past the
    /// input (exact-size buffers, bounds-checked in debug), errors point inside the input, and
    /// whatever is accepted is exactly what JSONDecoder reads.
    @Test func mutatedFramesNeverCrash() throws {
        var rng = TestRNG(seed: 0xF022)
        let seeds = try (0..<20).map { _ in Array(try randomFrame(&rng).jsonData()) } + [Array(baseJSON.utf8)]
        let alphabet = Array("{}[]\":,.-+eE0123456789tfnul \\\u{7f}".utf8) + [0x00, 0xC3, 0xFF, 0x0A]
        var accepted = 0, rejected = 0
        for n in 0..<20_000 {
            var json = seeds[n % seeds.count]
            for _ in 0...(rng.next() % 3) {
                let at = json.isEmpty ? 0 : Int(rng.next() % UInt64(json.count))
                switch rng.next() % 6 {
                case 0: json = Array(json.prefix(at))                                                  // truncate
                case 1: if !json.isEmpty { json[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))] }   // replace
                case 2: json.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)      // insert
                case 3: if !json.isEmpty { json.remove(at: at) }                                       // delete
                case 4: if !json.isEmpty { json[at] = json[at] &+ 1 }                                  // nudge (digits)
                default:                                                                               // duplicate a span
                    let end = min(json.count, at + Int(rng.next() % 40))
                    json.insert(contentsOf: json[at..<end], at: at)
                }
            }
            switch parseFrame(json) {
            case .failure(let error):
                rejected += 1
                #expect((0...json.count).contains(error.offset), "case \(n): \(error)")
            case .success(let frame):
                accepted += 1
                guard let reference = try? ObservationFrame.decode(json: jsonDecoderCompatible(json)) else {
                    Issue.record("case \(n): accepted what JSONDecoder rejects: \(String(decoding: json, as: UTF8.self))")
                    continue
                }
                #expect(bitIdentical(frame, reference), "case \(n)")
            }
        }
        print("FrameParser mutations: \(accepted) accepted (same as JSONDecoder), \(rejected) rejected")
        #expect(accepted > 500 && rejected > 10_000, "accepted \(accepted), rejected \(rejected)")
    }
}
