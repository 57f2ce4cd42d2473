import CZeroMQ
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps libzmq off a real-time thread (ros2_control's `realtime_tools::RealtimePublisher`
/// pattern): the real-time thread `publish`es into a preallocated `PublishRing`, and a publisher
/// thread of this object drains the ring and calls `zmq_send` on the socket — where libzmq's
/// copy of every message longer than 33 bytes is malloc'd, and where a slow send may block.
///
/// Wake-up: after draining, the publisher thread spins for `spinNanos` (catching the next message
/// of the same tick without a sleep), then marks itself asleep and waits on a POSIX semaphore.
/// `publish` posts the semaphore only when the thread is marked asleep (one atomic exchange per
/// message otherwise): `sem_post` never blocks; when the thread sleeps it is one futex wake.
///
/// The socket belongs to the publisher thread from `init` until `finish` returns: no other thread
/// may use it meanwhile (libzmq sockets are not thread-safe). `finish` sends what is queued, then
/// joins the thread.
public final class ZMQPublisher: @unchecked Sendable {
    /// The queue between the real-time thread and the publisher thread.
    public let ring: PublishRing
    /// The socket the publisher thread sends on.
    public let socket: ZMQSocket
    /// How long the publisher thread spins for more messages before it sleeps, ns.
    public let spinNanos: UInt64

    private let semaphore: UnsafeMutablePointer<sem_t>
    private let sleeping = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let sentCount = Atomic<UInt64>(0)
    private let failedCount = Atomic<UInt64>(0)
    private let wakeCount = Atomic<UInt64>(0)
    private var thread: pthread_t?
    /// Queue delay (publish → zmq_send returned) histogram, written by the publisher thread only:
    /// `delayBuckets` buckets of `delayBucketNanos`, the last one open-ended.
    private let delays: UnsafeMutableBufferPointer<UInt64>
    private static let delayBuckets = 512
    private static let delayBucketNanos: UInt64 = 5_000
    private var onStart: (@Sendable () -> Void)?
    private var finished = false

    /// A publisher for `socket` with a ring of `slots` messages of up to `maxPayloadBytes` each.
    /// Call `start` to launch the thread (until then messages only queue).
    public init(socket: ZMQSocket, slots: Int = 256, maxPayloadBytes: Int = 4096, spinNanos: UInt64 = 0) {
        self.socket = socket
        self.spinNanos = spinNanos
        ring = PublishRing(slots: slots, maxPayloadBytes: maxPayloadBytes)
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
        delays = .allocate(capacity: Self.delayBuckets)
        delays.initialize(repeating: 0)
    }

    deinit {
        finish()
        sem_destroy(semaphore)
        semaphore.deallocate()
        delays.deallocate()
    }

    /// Starts the publisher thread; `onStart` runs first on it (scheduler, name).
    public func start(onStart: (@Sendable () -> Void)? = nil) {
        guard thread == nil, !finished else { return }
        self.onStart = onStart
        var tid = pthread_t()
        let me = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            #if canImport(Darwin)
            let publisher = Unmanaged<ZMQPublisher>.fromOpaque(arg).takeRetainedValue()
            #else
            let publisher = Unmanaged<ZMQPublisher>.fromOpaque(arg!).takeRetainedValue()
            #endif
            publisher.drainLoop()
            return nil
        }, me)
        if rc == 0 {
            thread = tid
        } else {
            Unmanaged<ZMQPublisher>.fromOpaque(me).release()
        }
    }

    /// Real-time side: queues `[topic, payload]` for the publisher thread and wakes it if it
    /// sleeps. Never blocks, never allocates; returns false (counted in `ring.dropped`) when the
    /// ring is full or the message is larger than a slot.
    @discardableResult
    public func publish(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> Bool {
        let queued = ring.push(topic: topic, payload: payload, stamp: Self.now())
        // Sequentially consistent exchange after the head store: the consumer sets `sleeping`
        // and then re-checks the ring, so either it sees this message or this sees it asleep.
        if queued && sleeping.exchange(false, ordering: .sequentiallyConsistent) {
            wakeCount.wrappingAdd(1, ordering: .relaxed)
            sem_post(semaphore)
        }
        return queued
    }

    /// Not real-time: waits up to `timeoutNanos` for room in the ring (e.g. for a final status
    /// message at shutdown), then queues like `publish`.
    @discardableResult
    public func publishWaiting(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, timeoutNanos: UInt64) -> Bool {
        let until = Self.now() + timeoutNanos
        while ring.count >= ring.slotCount && Self.now() < until && thread != nil { usleep(500) }
        return publish(topic: topic, payload: payload)
    }

    /// Sends what is queued, stops and joins the publisher thread (idempotent). Without a thread
    /// (never started) the queue is sent from the calling thread.
    public func finish() {
        guard !finished else { return }
        finished = true
        stopping.store(true, ordering: .sequentiallyConsistent)
        if let t = thread {
            sem_post(semaphore)
            pthread_join(t, nil)
            thread = nil
        } else {
            while ring.pop({ t, p, s in send(t, p, s) }) {}
        }
    }

    /// Messages libzmq accepted.
    public var sent: UInt64 { sentCount.load(ordering: .relaxed) }
    /// Messages libzmq refused (EAGAIN) or failed to send.
    public var sendFailed: UInt64 { failedCount.load(ordering: .relaxed) }
    /// Messages that did not leave: dropped at the ring plus refused by libzmq.
    public var dropped: UInt64 { ring.dropped &+ sendFailed }
    /// Times `publish` had to wake the sleeping publisher thread.
    public var wakeups: UInt64 { wakeCount.load(ordering: .relaxed) }

    /// Queue delay in µs at percentile `p` (0...100) over every message sent so far: publish on
    /// the producer thread → `zmq_send` returned on the publisher thread (the upper edge of a 5 µs
    /// bucket; ≥ 2560 µs reads as 2560). Read it after `finish` for exact figures. nil: none sent.
    public func queueDelayMicros(percentile p: Double) -> Double? {
        let total = delays.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = max(1, UInt64((p / 100 * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for (i, n) in delays.enumerated() {
            seen += n
            if seen >= rank { return Double(UInt64(i + 1) * Self.delayBucketNanos) / 1000 }
        }
        return Double(UInt64(Self.delayBuckets) * Self.delayBucketNanos) / 1000
    }

    private func send(_ topic: UnsafeRawBufferPointer, _ payload: UnsafeRawBufferPointer, _ stamp: UInt64) {
        do {
            if try socket.send(topic: topic, payload: payload, dontWait: true) {
                sentCount.wrappingAdd(1, ordering: .relaxed)
            } else {
                failedCount.wrappingAdd(1, ordering: .relaxed)
            }
        } catch {
            failedCount.wrappingAdd(1, ordering: .relaxed)
        }
        let now = Self.now()
        let bucket = now > stamp ? Int(min((now - stamp) / Self.delayBucketNanos, UInt64(Self.delayBuckets - 1))) : 0
        delays[bucket] += 1
    }

    private func drainLoop() {
        onStart?()
        while true {
            while ring.pop({ t, p, s in send(t, p, s) }) {}
            if stopping.load(ordering: .sequentiallyConsistent) {
                while ring.pop({ t, p, s in send(t, p, s) }) {}  // what was pushed before the stop request
                return
            }
            if spinNanos > 0 {
                let until = Self.now() + spinNanos
                while ring.isEmpty && !stopping.load(ordering: .relaxed) && Self.now() < until {}
                if !ring.isEmpty { continue }
            }
            sleeping.store(true, ordering: .sequentiallyConsistent)
            if !ring.isEmpty || stopping.load(ordering: .sequentiallyConsistent) {
                // Raced with a publish: if it already took the flag it also posted, and the
                // next wait returns at once, which is harmless.
                _ = sleeping.exchange(false, ordering: .sequentiallyConsistent)
                continue
            }
            while sem_wait(semaphore) != 0 && errno == EINTR {}
        }
    }

    @inline(__always) static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
