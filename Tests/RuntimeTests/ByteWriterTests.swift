import Foundation
import Testing
import Runtime

// ByteWriter: valid JSON out (read back by JSONSerialization and Python's json), floats that
// round-trip bit for bit with the same text as `description`, escapes, and the overflow contract.

private func text(_ w: ByteWriter) -> String { w.withBytes { String(decoding: $0, as: UTF8.self) } }

@Suite struct ByteWriterTests {
    @Test func writesAMessageJSONSerializationReads() throws {
        var w = ByteWriter(capacity: 256)
        w.raw("{\"v\":1,\"seq\":"); w.uint64(.max)
        w.raw(",\"i\":"); w.int(.min)
        w.raw(",\"z\":"); w.int(0)
        w.raw(",\"f\":"); w.float(0.1)
        w.raw(",\"d\":"); w.double(0.1 + 0.2)
        w.raw(",\"n\":"); w.float(.nan)
        w.raw(",\"inf\":"); w.double(-.infinity)
        w.raw(",\"s\":"); w.string("forward")
        w.raw(",\"k\":"); w.string("stop" as StaticString)
        w.raw(",\"b\":["); w.bool(true); w.raw(","); w.bool(false); w.raw("]}")
        #expect(!w.overflowed)
        #expect(text(w) == #"{"v":1,"seq":18446744073709551615,"i":-9223372036854775808,"z":0,"f":0.1,"d":0.30000000000000004,"n":null,"inf":null,"s":"forward","k":"stop","b":[true,false]}"#)
        let object = try #require(try JSONSerialization.jsonObject(with: w.withBytes { Data($0) }) as? [String: Any])
        #expect(object["s"] as? String == "forward" && (object["n"] is NSNull))
        #expect(w.count == text(w).utf8.count)
    }

    @Test func escapesStringsSoTheyReadBack() throws {
        let strings = ["", "plain", "quote \" backslash \\ slash /", "\u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f}\u{7f}",
                       "ünïcødé 日本 😀", "\u{2028}\u{2029}"]
        var w = ByteWriter(capacity: 1024)
        w.raw("[")
        for (n, s) in strings.enumerated() {
            if n > 0 { w.raw(",") }
            w.string(s)
        }
        w.raw("]")
        let back = try #require(try JSONSerialization.jsonObject(with: w.withBytes { Data($0) }) as? [String])
        #expect(back == strings)
        #expect(text(w).contains(#""\u0000\u0001\b\t\n\f\r\u001f"#))
    }

    /// Same text as `description`, and it reads back (Swift's parser) to the same bits.
    @Test func floatsAndDoublesRoundTripWithDescriptionDigits() {
        var rng = TestRNG(seed: 0xF10A7)
        var w = ByteWriter(capacity: 64)
        var mismatches = 0
        for n in 0..<40_000 {
            let f: Float = n < 20_000 ? Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) : randomFloat(&rng)
            let d: Double = n < 20_000 ? Double(bitPattern: rng.next()) : randomDouble(&rng)
            guard f.isFinite, d.isFinite else { continue }
            w.reset(); w.float(f)
            let ft = text(w)
            w.reset(); w.double(d)
            let dt = text(w)
            if ft != f.description || Float(ft)?.bitPattern != f.bitPattern
                || dt != d.description || Double(dt)?.bitPattern != d.bitPattern {
                mismatches += 1
                if mismatches < 5 { Issue.record("\(f) → \(ft), \(d) → \(dt)") }
            }
        }
        #expect(mismatches == 0)
    }

    /// Python's json reads every number back to the same bits (Float through numpy's float32).
    @Test func pythonJSONReadsFloatsBackBitForBit() throws {
        var rng = TestRNG(seed: 0xB1757)
        var floats: [Float] = [0, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e-5, 16_777_216]
        var doubles: [Double] = [0, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e-5, 1e16, 0.1 + 0.2]
        while floats.count < 3000 {
            let f = rng.next() % 2 == 0 ? Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) : randomFloat(&rng)
            if f.isFinite { floats.append(f) }
            let d = rng.next() % 2 == 0 ? Double(bitPattern: rng.next()) : randomDouble(&rng)
            if d.isFinite { doubles.append(d) }
        }
        var w = ByteWriter(capacity: 200_000)
        w.raw("{\"f\":[")
        for (n, f) in floats.enumerated() { if n > 0 { w.raw(",") }; w.float(f) }
        w.raw("],\"d\":[")
        for (n, d) in doubles.enumerated() { if n > 0 { w.raw(",") }; w.double(d) }
        w.raw("]}")
        #expect(!w.overflowed)

        // Prints the bit patterns Python reads, one per line: floats (as float32), then doubles.
        let script = """
        import json, struct, sys
        try:
            import numpy
        except ImportError:
            sys.exit("numpy is required by ByteWriterTests (pip install numpy)")
        m = json.load(sys.stdin)
        for x in m["f"]: print(struct.unpack("<I", struct.pack("<f", numpy.float32(x)))[0])
        for x in m["d"]: print(struct.unpack("<Q", struct.pack("<d", x))[0])
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(w.withBytes { Data($0) })
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "python3 failed: \(String(decoding: err, as: UTF8.self))")
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n")
        try #require(lines.count == floats.count + doubles.count)
        let floatBits = lines.prefix(floats.count).map { UInt32($0)! }
        let doubleBits = lines.suffix(doubles.count).map { UInt64($0)! }
        #expect(floatBits == floats.map(\.bitPattern))
        #expect(doubleBits == doubles.map(\.bitPattern))
    }

    @Test func neverWritesPastCapacity() {
        var w = ByteWriter(capacity: 12)
        w.raw("{\"a\":")                       // 5 bytes
        w.string("toolong")                     // 9 bytes: does not fit, dropped whole
        #expect(w.overflowed && w.count == 5 && text(w) == "{\"a\":")
        w.raw("1")                              // ignored after an overflow
        #expect(w.count == 5)
        w.reset()
        #expect(!w.overflowed && w.count == 0)
        w.int(-12345678901)                     // 12 bytes: fits exactly
        #expect(!w.overflowed && text(w) == "-12345678901")
        w.reset(); w.raw("1234567890"); w.double(0.5)   // "0.5" needs 3, 2 left
        #expect(w.overflowed && text(w) == "1234567890")
        w.reset(); w.raw("12345678901"); w.string("\n")  // escaped form needs 4
        #expect(w.overflowed && w.count == 11)
        var empty = ByteWriter(capacity: 0)
        empty.bool(true)
        #expect(empty.overflowed && empty.count == 0)
    }

    @Test func bytesAreCopiedAsTheyAre() {
        var w = ByteWriter(capacity: 16)
        let fragment: [UInt8] = Array("[1,2]".utf8)
        fragment.withUnsafeBytes { w.bytes($0) }
        #expect(text(w) == "[1,2]")
        var copy = w                    // value semantics: the copy is independent
        copy.raw("x")
        #expect(text(w) == "[1,2]" && text(copy) == "[1,2]x")
    }
}
