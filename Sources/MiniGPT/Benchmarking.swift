import Foundation

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC): what every latency figure is measured with.
@inline(__always) public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// CPU time this thread has used, in nanoseconds (CLOCK_THREAD_CPUTIME_ID). On a shared machine
/// wall-clock percentiles include time spent descheduled; CPU time per step does not.
public func threadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Order statistics of a set of samples (e.g. per-token latencies in µs).
public struct LatencyStats: Sendable, Codable {
    /// Number of samples.
    public var count: Int
    /// Percentiles by the nearest-rank method.
    public var p50: Double, p90: Double, p99: Double, p999: Double, max: Double, mean: Double

    /// Summarises `samples` (must not be empty).
    public init(_ samples: [Double]) {
        precondition(!samples.isEmpty, "no samples")
        let s = samples.sorted()
        func rank(_ q: Double) -> Double { s[Swift.min(s.count - 1, Swift.max(0, Int((q * Double(s.count)).rounded(.up)) - 1))] }
        count = s.count
        p50 = rank(0.5); p90 = rank(0.9); p99 = rank(0.99); p999 = rank(0.999)
        max = s.last!
        mean = s.reduce(0, +) / Double(s.count)
    }
}

/// Measures how long one core takes to stream `bytes` of memory that does not fit in L2 — the
/// floor for a decode step that must read every weight once. Reads a buffer of that size over and
/// over (summing with SIMD so nothing is optimised away) and returns the median pass in µs.
public func streamingFloorMicros(bytes: Int, passes: Int = 200) -> Double {
    let n = Swift.max(16, bytes / 4 / 16 * 16)
    let buf = FloatBuffer(count: n)
    for i in 0..<n { buf.pointer[i] = Float(i & 7) }
    var sink: Float = 0
    var times: [Double] = []
    for _ in 0..<passes {
        let t0 = monotonicNanos()
        var a0 = SIMD16<Float>(repeating: 0), a1 = a0, a2 = a0, a3 = a0
        var i = 0
        let p = buf.pointer
        while i + 64 <= n {
            a0 += load16(p + i); a1 += load16(p + i + 16); a2 += load16(p + i + 32); a3 += load16(p + i + 48)
            i += 64
        }
        sink += (a0 + a1 + a2 + a3).sum()
        times.append(Double(monotonicNanos() - t0) / 1000)
    }
    if sink == .infinity { print("") }  // keeps `sink` alive
    return LatencyStats(times).p50
}

extension Session {
    /// Moves the write position back to `position` (≤ the current one): later positions are
    /// forgotten and will be overwritten. Used to re-run a step at a fixed cache length.
    public func rewind(to position: Int) {
        precondition(position >= 0 && position <= self.position, "rewind beyond the cached positions")
        setPosition(position)
    }
}
