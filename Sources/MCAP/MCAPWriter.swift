#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes an MCAP file: unchunked, uncompressed, append-only.
///
/// Records go to the file in order through one preallocated buffer, so a process that is killed
/// leaves a file that `MCAPReader` (and the `mcap` tools' recovery) reads up to the last record
/// that reached the disk; `flush()` bounds how much can be lost. `close()` appends DataEnd, the
/// summary section (schemas, channels, statistics, summary offsets), the Footer and the magic.
///
/// `write(channelID:…)` allocates nothing: it copies into the buffer, updates the running CRC and
/// the per-channel counters (sized when the channel was added).
///
/// Threading: not thread-safe. It may be created on one thread and handed to a recorder thread
/// (hence `@unchecked Sendable`), but only one thread may use it at a time.
public final class MCAPWriter: @unchecked Sendable {
    /// The file being written.
    public let path: String
    private var fd: Int32
    /// The write buffer (`capacity` bytes, allocated once).
    private let buffer: UnsafeMutableRawPointer
    private let capacity: Int
    private var used = 0
    /// Bytes handed to the file so far, buffered or not: the offset of the next byte.
    private var position: UInt64 = 0
    /// Running CRC-32 of the section being written (data section, then summary section).
    private var crc: UInt32 = 0
    private var schemas: [MCAPSchema] = []
    private var channels: [MCAPChannel] = []
    /// Messages per channel, indexed by channel ID - 1 (IDs are handed out densely from 1).
    private var channelCounts: [UInt64] = []
    private var messageCount: UInt64 = 0
    private var startTime = UInt64.max
    private var endTime: UInt64 = 0
    private var closed = false
    /// Metadata records written: offset, total length (opcode and length prefix included), name.
    private var metadataIndex: [(offset: UInt64, length: UInt64, name: String)] = []

    /// Creates (truncating) `path` and writes the magic and the Header record.
    /// - Parameters:
    ///   - profile: the MCAP profile ("" = none; we record JSON, not ROS messages).
    ///   - library: the writer's name and version.
    ///   - bufferSize: bytes buffered between flushes (messages larger than this are written through).
    public init(path: String, profile: String = "", library: String = "minigpt", bufferSize: Int = 1 << 16) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw MCAPError(path: path, offset: 0, message: "cannot create: \(String(cString: strerror(errno)))")
        }
        capacity = max(bufferSize, 64)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        try mcapMagic.withUnsafeBytes { try put($0) }
        try record(.header, length: 4 + profile.utf8.count + 4 + library.utf8.count)
        try putString(profile)
        try putString(library)
        try flush()
    }

    deinit {
        if !closed { try? close() }
        buffer.deallocate()
    }

    /// Adds a Schema record and returns its ID (1, 2, …).
    /// - Parameters:
    ///   - encoding: `jsonschema` for our JSON channels.
    ///   - data: the schema document.
    public func addSchema(name: String, encoding: String, data: [UInt8]) throws -> UInt16 {
        try checkOpen("addSchema")
        guard schemas.count < Int(UInt16.max) else { throw fail("addSchema: 65535 schemas already, the u16 ID space is full") }
        let schema = MCAPSchema(id: UInt16(schemas.count + 1), name: name, encoding: encoding, data: data)
        try writeSchema(schema)
        schemas.append(schema)
        try flush()
        return schema.id
    }

    /// Adds a Channel record and returns its ID (1, 2, …).
    /// - Parameters:
    ///   - schemaID: an ID from `addSchema`, or 0 for a schemaless channel.
    ///   - messageEncoding: `json` for our channels.
    public func addChannel(schemaID: UInt16, topic: String, messageEncoding: String, metadata: [String: String] = [:]) throws -> UInt16 {
        try checkOpen("addChannel")
        guard schemaID == 0 || Int(schemaID) <= schemas.count else {
            throw fail("addChannel(\(topic)): schema ID \(schemaID) was never added (have 1…\(schemas.count), or 0 for none)")
        }
        guard channels.count < Int(UInt16.max) else { throw fail("addChannel: 65535 channels already, the u16 ID space is full") }
        let channel = MCAPChannel(id: UInt16(channels.count + 1), schemaID: schemaID, topic: topic,
                                  messageEncoding: messageEncoding, metadata: metadata)
        try writeChannel(channel)
        channels.append(channel)
        channelCounts.append(0)
        try flush()
        return channel.id
    }

    /// Writes a Metadata record (spec opcode 0x0C: a name and string pairs, keys sorted so the same
    /// pairs always encode to the same bytes) into the data section; `close()` indexes it in the
    /// summary (MetadataIndex), so seeking readers such as Python's `mcap` find it.
    public func addMetadata(name: String, _ values: [String: String]) throws {
        try checkOpen("addMetadata")
        let pairs = values.sorted { $0.key < $1.key }
        let mapLength = pairs.reduce(0) { $0 + 4 + $1.key.utf8.count + 4 + $1.value.utf8.count }
        let length = 4 + name.utf8.count + 4 + mapLength
        metadataIndex.append((position, UInt64(9 + length), name))
        try record(.metadata, length: length)
        try putString(name)
        try putU32(UInt32(mapLength))
        for (k, v) in pairs {
            try putString(k)
            try putString(v)
        }
    }

    /// Appends one Message record. No allocation: the record is copied into the write buffer
    /// (or, if larger than the buffer, written straight through after it).
    /// - Parameters:
    ///   - logTime: when it was recorded (ns); publishTime: when its producer published it (ns).
    public func write(channelID: UInt16, sequence: UInt32, logTime: UInt64, publishTime: UInt64,
                      data: UnsafeRawBufferPointer) throws {
        try checkOpen("write")
        guard channelID >= 1 && Int(channelID) <= channels.count else {
            throw fail("write: channel ID \(channelID) was never added (have 1…\(channels.count))")
        }
        try record(.message, length: 2 + 4 + 8 + 8 + data.count)
        try putU16(channelID)
        try putU32(sequence)
        try putU64(logTime)
        try putU64(publishTime)
        try put(data)
        messageCount += 1
        channelCounts[Int(channelID) - 1] += 1
        startTime = min(startTime, logTime)
        endTime = max(endTime, logTime)
    }

    /// Hands buffered bytes to the kernel (`write(2)`; no fsync). After a crash the file is
    /// readable up to here.
    public func flush() throws {
        var offset = 0
        while offset < used {
            let n = sysWrite(fd, buffer + offset, used - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("write(2) failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        used = 0
    }

    /// Finishes the file: DataEnd (with the data-section CRC), the summary section (Schema and
    /// Channel records repeated, Statistics, one SummaryOffset per group), Footer, magic; then
    /// closes it. Calling it twice is harmless.
    public func close() throws {
        if closed { return }
        defer { closed = true; sysClose(fd) }
        let dataCRC = crc
        try record(.dataEnd, length: 4)
        try putU32(dataCRC)

        // Summary section: its CRC starts here.
        crc = 0
        let summaryStart = position
        var groups: [(opcode: MCAPOpcode, start: UInt64, length: UInt64)] = []
        if !schemas.isEmpty {
            let start = position
            for s in schemas { try writeSchema(s) }
            groups.append((.schema, start, position - start))
        }
        if !channels.isEmpty {
            let start = position
            for c in channels { try writeChannel(c) }
            groups.append((.channel, start, position - start))
        }
        if !metadataIndex.isEmpty {
            let start = position
            for m in metadataIndex {
                try record(.metadataIndex, length: 8 + 8 + 4 + m.name.utf8.count)
                try putU64(m.offset)
                try putU64(m.length)
                try putString(m.name)
            }
            groups.append((.metadataIndex, start, position - start))
        }
        let statsStart = position
        try record(.statistics, length: 8 + 2 + 4 * 4 + 8 + 8 + 4 + 10 * channels.count)
        try putU64(messageCount)
        try putU16(UInt16(schemas.count))
        try putU32(UInt32(channels.count))
        try putU32(0)   // attachments
        try putU32(UInt32(metadataIndex.count))   // metadata
        try putU32(0)   // chunks
        try putU64(messageCount == 0 ? 0 : startTime)
        try putU64(messageCount == 0 ? 0 : endTime)
        try putU32(UInt32(10 * channels.count))
        for (i, n) in channelCounts.enumerated() {
            try putU16(UInt16(i + 1))
            try putU64(n)
        }
        groups.append((.statistics, statsStart, position - statsStart))

        let summaryOffsetStart = position
        for g in groups {
            try record(.summaryOffset, length: 1 + 8 + 8)
            try putU8(g.opcode.rawValue)
            try putU64(g.start)
            try putU64(g.length)
        }
        try record(.footer, length: 8 + 8 + 4)
        try putU64(summaryStart)
        try putU64(summaryOffsetStart)
        try putU32(crc)   // covers the summary and the footer up to here (spec "Footer")
        try mcapMagic.withUnsafeBytes { try put($0) }
        try flush()
    }

    // MARK: - Record encoding

    private func writeSchema(_ s: MCAPSchema) throws {
        try record(.schema, length: 2 + 4 + s.name.utf8.count + 4 + s.encoding.utf8.count + 4 + s.data.count)
        try putU16(s.id)
        try putString(s.name)
        try putString(s.encoding)
        try putU32(UInt32(s.data.count))
        try s.data.withUnsafeBytes { try put($0) }
    }

    private func writeChannel(_ c: MCAPChannel) throws {
        // Sorted keys so the same channel always encodes to the same bytes (determinism).
        let pairs = c.metadata.sorted { $0.key < $1.key }
        let mapLength = pairs.reduce(0) { $0 + 4 + $1.key.utf8.count + 4 + $1.value.utf8.count }
        try record(.channel, length: 2 + 2 + 4 + c.topic.utf8.count + 4 + c.messageEncoding.utf8.count + 4 + mapLength)
        try putU16(c.id)
        try putU16(c.schemaID)
        try putString(c.topic)
        try putString(c.messageEncoding)
        try putU32(UInt32(mapLength))
        for (k, v) in pairs {
            try putString(k)
            try putString(v)
        }
    }

    @inline(__always)
    private func record(_ opcode: MCAPOpcode, length: Int) throws {
        try putU8(opcode.rawValue)
        try putU64(UInt64(length))
    }

    // MARK: - Byte output (little-endian), all through `put`

    @inline(__always) private func putU8(_ v: UInt8) throws { try withUnsafeBytes(of: v) { try put($0) } }
    @inline(__always) private func putU16(_ v: UInt16) throws { try withUnsafeBytes(of: v.littleEndian) { try put($0) } }
    @inline(__always) private func putU32(_ v: UInt32) throws { try withUnsafeBytes(of: v.littleEndian) { try put($0) } }
    @inline(__always) private func putU64(_ v: UInt64) throws { try withUnsafeBytes(of: v.littleEndian) { try put($0) } }

    private func putString(_ s: String) throws {
        var s = s
        try putU32(UInt32(s.utf8.count))
        try s.withUTF8 { try put(UnsafeRawBufferPointer($0)) }
    }

    /// Appends bytes: into the buffer, or straight to the file when they do not fit.
    private func put(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        crc = crc32Update(crc, bytes)
        position += UInt64(bytes.count)
        if used + bytes.count > capacity { try flush() }
        if bytes.count <= capacity {
            buffer.advanced(by: used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            used += bytes.count
            return
        }
        var offset = 0
        while offset < bytes.count {
            let n = sysWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("write(2) failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    private func checkOpen(_ operation: String) throws {
        if closed { throw fail("\(operation): the writer is closed") }
    }

    private func fail(_ message: String) -> MCAPError {
        MCAPError(path: path, offset: position, message: message)
    }
}

// `write` and `close` are shadowed by the methods above; these reach the libc calls.
@inline(__always) private func sysWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}
@inline(__always) private func sysClose(_ fd: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(fd)
    #else
    _ = Darwin.close(fd)
    #endif
}
