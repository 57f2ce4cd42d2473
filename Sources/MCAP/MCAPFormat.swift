// The MCAP container format, version 0 (https://mcap.dev/spec).
//
//   file    = magic, Header, data records…, DataEnd, [summary records…], [summary offsets…], Footer, magic
//   magic   = 0x89 "MCAP" "0" "\r" "\n"                       (8 bytes)
//   record  = opcode u8, length u64, content (length bytes)    (all integers little-endian)
//   String  = u32 byte length + UTF-8;  Bytes (schema data) = u32 length + bytes;
//   Map     = u32 byte length of the entries + entries;  Message data = the rest of the record.
//
// Record contents used here (spec "Records"):
//   Header    0x01  profile String, library String
//   Footer    0x02  summary_start u64, summary_offset_start u64, summary_crc u32
//   Schema    0x03  id u16, name String, encoding String, data Bytes          (id 0 is reserved)
//   Channel   0x04  id u16, schema_id u16, topic String, message_encoding String, metadata Map<String,String>
//   Message   0x05  channel_id u16, sequence u32, log_time u64, publish_time u64, data
//   Chunk     0x06  start u64, end u64, uncompressed_size u64, uncompressed_crc u32, compression String, records u64-prefixed
//   Statistics 0x0B message_count u64, schema_count u16, channel_count u32, attachment_count u32,
//                  metadata_count u32, chunk_count u32, message_start_time u64, message_end_time u64,
//                  channel_message_counts Map<u16,u64>
//   SummaryOffset 0x0E group_opcode u8, group_start u64, group_length u64
//   DataEnd   0x0F  data_section_crc u32     (CRC-32 of every byte from the magic up to this record)
// The summary CRC covers the summary section plus the footer up to and including summary_offset_start.
// Times are nanoseconds; which clock is the writer's choice (the daemon uses the Unix epoch).

/// The 8-byte MCAP magic that opens and closes every file.
public let mcapMagic: [UInt8] = [0x89, 0x4D, 0x43, 0x41, 0x50, 0x30, 0x0D, 0x0A]

/// Record opcodes (spec "Records").
public enum MCAPOpcode: UInt8, Sendable {
    case header = 0x01, footer = 0x02, schema = 0x03, channel = 0x04, message = 0x05, chunk = 0x06
    case messageIndex = 0x07, chunkIndex = 0x08, attachment = 0x09, attachmentIndex = 0x0A
    case statistics = 0x0B, metadata = 0x0C, metadataIndex = 0x0D, summaryOffset = 0x0E, dataEnd = 0x0F
}

/// A Schema record: how a channel's messages are described (for us, a JSON Schema).
public struct MCAPSchema: Sendable, Equatable {
    /// Schema ID (1…65535; 0 means "no schema").
    public var id: UInt16
    /// Schema name, e.g. `minigpt.Observation`.
    public var name: String
    /// Schema encoding, e.g. `jsonschema`.
    public var encoding: String
    /// The schema itself.
    public var data: [UInt8]
}

/// A Channel record: a topic and the encoding of its messages.
public struct MCAPChannel: Sendable, Equatable {
    /// Channel ID.
    public var id: UInt16
    /// The schema of its messages (0 = none).
    public var schemaID: UInt16
    /// Topic, e.g. `obs`.
    public var topic: String
    /// Message encoding, e.g. `json`.
    public var messageEncoding: String
    /// Free-form string pairs.
    public var metadata: [String: String]
}

/// A Message record.
public struct MCAPMessage: Sendable, Equatable {
    /// The channel it was written on.
    public var channelID: UInt16
    /// Per-channel sequence number chosen by the writer.
    public var sequence: UInt32
    /// When it was recorded (ns).
    public var logTime: UInt64
    /// When it was published (ns).
    public var publishTime: UInt64
    /// The payload.
    public var data: [UInt8]
}

/// A Statistics record (summary section).
public struct MCAPStatistics: Sendable, Equatable {
    /// Messages in the file.
    public var messageCount: UInt64
    /// Schema records (distinct IDs).
    public var schemaCount: UInt16
    /// Channel records (distinct IDs).
    public var channelCount: UInt32
    /// Earliest message log time (ns), 0 when there are no messages.
    public var messageStartTime: UInt64
    /// Latest message log time (ns), 0 when there are no messages.
    public var messageEndTime: UInt64
    /// Messages per channel ID.
    public var channelMessageCounts: [UInt16: UInt64]
}

/// An error reading or writing an MCAP file: names the file, the byte offset and what is wrong.
public struct MCAPError: Error, CustomStringConvertible, Equatable {
    /// The file.
    public var path: String
    /// Byte offset where the problem is (the start of the offending record or field).
    public var offset: UInt64
    /// What is wrong, with expected and found values.
    public var message: String
    /// `path @ byte offset: message`.
    public var description: String { "\(path) @ byte \(offset): \(message)" }
}
