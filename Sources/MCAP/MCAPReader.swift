import Foundation

/// Reads an MCAP file front to back, record by record (no index needed).
///
/// Built for recordings that may have been cut short: a file that ends mid-record, or without
/// its Footer and closing magic, is read up to the last complete record and `truncated` is set.
/// Anything malformed *inside* a complete record (a string running past its record, a Schema ID
/// that changes meaning, a compressed chunk) throws `MCAPError` naming the file and byte offset.
/// Unchunked files and chunks with compression "" are read; other record types are skipped.
public struct MCAPReader: Sendable {
    /// The file read.
    public var path: String
    /// Header profile.
    public var profile: String = ""
    /// Header library (the writer's name).
    public var library: String = ""
    /// Schemas by ID.
    public var schemas: [UInt16: MCAPSchema] = [:]
    /// Channels by ID.
    public var channels: [UInt16: MCAPChannel] = [:]
    /// Every message in file order.
    public var messages: [MCAPMessage] = []
    /// Metadata records in file order: name and string pairs.
    public var metadata: [(name: String, values: [String: String])] = []
    /// The summary's Statistics record, when the file has one.
    public var statistics: MCAPStatistics?
    /// True when the file ended mid-record or without Footer + magic.
    public var truncated = false
    /// Bytes up to the end of the last complete record read (the whole file when not truncated).
    public var validLength: UInt64 = 0

    /// Reads and parses `path`.
    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MCAPError(path: path, offset: 0, message: "cannot read the file (missing or unreadable)")
        }
        try [UInt8](data).withUnsafeBytes { try parse($0) }
    }

    /// Parses a file image already in memory; `path` only names it in errors.
    public init(path: String, contents: [UInt8]) throws {
        self.path = path
        try contents.withUnsafeBytes { try parse($0) }
    }

    /// Parses a whole file image.
    private mutating func parse(_ file: UnsafeRawBufferPointer) throws {
        let magicCount = mcapMagic.count
        let head = min(file.count, magicCount)
        guard Array(file[0..<head]) == Array(mcapMagic[0..<head]) else {
            throw MCAPError(path: path, offset: 0, message: "not an MCAP file: expected magic \(hex(mcapMagic)), found \(hex(Array(file[0..<head])))")
        }
        guard file.count >= magicCount else { truncated = true; return }
        var offset = magicCount
        validLength = UInt64(offset)
        while true {
            // Record frame: opcode u8 + length u64, then `length` bytes of content.
            guard file.count - offset >= 9 else { truncated = true; return }
            let opcode = file[offset]
            let length = file.loadUnaligned(fromByteOffset: offset + 1, as: UInt64.self).littleEndian
            guard length <= UInt64(file.count - offset - 9) else { truncated = true; return }
            let start = offset + 9, end = start + Int(length)
            let isFooter = try parseRecord(opcode, Cursor(file, start, end, path: path), recordOffset: offset)
            offset = end
            validLength = UInt64(offset)
            if isFooter {
                // The closing magic must follow the Footer.
                let tail = min(file.count - offset, magicCount)
                guard Array(file[offset..<(offset + tail)]) == Array(mcapMagic[0..<tail]) else {
                    throw MCAPError(path: path, offset: UInt64(offset), message: "expected the closing magic after the Footer, found \(hex(Array(file[offset..<(offset + tail)])))")
                }
                if tail < magicCount { truncated = true } else { validLength += UInt64(magicCount) }
                return
            }
        }
    }

    /// Decodes one complete record; returns true for the Footer.
    private mutating func parseRecord(_ opcode: UInt8, _ c: Cursor, recordOffset: Int) throws -> Bool {
        var c = c
        switch MCAPOpcode(rawValue: opcode) {
        case .header:
            profile = try c.string("Header.profile")
            library = try c.string("Header.library")
        case .footer:
            return true
        case .schema:
            let s = MCAPSchema(id: try c.u16("Schema.id"), name: try c.string("Schema.name"),
                               encoding: try c.string("Schema.encoding"), data: try c.bytes("Schema.data"))
            guard s.id != 0 else { throw c.error(at: recordOffset, "Schema ID 0 is reserved (spec: 0 means no schema)") }
            if let old = schemas[s.id], old != s {
                throw c.error(at: recordOffset, "Schema ID \(s.id) redefined: was \"\(old.name)\", now \"\(s.name)\"")
            }
            schemas[s.id] = s
        case .channel:
            let id = try c.u16("Channel.id"), schemaID = try c.u16("Channel.schema_id")
            let topic = try c.string("Channel.topic"), encoding = try c.string("Channel.message_encoding")
            var metadata: [String: String] = [:]
            var map = try c.sub(Int(try c.u32("Channel.metadata length")), "Channel.metadata")
            while !map.atEnd { metadata[try map.string("metadata key")] = try map.string("metadata value") }
            let ch = MCAPChannel(id: id, schemaID: schemaID, topic: topic, messageEncoding: encoding, metadata: metadata)
            if let old = channels[id], old != ch {
                throw c.error(at: recordOffset, "Channel ID \(id) redefined: was topic \"\(old.topic)\", now \"\(topic)\"")
            }
            channels[id] = ch
        case .message:
            let m = MCAPMessage(channelID: try c.u16("Message.channel_id"), sequence: try c.u32("Message.sequence"),
                                logTime: try c.u64("Message.log_time"), publishTime: try c.u64("Message.publish_time"),
                                data: c.rest())
            guard channels[m.channelID] != nil else {
                throw c.error(at: recordOffset, "Message on channel \(m.channelID), which no earlier Channel record defines")
            }
            messages.append(m)
        case .chunk:
            _ = try c.u64("Chunk.message_start_time"); _ = try c.u64("Chunk.message_end_time")
            let size = try c.u64("Chunk.uncompressed_size"); _ = try c.u32("Chunk.uncompressed_crc")
            let compression = try c.string("Chunk.compression")
            guard compression.isEmpty else {
                throw c.error(at: recordOffset, "Chunk compression \"\(compression)\" is not supported (only uncompressed chunks); re-save with `mcap convert --compression none`")
            }
            var records = try c.sub(Int(clamping: try c.u64("Chunk.records length")), "Chunk.records")
            guard UInt64(records.remaining) == size else {
                throw c.error(at: recordOffset, "Chunk uncompressed_size \(size) but its records hold \(records.remaining) bytes")
            }
            while !records.atEnd {
                let at = records.position
                let op = try records.u8("chunked record opcode")
                let len = try records.u64("chunked record length")
                let inner = try records.sub(Int(clamping: len), "chunked record")
                // Spec: a chunk holds Schema, Channel and Message records only (no nesting,
                // which also keeps this recursion one level deep).
                guard op == MCAPOpcode.schema.rawValue || op == MCAPOpcode.channel.rawValue || op == MCAPOpcode.message.rawValue else {
                    throw c.error(at: at, "record with opcode 0x\(String(op, radix: 16)) inside a Chunk (only Schema, Channel, Message are allowed)")
                }
                _ = try parseRecord(op, inner, recordOffset: at)
            }
        case .metadata:
            let name = try c.string("Metadata.name")
            var values: [String: String] = [:]
            var map = try c.sub(Int(try c.u32("Metadata.metadata length")), "Metadata.metadata")
            while !map.atEnd { values[try map.string("metadata key")] = try map.string("metadata value") }
            metadata.append((name, values))
        case .statistics:
            var s = MCAPStatistics(messageCount: try c.u64("Statistics.message_count"), schemaCount: try c.u16("Statistics.schema_count"),
                                   channelCount: try c.u32("Statistics.channel_count"), messageStartTime: 0, messageEndTime: 0,
                                   channelMessageCounts: [:])
            _ = try c.u32("Statistics.attachment_count"); _ = try c.u32("Statistics.metadata_count"); _ = try c.u32("Statistics.chunk_count")
            s.messageStartTime = try c.u64("Statistics.message_start_time")
            s.messageEndTime = try c.u64("Statistics.message_end_time")
            var map = try c.sub(Int(try c.u32("Statistics.channel_message_counts length")), "Statistics.channel_message_counts")
            while !map.atEnd { s.channelMessageCounts[try map.u16("channel id")] = try map.u64("message count") }
            statistics = s
        default:
            break   // DataEnd, indexes, attachments, summary offsets, unknown: not needed here
        }
        return false
    }
}

/// A bounds-checked little-endian reader over one record's content.
struct Cursor {
    let file: UnsafeRawBufferPointer
    private(set) var position: Int
    let end: Int
    let path: String

    init(_ file: UnsafeRawBufferPointer, _ start: Int, _ end: Int, path: String) {
        self.file = file; position = start; self.end = end; self.path = path
    }

    var atEnd: Bool { position >= end }
    var remaining: Int { end - position }

    func error(at offset: Int, _ message: String) -> MCAPError {
        MCAPError(path: path, offset: UInt64(offset), message: message)
    }

    private mutating func take(_ n: Int, _ field: String) throws -> Int {
        guard n >= 0, n <= remaining else {
            throw error(at: position, "\(field): needs \(n) bytes but the record has \(remaining) left")
        }
        defer { position += n }
        return position
    }

    mutating func u8(_ f: String) throws -> UInt8 { file[try take(1, f)] }
    mutating func u16(_ f: String) throws -> UInt16 { file.loadUnaligned(fromByteOffset: try take(2, f), as: UInt16.self).littleEndian }
    mutating func u32(_ f: String) throws -> UInt32 { file.loadUnaligned(fromByteOffset: try take(4, f), as: UInt32.self).littleEndian }
    mutating func u64(_ f: String) throws -> UInt64 { file.loadUnaligned(fromByteOffset: try take(8, f), as: UInt64.self).littleEndian }

    mutating func bytes(_ f: String) throws -> [UInt8] {
        let n = Int(try u32(f + " length"))
        let at = try take(n, f)
        return Array(file[at..<(at + n)])
    }

    mutating func string(_ f: String) throws -> String {
        let start = position
        let raw = try bytes(f)
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw error(at: start, "\(f): not valid UTF-8")
        }
        return s
    }

    /// A cursor over the next `n` bytes (a map, a chunk's records); advances past them.
    mutating func sub(_ n: Int, _ f: String) throws -> Cursor {
        let at = try take(n, f)
        return Cursor(file, at, at + n, path: path)
    }

    /// Everything left in the record (a Message's data).
    mutating func rest() -> [UInt8] {
        defer { position = end }
        return Array(file[position..<end])
    }
}

/// `89 4d 43 …` for error messages.
func hex(_ bytes: [UInt8]) -> String {
    bytes.isEmpty ? "(nothing)" : bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ")
}
