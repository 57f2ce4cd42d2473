import Testing
import Foundation
@testable import Wire
import CAllocCounter
import Synchronization

/// What the producer thread of the stress test reports back.
final class ProducerResult: @unchecked Sendable {
    let done = Atomic<Bool>(false)
    var accepted = 0
}

/// `PublishRing` (the lock-free SPSC queue between the real-time thread and the publisher thread)
/// and `ZMQPublisher` (the thread that drains it into libzmq), over real libzmq sockets.
@Suite struct PublishRingTests {
    /// Pushes `text` as payload under topic `topic`.
    @discardableResult
    func push(_ ring: PublishRing, _ topic: String, _ text: String) -> Bool {
        Array(topic.utf8).withUnsafeBytes { t in Array(text.utf8).withUnsafeBytes { p in ring.push(topic: t, payload: p) } }
    }

    /// Pops one message as strings (nil when empty).
    func pop(_ ring: PublishRing) -> (String, String)? {
        var got: (String, String)?
        ring.pop { t, p, _ in got = (String(decoding: t, as: UTF8.self), String(decoding: p, as: UTF8.self)) }
        return got
    }

    @Test func wrapsAroundManyTimesInOrder() {
        let ring = PublishRing(slots: 4, maxPayloadBytes: 64)
        var next = 0, expected = 0
        for round in 0..<50 {
            for _ in 0..<(1 + round % 4) { #expect(push(ring, "t\(next % 3)", "message \(next)")); next += 1 }
            while let (t, p) = pop(ring) {
                #expect(t == "t\(expected % 3)" && p == "message \(expected)")
                expected += 1
            }
        }
        #expect(expected == next && next > 4 * 20, "the ring wrapped \(next / 4) times")
        #expect(ring.isEmpty && ring.dropped == 0 && ring.pushed == next && ring.peak == 4)
    }

    @Test func aFullRingDropsAndCountsNeverBlocks() {
        let ring = PublishRing(slots: 3, maxPayloadBytes: 16, maxTopicBytes: 8)
        #expect(push(ring, "a", "1") && push(ring, "a", "2") && push(ring, "a", "3"))
        #expect(!push(ring, "a", "4") && !push(ring, "a", "5"))
        #expect(ring.droppedFull == 2 && ring.count == 3)
        // Too large for a slot: dropped and counted apart, whatever the fill.
        #expect(!push(ring, "a", String(repeating: "x", count: 17)))
        #expect(!push(ring, "topic-too-long", "1"))
        #expect(ring.droppedOversized == 2 && ring.dropped == 4)
        // Exactly a slot fits; room again after a pop, in order.
        #expect(pop(ring)?.1 == "1")
        #expect(push(ring, "12345678", String(repeating: "y", count: 16)))
        #expect(pop(ring)?.1 == "2" && pop(ring)?.1 == "3" && pop(ring)?.1 == String(repeating: "y", count: 16))
        #expect(pop(ring) == nil && ring.dropped == 4)
    }

    /// One producer thread and one consumer thread hammering a small ring: every message that
    /// was accepted arrives exactly once, in order, intact; drops are exactly the refusals.
    @Test func concurrentProducerAndConsumerKeepOrderAndContent() {
        let ring = PublishRing(slots: 8, maxPayloadBytes: 64)
        let total = 200_000
        let result = ProducerResult()
        let producer = Thread {
            var ok = 0
            var buffer = [UInt8](repeating: 0, count: 40)
            for i in 0..<total {
                withUnsafeBytes(of: UInt64(i)) { for b in 0..<8 { buffer[b] = $0[b] } }
                for b in 8..<40 { buffer[b] = UInt8(truncatingIfNeeded: i &+ b) }
                let topic: [UInt8] = [UInt8(i % 251)]
                if topic.withUnsafeBytes({ t in buffer.withUnsafeBytes { p in ring.push(topic: t, payload: p) } }) { ok += 1 }
            }
            result.accepted = ok
            result.done.store(true, ordering: .releasing)
        }
        producer.start()
        var received = 0, last = -1, corrupt = 0
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let got = ring.pop { t, p, _ in
                let i = Int(p.load(as: UInt64.self))
                if i <= last || t.count != 1 || t[0] != UInt8(i % 251) || p.count != 40 { corrupt += 1 }
                for b in 8..<40 where p[b] != UInt8(truncatingIfNeeded: i &+ b) { corrupt += 1 }
                last = i
                received += 1
            }
            if !got && result.done.load(ordering: .acquiring) && ring.isEmpty { break }
        }
        #expect(corrupt == 0)
        #expect(received == result.accepted && received + Int(ring.droppedFull) == total, "received \(received), dropped \(ring.droppedFull)")
        #expect(received > 0)
    }
}

/// A connected PUB → SUB pair over `endpoint` with the PUB handed to a publisher; the
/// subscription is confirmed (slow joiner) through the publisher before returning.
func publisherPair(_ ctx: ZMQContext, _ endpoint: String, slots: Int = 256, spinNanos: UInt64 = 0, start: Bool = true) throws -> (ZMQPublisher, ZMQSocket) {
    let pub = try ZMQSocket(context: ctx, type: .pub)
    try pub.bind(endpoint)
    let sub = try ZMQSocket(context: ctx, type: .sub)
    try sub.setReceiveHWM(100_000)
    try sub.subscribe("")
    try sub.connect(try pub.lastEndpoint)
    // Confirm the subscription before the publisher thread owns the socket.
    _ = try sendUntilReceived(pub, sub, [bytes("hello"), bytes("0")])
    while try sub.receive(timeoutMs: 50) != nil {}
    let publisher = ZMQPublisher(socket: pub, slots: slots, maxPayloadBytes: 256, spinNanos: spinNanos)
    if start { publisher.start() }
    return (publisher, sub)
}

@Suite struct ZMQPublisherTests {
    func publish(_ p: ZMQPublisher, _ topic: String, _ text: String) -> Bool {
        Array(topic.utf8).withUnsafeBytes { t in Array(text.utf8).withUnsafeBytes { pl in p.publish(topic: t, payload: pl) } }
    }

    @Test(arguments: [UInt64(0), 50_000])
    func everyMessageLeavesInOrderAndStopFlushesTheQueue(spinNanos: UInt64) throws {
        let ctx = try ZMQContext()
        let (publisher, sub) = try publisherPair(ctx, uniqueIPC("flush"), spinNanos: spinNanos)
        // A burst larger than anything the thread drains at once, then stop at once: what was
        // queued before `finish` must still go out.
        let n = 200
        var queued = 0
        for i in 0..<n where publish(publisher, "status", "{\"v\":1,\"seq\":\(i),\"pad\":\"\(String(repeating: "p", count: 60))\"}") { queued += 1 }
        #expect(queued == n)
        publisher.finish()
        #expect(publisher.sent == UInt64(n) && publisher.dropped == 0)
        var seqs: [Int] = []
        while let parts = try sub.receive(timeoutMs: 500) {
            #expect(parts.count == 2 && parts[0] == bytes("status"))
            let obj = try JSONSerialization.jsonObject(with: Data(parts[1])) as? [String: Any]
            seqs.append(obj?["seq"] as? Int ?? -1)
        }
        #expect(seqs == Array(0..<n))
        // After finish the publisher is done: nothing more leaves, a second finish is harmless.
        publisher.finish()
    }

    @Test func aPublisherThatNeverStartedFlushesFromTheCallerOnFinish() throws {
        let ctx = try ZMQContext()
        let (publisher, sub) = try publisherPair(ctx, "inproc://publisher-nostart", start: false)
        for i in 0..<10 { #expect(publish(publisher, "intent", "\(i)")) }
        #expect(publisher.ring.count == 10)
        publisher.finish()
        var got: [String] = []
        while let parts = try sub.receive(timeoutMs: 200) { got.append(String(decoding: parts[1], as: UTF8.self)) }
        #expect(got == (0..<10).map { "\($0)" })
    }

    /// A stalled publisher thread (here: one that is not running yet) never blocks the producer:
    /// the ring fills, further messages are dropped and counted in `dropped`.
    @Test func aFullQueueDropsAndCounts() throws {
        let ctx = try ZMQContext()
        let (publisher, _) = try publisherPair(ctx, "inproc://publisher-full", slots: 8, start: false)
        var refused = 0
        for i in 0..<20 where !publish(publisher, "telemetry", "\(i)") { refused += 1 }
        #expect(refused == 12 && publisher.ring.droppedFull == 12 && publisher.dropped == 12)
        publisher.finish()
        #expect(publisher.sent == 8 && publisher.dropped == 12)
    }

    /// The sleeping publisher thread wakes for each message: one message at a time, each after
    /// the thread went back to sleep, arrives promptly (behaviour, with a generous bound).
    @Test func aSleepingPublisherWakesForEachMessage() throws {
        let ctx = try ZMQContext()
        let (publisher, sub) = try publisherPair(ctx, uniqueIPC("wake"))
        defer { publisher.finish() }
        for i in 0..<20 {
            usleep(5_000)  // the thread is asleep on its semaphore by now
            let t0 = Date()
            #expect(publish(publisher, "intent", "\(i)"))
            let parts = try #require(try sub.receive(timeoutMs: 2000), "message \(i) did not arrive")
            #expect(String(decoding: parts[1], as: UTF8.self) == "\(i)")
            #expect(Date().timeIntervalSince(t0) < 0.5)
        }
        #expect(publisher.wakeups >= 15, "woke \(publisher.wakeups) times for 20 messages")
        #expect(publisher.queueDelayMicros(percentile: 50) != nil)
    }

    /// The producer side — `publish` with the thread running and a subscriber reading — makes no
    /// heap allocation at all: libzmq's malloc'd copy of every message above 33 bytes happens on
    /// the publisher thread.
    @Test func publishingAllocatesNothingOnTheCallingThread() throws {
        try #require(mgac_supported() == 1, "allocation counting needs Linux with glibc")
        let ctx = try ZMQContext()
        let (publisher, sub) = try publisherPair(ctx, "inproc://publisher-alloc")
        let topic = Array("intent".utf8)
        let payload = [UInt8](repeating: 65, count: 200)
        let count = 2000
        var refused = 0
        for _ in 0..<50 { _ = topic.withUnsafeBytes { t in payload.withUnsafeBytes { publisher.publish(topic: t, payload: $0) } } }  // warm-up
        let n = try #require(threadMallocs {
            for i in 0..<count {
                let ok = topic.withUnsafeBytes { t in payload.withUnsafeBytes { publisher.publish(topic: t, payload: $0) } }
                if !ok { refused += 1 }
                if i % 64 == 0 { usleep(200) }  // let the thread sleep now and then: the wake path too
            }
        })
        publisher.finish()
        #expect(n == 0, "\(n) mallocs in \(count) publishes")
        var received = 0
        while try sub.receive(timeoutMs: 200) != nil { received += 1 }
        #expect(received + refused == count + 50 && publisher.sent == UInt64(received))
    }
}
