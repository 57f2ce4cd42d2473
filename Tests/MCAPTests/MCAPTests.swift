import Testing
import Foundation
@testable import MCAP
import CAllocCounter

/// A fresh temporary path per call.
func tempPath(_ name: String) -> String {
    NSTemporaryDirectory() + "minigpt-mcap-\(getpid())-\(name)-\(UInt32.random(in: 0...UInt32.max)).mcap"
}

let obsSchema = Array(#"{"type":"object","properties":{"v":{"type":"integer"},"t":{"type":"number"}}}"#.utf8)
let intentSchema = Array(#"{"type":"object","properties":{"v":{"type":"integer"},"intent":{"type":"string"}}}"#.utf8)

/// Message `i` of the fixture: alternates obs / intent channels, JSON payloads, times in ns.
func fixturePayload(_ i: Int) -> [UInt8] {
    i % 3 == 2 ? Array(#"{"v":1,"intent":"turn_left","i":\#(i)}"#.utf8) : Array(#"{"v":1,"t":\#(Double(i) * 0.25),"i":\#(i)}"#.utf8)
}

/// The fixture's one Metadata record (name "session"): a config-like JSON text among its pairs.
let fixtureMetadata = ["robot.json": #"{"model": {"path": "m"}, "note": "ünïcode ✓"}"#, "file": "/etc/robot.json"]

/// Writes the fixture (2 schemas, 3 channels, 1 metadata record, `count` messages) and returns what was written.
@discardableResult
func writeFixture(_ path: String, count: Int, finish: (MCAPWriter) throws -> Void = { try $0.close() }) throws -> [MCAPMessage] {
    let w = try MCAPWriter(path: path, library: "minigpt-test")
    let s1 = try w.addSchema(name: "minigpt.Observation", encoding: "jsonschema", data: obsSchema)
    let s2 = try w.addSchema(name: "minigpt.Intent", encoding: "jsonschema", data: intentSchema)
    let obs = try w.addChannel(schemaID: s1, topic: "obs", messageEncoding: "json", metadata: ["rate_hz": "50", "unit": "m"])
    let intent = try w.addChannel(schemaID: s2, topic: "intent", messageEncoding: "json")
    _ = try w.addChannel(schemaID: 0, topic: "status", messageEncoding: "json")   // schemaless, unused
    try w.addMetadata(name: "session", fixtureMetadata)
    var written: [MCAPMessage] = []
    var seq: [UInt16: UInt32] = [:]
    for i in 0..<count {
        let ch = i % 3 == 2 ? intent : obs
        let data = fixturePayload(i)
        let t = 1_700_000_000_000_000_000 + UInt64(i) * 20_000_000
        let s = seq[ch, default: 0]
        seq[ch] = s + 1
        try data.withUnsafeBytes { try w.write(channelID: ch, sequence: s, logTime: t, publishTime: t - 1000, data: $0) }
        written.append(MCAPMessage(channelID: ch, sequence: s, logTime: t, publishTime: t - 1000, data: data))
    }
    try finish(w)
    return written
}

@Suite struct MCAPTests {
    @Test func roundTrip() throws {
        let path = tempPath("rt")
        defer { unlink(path) }
        let written = try writeFixture(path, count: 50)
        let r = try MCAPReader(path: path)
        #expect(!r.truncated)
        #expect(r.library == "minigpt-test" && r.profile == "")
        #expect(r.schemas.count == 2 && r.schemas[1]?.name == "minigpt.Observation" && r.schemas[2]?.data == intentSchema)
        #expect(r.channels.count == 3)
        #expect(r.channels[1] == MCAPChannel(id: 1, schemaID: 1, topic: "obs", messageEncoding: "json", metadata: ["rate_hz": "50", "unit": "m"]))
        #expect(r.channels[3]?.schemaID == 0)
        #expect(r.messages == written)
        #expect(r.metadata.count == 1 && r.metadata[0].name == "session" && r.metadata[0].values == fixtureMetadata)
        let stats = try #require(r.statistics)
        #expect(stats.messageCount == 50 && stats.schemaCount == 2 && stats.channelCount == 3)
        #expect(stats.channelMessageCounts == [1: 34, 2: 16, 3: 0])
        #expect(stats.messageStartTime == written.first!.logTime && stats.messageEndTime == written.last!.logTime)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! UInt64
        #expect(r.validLength == size)
    }

    @Test func largeMessagesBypassTheBuffer() throws {
        let path = tempPath("big")
        defer { unlink(path) }
        let w = try MCAPWriter(path: path, bufferSize: 256)
        let ch = try w.addChannel(schemaID: 0, topic: "blob", messageEncoding: "json")
        let payloads = [[UInt8](repeating: 7, count: 100), (0..<5000).map { UInt8($0 % 251) }, [1, 2, 3], []]
        for (i, p) in payloads.enumerated() {
            try p.withUnsafeBytes { try w.write(channelID: ch, sequence: UInt32(i), logTime: UInt64(i), publishTime: 0, data: $0) }
        }
        try w.close()
        let r = try MCAPReader(path: path)
        #expect(!r.truncated && r.messages.map(\.data) == payloads)
    }

    @Test func truncatedFileReadsUpToLastCompleteRecord() throws {
        let path = tempPath("full")
        defer { unlink(path) }
        let written = try writeFixture(path, count: 12)
        let full = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        // Every prefix of the file, from empty to one byte short: never throws, never crashes,
        // yields a prefix of the written messages that grows with the cut.
        var previous = 0
        for length in 0..<full.count {
            let r = try MCAPReader(path: "cut-\(length)", contents: Array(full.prefix(length)))
            #expect(r.truncated, "cut at \(length) of \(full.count)")
            #expect(r.validLength <= UInt64(length))
            #expect(Array(written.prefix(r.messages.count)) == r.messages, "cut at \(length)")
            #expect(r.messages.count >= previous, "message count must not shrink as the cut grows")
            previous = r.messages.count
        }
        #expect(previous == written.count)
        #expect(!(try MCAPReader(path: path)).truncated)
    }

    @Test func killedWriterLeavesReadableFile() throws {
        // flush() without close(): no DataEnd/summary/footer, every message readable.
        let path = tempPath("killed")
        defer { unlink(path) }
        // Snapshot the file while the writer is still open (as a SIGKILL would leave it).
        var snapshot: [UInt8] = []
        let written = try writeFixture(path, count: 20) { w in
            try w.flush()
            snapshot = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        }
        let r = try MCAPReader(path: path, contents: snapshot)
        #expect(r.truncated && r.statistics == nil)
        #expect(r.messages == written)
    }

    @Test func corruptedBytesNeverCrash() throws {
        // 2000 copies of a valid file, each with 1–4 bytes overwritten (fixed-seed LCG): the
        // reader either returns or throws MCAPError; it never traps.
        let path = tempPath("fuzz")
        defer { unlink(path) }
        try writeFixture(path, count: 10)
        let clean = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        var state: UInt64 = 0x5EED
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        var threw = 0, returned = 0
        for _ in 0..<2000 {
            var bytes = clean
            for _ in 0...(next() % 4) { bytes[next() % bytes.count] = UInt8(truncatingIfNeeded: next()) }
            do { _ = try MCAPReader(path: "fuzz", contents: bytes); returned += 1 } catch is MCAPError { threw += 1 }
        }
        #expect(threw + returned == 2000)
        #expect(threw > 0 && returned > 0)   // both outcomes exercised
    }

    @Test func corruptFilesThrowWithPathAndOffset() throws {
        let path = tempPath("corrupt")
        defer { unlink(path) }
        try Data("PK\u{3}\u{4} not mcap".utf8).write(to: URL(fileURLWithPath: path))
        let e1 = try #require(throws: MCAPError.self) { try MCAPReader(path: path) }
        #expect(e1.description.hasPrefix("\(path) @ byte 0: not an MCAP file: expected magic 89 4d 43 41 50 30 0d 0a"))

        // A Schema record whose name length runs past the record.
        var bytes = mcapMagic
        bytes += [0x03] + le(UInt64(2 + 4)) + le(UInt16(1)) + le(UInt32(1000))
        bytes += [0x01] + le(UInt64(8)) + le(UInt32(0)) + le(UInt32(0))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let e2 = try #require(throws: MCAPError.self) { try MCAPReader(path: path) }
        #expect(e2.offset == 23 && e2.message == "Schema.name: needs 1000 bytes but the record has 0 left")

        // A message on a channel nobody defined.
        bytes = mcapMagic + [0x05] + le(UInt64(22)) + le(UInt16(9)) + le(UInt32(0)) + le(UInt64(0)) + le(UInt64(0))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let e3 = try #require(throws: MCAPError.self) { try MCAPReader(path: path) }
        #expect(e3.offset == 8 && e3.message.contains("channel 9"))

        #expect(throws: MCAPError.self) { try MCAPReader(path: "/nonexistent/x.mcap") }
    }

    @Test func writerRejectsUnknownIDsAndUseAfterClose() throws {
        let path = tempPath("ids")
        defer { unlink(path) }
        let w = try MCAPWriter(path: path)
        #expect(throws: MCAPError.self) { try w.addChannel(schemaID: 4, topic: "obs", messageEncoding: "json") }
        let empty: [UInt8] = []
        let e = try #require(throws: MCAPError.self) {
            try empty.withUnsafeBytes { try w.write(channelID: 1, sequence: 0, logTime: 0, publishTime: 0, data: $0) }
        }
        #expect(e.description.contains("channel ID 1 was never added"))
        try w.close()
        try w.close()   // idempotent
        #expect(throws: MCAPError.self) { try w.addSchema(name: "x", encoding: "jsonschema", data: []) }
        let r = try MCAPReader(path: path)
        #expect(!r.truncated && r.messages.isEmpty && r.statistics?.messageCount == 0)
        #expect(throws: MCAPError.self) { try MCAPWriter(path: "/nonexistent-dir/x.mcap") }
    }

    @Test func crc32MatchesZlib() {
        // zlib.crc32(b"123456789") == 0xCBF43926 (the standard check value).
        let check = Array("123456789".utf8).withUnsafeBytes { crc32Update(0, $0) }
        #expect(check == 0xCBF4_3926)
        let split = Array("123456789".utf8).withUnsafeBytes { crc32Update(crc32Update(0, UnsafeRawBufferPointer(rebasing: $0[0..<4])), UnsafeRawBufferPointer(rebasing: $0[4...])) }
        #expect(split == check)
    }

    @Test func sameInputsGiveIdenticalBytes() throws {
        let a = tempPath("det-a"), b = tempPath("det-b")
        defer { unlink(a); unlink(b) }
        try writeFixture(a, count: 30)
        try writeFixture(b, count: 30)
        #expect(FileManager.default.contents(atPath: a) == FileManager.default.contents(atPath: b))
    }
}

/// Little-endian bytes of an integer.
func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }


@Suite struct MCAPAllocationTests {
    /// `MCAPWriter.write` makes no heap allocation, buffer flushes included.
    @Test func writeMakesNoAllocations() throws {
        try #require(mgac_supported() == 1, "CAllocCounter does not intercept malloc on this platform")
        let path = tempPath("alloc")
        defer { unlink(path) }
        let w = try MCAPWriter(path: path, bufferSize: 4096)
        let ch = try w.addChannel(schemaID: 0, topic: "obs", messageEncoding: "json")
        let data = [UInt8](repeating: 65, count: 200)
        try data.withUnsafeBytes { d in
            for i in 0..<10 { try w.write(channelID: ch, sequence: UInt32(i), logTime: UInt64(i), publishTime: 0, data: d) }
            mgac_enable(1)
            defer { mgac_enable(0) }
            let before = mgac_thread_mallocs()
            for i in 10..<1010 { try w.write(channelID: ch, sequence: UInt32(i), logTime: UInt64(i), publishTime: 0, data: d) }
            let n = mgac_thread_mallocs() - before
            #expect(n == 0, "\(n) mallocs in 1000 writes (about 50 buffer flushes)")
        }
        try w.close()
        #expect(try MCAPReader(path: path).messages.count == 1010)
    }
}
