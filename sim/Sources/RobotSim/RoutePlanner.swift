import Foundation
import Observation

/// The simulated robot's global planner: A* on the room's occupancy grid with a clearance cost,
/// from the localised pose to the target, re-planned around the movers — the part of a navigation
/// stack (nav2's planner server) that owns the map. Its output for the local controller is a
/// `Route`: the bearing to a carrot `lookahead` metres along the path and the distance left.
///
/// The expert and the model both follow this hint; the expert adds its privileged view of the
/// world (true geometry, movers' positions) for the reactive part, the model reads the sensors.
public struct RoutePlanner: Sendable {
    /// Planning grid (static geometry).
    public let grid: OccupancyGrid
    /// Robot clearance below which a cell is forbidden (metres).
    static let hardClearance: Float = Float(RobotParams.radius) + 0.03
    /// Clearance below which a cell costs extra (keeps paths away from walls).
    static let softClearance: Float = 0.55
    /// The planner's goal region: free cells within this distance of the target's centre.
    static let goalDistance = 0.68
    /// The stopping point: this close to the target's centre the route is done (`distance` 0);
    /// a margin inside `RobotParams.reachDistance` for braking.
    public static let stopDistance = RobotParams.reachDistance - 0.06
    /// Carrot distance along the path (metres).
    public static let lookahead = 0.45
    /// Within this distance of the target, with a robot-wide lane to it, the carrot is the target.
    static let directApproach = 1.5

    // A* scratch, allocated once per episode.
    private var g: [Float]
    private var parent: [Int32]
    private var closed: [Bool]
    private var heap: [(f: Float, cell: Int32)] = []
    /// Path of the last successful plan (world points from the robot to the goal region); empty
    /// after a failed plan.
    public private(set) var path: [Vec2] = []
    /// Plans that found no path.
    public private(set) var failures = 0

    /// A planner for `world`'s static layout.
    public init(world: World) { self.init(grid: OccupancyGrid(world: world)) }

    /// A planner on an existing grid (e.g. `World.grid`: no second pass over the geometry).
    public init(grid: OccupancyGrid) {
        self.grid = grid
        let n = grid.nx * grid.ny
        g = [Float](repeating: .infinity, count: n)
        parent = [Int32](repeating: -1, count: n)
        closed = [Bool](repeating: false, count: n)
        heap.reserveCapacity(n)
    }

    /// The route hint for `world`'s current pose along the last plan, or nil without a path.
    /// Distance 0 exactly when the robot is within `stopDistance` of the target.
    public func route(in world: World) -> Route? {
        if world.distanceToTarget <= Self.stopDistance {
            return Route(bearing: round3(bearing(of: world.target.position, in: world)), distance: 0)
        }
        guard !path.isEmpty else { return nil }
        // Progress: the path vertex nearest the robot (the plan may be a few ticks old).
        var start = 0, best = Double.infinity
        for k in path.indices {
            let d = (path[k] - world.position).length
            if d < best { best = d; start = k }
        }
        var carrot = path[path.count - 1]
        var acc = 0.0
        var k = start + 1
        while k < path.count {
            acc += (path[k] - path[k - 1]).length
            if acc >= Self.lookahead { carrot = path[k]; break }
            k += 1
        }
        if world.distanceToTarget < Self.directApproach && laneIsClear(to: world.target, in: world) {
            carrot = world.target.position
        }
        var remaining = best
        for k in (start + 1)..<max(path.count, start + 1) { remaining += (path[k] - path[k - 1]).length }
        let togo = min(remaining, world.distanceToTarget - Self.stopDistance)
        return Route(bearing: round3(bearing(of: carrot, in: world)), distance: max(0.001, round3(togo)))
    }

    /// True when the robot's disc (plus a small margin) can slide straight towards `target`
    /// until it is within reach without touching anything.
    func laneIsClear(to target: WorldObject, in world: World) -> Bool {
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
    func bearing(of p: Vec2, in world: World) -> Double {
        let rel = p - world.position
        return wrapAngle(atan2(rel.y, rel.x) - world.heading)
    }

    /// A* from the robot's cell to any free cell within `goalDistance` of the target, avoiding the
    /// movers where they are now. Fills `path` and returns true on success.
    @discardableResult
    public mutating func plan(_ world: World) -> Bool {
        plan(world, goalDistance: Self.goalDistance, clearanceCost: true, avoidMovers: true)
    }

    /// The shortest path's length (m) from the robot to where the task counts as reached (within
    /// `RobotParams.reachDistance` of the target), on this grid (8-connected, so up to ~8 % over the
    /// Euclidean geodesic) around the static geometry with the robot's clearance and no extra
    /// clearance cost: ℓ of SPL (Anderson et al. 2018). nil when there is no such path.
    public static func shortestPathLength(_ world: World) -> Double? {
        var planner = RoutePlanner(grid: world.grid)
        guard planner.plan(world, goalDistance: RobotParams.reachDistance, clearanceCost: false, avoidMovers: false) else { return nil }
        var total = 0.0
        for k in 1..<max(planner.path.count, 1) { total += (planner.path[k] - planner.path[k - 1]).length }
        return total
    }

    private mutating func plan(_ world: World, goalDistance: Double, clearanceCost: Bool, avoidMovers: Bool) -> Bool {
        let nx = grid.nx, ny = grid.ny, cs = grid.cellSize
        for k in g.indices { g[k] = .infinity; parent[k] = -1; closed[k] = false }
        heap.removeAll(keepingCapacity: true)
        let goal = world.target.position
        let start = grid.cell(of: world.position)
        let s = start.j * nx + start.i
        func h(_ i: Int, _ j: Int) -> Float {
            Float(max(0, (grid.center(i, j) - goal).length - goalDistance))
        }
        func blockedByMover(_ p: Vec2) -> Bool {
            guard avoidMovers else { return false }
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
            if (grid.center(ci, cj) - goal).length <= goalDistance { found = c; break }
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
                    let penalty = clearanceCost && clear < Self.softClearance ? 4 * (Self.softClearance - clear) / Self.softClearance : 0
                    let ng = g[c] + len * (1 + penalty)
                    if ng < g[n] {
                        g[n] = ng; parent[n] = Int32(c)
                        push(ng + h(ni, nj), Int32(n))
                    }
                }
            }
        }
        guard found >= 0 else { path = []; failures += 1; return false }
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
