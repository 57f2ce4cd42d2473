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
    /// Formatting the messages and queueing them for the publisher thread, queueing the record.
    public var publish: UInt64 = 0
    /// The whole tick, wake to publish.
    public var total: UInt64 = 0
}

/// The real-time decision loop (DESIGN.md "Real-time loop"): a dedicated thread waking at absolute
/// deadlines on CLOCK_MONOTONIC, each tick read → think → decide → publish, with every buffer
/// allocated before the first tick. Nothing on the loop thread allocates, locks or touches a file,
/// and libzmq's sends (which malloc a copy of every message longer than 33 bytes) run on a
/// publisher thread that drains a preallocated ring (`ZMQPublisher`).
///
/// Decide on arrival (`loop.decide_on_arrival`, default on): between two deadlines the thread
/// waits on the sensor socket (ppoll on its `ZMQ_FD`, nanosecond timeout up to the next deadline)
/// and decides a fresh frame as soon as it arrives — at most one model run per period (a second
/// frame in the same period waits for the tick), and only when it fits before the next deadline
/// with a guard to spare (the budget, or twice the recent worst decision time when that is more);
/// a frame closer to the deadline makes the tick run at once, early. The fixed-period tick still runs the watchdog
/// (stale / no sensor), the overrun policy, the status heartbeat and an `intent` every period.
/// Every decision — tick or arrival — is one `DecisionCore.tick` call with its time, so a
/// recording replays bit for bit.
public final class DecisionLoop: @unchecked Sendable {
    /// Immutable loop configuration.
    public let config: RobotConfig
    /// The tick logic.
    public let core: DecisionCore
    /// The publisher thread and its ring: every outgoing message leaves through it.
    public let publisher: ZMQPublisher
    private let sub: ZMQSocket
    private let subFD: Int32
    private let recorder: Recorder?
    private let stopFlag = Atomic<Bool>(false)
    /// New controller thresholds from SIGHUP and the config text they came from (recorded on
    /// `/config`), picked up at the next tick with a non-blocking try-lock.
    private let mailbox = Mutex<(thresholds: ControllerThresholds, json: String)?>(nil)
    private let period: UInt64
    private let budget: UInt64
    /// `loop.keep_warm_us` in ns (0 = off), the end of the last warm pass or model run, and the
    /// passes so far.
    private let keepWarm: UInt64
    private var lastWarm: UInt64 = 0
    public private(set) var warmPasses: UInt64 = 0

    // Preallocated I/O buffers.
    private let rx: UnsafeMutableRawBufferPointer
    private let rxTopic: UnsafeMutableRawBufferPointer
    private var out: ByteWriter
    private static let outCapacity = 4096
    private let topicIntent: [UInt8], topicTelemetry: [UInt8], topicStatus: [UInt8]
    private let intentTexts: [String]
    private let verbTexts: [String]
    private let args: [Float?]
    private var lastStatusAt: UInt64 = 0
    private var state: StaticString = "starting"
    /// An accepted frame that no decision has used yet.
    private var pending = false
    /// Wake → published of the last `recentRuns.count` decisions that ran the model, ns (a ring).
    /// An arrival decision must still fit before the next deadline with `arrivalGuard` to spare:
    /// the budget, or twice the recent worst + 200 µs when that is more (the budget × 1.5 + 100 µs
    /// until the first model run is measured). A generous guard costs no latency — a frame inside
    /// it is decided by an early tick at once — only tick jitter (an early tick is at most the
    /// guard early).
    private let recentRuns: UnsafeMutableBufferPointer<UInt64>
    private var recentRunsNext = 0
    private var arrivalGuard: UInt64
    /// Fixed-period ticks run.
    public private(set) var ticks: UInt64 = 0
    /// Decisions taken when a frame arrived between two ticks.
    public private(set) var arrivalDecisions: UInt64 = 0
    /// Ticks run early, at the arrival of a frame that came too close to the next deadline for a
    /// decision of its own (the tick decides it; it is that period's model run).
    public private(set) var earlyTicks: UInt64 = 0
    /// Frames that arrived between ticks but waited for the next tick (the period's model run was
    /// spent, or the overrun policy held the model).
    public private(set) var arrivalsDeferred: UInt64 = 0
    /// Messages that did not leave: the publish ring was full, or libzmq refused or failed the send.
    public var publishDropped: UInt64 { publisher.dropped }
    /// Messages dropped because the publish ring was full (the publisher thread fell behind).
    public var publishQueueFull: UInt64 { publisher.ring.dropped }
    /// Heap allocations the loop thread made in `run` after its first 50 ticks, counted only while
    /// the allocation counter is switched on (`mgac_enable`, tests). 0 is the contract.
    public var loopThreadAllocations: Int64 { loopAllocations.load(ordering: .relaxed) }
    private let loopAllocations = Atomic<Int64>(0)
    private var loopSetup: [String] = []
    private let publisherSetup = Mutex<String>("publisher thread: not started")
    /// Lines describing the real-time setup, filled when the threads start.
    public var setupReport: [String] { loopSetup + [publisherSetup.withLock { $0 }] }
    /// Largest tick (or arrival decision) time seen, ns.
    public private(set) var maxTickNanos: UInt64 = 0
    private let finished = DispatchSemaphore(value: 0)

    /// Wires a loop; sockets must already be bound/connected and subscribed. From here on `pub`
    /// belongs to the publisher thread, which starts at once (messages queue until it runs).
    public init(config: RobotConfig, core: DecisionCore, sub: ZMQSocket, pub: ZMQSocket, recorder: Recorder?) {
        self.config = config
        self.core = core
        self.sub = sub
        self.recorder = recorder
        subFD = (try? sub.fileDescriptor) ?? -1
        period = config.periodNanos
        budget = UInt64(config.budgetMicros) * 1000
        keepWarm = UInt64(config.keepWarmMicros) * 1000
        recentRuns = .allocate(capacity: 32)
        recentRuns.initialize(repeating: 0)
        arrivalGuard = UInt64(config.budgetMicros) * 1000 * 3 / 2 + 100_000
        rx = .allocate(byteCount: config.maxMessageBytes, alignment: 64)
        rxTopic = .allocate(byteCount: 64, alignment: 64)
        out = ByteWriter(capacity: Self.outCapacity)
        topicIntent = Array(config.topicIntent.utf8)
        topicTelemetry = Array(config.topicTelemetry.utf8)
        topicStatus = Array(config.topicStatus.utf8)
        intentTexts = Intent.all.map(\.text)
        verbTexts = Intent.all.map(\.kind.rawValue)
        args = Intent.all.map(\.argument)
        let spin = ProcessInfo.processInfo.environment["MGPTD_PUBLISH_SPIN_US"].flatMap { UInt64($0) }.map { $0 * 1000 } ?? Self.publisherSpinNanos
        publisher = ZMQPublisher(socket: pub, slots: 256, maxPayloadBytes: Self.outCapacity, spinNanos: spin)
        // One below the loop's SCHED_FIFO priority: the loop preempts it, other processes do not.
        let priority = config.realtimePriority > 1 ? config.realtimePriority - 1 : config.realtimePriority
        publisher.start { [weak self] in
            RealTime.setThreadName("mgptd-pub")
            let line = RealTime.setFIFO(priority: priority)
            self?.publisherSetup.withLock { $0 = "publisher thread: \(line), spins \(spin / 1000) µs before it sleeps" }
        }
    }

    /// How long the publisher thread spins for the next message before it sleeps on its
    /// semaphore (measured: docs/protocol.md, "Heap allocations on the real-time path").
    public static let publisherSpinNanos: UInt64 = 0

    deinit {
        publisher.finish()
        rx.deallocate()
        rxTopic.deallocate()
        recentRuns.deallocate()
    }

    /// Asks the loop to stop after the tick in progress (async-signal-safe: one atomic store).
    public func requestStop() { stopFlag.store(true, ordering: .releasing) }

    /// Hands new thresholds to the loop (called from the signal-handling thread). The loop applies
    /// them before its next decision and records `json` (the config text, when given) on `/config`
    /// with that decision's sequence, so a replay applies them at the same decision.
    public func reload(_ t: ControllerThresholds, json: String = "") { mailbox.withLock { $0 = (t, json) } }

    /// Starts the loop thread and returns at once.
    public func start() {
        let t = Thread { [self] in
            RealTime.setThreadName("mgptd-loop")
            loopSetup = [RealTime.setTimerSlack(), RealTime.setFIFO(priority: config.realtimePriority),
                         RealTime.setAffinity(config.cpuAffinity), RealTime.lockMemory(config.lockMemory)]
            run()
            finished.signal()
        }
        t.name = "mgptd-loop"
        t.stackSize = 8 << 20
        t.start()
    }

    /// Blocks until the loop thread has published its final status, the publisher thread has
    /// sent everything queued, and both have returned.
    public func join() { finished.wait() }

    /// Switches the process-wide allocation counter on or off (nestable; `CAllocCounter`), so
    /// `loopThreadAllocations` counts: for `mgptd` under `MGPTD_COUNT_ALLOCATIONS=1` (the soak).
    public static func countAllocations(_ on: Bool) { mgac_enable(on ? 1 : 0) }

    /// True when this build can count allocations (Linux with glibc, no sanitizer).
    public static var allocationCountingSupported: Bool { mgac_supported() == 1 }

    /// Sends what is queued and joins the publisher thread (for callers that drive `tickOnce`
    /// themselves; `run` does it on stop). Idempotent.
    public func finishPublisher() { publisher.finish() }

    /// The loop: absolute deadlines, decisions on arrival in between, skip (and count) missed
    /// cycles, stop on request; then the final status, flushed through the publisher thread.
    func run() {
        state = "running"
        var next = monotonicNanos() + period
        var mode = TickMode.normal
        var spent = false  // this period's model run is used (or held by the overrun policy)
        let arrivals = config.decideOnArrival && subFD >= 0
        while !stopFlag.load(ordering: .acquiring) {
            let allocationsBefore = mgac_thread_mallocs()
            let early = arrivals ? awaitFrames(next: &next, mode: &mode, spent: &spent) : nil
            if early == nil { idle(until: next) }
            let woke = early ?? monotonicNanos()
            let held = mode == .hold
            let r = tickOnce(deadline: next, woke: woke, mode: mode, onArrival: early != nil)
            let end = monotonicNanos()
            next += period
            let (nextMode, missed) = afterDecision(woke: woke, end: end, next: &next)
            mode = nextMode
            spent = (r.ranModel || held) && !missed
            if ticks > 50 { loopAllocations.wrappingAdd(mgac_thread_mallocs() - allocationsBefore, ordering: .relaxed) }
        }
        state = "stopped"
        publishStatus(now: monotonicNanos(), force: true, final: true)
        publisher.finish()
    }

    /// Between two deadlines: wait for frames and decide each fresh one on arrival. A frame is
    /// decided at once when this period's model run is free and the decision fits before `next`
    /// (`arrivalGuard`); one that comes closer to `next` than that makes the tick run now, early
    /// (returns its wake time: the tick decides the frame as the next period's model run); one that
    /// finds the run spent (or held by the overrun policy) waits for the tick. Returns nil at `next`.
    private func awaitFrames(next: inout UInt64, mode: inout TickMode, spent: inout Bool) -> UInt64? {
        while !stopFlag.load(ordering: .relaxed) {
            if !((try? sub.hasInput) ?? false) {
                let until = keepWarm > 0 ? min(next, lastWarm + keepWarm) : next
                let rc = RealTime.waitReadable(subFD, until: until)
                if rc == 0 && until < next { warm(); continue }  // a keep-warm slice ended, not the period
                if rc <= 0 { return nil }  // the deadline (or ppoll failed: the tick's sleep takes over)
                continue                   // the descriptor fired: ZMQ_EVENTS says whether a message is in
            }
            let woke = monotonicNanos()
            guard drainSensor() else { continue }
            if mode == .hold {
                arrivalsDeferred += 1
                continue
            }
            if woke + arrivalGuard > next {
                earlyTicks += 1
                arrivalDecisions += 1
                return woke
            }
            guard !spent else {
                arrivalsDeferred += 1
                continue
            }
            let r = decide(deadline: next - period, woke: woke, mode: mode, onArrival: true)
            arrivalDecisions += 1
            let end = monotonicNanos()
            let (nextMode, missed) = afterDecision(woke: woke, end: end, next: &next)
            mode = nextMode
            spent = r.ranModel && !missed
        }
        return nil
    }

    /// Sleeps until `deadline`, reading the model back into the caches every `loop.keep_warm_us`
    /// (counted from the last pass or model run). `mgpt bench loop --idle-us` idles through it.
    package func idle(until deadline: UInt64) {
        while keepWarm > 0 && lastWarm + keepWarm < deadline {
            RealTime.sleep(until: lastWarm + keepWarm)
            warm()
        }
        RealTime.sleep(until: deadline)
    }

    /// One keep-warm pass (`DecisionCore.warmCaches`: reads only, so decisions are unchanged).
    private func warm() {
        core.warmCaches()
        warmPasses += 1
        lastWarm = monotonicNanos()
    }

    /// Overrun accounting of a decision from `woke` to `end` with `next` the coming deadline:
    /// the mode of the next decision, and whether `next` was missed (then it moves past `end`:
    /// whole missed cycles are skipped).
    private func afterDecision(woke: UInt64, end: UInt64, next: inout UInt64) -> (TickMode, Bool) {
        var overran = false, missed = false
        if end > next {
            core.noteOverrun(deadlineMissed: true)
            overran = true
            missed = true
            while next <= end { next += period }
        } else if end - woke > budget {
            core.noteOverrun(deadlineMissed: false)
            overran = true
        }
        let mode: TickMode = !overran ? .normal : config.overrunPolicy == "fallback" ? .hold
            : config.overrunPolicy == "early_exit" ? .anytime : .normal
        return (mode, missed)
    }

    /// One tick: drain → decide → publish → record, then the status heartbeat. Allocation-free.
    @discardableResult
    package func tickOnce(deadline: UInt64, woke: UInt64, mode: TickMode = .normal, onArrival: Bool = false) -> TickResult {
        ticks += 1
        if let fresh = mailbox.withLockIfAvailable({ (box: inout (thresholds: ControllerThresholds, json: String)?) -> (thresholds: ControllerThresholds, json: String)? in
            defer { box = nil }
            return box
        }), var fresh {
            core.setThresholds(fresh.thresholds)
            if let recorder, !fresh.json.isEmpty {
                let now = monotonicNanos()
                fresh.json.withUTF8 { _ = recorder.push(.config, sequence: UInt32(truncatingIfNeeded: core.counters.ticks), logTime: now, publishTime: now, bytes: UnsafeRawBufferPointer($0)) }
            }
        }
        drainSensor()
        let r = decide(deadline: deadline, woke: woke, mode: mode, onArrival: onArrival)
        publishStatus(now: monotonicNanos(), force: false)
        return r
    }

    /// Reads everything queued on the sensor socket; the newest valid frame wins. Each payload is
    /// recorded with the sequence number of the decision that will consume it. True when at least
    /// one frame was accepted.
    @discardableResult
    private func drainSensor() -> Bool {
        let sequence = UInt32(truncatingIfNeeded: core.counters.ticks)
        var accepted = false
        while true {
            let got: (topicLength: Int, payloadLength: Int, truncated: Bool)?
            do { got = try sub.receive(into: rx, topicBuffer: rxTopic, dontWait: true) } catch { break }
            guard let got else { break }
            let now = monotonicNanos()
            let payload = UnsafeRawBufferPointer(start: rx.baseAddress, count: min(got.payloadLength, rx.count))
            let outcome = core.observe(payload, truncated: got.truncated, receivedAt: now)
            if outcome == .accepted { accepted = true }
            recorder?.push(outcome == .accepted ? .obs : .rejected, sequence: sequence, logTime: now, publishTime: now, bytes: payload)
        }
        if accepted { pending = true }
        return accepted
    }

    /// One decision at the time it is called (`DecisionCore.tick`), published and recorded.
    /// `deadline` is the start of the current period, `woke` when this work began.
    private func decide(deadline: UInt64, woke: UInt64, mode: TickMode, onArrival: Bool) -> TickResult {
        var timing = TickTimings()
        timing.wakeLate = !onArrival && woke > deadline ? woke - deadline : 0
        let thought = monotonicNanos()
        timing.drain = thought - woke
        // think + decide
        let r = core.tick(now: thought, mode: mode)
        if r.ranModel { pending = false }
        let decided = monotonicNanos()
        timing.think = decided - thought
        // publish
        timing.total = decided - woke
        writeIntent(r, now: thought, tickNanos: timing.total, deadline: deadline, onArrival: onArrival)
        send(topicIntent)
        let sequence = UInt32(truncatingIfNeeded: r.seq)
        out.withBytes { _ = recorder?.push(.intent, sequence: sequence, logTime: thought, publishTime: decided, bytes: $0) }
        let published = monotonicNanos()
        timing.publish = published - decided
        timing.total = published - woke
        writeTelemetry(r, timing, onArrival: onArrival)
        send(topicTelemetry)
        if timing.total > maxTickNanos { maxTickNanos = timing.total }
        if r.ranModel { lastWarm = monotonicNanos() }  // a model run leaves the caches warm
        if r.ranModel {
            let spentNanos = monotonicNanos() - woke
            recentRuns[recentRunsNext] = spentNanos
            recentRunsNext = (recentRunsNext + 1) % recentRuns.count
            var worst: UInt64 = 0
            for d in recentRuns where d > worst { worst = d }
            arrivalGuard = max(budget, 2 * worst + 200_000)
        }
        return r
    }

    /// Queues the message in `out` for the publisher thread (never blocks; a full ring drops and
    /// counts it).
    private func send(_ topic: [UInt8], final: Bool = false) {
        topic.withUnsafeBytes { t in
            out.withBytes { p in
                if final {
                    _ = publisher.publishWaiting(topic: t, payload: p, timeoutNanos: 200_000_000)
                } else {
                    _ = publisher.publish(topic: t, payload: p)
                }
            }
        }
    }

    /// The `intent` payload (docs/protocol.md; schema docs/schemas/intent.schema.json).
    private func writeIntent(_ r: TickResult, now: UInt64, tickNanos: UInt64, deadline: UInt64, onArrival: Bool) {
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
        out.raw(",\"exit_disagreement\":"); out.float(r.signals.exitDisagreement)
        out.raw(",\"temporal_disagreement\":"); out.float(r.signals.temporalDisagreement)
        out.raw(",\"sensor_faults\":[")
        var first = true
        for c in SensorCheck.allCases where r.signals.sensors.has(c) {
            if !first { out.raw(",") }
            out.string(c.wireName)
            first = false
        }
        out.raw("]")
        out.raw(",\"fresh\":"); out.bool(r.ranModel)
        out.raw(",\"exit_layer\":"); out.int(r.exitLayer)
        out.raw(",\"anytime\":"); out.bool(r.anytime)
        out.raw(",\"obs_seq\":"); out.int(Int(r.observationSeq))
        out.raw(",\"obs_age_us\":"); out.uint64(r.observationAgeNanos / 1000)
        out.raw(",\"tick_us\":"); out.uint64(tickNanos / 1000)
        out.raw(",\"deadline_missed\":"); out.bool(monotonicNanos() > deadline + period)
        out.raw(",\"on_arrival\":"); out.bool(onArrival)
        out.raw(",\"model\":"); out.string(config.modelID)
        out.raw("}")
    }

    /// The `telemetry` payload: per-tick timings and counters.
    private func writeTelemetry(_ r: TickResult, _ t: TickTimings, onArrival: Bool) {
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
        out.raw(",\"on_arrival\":"); out.bool(onArrival)
        out.raw("}")
    }

    /// The `status` heartbeat, every `log.status_interval_ms` and once more when stopping.
    private func publishStatus(now: UInt64, force: Bool, final: Bool = false) {
        guard force || now - lastStatusAt >= UInt64(config.statusIntervalMillis) * 1_000_000 else { return }
        lastStatusAt = now
        let c = core.counters
        out.reset()
        out.raw("{\"v\":1,\"mono_ns\":"); out.uint64(now)
        out.raw(",\"wall_ns\":"); out.uint64(RealTime.wallNanos())
        out.raw(",\"state\":"); out.string(state)
        out.raw(",\"uptime_ms\":"); out.uint64((now - core.startTime) / 1_000_000)
        out.raw(",\"rate_hz\":"); out.double(config.rateHz)
        out.raw(",\"ticks\":"); out.uint64(ticks)
        out.raw(",\"decisions\":"); out.uint64(c.ticks)
        out.raw(",\"arrival_decisions\":"); out.uint64(arrivalDecisions)
        out.raw(",\"early_ticks\":"); out.uint64(earlyTicks)
        out.raw(",\"arrivals_deferred\":"); out.uint64(arrivalsDeferred)
        out.raw(",\"warm_passes\":"); out.uint64(warmPasses)
        out.raw(",\"model_runs\":"); out.uint64(c.modelRuns)
        out.raw(",\"frames_accepted\":"); out.uint64(c.framesAccepted)
        out.raw(",\"frames_malformed\":"); out.uint64(c.framesMalformed)
        out.raw(",\"frames_oversized\":"); out.uint64(c.framesOversized)
        out.raw(",\"frames_skipped\":"); out.uint64(c.framesSkipped)
        out.raw(",\"frames_too_fast\":"); out.uint64(c.framesTooFast)
        out.raw(",\"gated\":"); out.uint64(c.gated)
        out.raw(",\"watchdog\":"); out.uint64(c.watchdog)
        out.raw(",\"overruns\":"); out.uint64(c.overruns)
        out.raw(",\"deadline_misses\":"); out.uint64(c.deadlineMisses)
        out.raw(",\"evictions\":"); out.uint64(c.evictions)
        out.raw(",\"anytime\":"); out.uint64(c.anytime)
        out.raw(",\"early_exits\":"); out.uint64(c.earlyExits)
        out.raw(",\"record_dropped\":"); out.uint64(recorder?.dropped ?? 0)
        out.raw(",\"publish_dropped\":"); out.uint64(publishDropped)
        out.raw(",\"publish_queue_full\":"); out.uint64(publishQueueFull)
        out.raw(",\"max_tick_us\":"); out.uint64(maxTickNanos / 1000)
        out.raw(",\"model\":"); out.string(config.modelID)
        out.raw("}")
        send(topicStatus, final: final)
    }
}
