import Foundation
import CRealTime
#if canImport(Glibc)
import Glibc
#endif

/// Best-effort real-time setup of the calling thread (ros2_control style: each refusal is reported
/// with errno and a hint, never fatal). Returns one human-readable line per choice made.
public enum RealTime {
    /// Timer slack 1 ns: the default 50 µs slack makes every absolute-deadline wake 50–100 µs late
    /// (measured on these machines; prctl(2) PR_SET_TIMERSLACK).
    public static func setTimerSlack() -> String {
        let rc = mgrt_set_timer_slack(1)
        return rc == 0 ? "timer slack: 1 ns" : "timer slack: kept the default (prctl: \(String(cString: strerror(rc))))"
    }

    /// SCHED_FIFO at `priority` for this thread (sched(7)); needs CAP_SYS_NICE or root.
    public static func setFIFO(priority: Int) -> String {
        guard priority > 0 else { return "scheduler: default (loop.realtime.priority = 0)" }
        #if os(Linux)
        var param = sched_param()
        param.sched_priority = Int32(priority)
        let rc = pthread_setschedparam(pthread_self(), Int32(SCHED_FIFO), &param)
        if rc == 0 { return "scheduler: SCHED_FIFO priority \(priority)" }
        return "scheduler: SCHED_FIFO refused (\(String(cString: strerror(rc)))); hint: run as root, grant CAP_SYS_NICE, or set LimitRTPRIO in the systemd unit"
        #else
        return "scheduler: SCHED_FIFO not supported on this OS"
        #endif
    }

    /// Pins this thread to `cpus` (sched_setaffinity(2)).
    public static func setAffinity(_ cpus: [Int]) -> String {
        guard !cpus.isEmpty else { return "cpu affinity: any CPU" }
        let rc = cpus.map(Int32.init).withUnsafeBufferPointer { mgrt_set_affinity($0.baseAddress, Int32($0.count)) }
        if rc == 0 { return "cpu affinity: \(cpus)" }
        return "cpu affinity: refused (\(String(cString: strerror(rc)))); hint: check the CPU numbers exist (nproc)"
    }

    /// Locks current and future pages in RAM (mlockall(2)) so no page fault lands in a tick.
    public static func lockMemory(_ on: Bool) -> String {
        guard on else { return "memory lock: off" }
        if mlockall(Int32(MCL_CURRENT | MCL_FUTURE)) == 0 { return "memory lock: mlockall(MCL_CURRENT|MCL_FUTURE)" }
        return "memory lock: refused (\(String(cString: strerror(errno)))); hint: raise RLIMIT_MEMLOCK (LimitMEMLOCK=infinity in systemd)"
    }

    /// Sleeps until the absolute CLOCK_MONOTONIC time `deadline` (ns), resuming after signals.
    @inline(__always)
    public static func sleep(until deadline: UInt64) {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }

    /// Waits until `fd` is readable or the absolute CLOCK_MONOTONIC time `deadline` (ns), with a
    /// nanosecond timeout (ppoll(2)). 1: readable, 0: deadline reached, < 0: -errno.
    @inline(__always)
    public static func waitReadable(_ fd: Int32, until deadline: UInt64) -> Int32 {
        mgrt_wait_readable(fd, deadline)
    }

    /// Names the calling thread (visible in `top -H`, `ps -L`, gdb); best effort.
    public static func setThreadName(_ name: String) {
        _ = name.withCString { mgrt_set_thread_name($0) }
    }

    /// Wall-clock time in ns since the Unix epoch (CLOCK_REALTIME), for messages only.
    @inline(__always)
    public static func wallNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
