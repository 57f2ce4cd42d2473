import CAllocCounter
import Foundation
import Cognition
import MiniGPT
import Observation
import Synchronization
import Wire

/// Timings of one tick, in ns (published on `telemetry`).
public struct TickTimings: Sendable {
    /// How late the thread woke after its deadline.
    public var wakeLate: UInt64 = 0
    /// Draining and parsing the sensor socket.
    public var drain: UInt64 = 0
    /// Encoding, prefill, intent decode and the controller.
    public var think: UInt64 = 0
    /// Formatting and sending the messages, queueing the record.
    public var publish: UInt64 = 0
    /// The whole tick, wake to publish.
    public var total: UInt64 = 0
}

/// The real-time decision loop (DESIGN.md "Real-time loop"): a dedicated thread waking at absolute
/// deadlines on CLOCK_MONOTONIC, each tick read → think → decide → publish, with every buffer
/// allocated before the first tick. Nothing in `tickOnce` allocates, locks or touches a file.
public final class DecisionLoop: @unchecked Sendable {
    /// Immutable loop configuration.
    public let config: RobotConfig
    /// The tick logic.
    public let core: DecisionCore
    private let sub: ZMQSocket
    private let pub: ZMQSocket
    private let recorder: Recorder?
    private let stopFlag = Atomic<Bool>(false)
    /// New controller thresholds from SIGHUP, picked up at the next tick with a non-blocking try-lock.
    private let mailbox = Mutex<ControllerThresholds?>(nil)
    private let period: UInt64
    private let budget: UInt64

    // Preallocated I/O buffers.
    private let rx: UnsafeMutableRawBufferPointer
    private let rxTopic: UnsafeMutableRawBufferPointer
    private var out: ByteWriter
    private let topicIntent: [UInt8], topicTelemetry: [UInt8], topicStatus: [UInt8]
    private let intentTexts: [String]
    private let verbTexts: [String]
    private let args: [Float?]
    private var lastStatusAt: UInt64 = 0
    private var state: StaticString = "starting"
    /// Messages that did not leave: libzmq refused to queue them, or the send failed.
    public private(set) var publishDropped: UInt64 = 0
    /// Heap allocations libzmq made inside our `zmq_send` calls (it copies every message longer than
    /// 33 bytes into a malloc'd buffer; counted only while the allocation counter is enabled).
    public private(set) var transportAllocations: Int64 = 0
    /// Lines describing the real-time setup, filled when the thread starts.
    public private(set) var setupReport: [String] = []
    /// Largest tick time seen, ns.
    public private(set) var maxTickNanos: UInt64 = 0
    private let finished = DispatchSemaphore(value: 0)

    /// Wires a loop; sockets must already be bound/connected and subscribed.
    public init(config: RobotConfig, core: DecisionCore, sub: ZMQSocket, pub: ZMQSocket, recorder: Recorder?) {
        self.config = config
        self.core = core
        self.sub = sub
        self.pub = pub
        self.recorder = recorder
        period = config.periodNanos
        budget = UInt64(config.budgetMicros) * 1000
        rx = .allocate(byteCount: config.maxMessageBytes, alignment: 64)
        rxTopic = .allocate(byteCount: 64, alignment: 64)
        out = ByteWriter(capacity: 4096)
        topicIntent = Array(config.topicIntent.utf8)
        topicTelemetry = Array(config.topicTelemetry.utf8)
        topicStatus = Array(config.topicStatus.utf8)
        intentTexts = Intent.all.map(\.text)
        verbTexts = Intent.all.map(\.kind.rawValue)
        args = Intent.all.map(\.argument)
    }

    deinit {
        rx.deallocate()
        rxTopic.deallocate()
    }

    /// Asks the loop to stop after the tick in progress (async-signal-safe: one atomic store).
    public func requestStop() { stopFlag.store(true, ordering: .releasing) }

    /// Hands new thresholds to the loop (called from the signal-handling thread).
    public func reload(_ t: ControllerThresholds) { mailbox.withLock { $0 = t } }

    /// Starts the loop thread and returns at once.
    public func start() {
        let t = Thread { [self] in
            setupReport = [RealTime.setTimerSlack(), RealTime.setFIFO(priority: config.realtimePriority),
                           RealTime.setAffinity(config.cpuAffinity), RealTime.lockMemory(config.lockMemory)]
            run()
            finished.signal()
        }
        t.name = "mgptd-loop"
        t.stackSize = 8 << 20
        t.start()
    }

    /// Blocks until the loop thread has published its final status and returned.
    public func join() { finished.wait() }

    /// The loop: absolute deadlines, skip (and count) missed cycles, stop on request.
    func run() {
        state = "running"
        var next = monotonicNanos() + period
        var mode = TickMode.normal
        while !stopFlag.load(ordering: .acquiring) {
            RealTime.sleep(until: next)
            let woke = monotonicNanos()
            tickOnce(deadline: next, woke: woke, mode: mode)
            let end = monotonicNanos()
            next += period
            var overran = false
            if end > next {  // the next deadline already passed: skip whole missed cycles
                core.noteOverrun(deadlineMissed: true)
                overran = true
                while next <= end { next += period }
            } else if end - woke > budget {
                core.noteOverrun(deadlineMissed: false)
                overran = true
            }
            mode = !overran ? .normal : config.overrunPolicy == "fallback" ? .hold
                : config.overrunPolicy == "early_exit" ? .anytime : .normal
        }
        state = "stopped"
        publishStatus(now: monotonicNanos(), force: true)
    }

    /// One tick: drain → decide → publish → record. Allocation-free.
    package func tickOnce(deadline: UInt64, woke: UInt64, mode: TickMode = .normal) {
        var timing = TickTimings()
        timing.wakeLate = woke > deadline ? woke - deadline : 0
        if let t = mailbox.withLockIfAvailable({ (box: inout ControllerThresholds?) -> ControllerThresholds? in
            defer { box = nil }
            return box
        }), let t { core.setThresholds(t) }
        // read: everything queued; the newest valid frame wins.
        let tick = UInt32(truncatingIfNeeded: core.counters.ticks)
        while true {
            let got: (topicLength: Int, payloadLength: Int, truncated: Bool)?
            do { got = try sub.receive(into: rx, topicBuffer: rxTopic, dontWait: true) } catch { break }
            guard let got else { break }
            let now = monotonicNanos()
            let payload = UnsafeRawBufferPointer(start: rx.baseAddress, count: min(got.payloadLength, rx.count))
            let outcome = core.observe(payload, truncated: got.truncated, receivedAt: now)
            recorder?.push(outcome == .accepted ? .obs : .rejected, sequence: tick, logTime: now, publishTime: now, bytes: payload)
        }
        let thought = monotonicNanos()
        timing.drain = thought - woke
        // think + decide
        let r = core.tick(now: thought, mode: mode)
        let decided = monotonicNanos()
        timing.think = decided - thought
        // publish
        timing.total = decided - woke
        writeIntent(r, now: thought, tickNanos: timing.total, deadline: deadline)
        send(topicIntent)
        out.withBytes { _ = recorder?.push(.intent, sequence: tick, logTime: thought, publishTime: decided, bytes: $0) }
        let published = monotonicNanos()
        timing.publish = published - decided
        timing.total = published - woke
        writeTelemetry(r, timing)
        send(topicTelemetry)
        publishStatus(now: published, force: false)
        if timing.total > maxTickNanos { maxTickNanos = timing.total }
    }

    private func send(_ topic: [UInt8]) {
        topic.withUnsafeBytes { t in
            out.withBytes { p in
                let before = mgac_thread_mallocs()
                do {
                    if !(try pub.send(topic: t, payload: p, dontWait: true)) { publishDropped += 1 }
                } catch { publishDropped += 1 }  // a failed send is a message that did not leave
                transportAllocations += mgac_thread_mallocs() - before
            }
        }
    }

    /// The `intent` payload (docs/protocol.md; schema docs/schemas/intent.schema.json).
    private func writeIntent(_ r: TickResult, now: UInt64, tickNanos: UInt64, deadline: UInt64) {
        let d = r.decision
        let i = d.intent.index
        out.reset()
        out.raw("{\"v\":1,\"seq\":"); out.uint64(r.seq)
        out.raw(",\"mono_ns\":"); out.uint64(now)
        out.raw(",\"wall_ns\":"); out.uint64(RealTime.wallNanos())
        out.raw(",\"intent\":"); out.string(intentTexts[i])
        out.raw(",\"verb\":"); out.string(verbTexts[i])
        out.raw(",\"arg\":"); if let a = args[i] { out.float(a) } else { out.raw("null") }
        out.raw(",\"intent_index\":"); out.int(i)
        out.raw(",\"confidence\":"); out.float(d.confidence)
        out.raw(",\"gated\":"); out.bool(d.gated)
        out.raw(",\"reason\":"); out.string(d.reason.name)
        out.raw(",\"proposal_index\":"); out.int(r.ranModel ? r.proposal.index : -1)
        out.raw(",\"proposal_probability\":"); out.float(r.proposal.probability)
        out.raw(",\"entropy\":"); out.float(r.proposal.entropy)
        out.raw(",\"head_disagreement\":"); out.float(r.headDisagreement)
        out.raw(",\"grammar_mass\":"); out.float(r.proposal.grammarMass)
        out.raw(",\"fresh\":"); out.bool(r.ranModel)
        out.raw(",\"exit_layer\":"); out.int(r.exitLayer)
        out.raw(",\"anytime\":"); out.bool(r.anytime)
        out.raw(",\"obs_seq\":"); out.int(Int(r.observationSeq))
        out.raw(",\"obs_age_us\":"); out.uint64(r.observationAgeNanos / 1000)
        out.raw(",\"tick_us\":"); out.uint64(tickNanos / 1000)
        out.raw(",\"deadline_missed\":"); out.bool(monotonicNanos() > deadline + period)
        out.raw(",\"model\":"); out.string(config.modelID)
        out.raw("}")
    }

    /// The `telemetry` payload: per-tick timings and counters.
    private func writeTelemetry(_ r: TickResult, _ t: TickTimings) {
        let c = core.counters
        out.reset()
        out.raw("{\"v\":1,\"seq\":"); out.uint64(r.seq)
        out.raw(",\"wake_late_us\":"); out.uint64(t.wakeLate / 1000)
        out.raw(",\"drain_us\":"); out.uint64(t.drain / 1000)
        out.raw(",\"think_us\":"); out.uint64(t.think / 1000)
        out.raw(",\"publish_us\":"); out.uint64(t.publish / 1000)
        out.raw(",\"tick_us\":"); out.uint64(t.total / 1000)
        out.raw(",\"tokens_in\":"); out.int(r.tokensIn)
        out.raw(",\"context_positions\":"); out.int(r.contextPositions)
        out.raw(",\"frames_accepted\":"); out.uint64(c.framesAccepted)
        out.raw(",\"frames_malformed\":"); out.uint64(c.framesMalformed)
        out.raw(",\"frames_oversized\":"); out.uint64(c.framesOversized)
        out.raw(",\"overruns\":"); out.uint64(c.overruns)
        out.raw(",\"deadline_misses\":"); out.uint64(c.deadlineMisses)
        out.raw("}")
    }

    /// The `status` heartbeat, every `log.status_interval_ms` and once more when stopping.
    private func publishStatus(now: UInt64, force: Bool) {
        guard force || now - lastStatusAt >= UInt64(config.statusIntervalMillis) * 1_000_000 else { return }
        lastStatusAt = now
        let c = core.counters
        out.reset()
        out.raw("{\"v\":1,\"mono_ns\":"); out.uint64(now)
        out.raw(",\"wall_ns\":"); out.uint64(RealTime.wallNanos())
        out.raw(",\"state\":"); out.string(state)
        out.raw(",\"uptime_ms\":"); out.uint64((now - core.startTime) / 1_000_000)
        out.raw(",\"rate_hz\":"); out.double(config.rateHz)
        out.raw(",\"ticks\":"); out.uint64(c.ticks)
        out.raw(",\"model_runs\":"); out.uint64(c.modelRuns)
        out.raw(",\"frames_accepted\":"); out.uint64(c.framesAccepted)
        out.raw(",\"frames_malformed\":"); out.uint64(c.framesMalformed)
        out.raw(",\"frames_oversized\":"); out.uint64(c.framesOversized)
        out.raw(",\"frames_skipped\":"); out.uint64(c.framesSkipped)
        out.raw(",\"gated\":"); out.uint64(c.gated)
        out.raw(",\"watchdog\":"); out.uint64(c.watchdog)
        out.raw(",\"overruns\":"); out.uint64(c.overruns)
        out.raw(",\"deadline_misses\":"); out.uint64(c.deadlineMisses)
        out.raw(",\"evictions\":"); out.uint64(c.evictions)
        out.raw(",\"anytime\":"); out.uint64(c.anytime)
        out.raw(",\"early_exits\":"); out.uint64(c.earlyExits)
        out.raw(",\"record_dropped\":"); out.uint64(recorder?.dropped ?? 0)
        out.raw(",\"publish_dropped\":"); out.uint64(publishDropped)
        out.raw(",\"max_tick_us\":"); out.uint64(maxTickNanos / 1000)
        out.raw(",\"model\":"); out.string(config.modelID)
        out.raw("}")
        send(topicStatus)
    }
}
