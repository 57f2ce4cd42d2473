/// A 2-D occupancy grid over the room with each cell's clearance to the nearest static obstacle.
///
/// Built once per episode from the walls, boxes and objects (movers are checked at planning
/// time). Cells are `cellSize` metres; cell (i, j) covers `[i·s, (i+1)·s) × [j·s, (j+1)·s)`.
public struct OccupancyGrid: Sendable {
    /// Cell edge in metres.
    public let cellSize: Double
    /// Number of columns (x) and rows (y).
    public let nx: Int, ny: Int
    /// Distance (metres) from each cell centre to the nearest wall, box or object surface,
    /// row-major `(ny, nx)`.
    public private(set) var clearance: [Float]

    /// Builds the grid of `world`'s static geometry. Objects other than walls and boxes are
    /// included (the robot must not drive through the target either).
    public init(world: World, cellSize: Double = 0.1) {
        self.cellSize = cellSize
        nx = max(1, Int((world.scenario.width / cellSize).rounded(.up)))
        ny = max(1, Int((world.scenario.height / cellSize).rounded(.up)))
        clearance = [Float](repeating: 0, count: nx * ny)
        for j in 0..<ny {
            for i in 0..<nx {
                let p = center(i, j)
                var best = Double.infinity
                for r in world.rects { best = min(best, r.distanceSquared(to: p)) }
                best = best.squareRoot()
                for o in world.objects { best = min(best, (o.position - p).length - o.radius) }
                clearance[j * nx + i] = Float(max(best, 0))
            }
        }
    }

    /// Centre of cell (i, j) in world coordinates.
    @inline(__always)
    public func center(_ i: Int, _ j: Int) -> Vec2 {
        Vec2((Double(i) + 0.5) * cellSize, (Double(j) + 0.5) * cellSize)
    }

    /// The cell containing `p`, clamped into the grid.
    @inline(__always)
    public func cell(of p: Vec2) -> (i: Int, j: Int) {
        (min(max(Int(p.x / cellSize), 0), nx - 1), min(max(Int(p.y / cellSize), 0), ny - 1))
    }
}
