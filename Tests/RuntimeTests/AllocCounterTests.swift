import CAllocCounter
import Foundation
import Observation
import Testing
import Runtime

#if canImport(Glibc)
import Glibc
#endif

/// Heap allocations made by the calling thread while `body` runs. The count is per thread, so tests
/// running in parallel on other threads do not disturb it; -1 where counting is unsupported.
func mallocs(during body: () -> Void) -> Int64 {
    guard mgac_supported() == 1 else { return -1 }
    mgac_enable(1)
    defer { mgac_enable(0) }
    let before = mgac_thread_mallocs()
    body()
    return mgac_thread_mallocs() - before
}

/// Frees made by the calling thread while `body` runs.
func frees(during body: () -> Void) -> Int64 {
    mgac_enable(1)
    defer { mgac_enable(0) }
    let before = mgac_thread_frees()
    body()
    return mgac_thread_frees() - before
}

private final class Probe {
    var x: Int
    init(_ x: Int) { self.x = x }
}

/// Keeps a value alive and opaque to the optimizer.
@inline(never) private func consume<T>(_ value: T) { withExtendedLifetime(value) {} }

/// Allocates `n` class instances on the heap; unoptimized, so that a release build does not move
/// them to the stack.
@inline(never) @_optimize(none) private func allocateProbes(_ n: Int) {
    for i in 0..<n { consume(Probe(i)) }
}

/// The kind of message the daemon publishes every tick on `intent`.
func writeIntentMessage(_ w: inout ByteWriter, seq: UInt64, t: Double, confidence: Float) {
    w.reset()
    w.raw("{\"v\":1,\"seq\":"); w.uint64(seq)
    w.raw(",\"t\":"); w.double(t)
    w.raw(",\"intent\":"); w.string("forward")
    w.raw(",\"level\":"); w.int(2)
    w.raw(",\"speed\":"); w.float(0.75)
    w.raw(",\"confidence\":"); w.float(confidence)
    w.raw(",\"source\":"); w.string(seq % 2 == 0 ? "model" : "fallback \"safe\"")
    w.raw(",\"latency_ms\":"); w.double(t * 1e-3 + 0.1)
    w.raw(",\"fallback\":"); w.bool(seq % 2 == 1)
    w.raw("}")
}

/// A frame like the simulator's: a full scan, three detections, odometry, a route hint.
let steadyStateFrameJSON: [UInt8] = {
    var rng = TestRNG(seed: 42)
    let frame = ObservationFrame(
        seq: 123_456, t: 6172.799999999999,
        ranges: (0..<ObservationFrame.beamCount).map { _ in Float.random(in: 0.2...8, using: &rng) },
        rangeMax: 8,
        detections: [Detection(colour: "red", kind: "box", bearing: 0.31, distance: 2.25),
                     Detection(colour: "grün \"x\"", kind: "ball", bearing: -0.5, distance: 4.1),
                     Detection(colour: "orange", kind: "cone", bearing: 0.01, distance: 7.9)],
        odom: Odometry(x: 1.25, y: -3.5, theta: 2.9, v: 0.4, w: -0.25), bump: false, battery: 0.8125,
        route: Route(bearing: -0.42, distance: 3.5))
    return Array(try! frame.jsonData())
}()

@Suite(.serialized) struct AllocCounterTests {
    @Test func countsSwiftAllocationsOnThisThread() throws {
        try #require(mgac_supported() == 1, "allocation counting needs Linux with glibc")
        #expect(mallocs { allocateProbes(1) } >= 1)
        #expect(frees { allocateProbes(1) } >= 1)
        #expect(mallocs { consume([Int](repeating: 7, count: 1000)) } >= 1)
        #expect(mallocs { consume(String(repeating: "long string ", count: 10)) } >= 1)
        #expect(mallocs { consume(42 + 1) } == 0)
    }

    @Test func countsCAllocatorCalls() throws {
        try #require(mgac_supported() == 1, "allocation counting needs Linux with glibc")
        var p: UnsafeMutableRawPointer?
        #expect(mallocs { p = malloc(100) } == 1)
        #expect(mallocs { p = realloc(p, 100_000) } == 1)   // a reallocation is one allocation ...
        #expect(frees { free(p) } == 1)                     // ... and this frees the block
        #expect(mallocs { p = calloc(10, 10) } == 1)
        #expect(frees { p = realloc(p, 0) } == 1)           // glibc: realloc(p, 0) frees p
        #expect(frees { free(nil) } == 0)
    }

    /// Exact only because this suite is serialized and no other suite switches counting on.
    @Test func countsNothingWhileDisabledAndNests() throws {
        try #require(mgac_supported() == 1, "allocation counting needs Linux with glibc")
        var start = mgac_thread_mallocs()
        allocateProbes(10)
        #expect(mgac_thread_mallocs() == start, "counted while disabled")
        mgac_enable(1)
        mgac_enable(1)
        mgac_enable(0)                            // one enable still active
        start = mgac_thread_mallocs()
        allocateProbes(10)
        #expect(mgac_thread_mallocs() - start >= 10)
        mgac_enable(0)                            // none left
        mgac_enable(0)                            // extra disables do not go below zero ...
        mgac_enable(1)                            // ... so one enable switches counting back on
        start = mgac_thread_mallocs()
        allocateProbes(10)
        #expect(mgac_thread_mallocs() - start >= 10)
        mgac_enable(0)
        start = mgac_thread_mallocs()
        allocateProbes(10)
        #expect(mgac_thread_mallocs() == start, "counted after the last disable")
    }

    @Test func processCountSeesOtherThreads() throws {
        try #require(mgac_supported() == 1, "allocation counting needs Linux with glibc")
        mgac_enable(1)
        defer { mgac_enable(0) }
        let process = mgac_mallocs()
        let mine = mgac_thread_mallocs()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            allocateProbes(100)
            done.signal()
        }
        thread.start()
        done.wait()
        #expect(mgac_mallocs() - process >= 100)
        #expect(mgac_thread_mallocs() - mine < 100)   // this thread did not make those
    }

    @Test func frameParserIsAllocationFreeInSteadyState() throws {
        try #require(mgac_supported() == 1, "allocation counting needs Linux with glibc")
        let parser = FrameParser()
        var frame = ObservationFrame.preallocated()
        var failures = 0
        try steadyStateFrameJSON.withUnsafeBytes { json in
            try #require(parser.parse(json, into: &frame) == nil)   // warm-up: one-time initialisation
            let n = mallocs {
                for _ in 0..<200 where parser.parse(json, into: &frame) != nil { failures += 1 }
            }
            #expect(n == 0, "mallocs in 200 parses")
        }
        #expect(failures == 0)
        #expect(frame.detections[1].colour == "grün \"x\"" && frame.ranges.count == 16)
        // The daemon's pattern: parse into a scratch frame, swap with the current one on success.
        var current = ObservationFrame.preallocated(), scratch = ObservationFrame.preallocated()
        steadyStateFrameJSON.withUnsafeBytes { json in
            let n = mallocs {
                for _ in 0..<50 {
                    if parser.parse(json, into: &scratch) == nil { swap(&current, &scratch) } else { failures += 1 }
                }
            }
            #expect(n == 0, "mallocs in 50 parse-and-swap ticks")
        }
        #expect(failures == 0 && current.seq == 123_456)
        // Rejections allocate nothing of their own either (the message is only built when printed).
        // Under Swift Testing each `throw` is boxed once for the test library's willThrow hook
        // (`_swift_willThrowTypedImpl`), so here the bound is one per rejection; a plain executable
        // such as mgptd has no hook and allocates nothing.
        let bad = Array("{\"v\":1,\"seq\":-1}".utf8)
        bad.withUnsafeBytes { json in
            _ = parser.parse(json, into: &frame)
            var errors = 0
            let n = mallocs { for _ in 0..<50 where parser.parse(json, into: &frame) != nil { errors += 1 } }
            #expect(n <= 50, "mallocs in 50 rejected parses")
            #expect(errors == 50)
        }
    }

    @Test func byteWriterIsAllocationFreeInSteadyState() throws {
        try #require(mgac_supported() == 1, "allocation counting needs Linux with glibc")
        var w = ByteWriter(capacity: 512)
        writeIntentMessage(&w, seq: 0, t: 0.1, confidence: 0.5)   // warm-up
        var sent = 0
        let n = mallocs {
            for i in 0..<200 {
                // Doubles with 17 significant digits: `description` would allocate for these.
                writeIntentMessage(&w, seq: UInt64(i), t: Double(i) * 0.1 + 0.30000000000000004,
                                   confidence: Float(i) / 199)
                w.withBytes { sent += $0.count }
            }
        }
        #expect(n == 0, "mallocs in 200 messages")
        #expect(sent > 200 * 100 && !w.overflowed)
        let message = try JSONSerialization.jsonObject(with: w.withBytes { Data($0) }) as? [String: Any]
        #expect(message?["source"] as? String == "fallback \"safe\"")
    }
}
