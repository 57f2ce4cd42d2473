import Foundation
import Observation

/// The expert: follows the navigation stack's route hint (`World.route`, the same hint the frame
/// carries) with a tracker that speaks only in `Intent`s, plus the privileged view of the true
/// world for the reactive part (exact geometry ahead, the movers' positions, contact).
///
/// It is the teacher that labels the corpus; the model learns to imitate it from observation
/// tokens only. Its thresholds are the observation tokens' bucket edges where it can be
/// (route bearing sectors, route distance, the front scanner sector's ranges), so what it decides
/// can be read off what the model sees: the imitation gap of an A*-on-the-true-map expert
/// against 0.8 s of egocentric tokens is what kept the first models from ever reaching the goal.
public struct ExpertPolicy: Sendable {
    /// The world's planning grid (static geometry), for the clearance of the robot's cell.
    public let grid: OccupancyGrid
    /// Say `STOP`, then `DONE`, this close to the target's centre (margin for braking): the
    /// route's stopping point.
    static let stopDistance = RoutePlanner.stopDistance
    /// Heading error above which the expert turns in place instead of driving (radians): the
    /// route sectors' `slight`/plain edge.
    static let turnThreshold = Double(ObservationEncoder.routeBearingEdges.1)
    /// The same in tight spots (clearance below `tightClearance`): the `ahead` edge.
    static let tightTurnThreshold = Double(ObservationEncoder.routeBearingEdges.0)
    /// Clearance of the robot's cell below which a spot is tight (metres).
    static let tightClearance: Float = 0.45

    private var backupLeft = 0
    private var waited = 0
    /// Decisions to wait for a mover in the lane before driving around it.
    static let patience = 20
    /// Decisions for which the planner had no route (the expert then turns to the target).
    public private(set) var planFailures = 0

    /// An expert for `world`'s static layout.
    public init(world: World) {
        grid = world.grid
    }

    /// Offsets to the continuous quantities the expert's verb depends on: a probe of how close
    /// to one of its thresholds a decision was (`alternatives`). `.none` = the expert itself.
    public struct Nudge: Sendable, Equatable {
        /// Added to the route bearing (rad).
        public var bearing = 0.0
        /// Added to the grid clearance that decides "tight" (m).
        public var clearance = 0.0
        /// Added to the look-ahead of the "about to touch" check (m).
        public var ahead = 0.0
        /// Added to the distance to the target and the movers' distance ahead (m).
        public var distance = 0.0
        /// No offset.
        public static let none = Nudge()
        /// The probes of `alternatives`: the route bearing by ± 0.01 rad (the camera's and
        /// odometry's noise: the bearing tokens' edges are the expert's own thresholds, so only a
        /// hair's width counts), the map clearance that makes a spot "tight" by ± 0.05 m (the model
        /// never sees the map: the scanner sees it with 1 cm of noise per beam, the tokens bin it
        /// far coarser), the contact look-ahead and the distances by ± 0.03 m (3 × the scanner noise).
        public static let probes: [Nudge] = [
            Nudge(bearing: 0.01), Nudge(bearing: -0.01), Nudge(clearance: 0.05), Nudge(clearance: -0.05),
            Nudge(ahead: 0.03), Nudge(ahead: -0.03), Nudge(distance: 0.03), Nudge(distance: -0.03),
        ]
    }

    /// The verbs the expert would have chosen in this state had one of its inputs been off by a
    /// few times the sensors' noise (`Nudge.probes`): more than one means the decision sat on a
    /// threshold, where either verb is as good and no observation can tell them apart. Does not
    /// change the expert's state; call before `decide`.
    public func alternatives(_ world: World) -> Set<Intent.Kind> {
        var kinds: Set<Intent.Kind> = []
        for n in Nudge.probes {
            var probe = self
            kinds.insert(probe.decide(world, nudge: n).kind)
        }
        return kinds
    }

    /// The intent the expert takes in `world`'s current (true) state; `world.sense()` must have
    /// run this tick (it updates the route). `nudge` offsets its inputs (`alternatives`).
    public mutating func decide(_ world: World, nudge: Nudge = .none) -> Intent {
        let moving = abs(world.speed) > 0.02 || abs(world.turnRate) > 0.05
        if world.distanceToTarget + nudge.distance <= Self.stopDistance {
            return moving ? .stop : .done
        }
        if backupLeft > 0 { backupLeft -= 1; return .backup }
        if world.contact { backupLeft = 2; return .backup }

        guard let route = world.route else {
            planFailures += 1
            let rel = world.target.position - world.position
            return turnTowards(bearing: wrapAngle(atan2(rel.y, rel.x) - world.heading), else: .stop)
        }
        let e = Double(route.bearing) + nudge.bearing
        // In tight spots, align more precisely before driving.
        let (ci, cj) = grid.cell(of: world.position)
        let tight = Double(grid.clearance[cj * grid.nx + ci]) + nudge.clearance < Double(Self.tightClearance)
        if abs(e) > (tight ? Self.tightTurnThreshold : Self.turnThreshold) { return turnTowards(bearing: e, else: .stop) }
        // About to touch something if we drive on: align exactly, or back off if aligned.
        if world.collides(world.position + Vec2.unit(world.heading) * (0.12 + nudge.ahead), radius: RobotParams.radius + 0.01) {
            return abs(e) > 0.04 ? (e > 0 ? .turnLeft(level: 0) : .turnRight(level: 0)) : .backup
        }

        // A mover in the lane close ahead: wait for it (movers back off from the robot), but
        // not for ever — after `patience` decisions the planner's detour wins.
        if waited < Self.patience {
            let fwd = Vec2.unit(world.heading)
            for m in world.movers {
                let rel = m.position - world.position
                let along = rel.x * fwd.x + rel.y * fwd.y
                let across = abs(rel.x * fwd.y - rel.y * fwd.x)
                if along > 0 && along + nudge.distance - m.radius < 0.75 && across < m.radius + RobotParams.radius + 0.1 {
                    waited += 1
                    return .stop
                }
            }
        }
        waited = 0
        // Free space ahead along the front scanner sector's beams (−22.5°, 0°, 22.5°), noise-free.
        var front = Double.infinity
        for da in [-Double.pi / 8, 0.0, Double.pi / 8] {
            front = min(front, world.castRay(from: world.position, dir: .unit(world.heading + da), limit: 3))
        }
        // Speed from the tokens' edges: route_close, the route's slight sectors, F_mid/near/blocked.
        var level = 3
        if route.distance < ObservationEncoder.routeClose || abs(e) > Self.tightTurnThreshold
            || front < Double(ObservationEncoder.midRange) { level = 2 }
        if front < Double(ObservationEncoder.nearRange) { level = 1 }
        if front < Double(ObservationEncoder.blockedRange) { level = 0 }
        return .forward(level: level)
    }

    /// Turn in place towards bearing `e` with a rate that shrinks as the error does (the route
    /// sectors' edges: plain below 0.5 rad, sharp below 1.0, back beyond).
    private func turnTowards(bearing e: Double, else fallback: Intent) -> Intent {
        let a = abs(e)
        if a < 0.1 { return fallback }
        let level = a > Double(ObservationEncoder.routeBearingEdges.3) ? 2 : (a > Double(ObservationEncoder.routeBearingEdges.2) ? 1 : 0)
        return e > 0 ? .turnLeft(level: level) : .turnRight(level: level)
    }
}
