/// Turns an `ObservationFrame` into a short, bounded sequence of observation token indices.
///
/// The tokenizer reserves a block of 64 observation tokens; index `k` here is the `k`-th of them
/// (the engine does that mapping; the last one is the frame-end marker). This encoder uses
/// `tokenCount` (≤ 63) of them and never emits
/// more than `maxTokensPerFrame` per frame. The same code builds the training corpus (in the
/// simulator) and encodes live frames (in the daemon), so both see identical tokens.
///
/// Token layout of one frame, in order (each bucket edge is a named constant below):
///
/// 1. scanner: 5 sector tokens `L, FL, F, FR, R`, each the sector's minimum range bucketed into
///    `blocked / near / mid / far` — or the single token `scan_missing` when the scan is absent;
/// 2. motion: one of `stopped / slow / fast / reverse` (from odometry speed), then `turning_left` /
///    `turning_right` when the odometry turn rate exceeds `turningRate`;
/// 2b. route (frame v2): the planner's carrot bearing in 9 sectors (`route_ahead`,
///    `route_slight_left`, … `route_back_right`), then `route_close` when less than `routeClose`
///    metres are left, or `route_arrived` at the stopping point — nothing when the frame has no route;
/// 3. camera: up to 2 detections (nearest first), each `colour` + `where` (bearing × distance),
///    or the single token `no_detection`;
/// 4. `bump` when the bumper is pressed; `battery_low` / `battery_critical` when low.
///
/// `encode(_:into:)` allocates nothing when `out` already has capacity `maxTokensPerFrame`.
public struct ObservationEncoder: Sendable {
    /// Number of distinct observation token indices this encoder can emit (≤ 63: the 64th reserved
    /// token is the frame-end marker).
    public static let tokenCount = 63
    /// Upper bound on the number of tokens emitted for one frame.
    public static let maxTokensPerFrame = 15
    /// Detections encoded per frame (nearest first); more are ignored.
    public static let maxDetections = 2

    // MARK: - Bucket edges (metres, radians, m/s, fraction of charge)

    /// Range below which a sector is `blocked` (robot radius 0.2 m + 0.15 m gap).
    public static let blockedRange: Float = 0.35
    /// Range below which a sector is `near`.
    public static let nearRange: Float = 0.7
    /// Range below which a sector is `mid` (else `far`).
    public static let midRange: Float = 1.5
    /// |bearing| below which a detection is `ahead`.
    public static let aheadBearing: Float = 0.2
    /// |bearing| below which a detection is `left`/`right` (else `far_left`/`far_right`).
    public static let sideBearing: Float = 0.6
    /// Distance below which a detection is `close` (the task's reach distance).
    public static let closeDistance: Float = 0.8
    /// Distance below which a detection is `mid` (else `far`).
    public static let midDistance: Float = 2.5
    /// |speed| below which the robot is `stopped`.
    public static let stoppedSpeed: Float = 0.03
    /// Speed below which the robot is `slow` (else `fast`).
    public static let slowSpeed: Float = 0.3
    /// Charge below which `battery_low` is emitted.
    public static let lowBattery: Float = 0.2
    /// Charge below which `battery_critical` is emitted instead.
    public static let criticalBattery: Float = 0.05

    /// Colours with their own token, in token order; any other colour maps to `colour_other`.
    public static let knownColours = ["red", "green", "blue", "yellow", "purple"]

    // MARK: - Token index layout

    /// First sector token: index = `sectorBase + sector * 4 + level` (sector L, FL, F, FR, R;
    /// level blocked, near, mid, far).
    public static let sectorBase = 0
    /// The scan was absent (empty or short `ranges`).
    public static let scanMissing = 20
    /// First colour token: red, green, blue, yellow, purple, other.
    public static let colourBase = 21
    /// First `where` token: index = `whereBase + bearing * 3 + distance` (bearing far_left, left,
    /// ahead, right, far_right; distance close, mid, far).
    public static let whereBase = 27
    /// Nothing in the camera's field of view.
    public static let noDetection = 42
    /// The bumper is pressed.
    public static let bump = 43
    /// Battery below `lowBattery`.
    public static let batteryLow = 44
    /// Battery below `criticalBattery`.
    public static let batteryCritical = 45
    /// First motion token: stopped, slow, fast, reverse.
    public static let motionBase = 46
    /// Turning left (odometry turn rate above `turningRate`): proprioception, so a policy whose
    /// context holds no actions still knows which way it is already turning.
    public static let turningLeft = 50
    /// Turning right (turn rate below −`turningRate`).
    public static let turningRight = 51
    /// Turn rate (rad/s) above which the robot counts as turning: a quarter of the slowest commanded
    /// turn (TURN_*(0.25) × 2 rad/s = 0.5 rad/s).
    public static let turningRate: Float = 0.125

    /// First route-bearing token: index = `routeBase + level`, level 0 `back_left` … 4 `ahead` …
    /// 8 `back_right` (`routeBearingLevel`).
    public static let routeBase = 52
    /// Less than `routeClose` metres of route are left.
    public static let routeCloseToken = 61
    /// The route's stopping point is reached (`route.distance == 0`).
    public static let routeArrivedToken = 62
    /// Edges of the route-bearing sectors (|bearing|, radians): `ahead` below the first, then
    /// `slight`, plain, `sharp`, `back`. They are the tracker's own thresholds (ExpertPolicy:
    /// align within 0.15 rad in tight spots, turn in place above 0.35, faster above 0.5 and 1.0),
    /// so a policy that reads these tokens can make the same decisions.
    public static let routeBearingEdges: (Float, Float, Float, Float) = (0.15, 0.35, 0.5, 1.0)
    /// Route distance (m) below which `route_close` is emitted (the tracker slows down).
    public static let routeClose: Float = 0.8

    /// Scanner beams (indices into `ranges`, beam i at i·22.5° CCW) that make up each sector, as
    /// `encode` reads them: L = 67.5°, 90°; FL = 45°; F = −22.5°, 0°, 22.5°; FR = −45°;
    /// R = −90°, −67.5°.
    public static let sectorBeams: [[Int]] = [[3, 4], [2], [15, 0, 1], [14], [12, 13]]

    /// An encoder (stateless; one can be shared).
    public init() {}

    /// Encodes `frame` into `out`, replacing its contents, and returns the number of tokens
    /// (≤ `maxTokensPerFrame`). Allocates nothing when `out.capacity >= maxTokensPerFrame`.
    @discardableResult
    public func encode(_ frame: ObservationFrame, into out: inout [Int]) -> Int {
        let m = Self.maxTokensPerFrame
        out.removeAll(keepingCapacity: true)
        if out.capacity < m { out.reserveCapacity(m) }  // allocates only on a too-small buffer
        for _ in 0..<m { out.append(0) }
        let n = out.withUnsafeMutableBufferPointer { encode(frame, into: $0) }
        out.removeLast(m - n)
        return n
    }

    /// Encodes `frame` into the first tokens of `out` (which must hold at least
    /// `maxTokensPerFrame`) and returns how many were written. Never allocates.
    public func encode(_ frame: ObservationFrame, into out: UnsafeMutableBufferPointer<Int>) -> Int {
        precondition(out.count >= Self.maxTokensPerFrame, "output buffer too small")
        var n = 0
        // 1. Scanner: five sectors, or one `scan_missing`. Beams by index (beam i at i·22.5°).
        //    Written out by hand: no iterator, no table of arrays, nothing to allocate.
        let r = frame.ranges
        if r.count >= ObservationFrame.beamCount {
            out[n] = Self.sectorBase + 0 * 4 + Self.rangeLevel(min(r[3], r[4])); n += 1          // L
            out[n] = Self.sectorBase + 1 * 4 + Self.rangeLevel(r[2]); n += 1                     // FL
            out[n] = Self.sectorBase + 2 * 4 + Self.rangeLevel(min(r[15], min(r[0], r[1]))); n += 1  // F
            out[n] = Self.sectorBase + 3 * 4 + Self.rangeLevel(r[14]); n += 1                    // FR
            out[n] = Self.sectorBase + 4 * 4 + Self.rangeLevel(min(r[12], r[13])); n += 1        // R
        } else {
            out[n] = Self.scanMissing; n += 1
        }
        // 2. Motion from odometry.
        out[n] = Self.motionBase + Self.motionLevel(frame.odom.v); n += 1
        if frame.odom.w > Self.turningRate { out[n] = Self.turningLeft; n += 1 }
        else if frame.odom.w < -Self.turningRate { out[n] = Self.turningRight; n += 1 }
        // 2b. Route hint from the global planner (absent: no tokens).
        if let route = frame.route {
            out[n] = Self.routeBase + Self.routeBearingLevel(route.bearing); n += 1
            if !(route.distance > 0) { out[n] = Self.routeArrivedToken; n += 1 }
            else if route.distance < Self.routeClose { out[n] = Self.routeCloseToken; n += 1 }
        }
        // 3. Camera: the nearest `maxDetections` detections (frames list them nearest first, but
        //    a faulty sender may not: pick the nearest without sorting, to stay allocation-free).
        let dets = frame.detections
        if dets.isEmpty {
            out[n] = Self.noDetection; n += 1
        } else {
            var first = -1, second = -1
            for i in dets.indices {
                let d = dets[i].distance
                if first < 0 || d < dets[first].distance { second = first; first = i }
                else if second < 0 || d < dets[second].distance { second = i }
            }
            for k in 0..<Self.maxDetections {
                let i = k == 0 ? first : second
                if i < 0 { break }
                out[n] = Self.colourBase + Self.colourIndex(dets[i].colour); n += 1
                out[n] = Self.whereBase + Self.bearingLevel(dets[i].bearing) * 3
                    + Self.distanceLevel(dets[i].distance); n += 1
            }
        }
        // 4. Alarms.
        if frame.bump { out[n] = Self.bump; n += 1 }
        if frame.battery < Self.criticalBattery { out[n] = Self.batteryCritical; n += 1 }
        else if frame.battery < Self.lowBattery { out[n] = Self.batteryLow; n += 1 }
        return n
    }

    // MARK: - Buckets

    /// 0 blocked, 1 near, 2 mid, 3 far. Non-finite or negative readings count as blocked.
    static func rangeLevel(_ r: Float) -> Int {
        if !(r >= blockedRange) { return 0 }
        if r < nearRange { return 1 }
        if r < midRange { return 2 }
        return 3
    }

    /// 0 stopped, 1 slow, 2 fast, 3 reverse.
    static func motionLevel(_ v: Float) -> Int {
        if abs(v) < stoppedSpeed || !v.isFinite { return 0 }
        if v < 0 { return 3 }
        return v < slowSpeed ? 1 : 2
    }

    /// 0 far_left, 1 left, 2 ahead, 3 right, 4 far_right.
    static func bearingLevel(_ b: Float) -> Int {
        let a = abs(b)
        if !(a >= aheadBearing) { return 2 }
        if a < sideBearing { return b > 0 ? 1 : 3 }
        return b > 0 ? 0 : 4
    }

    /// 0 back_left, 1 sharp_left, 2 left, 3 slight_left, 4 ahead, 5 slight_right, 6 right,
    /// 7 sharp_right, 8 back_right. A non-finite bearing counts as `ahead`.
    static func routeBearingLevel(_ b: Float) -> Int {
        let a = abs(b), e = routeBearingEdges
        let side: Int
        if !(a >= e.0) { return 4 }
        if a < e.1 { side = 1 } else if a < e.2 { side = 2 } else if a < e.3 { side = 3 } else { side = 4 }
        return b > 0 ? 4 - side : 4 + side
    }

    /// 0 close, 1 mid, 2 far.
    static func distanceLevel(_ d: Float) -> Int {
        if !(d >= closeDistance) { return 0 }
        return d < midDistance ? 1 : 2
    }

    /// Index into `knownColours`, or `knownColours.count` (other) for any other name.
    static func colourIndex(_ c: String) -> Int {
        // `==` rather than `switch`: pattern matching goes through generic `~=`, which allocates
        // in unoptimised builds.
        if c == "red" { return 0 }
        if c == "green" { return 1 }
        if c == "blue" { return 2 }
        if c == "yellow" { return 3 }
        if c == "purple" { return 4 }
        return 5
    }

    /// A readable name for token index `k` (e.g. `F_near`, `red`, `ahead_close`), for logs,
    /// tokenizer vocabularies and debugging; `nil` outside `0..<tokenCount`.
    public static func tokenName(_ k: Int) -> String? {
        let sectors = ["L", "FL", "F", "FR", "R"], levels = ["blocked", "near", "mid", "far"]
        let bearings = ["far_left", "left", "ahead", "right", "far_right"]
        let distances = ["close", "mid", "far"], motions = ["stopped", "slow", "fast", "reverse"]
        let routes = ["back_left", "sharp_left", "left", "slight_left", "ahead",
                      "slight_right", "right", "sharp_right", "back_right"]
        switch k {
        case 0..<20: return "\(sectors[k / 4])_\(levels[k % 4])"
        case scanMissing: return "scan_missing"
        case colourBase..<(colourBase + 6): return k - colourBase < 5 ? knownColours[k - colourBase] : "colour_other"
        case whereBase..<(whereBase + 15):
            let w = k - whereBase
            return "\(bearings[w / 3])_\(distances[w % 3])"
        case noDetection: return "no_detection"
        case bump: return "bump"
        case batteryLow: return "battery_low"
        case batteryCritical: return "battery_critical"
        case motionBase..<(motionBase + 4): return motions[k - motionBase]
        case turningLeft: return "turning_left"
        case turningRight: return "turning_right"
        case routeBase..<(routeBase + 9): return "route_" + routes[k - routeBase]
        case routeCloseToken: return "route_close"
        case routeArrivedToken: return "route_arrived"
        default: return nil
        }
    }
}
