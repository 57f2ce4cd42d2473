import Testing
import Foundation
@testable import MCAP

/// The repository root, from this file's path (Tests/MCAPTests/…).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs `python3 args…`; returns (status, stdout, stderr).
func runPython(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3"] + args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

@Suite struct PythonCrossCheckTests {
    /// The reference reader (pip `mcap`) must read our file: schemas, channels, statistics,
    /// message count, JSON payloads, and both CRCs (data section and summary).
    @Test func pythonMcapReadsOurFile() throws {
        let probe = try runPython(["-c", "import mcap"])
        try #require(probe.status == 0, "the Python package 'mcap' is not importable: pip install mcap\n\(probe.err)")

        let path = tempPath("py")
        defer { unlink(path) }
        let written = try writeFixture(path, count: 40)
        let script = repoRoot.appendingPathComponent("clients/python/mcap_dump.py").path
        let run = try runPython([script, path, "--json"])
        try #require(run.status == 0, "mcap_dump.py failed (\(run.status)): \(run.err)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(run.out.utf8)) as? [String: Any])

        #expect(doc["library"] as? String == "minigpt-test")
        #expect(doc["summary_crc"] as? String == "ok")
        let schemas = try #require(doc["schemas"] as? [[String: Any]])
        #expect(schemas.map { $0["name"] as? String } == ["minigpt.Observation", "minigpt.Intent"])
        #expect(schemas.allSatisfy { $0["encoding"] as? String == "jsonschema" })
        #expect(schemas.first?["data"] as? String == String(decoding: obsSchema, as: UTF8.self))
        let channels = try #require(doc["channels"] as? [[String: Any]])
        #expect(channels.map { $0["topic"] as? String } == ["obs", "intent", "status"])
        #expect(channels.map { $0["schema_id"] as? Int } == [1, 2, 0])
        #expect(channels.first?["metadata"] as? [String: String] == ["rate_hz": "50", "unit": "m"])
        let stats = try #require(doc["statistics"] as? [String: Any])
        #expect(stats["message_count"] as? Int == 40)
        #expect(stats["channel_message_counts"] as? [String: Int] == ["1": 27, "2": 13, "3": 0])
        #expect(doc["stream_message_count"] as? Int == 40)
        // The Metadata record, found through the summary's MetadataIndex as indexed readers do.
        let metadata = try #require(doc["metadata"] as? [[String: Any]])
        #expect(metadata.count == 1 && metadata.first?["name"] as? String == "session")
        #expect(metadata.first?["metadata"] as? [String: String] == fixtureMetadata)
        #expect(stats["metadata_count"] as? Int == 1)

        let messages = try #require(doc["messages"] as? [[String: Any]])
        #expect(messages.count == written.count)
        for (m, w) in zip(messages, written) {
            #expect(m["channel_id"] as? Int == Int(w.channelID))
            #expect(m["sequence"] as? Int == Int(w.sequence))
            #expect((m["log_time"] as? NSNumber)?.uint64Value == w.logTime)
            #expect((m["publish_time"] as? NSNumber)?.uint64Value == w.publishTime)
            let payload = try #require(m["payload"] as? [String: Any])
            let expected = try #require(try JSONSerialization.jsonObject(with: Data(w.data)) as? [String: Any])
            #expect(NSDictionary(dictionary: payload).isEqual(to: expected))
        }
    }
}

extension PythonCrossCheckTests {
    /// The other direction: a file the reference writer makes (chunked, uncompressed, with
    /// message indexes) is read by `MCAPReader`; a zstd-compressed one is refused by name.
    @Test func weReadPythonWrittenChunkedFile() throws {
        let probe = try runPython(["-c", "import mcap"])
        try #require(probe.status == 0, "the Python package 'mcap' is not importable: pip install mcap\n\(probe.err)")
        let plain = tempPath("py-none"), zstd = tempPath("py-zstd")
        defer { unlink(plain); unlink(zstd) }
        let script = """
        import json, sys
        from mcap.writer import Writer, CompressionType
        for path, comp in ((sys.argv[1], CompressionType.NONE), (sys.argv[2], CompressionType.ZSTD)):
            with open(path, "wb") as f:
                w = Writer(f, compression=comp, chunk_size=200)
                w.start(profile="", library="py")
                s = w.register_schema("minigpt.Observation", "jsonschema", b'{"type":"object"}')
                c = w.register_channel("obs", "json", s, metadata={"k": "v"})
                for i in range(25):
                    w.add_message(c, log_time=1000 + i, data=json.dumps({"v": 1, "i": i}).encode(), publish_time=i, sequence=i)
                w.finish()
        """
        let run = try runPython(["-c", script, plain, zstd])
        try #require(run.status == 0, "\(run.err)")
        let r = try MCAPReader(path: plain)
        #expect(!r.truncated && r.library == "py")
        #expect(r.schemas.values.map(\.name) == ["minigpt.Observation"])
        #expect(r.channels.values.map(\.topic) == ["obs"] && r.channels.values.first?.metadata == ["k": "v"])
        #expect(r.messages.count == 25)
        #expect(r.messages.map(\.sequence) == Array(0..<25))
        #expect(r.messages.last?.data == Array(#"{"v": 1, "i": 24}"#.utf8))
        #expect(r.statistics?.messageCount == 25)
        let e = try #require(throws: MCAPError.self) { try MCAPReader(path: zstd) }
        #expect(e.message.contains("compression \"zstd\" is not supported"))
    }
}
