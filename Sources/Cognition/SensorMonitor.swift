import Foundation
import Observation

/// Sensor faults a fused frame can reveal, alone or against the previous frame. A real fusion
/// stack's diagnostics (ROS `diagnostic_aggregator`, a lidar driver's health topic) report the
/// same things; here they are read off the frames themselves, so a feeder needs no extra field —
/// and when it sends the sensors' message stamps (`stamps`), a stalled driver shows at once.
/// Raw values are bit positions in `SensorHealth.flags` (stable: telemetry and recordings).
public enum SensorCheck: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// The scanner delivered no beams.
    case scannerMissing = 0
    /// Every scanner beam below `range_max` repeats the previous frame's value to the millimetre,
    /// although beams carry ≈ 1 cm of noise: the scanner has stopped updating.
    case scannerFrozen = 1
    /// The median beam moved more between two frames than the robot's own motion can explain.
    case scannerNoisy = 2
    /// The bumper is pressed but no beam sees anything near the body.
    case contradiction = 3
    /// Odometry reads all zeros after it read something else since start.
    case odometryMissing = 4
    /// The odometry pose repeats exactly while its own speed says the robot moves.
    case odometryFrozen = 5
    /// The odometry speed or turn rate disagrees with how far its own pose moved since the last frame.
    case odometryNoisy = 6
    /// Every detection repeats the previous frame's bearing and distance exactly.
    case cameraFrozen = 7
    /// A detection's bearing jumped more than the robot's turn explains.
    case cameraNoisy = 8
    /// The camera reports nothing although an object it tracked should still be in view (its
    /// position carried forward by odometry lies well inside the field of view and range).
    case cameraMissing = 9
    /// The scan's stamp lags the frame's `t` by more than `SensorLimits.maxStampAge`: its driver
    /// stopped delivering (the frame repeats or lacks its last scan).
    case scannerStale = 10
    /// The detections' stamp lags `t` by more than `maxStampAge`.
    case cameraStale = 11
    /// The odometry stamp lags `t` by more than `maxStampAge`.
    case odometryStale = 12

    /// The snake_case name used in telemetry and `mgpt explain`.
    public var name: String { wireName.description }

    /// The same name as a static string (written on the tick without allocating).
    public var wireName: StaticString {
        switch self {
        case .scannerMissing: return "scanner_missing"
        case .scannerFrozen: return "scanner_frozen"
        case .scannerNoisy: return "scanner_noisy"
        case .contradiction: return "contradiction"
        case .odometryMissing: return "odometry_missing"
        case .odometryFrozen: return "odometry_frozen"
        case .odometryNoisy: return "odometry_noisy"
        case .cameraFrozen: return "camera_frozen"
        case .cameraNoisy: return "camera_noisy"
        case .cameraMissing: return "camera_missing"
        case .scannerStale: return "scanner_stale"
        case .cameraStale: return "camera_stale"
        case .odometryStale: return "odometry_stale"
        }
    }

    public var description: String { name }
}

/// Limits of the frame checks (`controller.sensor_checks.*` in robot.json). The defaults sit
/// above what nominal frames of the simulator reach (measured by `mgpt eval controller`, which
/// prints each score's nominal p99.9 next to its limit).
public struct SensorLimits: Sendable, Equatable {
    /// Median |Δrange| (m) between consecutive frames, after allowing for the robot's own
    /// translation, above which the scanner counts as noisy.
    public var scannerJump: Float = 0.06
    /// |odometry v − displacement / Δt| (m/s) above which odometry counts as noisy.
    public var odometrySpeedError: Float = 0.08
    /// |odometry w − Δθ / Δt| (rad/s) above which odometry counts as noisy.
    public var odometryTurnError: Float = 0.2
    /// |Δbearing + Δθ| (rad) of the best-matched detection above which the camera counts as noisy.
    public var cameraBearingJump: Float = 0.12
    /// Camera field of view (rad) and range (m) for `camera_missing`: a tracked object predicted
    /// within 0.15 rad of the field's edge or 0.5 m of its range may leave view legitimately.
    public var cameraFOV: Float = 2.0944, cameraRange: Float = 6
    /// Frames `camera_missing` may hold before the lost object is forgotten.
    public var cameraMissingFrames = 10
    /// A pressed bumper is a contradiction when the nearest beam is farther than this (m).
    public var bumpClearance: Float = 0.6
    /// Largest age (s) of a sensor's stamp against the frame's `t` (frames with `stamps` only):
    /// 50 ms is 2.5 periods of the simulator's 50 Hz sensors; a robot sets it from its slowest
    /// sensor's period plus its fusion latency.
    public var maxStampAge: Float = 0.05
    /// Whether the checks gate at all (false: they are still measured and reported).
    public var enabled = true

    /// Defaults.
    public init() {}
}

/// What the checks found on one frame.
public struct SensorHealth: Sendable, Equatable {
    /// Bit `SensorCheck.rawValue` set for every check that tripped.
    public var flags: UInt16 = 0
    /// The scores behind the noise checks (0 when a check had nothing to compare).
    public var scannerJump: Float = 0
    public var odometrySpeedError: Float = 0
    public var odometryTurnError: Float = 0
    public var cameraBearingJump: Float = 0

    /// No check tripped.
    public var isHealthy: Bool { flags == 0 }
    /// True when `check` tripped.
    public func has(_ check: SensorCheck) -> Bool { flags & (1 << UInt16(check.rawValue)) != 0 }
    /// The tripped checks' names, comma-separated ("" when healthy). Allocates: not for the tick.
    public var names: String { SensorCheck.allCases.filter(has).map(\.name).joined(separator: ",") }

    /// Healthy.
    public init() {}
}

/// Checks each decided frame against itself and the previous decided frame. Allocation-free:
/// the previous frame's readings are copied into buffers sized at init.
public final class SensorMonitor {
    /// Current limits.
    public var limits: SensorLimits
    private let prevRanges: UnsafeMutableBufferPointer<Float>
    private var prevRangeCount = 0
    private let prevBearings: UnsafeMutableBufferPointer<Float>
    private let prevDistances: UnsafeMutableBufferPointer<Float>
    private let prevColours: UnsafeMutableBufferPointer<UInt64>
    private var prevDetectionCount = 0
    private var prevOdom = Odometry(x: 0, y: 0, theta: 0, v: 0, w: 0)
    private var prevT = 0.0
    private var havePrevious = false
    /// The object last seen nearest (odometry frame), carried while the camera reports nothing.
    private var trackX: Float = 0, trackY: Float = 0, trackSeen = 0, missingFrames = 0
    /// Odometry has read something other than all zeros since the last reset (it starts at 0).
    private var odometrySeen = false

    /// A monitor with room for `maxRanges` beams and `maxDetections` detections per frame (the
    /// frame parser's limits).
    public init(limits: SensorLimits = .init(), maxRanges: Int = 64, maxDetections: Int = 8) {
        self.limits = limits
        prevRanges = .allocate(capacity: maxRanges)
        prevRanges.initialize(repeating: 0)
        prevBearings = .allocate(capacity: maxDetections)
        prevBearings.initialize(repeating: 0)
        prevDistances = .allocate(capacity: maxDetections)
        prevDistances.initialize(repeating: 0)
        prevColours = .allocate(capacity: maxDetections)
        prevColours.initialize(repeating: 0)
    }

    deinit {
        prevRanges.deallocate(); prevBearings.deallocate(); prevDistances.deallocate(); prevColours.deallocate()
    }

    /// Forgets the previous frame (a new episode, or a gap in the stream).
    public func reset() { havePrevious = false; odometrySeen = false; trackSeen = 0 }

    /// An 8-byte fingerprint of colour + kind, so detections can be matched without Strings.
    @inline(__always) private static func key(_ d: Detection) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in d.colour.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        h = (h ^ 0x2f) &* 0x100000001b3
        for b in d.kind.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h
    }

    /// Checks `frame` and remembers it as the previous frame.
    public func check(_ frame: ObservationFrame) -> SensorHealth {
        var h = SensorHealth()
        func set(_ c: SensorCheck) { h.flags |= 1 << UInt16(c.rawValue) }
        let L = limits
        let ranges = frame.ranges, n = ranges.count
        let dt = havePrevious ? frame.t - prevT : 0
        let comparable = havePrevious && dt > 1e-3 && dt < 1.0   // a gap of ≥ 1 s is a restart
        if n == 0 { set(.scannerMissing) }
        if let st = frame.stamps {   // when the feeder reports them: a stalled driver, at once
            let age = Double(L.maxStampAge)
            if let s = st.scanner, frame.t - s > age { set(.scannerStale) }
            if let s = st.camera, frame.t - s > age { set(.cameraStale) }
            if let s = st.odom, frame.t - s > age { set(.odometryStale) }
        }
        var nearest = Float.infinity
        for r in ranges where r < nearest { nearest = r }
        if frame.bump && n > 0 && nearest > L.bumpClearance { set(.contradiction) }
        let o = frame.odom, po = prevOdom
        let odomZero = o.x == 0 && o.y == 0 && o.theta == 0 && o.v == 0 && o.w == 0
        let prevOdomZero = po.x == 0 && po.y == 0 && po.theta == 0 && po.v == 0 && po.w == 0
        if comparable {
            // Scanner: frozen = every comparable beam identical; noisy = median change beyond the
            // robot's own translation (rotation moves beams sideways, which the median tolerates).
            if n > 0 && n == prevRangeCount {
                // Beam i now points where the previous frame's beam i + s pointed, s = Δθ / beam
                // spacing (odometry's turn): compare against the previous scan interpolated there.
                let turn = odomZero || prevOdomZero ? 0 : Self.wrap(o.theta - po.theta)
                let shift = turn / (2 * .pi / Float(n))
                var same = 0, compared = 0
                var diffs = SIMD64<Float>(repeating: 0)
                let maxR = frame.rangeMax
                for i in 0..<min(n, 64) where ranges[i] < maxR && prevRanges[i] < maxR {
                    if ranges[i] == prevRanges[i] { same += 1 }
                    let at = Float(i) + shift
                    let lo = Int(at.rounded(.down)), frac = at - Float(lo)
                    let a = prevRanges[((lo % n) + n) % n], b = prevRanges[(((lo + 1) % n) + n) % n]
                    guard a < maxR && b < maxR else { continue }
                    // The nearer of the two neighbours and their blend: a beam at an edge between
                    // a near and a far surface may legitimately jump to either.
                    let blend = a + (b - a) * frac
                    diffs[compared] = min(abs(ranges[i] - blend), abs(ranges[i] - a), abs(ranges[i] - b))
                    compared += 1
                }
                if compared >= 4 && same == compared { set(.scannerFrozen) }
                if compared >= 4 {
                    let median = Self.median(&diffs, count: compared)
                    let ownMotion = abs(o.v) * Float(dt)
                    h.scannerJump = max(0, median - ownMotion)
                    if h.scannerJump > L.scannerJump { set(.scannerNoisy) }
                }
            }
            // Odometry.
            if odomZero && odometrySeen { set(.odometryMissing) }
            if !odomZero {
                let moved = o.x != po.x || o.y != po.y || o.theta != po.theta
                if !moved && (abs(o.v) > 0.02 || abs(o.w) > 0.05) { set(.odometryFrozen) }
                if !prevOdomZero {
                    let (dx, dy) = (o.x - po.x, o.y - po.y)
                    let dTheta = Self.wrap(o.theta - po.theta)
                    let mid = po.theta + 0.5 * dTheta
                    let along = (dx * cosf(mid) + dy * sinf(mid)) / Float(dt)
                    // The pose integrates the speeds between frames; compare it with the mean of
                    // the two readings (the robot may accelerate in between); the same for the turn.
                    let vErr = abs(0.5 * (o.v + po.v) - along)
                    h.odometrySpeedError = vErr
                    h.odometryTurnError = abs(0.5 * (o.w + po.w) - dTheta / Float(dt))
                    if vErr > L.odometrySpeedError || h.odometryTurnError > L.odometryTurnError { set(.odometryNoisy) }
                }
            }
            // Camera: frozen = every detection identical; noisy = the best match's bearing moved
            // more than the robot turned.
            let dets = frame.detections, m = min(dets.count, prevBearings.count)
            if m > 0 && m == prevDetectionCount {
                var identical = true
                for i in 0..<m where dets[i].bearing != prevBearings[i] || dets[i].distance != prevDistances[i] { identical = false }
                if identical { set(.cameraFrozen) }
            }
            if m > 0 && prevDetectionCount > 0 && !odomZero && !prevOdomZero {
                let turned = o.theta - po.theta
                var worst: Float = 0
                for i in 0..<m {
                    let k = Self.key(dets[i])
                    var best = Float.infinity
                    for j in 0..<prevDetectionCount where prevColours[j] == k {
                        best = min(best, abs(Self.wrap(dets[i].bearing - prevBearings[j] + turned)))
                    }
                    if best.isFinite { worst = max(worst, best) }
                }
                h.cameraBearingJump = worst
                if worst > L.cameraBearingJump { set(.cameraNoisy) }
            }
        }
        // Camera: an object seen in ≥ 2 frames that vanished while odometry says it is still in view.
        if !odomZero {
            if let nearest = frame.detections.min(by: { $0.distance < $1.distance }) {
                let a = o.theta + nearest.bearing
                trackX = o.x + nearest.distance * cosf(a)
                trackY = o.y + nearest.distance * sinf(a)
                trackSeen += 1
                missingFrames = 0
            } else if trackSeen >= 2 {
                let (rx, ry) = (trackX - o.x, trackY - o.y)
                let dist = (rx * rx + ry * ry).squareRoot()
                let bearing = Self.wrap(atan2f(ry, rx) - o.theta)
                // Line of sight: the scanner beam toward the predicted bearing must reach the
                // object (an occluder in front would explain why the camera lost it).
                var clear = true
                if n > 0 {
                    let k = Int((bearing / (2 * .pi / Float(n))).rounded())
                    clear = ranges[((k % n) + n) % n] >= dist - 0.5
                }
                if abs(bearing) < L.cameraFOV / 2 - 0.15 && dist > 0.3 && dist < L.cameraRange - 0.5 && clear
                    && missingFrames < L.cameraMissingFrames {
                    // Latched for at most `cameraMissingFrames` frames: a stopped robot keeps
                    // predicting the same view, and an object the camera truly cannot see (not a
                    // fault) must not hold the fallback forever.
                    set(.cameraMissing)
                    missingFrames += 1
                } else {
                    trackSeen = 0   // left the view: nothing to expect any more
                }
            }
        }
        // Remember this frame.
        prevRangeCount = min(n, prevRanges.count)
        for i in 0..<prevRangeCount { prevRanges[i] = ranges[i] }
        let dets = frame.detections
        prevDetectionCount = min(dets.count, prevBearings.count)
        for i in 0..<prevDetectionCount {
            prevBearings[i] = dets[i].bearing; prevDistances[i] = dets[i].distance; prevColours[i] = Self.key(dets[i])
        }
        prevOdom = o
        if !odomZero { odometrySeen = true }
        prevT = frame.t
        havePrevious = true
        return h
    }

    @inline(__always) static func wrap(_ a: Float) -> Float {
        var x = a
        while x > .pi { x -= 2 * .pi }
        while x < -.pi { x += 2 * .pi }
        return x
    }

    /// Median of the first `count` lanes (insertion sort: ≤ 64 values, no allocation).
    static func median(_ v: inout SIMD64<Float>, count: Int) -> Float {
        for i in 1..<count {
            let x = v[i]
            var j = i - 1
            while j >= 0 && v[j] > x { v[j + 1] = v[j]; j -= 1 }
            v[j + 1] = x
        }
        return count % 2 == 1 ? v[count / 2] : 0.5 * (v[count / 2 - 1] + v[count / 2])
    }
}
