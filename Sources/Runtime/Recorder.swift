import Foundation
import MCAP
import Synchronization

/// MCAP channels a recording holds. Topics are stable: `mgpt replay` and Python readers rely on them.
public enum RecordChannel: UInt8, Sendable, CaseIterable {
    /// Every `obs` payload the daemon accepted, `sequence` = the decision that consumed it (intent `seq`).
    case obs = 0
    /// Payloads dropped as malformed or oversized (`message_encoding` "application/octet-stream").
    case rejected = 1
    /// Every published decision (`intent` topic payload), `sequence` = the decision (intent `seq`): ticks and decisions on arrival.
    case intent = 2
    /// A SIGHUP reload: the robot.json text whose controller thresholds apply from the decision
    /// `sequence` on (schemaless JSON).
    case config = 3

    /// MCAP topic name.
    public var topic: String {
        switch self {
        case .obs: return "/obs"
        case .rejected: return "/obs_rejected"
        case .intent: return "/intent"
        case .config: return "/config"
        }
    }
}

/// Single-producer, single-consumer ring of fixed-size slots: the decision tick copies bytes in
/// (no allocation, no lock, no syscall) and a writer thread drains them into an MCAP file. When
/// the ring is full the record is dropped and counted — the tick never waits for the disk.
public final class Recorder: @unchecked Sendable {
    /// Path of the MCAP file being written.
    public let path: String
    /// Records dropped because the ring was full.
    public var dropped: UInt64 { droppedCount.load(ordering: .relaxed) }

    private let slotBytes: Int
    private let slotCount: Int
    private let storage: UnsafeMutableRawPointer
    private let head = Atomic<Int>(0)       // next slot the producer writes
    private let tail = Atomic<Int>(0)       // next slot the consumer reads
    private let droppedCount = Atomic<UInt64>(0)
    private let stopping = Atomic<Bool>(false)
    private let writer: MCAPWriter
    private var channelIDs: [UInt16] = []
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private static let headerBytes = 32     // channel u8, pad, length u32, sequence u32, logTime u64, publishTime u64

    /// Opens `path` and writes the schemas, the channels and `metadata` (MCAP Metadata records,
    /// e.g. the session's config). `maxPayload` bounds one record.
    public init(path: String, maxPayload: Int, slots: Int = 512, schemas: [RecordChannel: String],
                metadata: [(name: String, values: [String: String])] = []) throws {
        self.path = path
        slotBytes = (Self.headerBytes + maxPayload + 63) / 64 * 64
        slotCount = slots
        storage = UnsafeMutableRawPointer.allocate(byteCount: slotBytes * slots, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: slotBytes * slots)
        writer = try MCAPWriter(path: path, profile: "", library: "minigpt mgptd")
        for ch in RecordChannel.allCases {
            // Channels without a JSON schema (rejected bytes, config text) get none (schema ID 0).
            var schemaID: UInt16 = 0
            if let schema = schemas[ch], ch != .rejected {
                schemaID = try writer.addSchema(name: "minigpt\(ch.topic.replacingOccurrences(of: "/", with: "."))",
                                                encoding: "jsonschema", data: Array(schema.utf8))
            }
            channelIDs.append(try writer.addChannel(schemaID: schemaID, topic: ch.topic,
                                                    messageEncoding: ch == .rejected ? "application/octet-stream" : "json"))
        }
        for m in metadata { try writer.addMetadata(name: m.name, m.values) }
        try writer.flush()
    }

    deinit { storage.deallocate() }

    /// Starts the writer thread.
    public func start() {
        let t = Thread { [unowned self] in self.drainLoop() }
        t.name = "mgptd-recorder"
        thread = t
        t.start()
    }

    /// Copies one record into the ring (real-time safe). Returns false when it was dropped.
    @discardableResult
    public func push(_ channel: RecordChannel, sequence: UInt32, logTime: UInt64, publishTime: UInt64,
                     bytes: UnsafeRawBufferPointer) -> Bool {
        let h = head.load(ordering: .relaxed)
        let t = tail.load(ordering: .acquiring)
        guard h - t < slotCount, bytes.count <= slotBytes - Self.headerBytes else {
            droppedCount.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        let slot = storage + (h % slotCount) * slotBytes
        slot.storeBytes(of: channel.rawValue, as: UInt8.self)
        slot.storeBytes(of: UInt32(bytes.count), toByteOffset: 4, as: UInt32.self)
        slot.storeBytes(of: sequence, toByteOffset: 8, as: UInt32.self)
        slot.storeBytes(of: logTime, toByteOffset: 16, as: UInt64.self)
        slot.storeBytes(of: publishTime, toByteOffset: 24, as: UInt64.self)
        if let base = bytes.baseAddress { (slot + Self.headerBytes).copyMemory(from: base, byteCount: bytes.count) }
        head.store(h + 1, ordering: .releasing)
        return true
    }

    private func drainLoop() {
        while true {
            let finishing = stopping.load(ordering: .acquiring)
            var wrote = false
            while true {
                let t = tail.load(ordering: .relaxed)
                guard t < head.load(ordering: .acquiring) else { break }
                let slot = storage + (t % slotCount) * slotBytes
                let ch = Int(slot.load(as: UInt8.self))
                let n = Int(slot.load(fromByteOffset: 4, as: UInt32.self))
                do {
                    try writer.write(channelID: channelIDs[ch], sequence: slot.load(fromByteOffset: 8, as: UInt32.self),
                                     logTime: slot.load(fromByteOffset: 16, as: UInt64.self),
                                     publishTime: slot.load(fromByteOffset: 24, as: UInt64.self),
                                     data: UnsafeRawBufferPointer(start: slot + Self.headerBytes, count: n))
                } catch {
                    FileHandle.standardError.write(Data("mgptd: recorder: \(error)\n".utf8))
                }
                tail.store(t + 1, ordering: .releasing)
                wrote = true
            }
            // Flush each batch: a killed daemon leaves a file readable up to its last record.
            if wrote { try? writer.flush() }
            if finishing { break }
            usleep(2_000)
        }
        do { try writer.close() } catch {
            FileHandle.standardError.write(Data("mgptd: recorder: closing \(path): \(error)\n".utf8))
        }
        done.signal()
    }

    /// Drains what is queued, writes the MCAP summary and footer, and joins the writer thread.
    public func finish() {
        stopping.store(true, ordering: .releasing)
        if thread != nil { done.wait() } else { drainLoop() }
    }
}
