import Synchronization

/// A preallocated lock-free single-producer / single-consumer ring of `[topic, payload]` messages
/// in fixed-size slots: the real-time thread copies a message in (no allocation, no lock, no
/// syscall) and one consumer thread takes them out in order. When the ring is full — or a message
/// is larger than a slot — the message is dropped and counted; the producer never waits.
///
/// Head and tail are monotonically increasing message counts (slot = count % slots), published
/// with release stores and read with acquire loads: the producer writes a slot, then advances
/// `head`; the consumer reads a slot, then advances `tail`.
public final class PublishRing: @unchecked Sendable {
    /// Number of slots (messages the ring holds at most).
    public let slotCount: Int
    /// Largest topic a slot holds, bytes.
    public let maxTopicBytes: Int
    /// Largest payload a slot holds, bytes.
    public let maxPayloadBytes: Int

    private let slotBytes: Int
    private let payloadOffset: Int
    private let storage: UnsafeMutableRawPointer
    private let head = Atomic<Int>(0)   // messages pushed (next slot the producer writes)
    private let tail = Atomic<Int>(0)   // messages popped (next slot the consumer reads)
    private let fullDrops = Atomic<UInt64>(0)
    private let sizeDrops = Atomic<UInt64>(0)
    private let highWater = Atomic<Int>(0)
    private static let headerBytes = 16  // topic length u32, payload length u32, push time u64

    /// A ring of `slots` messages of up to `maxTopicBytes` + `maxPayloadBytes` each. The memory is
    /// allocated and touched here, so no page fault lands in a push.
    public init(slots: Int, maxPayloadBytes: Int, maxTopicBytes: Int = 64) {
        precondition(slots > 0 && maxPayloadBytes > 0 && maxTopicBytes > 0)
        slotCount = slots
        self.maxTopicBytes = maxTopicBytes
        self.maxPayloadBytes = maxPayloadBytes
        payloadOffset = Self.headerBytes + maxTopicBytes
        slotBytes = (payloadOffset + maxPayloadBytes + 63) / 64 * 64
        storage = UnsafeMutableRawPointer.allocate(byteCount: slotBytes * slots, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: slotBytes * slots)
    }

    deinit { storage.deallocate() }

    /// Producer side: copies one message into the next free slot. Returns false (and counts it)
    /// when the ring is full or the message does not fit a slot. Real-time safe.
    @discardableResult
    public func push(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, stamp: UInt64 = 0) -> Bool {
        guard topic.count <= maxTopicBytes, payload.count <= maxPayloadBytes else {
            sizeDrops.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        let h = head.load(ordering: .relaxed)
        let used = h - tail.load(ordering: .acquiring)
        guard used < slotCount else {
            fullDrops.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        let slot = storage + (h % slotCount) * slotBytes
        slot.storeBytes(of: UInt32(topic.count), as: UInt32.self)
        slot.storeBytes(of: UInt32(payload.count), toByteOffset: 4, as: UInt32.self)
        slot.storeBytes(of: stamp, toByteOffset: 8, as: UInt64.self)
        if let t = topic.baseAddress, topic.count > 0 { (slot + Self.headerBytes).copyMemory(from: t, byteCount: topic.count) }
        if let p = payload.baseAddress, payload.count > 0 { (slot + payloadOffset).copyMemory(from: p, byteCount: payload.count) }
        head.store(h + 1, ordering: .releasing)
        if used + 1 > highWater.load(ordering: .relaxed) { highWater.store(used + 1, ordering: .relaxed) }
        return true
    }

    /// Consumer side: hands the oldest message and the `stamp` it was pushed with to `body` (the
    /// buffers are valid only inside it), then frees its slot. Returns false when the ring is empty.
    @discardableResult
    public func pop(_ body: (_ topic: UnsafeRawBufferPointer, _ payload: UnsafeRawBufferPointer, _ stamp: UInt64) -> Void) -> Bool {
        let t = tail.load(ordering: .relaxed)
        guard t < head.load(ordering: .acquiring) else { return false }
        let slot = storage + (t % slotCount) * slotBytes
        let topicLength = Int(slot.load(as: UInt32.self))
        let payloadLength = Int(slot.load(fromByteOffset: 4, as: UInt32.self))
        body(UnsafeRawBufferPointer(start: slot + Self.headerBytes, count: topicLength),
             UnsafeRawBufferPointer(start: slot + payloadOffset, count: payloadLength),
             slot.load(fromByteOffset: 8, as: UInt64.self))
        tail.store(t + 1, ordering: .releasing)
        return true
    }

    /// Messages waiting (a snapshot; exact when called from either end with the other idle).
    public var count: Int { head.load(ordering: .acquiring) - tail.load(ordering: .acquiring) }
    /// True when no message waits.
    public var isEmpty: Bool { count == 0 }
    /// Messages accepted so far.
    public var pushed: Int { head.load(ordering: .acquiring) }
    /// Messages dropped because the ring was full.
    public var droppedFull: UInt64 { fullDrops.load(ordering: .relaxed) }
    /// Messages dropped because they did not fit a slot.
    public var droppedOversized: UInt64 { sizeDrops.load(ordering: .relaxed) }
    /// Every message dropped at `push`.
    public var dropped: UInt64 { droppedFull &+ droppedOversized }
    /// The most messages that were ever waiting at once.
    public var peak: Int { highWater.load(ordering: .relaxed) }
}
