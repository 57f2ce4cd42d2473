import Foundation
import Observation

/// The expert: A* on the occupancy grid (with a clearance cost, re-planned every decision around
/// the movers) followed by a pure-pursuit-style tracker that speaks only in `Intent`s.
///
/// It has privileged access to the true world state (it is the teacher that labels the corpus);
/// the model learns to imitate it from observation tokens only.
public struct ExpertPolicy: Sendable {
    /// Planning grid (static geometry).
    public let grid: OccupancyGrid
    /// Robot clearance below which a cell is forbidden (metres).
    static let hardClearance: Float = Float(RobotParams.radius) + 0.03
    /// Clearance below which a cell costs extra (keeps paths away from walls).
    static let softClearance: Float = 0.55
    /// The planner's goal region: free cells within this distance of the target's centre.
    static let goalDistance = 0.68
    /// Say `STOP`, then `DONE`, this close to the target's centre (margin for braking).
    static let stopDistance = RobotParams.reachDistance - 0.06
    /// Look-ahead along the path for the tracker (metres).
    static let lookahead = 0.45
    /// Heading error above which the expert turns in place instead of driving (radians).
    static let turnThreshold = 0.35

    // A* scratch, allocated once per episode.
    private var g: [Float]
    private var parent: [Int32]
    private var closed: [Bool]
    private var heap: [(f: Float, cell: Int32)] = []
    private var backupLeft = 0
    private var waited = 0
    /// Decisions to wait for a mover in the lane before driving around it.
    static let patience = 20
    /// Path of the last plan (world points from the robot to the goal region).
    public private(set) var path: [Vec2] = []
    /// Decisions for which no path was found (the expert then waits or turns to the target).
    public private(set) var planFailures = 0

    /// An expert for `world`'s static layout.
    public init(world: World) {
        grid = OccupancyGrid(world: world)
        let n = grid.nx * grid.ny
        g = [Float](repeating: .infinity, count: n)
        parent = [Int32](repeating: -1, count: n)
        closed = [Bool](repeating: false, count: n)
        heap.reserveCapacity(n)
    }

    /// The intent the expert takes in `world`'s current (true) state.
    public mutating func decide(_ world: World) -> Intent {
        let moving = abs(world.speed) > 0.02 || abs(world.turnRate) > 0.05
        if world.distanceToTarget <= Self.stopDistance {
            return moving ? .stop : .done
        }
        if backupLeft > 0 { backupLeft -= 1; return .backup }
        if world.contact { backupLeft = 2; return .backup }

        guard plan(world) else {
            planFailures += 1
            return turnTowards(bearing: bearing(of: world.target.position, in: world), else: .stop)
        }
        // Look-ahead point along the path.
        var p = path.last!
        var acc = 0.0
        for k in 1..<max(path.count, 1) {
            acc += (path[k] - path[k - 1]).length
            if acc >= Self.lookahead { p = path[k]; break }
        }
        // Close to the target with a robot-wide lane to it: aim straight at it.
        if world.distanceToTarget < 1.5 && laneIsClear(to: world.target, in: world) { p = world.target.position }
        let e = bearing(of: p, in: world)
        // In tight spots, align more precisely before driving.
        let (ci, cj) = grid.cell(of: world.position)
        let tight = grid.clearance[cj * grid.nx + ci] < 0.45
        if abs(e) > (tight ? 0.15 : Self.turnThreshold) { return turnTowards(bearing: e, else: .stop) }
        // About to touch something if we drive on: align exactly, or back off if aligned.
        if world.collides(world.position + Vec2.unit(world.heading) * 0.12, radius: RobotParams.radius + 0.01) {
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
                if along > 0 && along - m.radius < 0.75 && across < m.radius + RobotParams.radius + 0.1 {
                    waited += 1
                    return .stop
                }
            }
        }
        waited = 0
        var remaining = 0.0
        for k in 1..<max(path.count, 1) { remaining += (path[k] - path[k - 1]).length }
        var front = Double.infinity
        for da in [-0.4, 0.0, 0.4] {
            front = min(front, world.castRay(from: world.position, dir: .unit(world.heading + da), limit: 3))
        }
        let togo = min(remaining, world.distanceToTarget - Self.stopDistance)
        var level = 3
        if togo < 0.8 || abs(e) > 0.25 || front < 0.9 { level = 2 }
        if togo < 0.4 || front < 0.6 { level = 1 }
        if togo < 0.15 || front < 0.4 { level = 0 }
        return .forward(level: level)
    }

    /// True when the planner finds a path from the robot to the target in `world` as it is now.
    public mutating func canReachTarget(_ world: World) -> Bool { plan(world) }

    /// True when the robot's disc (plus a small margin) can slide straight towards `target`
    /// until it is within reach without touching anything.
    private func laneIsClear(to target: WorldObject, in world: World) -> Bool {
        let rel = target.position - world.position
        let d = rel.length
        let dir = rel * (1 / d)
        let end = d - (target.radius + RobotParams.radius + 0.05)
        var s = 0.05
        while s < end {
            if world.collides(world.position + dir * s, radius: RobotParams.radius + 0.04) { return false }
            s += 0.05
        }
        return true
    }

    /// Bearing of `p` from the robot, relative to its heading.
    private func bearing(of p: Vec2, in world: World) -> Double {
        let rel = p - world.position
        return wrapAngle(atan2(rel.y, rel.x) - world.heading)
    }

    /// Turn in place towards bearing `e` with a rate that shrinks as the error does.
    private func turnTowards(bearing e: Double, else fallback: Intent) -> Intent {
        let a = abs(e)
        if a < 0.1 { return fallback }
        let level = a > 1.0 ? 2 : (a > 0.5 ? 1 : 0)
        return e > 0 ? .turnLeft(level: level) : .turnRight(level: level)
    }

    /// A* from the robot's cell to any free cell within `goalDistance` of the target. Fills
    /// `path` and returns true on success.
    private mutating func plan(_ world: World) -> Bool {
        let nx = grid.nx, ny = grid.ny, cs = grid.cellSize
        for k in g.indices { g[k] = .infinity; parent[k] = -1; closed[k] = false }
        heap.removeAll(keepingCapacity: true)
        let goal = world.target.position
        let start = grid.cell(of: world.position)
        let s = start.j * nx + start.i
        func h(_ i: Int, _ j: Int) -> Float {
            Float(max(0, (grid.center(i, j) - goal).length - Self.goalDistance))
        }
        func blockedByMover(_ p: Vec2) -> Bool {
            for m in world.movers where (m.position - p).length < m.radius + RobotParams.radius + 0.12 { return true }
            return false
        }
        g[s] = 0
        push(h(start.i, start.j), Int32(s))
        var found = -1
        while let top = pop() {
            let c = Int(top.cell)
            if closed[c] { continue }
            closed[c] = true
            let ci = c % nx, cj = c / nx
            if (grid.center(ci, cj) - goal).length <= Self.goalDistance { found = c; break }
            for dj in -1...1 {
                for di in -1...1 where di != 0 || dj != 0 {
                    let ni = ci + di, nj = cj + dj
                    guard ni >= 0, nj >= 0, ni < nx, nj < ny else { continue }
                    let n = nj * nx + ni
                    if closed[n] { continue }
                    let clear = grid.clearance[n]
                    // Near the start the rule relaxes, so a robot parked close to a wall can leave.
                    if clear < Self.hardClearance
                        && (clear < 0.1 || (grid.center(ni, nj) - world.position).length > 0.3) { continue }
                    if blockedByMover(grid.center(ni, nj)) { continue }
                    let len = Float((di != 0 && dj != 0) ? cs * 1.41421356 : cs)
                    let penalty = clear < Self.softClearance ? 4 * (Self.softClearance - clear) / Self.softClearance : 0
                    let ng = g[c] + len * (1 + penalty)
                    if ng < g[n] {
                        g[n] = ng; parent[n] = Int32(c)
                        push(ng + h(ni, nj), Int32(n))
                    }
                }
            }
        }
        guard found >= 0 else { path = []; return false }
        var cells: [Vec2] = []
        var c = found
        while c != s && c >= 0 {
            cells.append(grid.center(c % nx, c / nx))
            c = Int(parent[c])
        }
        cells.append(world.position)
        path = cells.reversed()
        return true
    }

    // Binary min-heap on f.
    private mutating func push(_ f: Float, _ cell: Int32) {
        heap.append((f, cell))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if heap[p].f <= heap[i].f { break }
            heap.swapAt(p, i); i = p
        }
    }

    private mutating func pop() -> (f: Float, cell: Int32)? {
        guard let first = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && heap[l].f < heap[m].f { m = l }
                if r < heap.count && heap[r].f < heap[m].f { m = r }
                if m == i { break }
                heap.swapAt(m, i); i = m
            }
        }
        return first
    }
}
