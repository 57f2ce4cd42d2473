import Foundation
import Observation

/// A moving obstacle's state: a disc shuttling between two points.
public struct Mover: Sendable {
    /// Current centre.
    public var position: Vec2
    /// Disc radius.
    public let radius: Double
    /// The two ends of its track.
    public let a: Vec2, b: Vec2
    /// Speed in m/s.
    public let speed: Double
    /// True while heading towards `b`.
    public var towardsB = true
}

/// A coloured object in the world.
public struct WorldObject: Sendable {
    /// Id from the scenario.
    public let id: String
    /// Colour name.
    public let colour: String
    /// Kind name.
    public let kind: String
    /// Centre.
    public let position: Vec2
    /// Radius.
    public let radius: Double
}

/// The simulated world: rooms, obstacles, objects and one differential-drive robot.
///
/// Fixed-step physics at `RobotParams.tickRate`. Each tick: `sense()` fuses the sensors into an
/// `ObservationFrame` for the current state, then `step(_:)` applies an intent through the
/// low-level controller, moves everything and detects collisions. Same scenario → same frames.
public struct World: Sendable {
    /// The scenario this world was built from.
    public let scenario: Scenario
    /// Walls (outer and interior) and static obstacles.
    public let rects: [Rect]
    /// Moving obstacles.
    public private(set) var movers: [Mover]
    /// Coloured objects.
    public let objects: [WorldObject]
    /// Index of the task's target in `objects`.
    public let targetIndex: Int
    /// The episode's instruction text.
    public let instruction: String

    /// True robot position.
    public private(set) var position: Vec2
    /// True robot heading in radians.
    public private(set) var heading: Double
    /// Actual forward speed (m/s) and turn rate (rad/s).
    public private(set) var speed = 0.0, turnRate = 0.0
    /// State of charge in [0, 1].
    public private(set) var battery: Double
    /// Ticks simulated so far; also the `seq` of the next frame.
    public private(set) var tick = 0
    /// True when the last step pushed the robot into something.
    public private(set) var contact = false
    /// Number of collisions so far (contact that begins; staying in contact counts once).
    public private(set) var collisions = 0
    /// Ticks sensed while at least one fault was active (only the simulator knows).
    public private(set) var faultTicks = 0
    /// Metres the robot's centre has travelled (the true path, for SPL).
    public private(set) var travelled = 0.0

    // Odometry state: pose integrated from noisy wheel speeds, in the start frame.
    private var odomX = 0.0, odomY = 0.0, odomTheta = 0.0, odomV = 0.0, odomW = 0.0
    private var lastContactTick = Int.min / 2
    /// Contact-free ticks that separate two collisions (0.2 s).
    static let separationTicks = 10
    private var sensorRNG: SimRNG
    private var frozen: [Int: ObservationFrame] = [:]
    /// Tick at which each triggered (`when_within`) fault began.
    private var triggeredAt: [Int: Int] = [:]
    /// Indices (into `scenario.faults`) of the faults applied by the last `sense()`.
    public private(set) var activeFaults: [Int] = []
    /// The last `sense()`'s frame before its faults were applied (what healthy sensors read).
    public private(set) var trueFrame: ObservationFrame?
    /// The stamps of the last message each sensor's driver delivered (`ObservationFrame.stamps`).
    private var lastStamps = SensorStamps()
    /// The navigation stack's global planner (nil only while `init` builds it).
    private var planner: RoutePlanner?
    /// The planner's route hint at the last `sense()`, before faults: what the navigation stack
    /// really computed (the expert follows it; the frame may carry a faulted copy).
    public private(set) var route: Route?
    /// The static layout's occupancy grid with clearances, built once per world (shared by the
    /// planner, the expert and SPL's shortest path).
    public var grid: OccupancyGrid { planner!.grid }   // set at the end of init, never nil after
    /// The planner's path at the last plan (world points, robot first; empty without a path).
    public var plannedPath: [Vec2] { planner?.path ?? [] }
    /// Plans that found no path so far.
    public var planFailures: Int { planner?.failures ?? 0 }

    /// Builds the world of `scenario` (which should have passed `validationProblem()`).
    public init(scenario s: Scenario) {
        scenario = s
        let t = 0.1  // outer wall thickness
        rects = [Rect(x: -t, y: -t, w: s.width + 2 * t, h: t), Rect(x: -t, y: s.height, w: s.width + 2 * t, h: t),
                 Rect(x: -t, y: 0, w: t, h: s.height), Rect(x: s.width, y: 0, w: t, h: s.height)]
            + s.walls.map(\.rect) + s.obstacles.map(\.rect)
        movers = s.movers.map { m in
            Mover(position: Vec2(m.x, m.y), radius: m.radius, a: Vec2(m.x, m.y), b: m.to, speed: m.speed)
        }
        objects = s.objects.map { WorldObject(id: $0.id, colour: $0.colour, kind: $0.kind,
                                              position: Vec2($0.x, $0.y), radius: $0.radius) }
        targetIndex = s.objects.firstIndex { $0.id == s.task.target } ?? 0
        position = Vec2(s.robot.x, s.robot.y)
        heading = wrapAngle(s.robot.theta)
        battery = s.robot.battery
        sensorRNG = SimRNG(seed: SimRNG.mix(s.seed, 0x5E45))
        if let text = s.task.instruction {
            instruction = text
        } else {
            var r = SimRNG(seed: SimRNG.mix(s.seed, 0x7E47))
            let o = s.objects[targetIndex]
            instruction = Instructions.make(colour: o.colour, kind: o.kind, rng: &r)
        }
        planner = RoutePlanner(world: self)
    }

    /// Simulation time in seconds.
    public var time: Double { Double(tick) * RobotParams.dt }
    /// The target object.
    public var target: WorldObject { objects[targetIndex] }
    /// Distance from the robot's centre to the target's centre.
    public var distanceToTarget: Double { (target.position - position).length }
    /// True when the robot is within reach of the target.
    public var atGoal: Bool { distanceToTarget <= RobotParams.reachDistance }

    // MARK: - Physics

    /// Advances one tick: the low-level controller tracks `intent`'s velocity command under
    /// acceleration limits, the robot moves (or stops against an obstacle), movers move,
    /// the battery drains and odometry integrates.
    public mutating func step(_ intent: Intent) {
        let dt = RobotParams.dt
        var (vCmd, wCmd) = Controller.command(for: intent)
        if battery <= 0 { vCmd = 0; wCmd = 0 }
        speed += min(max(vCmd - speed, -RobotParams.maxAccel * dt), RobotParams.maxAccel * dt)
        turnRate += min(max(wCmd - turnRate, -RobotParams.maxAngAccel * dt), RobotParams.maxAngAccel * dt)

        // Differential drive, midpoint integration.
        let mid = heading + 0.5 * turnRate * dt
        let next = position + Vec2(cos(mid), sin(mid)) * (speed * dt)
        heading = wrapAngle(heading + turnRate * dt)
        let hit = speed != 0 && collides(next, radius: RobotParams.radius)
        let before = position
        defer { travelled += (position - before).length }
        if hit {
            // Move up to the point of contact (bisection), then the bumper stops the base.
            var lo = 0.0, hi = 1.0
            for _ in 0..<10 {
                let mid = 0.5 * (lo + hi)
                if collides(position + (next - position) * mid, radius: RobotParams.radius) { hi = mid } else { lo = mid }
            }
            position = position + (next - position) * lo
            speed = 0
        } else {
            position = next
        }

        // Movers shuttle, but stop and turn back rather than push into the robot.
        var pushed = false
        for i in movers.indices {
            var m = movers[i]
            let goal = m.towardsB ? m.b : m.a
            let d = goal - m.position
            let len = d.length
            let stepLen = m.speed * dt
            let cand = len <= stepLen ? goal : m.position + d * (stepLen / len)
            if (cand - position).length < m.radius + RobotParams.radius + 0.05 {
                m.towardsB.toggle()
                if (m.position - position).length < m.radius + RobotParams.radius { pushed = true }
            } else {
                m.position = cand
                if len <= stepLen { m.towardsB.toggle() }
            }
            movers[i] = m
        }

        // A collision is contact that begins after `Self.separationTicks` ticks free of contact,
        // so pressing against a wall (touch, bounce a hair, touch) counts once.
        let touching = hit || pushed
        if touching {
            if tick - lastContactTick > Self.separationTicks { collisions += 1 }
            lastContactTick = tick
        }
        contact = touching

        battery = max(0, battery - scenario.robot.batteryDrain * (1 + 2 * abs(speed) / RobotParams.maxSpeed) * dt)

        // Odometry: integrate measured wheel speeds (small per-tick noise, so the pose drifts).
        odomV = speed + RobotParams.odomSpeedNoise * sensorRNG.gaussian()
        odomW = turnRate + RobotParams.odomTurnNoise * sensorRNG.gaussian()
        let om = odomTheta + 0.5 * odomW * dt
        odomX += odomV * cos(om) * dt
        odomY += odomV * sin(om) * dt
        odomTheta = wrapAngle(odomTheta + odomW * dt)
        tick += 1
    }

    /// True when a disc at `p` of radius `r` overlaps a wall, obstacle, mover or object.
    public func collides(_ p: Vec2, radius r: Double) -> Bool {
        for rect in rects where rect.intersects(circle: p, radius: r) { return true }
        for m in movers where (m.position - p).length < m.radius + r { return true }
        for o in objects where (o.position - p).length < o.radius + r { return true }
        return false
    }

    /// Distance from `origin` along unit `dir` to the first wall, obstacle, mover or object
    /// (skipping object `skip`), capped at `limit`.
    public func castRay(from origin: Vec2, dir: Vec2, limit: Double, skipObject skip: Int = -1) -> Double {
        var best = limit
        for rect in rects { best = min(best, rect.rayHit(origin: origin, dir: dir)) }
        for m in movers { best = min(best, rayCircle(origin: origin, dir: dir, center: m.position, radius: m.radius)) }
        for (i, o) in objects.enumerated() where i != skip {
            best = min(best, rayCircle(origin: origin, dir: dir, center: o.position, radius: o.radius))
        }
        return best
    }

    // MARK: - Sensors and fusion

    /// Reads every sensor, applies the faults scheduled for this tick and fuses the result into
    /// one frame with `seq == tick`. Call once per tick, before `step(_:)`.
    public mutating func sense() -> ObservationFrame {
        updateRoute()
        var frame = trueReadings()
        frame.route = route
        trueFrame = frame
        activeFaults.removeAll(keepingCapacity: true)
        // Every sensor delivers at 50 Hz; a dropped or frozen one stops delivering, so its stamp
        // stays at its last message (the frozen reading is that message, repeated by fusion).
        var stamps = SensorStamps(scanner: frame.t, camera: frame.t, odom: frame.t)
        for (i, f) in scenario.faults.enumerated() where isActive(f, index: i) {
            activeFaults.append(i)
            apply(f, index: i, to: &frame)
            guard f.kind == .freeze || f.kind == .dropout else { continue }
            // Freeze: the stamp of the reading repeated; dropout: the last message's stamp.
            func stale(_ last: Double?) -> Double { f.kind == .freeze ? frozen[i]?.t ?? frame.t : last ?? 0 }
            switch f.sensor {
            case .scanner?: stamps.scanner = stale(lastStamps.scanner)
            case .camera?: stamps.camera = stale(lastStamps.camera)
            case .odometry?: stamps.odom = stale(lastStamps.odom)
            default: break
            }
        }
        lastStamps = stamps
        frame.stamps = stamps
        if !activeFaults.isEmpty { faultTicks += 1 }
        return frame
    }

    /// Whether fault `index` is active now; arms a `when_within` trigger the first time the
    /// clearance ahead falls below it (from tick `from` on).
    private mutating func isActive(_ f: FaultSpec, index: Int) -> Bool {
        guard let within = f.whenWithin else { return f.isActive(at: tick) }
        if triggeredAt[index] == nil, tick >= f.from, frontClearance() < within { triggeredAt[index] = tick }
        guard let start = triggeredAt[index] else { return false }
        return tick < start + (f.to - f.from)
    }

    /// Nearest obstacle within ±30° of the heading (7 noise-free rays, metres from the centre):
    /// the ground truth for "about to hit something" (unsafe intents, hazard triggers).
    public func frontClearance() -> Double {
        var best = RobotParams.rangeMax
        for k in -3...3 {
            let a = heading + Double(k) * .pi / 18
            best = min(best, castRay(from: position, dir: .unit(a), limit: RobotParams.rangeMax))
        }
        return best
    }

    /// The navigation stack's tick: re-plan every `decisionEvery` ticks (10 Hz, around the movers
    /// where they are now), then the hint for the current pose along the latest path.
    private mutating func updateRoute() {
        guard var p = planner else { return }
        planner = nil   // moved out, so planning reads `self` without copying the planner's arrays
        if tick % scenario.decisionEvery == 0 { p.plan(self) }
        route = p.route(in: self)
        planner = p
    }

    /// The sensors' readings without faults (but with their normal noise).
    private mutating func trueReadings() -> ObservationFrame {
        let n = ObservationFrame.beamCount
        var ranges = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let a = heading + Double(i) * 2 * .pi / Double(n)
            var r = castRay(from: position, dir: .unit(a), limit: RobotParams.rangeMax)
            r += RobotParams.rangeNoise * sensorRNG.gaussian()
            ranges[i] = round3(min(max(r, 0), RobotParams.rangeMax))
        }
        var detections: [Detection] = []
        for (i, o) in objects.enumerated() {
            let rel = o.position - position
            let d = rel.length
            let bearing = wrapAngle(atan2(rel.y, rel.x) - heading)
            guard d <= RobotParams.cameraRange, abs(bearing) <= RobotParams.cameraFOV / 2, d > 1e-6 else { continue }
            let free = castRay(from: position, dir: rel * (1 / d), limit: d, skipObject: i)
            guard free >= d - o.radius else { continue }  // occluded
            let b = bearing + RobotParams.cameraBearingNoise * sensorRNG.gaussian()
            let dist = d * (1 + RobotParams.cameraDistanceNoise * sensorRNG.gaussian())
            detections.append(Detection(colour: o.colour, kind: o.kind, bearing: round3(b), distance: round3(dist)))
        }
        detections.sort { $0.distance < $1.distance }
        let odom = Odometry(x: round3(odomX), y: round3(odomY), theta: round3(odomTheta),
                            v: round3(odomV), w: round3(odomW))
        return ObservationFrame(seq: UInt64(tick), t: (time * 1e6).rounded() / 1e6, ranges: ranges,
                                rangeMax: Float(RobotParams.rangeMax), detections: detections,
                                odom: odom, bump: contact, battery: round3(battery))
    }

    /// Applies fault number `index` (active now) to `frame`.
    private mutating func apply(_ f: FaultSpec, index: Int, to frame: inout ObservationFrame) {
        switch f.kind {
        case .dropout:
            switch f.sensor ?? .scanner {
            case .scanner: frame.ranges = []
            case .camera: frame.detections = []
            case .odometry: frame.odom = Odometry(x: 0, y: 0, theta: 0, v: 0, w: 0)
            case .bumper: frame.bump = false
            case .battery: frame.battery = 0
            case .route: frame.route = nil
            }
        case .noise:
            let s = f.sigma ?? 0
            switch f.sensor ?? .scanner {
            case .scanner:
                for i in frame.ranges.indices {
                    frame.ranges[i] = round3(min(max(Double(frame.ranges[i]) + s * sensorRNG.gaussian(), 0), RobotParams.rangeMax))
                }
            case .camera:
                for i in frame.detections.indices {
                    frame.detections[i].bearing = round3(Double(frame.detections[i].bearing) + s * sensorRNG.gaussian())
                    frame.detections[i].distance = round3(max(0, Double(frame.detections[i].distance) * (1 + s * sensorRNG.gaussian())))
                }
            case .odometry:
                frame.odom.v = round3(Double(frame.odom.v) + s * sensorRNG.gaussian())
                frame.odom.w = round3(Double(frame.odom.w) + s * sensorRNG.gaussian())
            case .route:
                if let r = frame.route {
                    frame.route = Route(bearing: round3(wrapAngle(Double(r.bearing) + s * sensorRNG.gaussian())), distance: r.distance)
                }
            case .bumper, .battery:
                break
            }
        case .freeze:
            if frozen[index] == nil { frozen[index] = frame }
            let old = frozen[index]!
            switch f.sensor ?? .scanner {
            case .scanner: frame.ranges = old.ranges
            case .camera: frame.detections = old.detections
            case .odometry: frame.odom = old.odom
            case .bumper: frame.bump = old.bump
            case .battery: frame.battery = old.battery
            case .route: frame.route = old.route
            }
        case .contradict:
            frame.ranges = [Float](repeating: Float(RobotParams.rangeMax), count: frame.ranges.count)
            frame.bump = true
            for i in frame.detections.indices { frame.detections[i].bearing = -frame.detections[i].bearing }
        case .recolour:
            let t = target
            for i in frame.detections.indices where frame.detections[i].colour == t.colour && frame.detections[i].kind == t.kind {
                frame.detections[i].colour = f.colour ?? t.colour
            }
        }
    }
}

/// Rounds to millimetres / milliradians so frames stay short on the wire.
@inline(__always)
func round3(_ x: Double) -> Float { Float((x * 1000).rounded() / 1000) }
