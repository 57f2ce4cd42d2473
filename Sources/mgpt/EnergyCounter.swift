import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// CPU energy from Linux RAPL ("Running Average Power Limit") through the powercap sysfs interface
/// (kernel `Documentation/power/powercap/powercap.rst`): each package zone
/// `/sys/class/powercap/intel-rapl:N/` has `energy_uj`, a monotonically increasing µJ counter that
/// wraps at `max_energy_range_uj`. AMD Zen CPUs expose the same `intel-rapl` zones on recent kernels
/// (`amd_energy`/RAPL MSR support, Linux ≥ 5.8).
///
/// What it measures: the whole package (every core, every process), not this process alone, so it is
/// meaningful on an otherwise idle machine. Only the top-level `intel-rapl:N` zones are summed (the
/// sub-zones `intel-rapl:N:M` are parts of their package and would count twice). A counter can wrap
/// more than once only between two reads far apart (≈ 260 J range: minutes at full load); one wrap
/// per zone between `start` and `stop` is handled.
struct EnergyCounter {
    /// One package zone: its counter file and wrap range.
    struct Zone { var energyPath: String; var maxRange: UInt64 }

    /// The readable package zones (empty when unavailable; see `unavailableReason`).
    let zones: [Zone]
    /// Why no energy can be measured, or nil when `zones` is usable.
    let unavailableReason: String?

    static let root = "/sys/class/powercap"

    /// Finds the package zones and checks that each counter can be read now.
    init() {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: Self.root) else {
            zones = []
            unavailableReason = "\(Self.root) is missing (no powercap/RAPL driver exposed here, e.g. a VM or container without it)"
            return
        }
        // Top-level package zones only: "intel-rapl:0", "intel-rapl:1", … (not "intel-rapl:0:0").
        let packages = names.filter { $0.hasPrefix("intel-rapl:") && $0.split(separator: ":").count == 2 }.sorted()
        guard !packages.isEmpty else {
            zones = []
            unavailableReason = "no intel-rapl:N zone under \(Self.root) (found: \(names.sorted().joined(separator: ", ")))"
            return
        }
        var found: [Zone] = []
        for p in packages {
            let energy = "\(Self.root)/\(p)/energy_uj"
            guard Self.readCounter(energy) != nil else {
                zones = []
                // Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694, a power side channel).
                unavailableReason = errno == EACCES || errno == EPERM
                    ? "\(energy): permission denied (root-only since Linux 5.10, CVE-2020-8694; run as root or chmod o+r it)"
                    : "\(energy): cannot be read (\(String(cString: strerror(errno))))"
                return
            }
            let range = Self.readCounter("\(Self.root)/\(p)/max_energy_range_uj") ?? UInt64.max
            found.append(Zone(energyPath: energy, maxRange: range))
        }
        zones = found
        unavailableReason = nil
    }

    /// True when `read()` measures something.
    var available: Bool { unavailableReason == nil }

    /// Current counter of every zone, µJ (nil when a read fails).
    func read() -> [UInt64]? {
        var values: [UInt64] = []
        for z in zones {
            guard let v = Self.readCounter(z.energyPath) else { return nil }
            values.append(v)
        }
        return values
    }

    /// µJ used between two `read()` results, over all zones, allowing one wrap per zone.
    func microjoules(from start: [UInt64], to end: [UInt64]) -> Double {
        var total: UInt64 = 0
        for (i, z) in zones.enumerated() {
            total += end[i] >= start[i] ? end[i] - start[i] : (z.maxRange - start[i]) + end[i]
        }
        return Double(total)
    }

    /// Reads one decimal counter file with POSIX calls (keeps `errno` for the reason text).
    private static func readCounter(_ path: String) -> UInt64? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return UInt64(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// CPU time the calling thread has used, ns (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, clock_gettime(2)):
/// user + system time of this thread only, so libzmq's I/O threads and other processes are not in it.
func threadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
