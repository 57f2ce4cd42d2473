#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wakes at absolute deadlines on the monotonic clock (`next += period; sleep_until(next)`), so
/// the rate never drifts. When a cycle overruns by a whole period or more, the missed deadlines
/// are skipped and counted rather than run back to back.
///
/// Shortcut: the loop runs on the main thread with default scheduling and timer slack; the
/// daemon's loop (Sources/Runtime) is the one with SCHED_FIFO / PR_SET_TIMERSLACK options.
struct RateClock {
    /// Period in nanoseconds.
    let periodNs: Int64
    /// Next deadline (monotonic nanoseconds).
    private(set) var next: Int64
    /// Deadlines skipped because a cycle overran.
    private(set) var skipped = 0
    /// Worst wake-up lateness seen, in nanoseconds.
    private(set) var maxLateNs: Int64 = 0

    /// A clock ticking at `hz`, first deadline one period from now.
    init(hz: Double) {
        periodNs = Int64((1e9 / hz).rounded())
        next = RateClock.now() + periodNs
    }

    /// Monotonic time in nanoseconds.
    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Sleeps until the next deadline and schedules the one after.
    mutating func waitNext() {
        var ts = timespec(tv_sec: Int(next / 1_000_000_000), tv_nsec: Int(next % 1_000_000_000))
        #if canImport(Glibc)
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
        #else
        let wait = next - RateClock.now()
        if wait > 0 { usleep(useconds_t(wait / 1000)) }
        #endif
        let late = RateClock.now() - next
        maxLateNs = max(maxLateNs, late)
        next += periodNs
        if late >= periodNs {
            let missed = late / periodNs
            skipped += Int(missed)
            next += missed * periodNs
        }
    }
}

/// Set by SIGINT / SIGTERM; loops poll it and end cleanly (printing their metrics).
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

/// Installs the SIGINT / SIGTERM handlers that set `stopRequested`.
func installStopHandlers() {
    signal(SIGINT) { _ in stopRequested = 1 }
    signal(SIGTERM) { _ in stopRequested = 1 }
}
