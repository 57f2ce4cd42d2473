import Foundation

/// Seeded procedural scenarios for training and evaluation.
///
/// Five layout families: three for training (`open_room`, `two_rooms`, `cluttered`) and two
/// held out for evaluation (`pillars`, `zigzag`: layouts never seen in training). Same seed and
/// family → the same scenario, bit for bit. Every generated scenario is checked solvable (the
/// expert's planner finds a path from the start to the target, ignoring movers).
public enum ScenarioGenerator {
    /// A layout family.
    public enum Family: String, CaseIterable, Sendable {
        /// One room, a few boxes, maybe a mover.
        case openRoom = "open_room"
        /// Two rooms joined by a door gap.
        case twoRooms = "two_rooms"
        /// One room with many boxes and movers.
        case cluttered
        /// Held out: a room with a regular grid of pillars.
        case pillars
        /// Held out: three rooms in a row with gaps at alternate ends (an S-shaped route).
        case zigzag

        /// Families used for the training and validation splits.
        public static let training: [Family] = [.openRoom, .twoRooms, .cluttered]
        /// Families never used in training (the held-out evaluation split).
        public static let heldOut: [Family] = [.pillars, .zigzag]
    }

    /// Colours the generator paints objects with (the encoder has a token for each).
    public static let colours = ["red", "green", "blue", "yellow", "purple"]
    /// Object kinds.
    public static let kinds = ["box", "ball", "cone", "door"]

    /// The scenario for `seed` in `family`.
    public static func generate(seed: UInt64, family: Family) -> Scenario {
        var rng = SimRNG(seed: SimRNG.mix(seed, 0x6E4E))
        for _ in 0..<200 {
            if let s = attempt(seed: seed, family: family, rng: &rng) { return s }
        }
        preconditionFailure("generator: no solvable \(family.rawValue) layout for seed \(seed)")
    }

    /// The family a corpus episode seed uses among `families` (uniform by seed).
    public static func family(forSeed seed: UInt64, among families: [Family]) -> Family {
        families[Int(SimRNG.mix(seed, 0xFA) % UInt64(families.count))]
    }

    private static func attempt(seed: UInt64, family: Family, rng: inout SimRNG) -> Scenario? {
        var walls: [RectSpec] = [], boxes: [RectSpec] = []
        var w = 6.0, h = 5.0
        // Regions (x ranges) for the robot's start and the target, per family.
        var robotX: ClosedRange<Double>, targetX: ClosedRange<Double>
        var boxCount = 0, moverCount = 0
        switch family {
        case .openRoom:
            w = rng.uniform(5, 8); h = rng.uniform(4, 7)
            robotX = 0...w; targetX = 0...w
            boxCount = rng.int(0...3); moverCount = rng.uniform() < 0.4 ? 1 : 0
        case .twoRooms:
            w = rng.uniform(7, 10); h = rng.uniform(4, 7)
            let x = w * rng.uniform(0.4, 0.6), gap = rng.uniform(1.0, 1.4)
            let gy = rng.uniform(0.3, h - gap - 0.3)
            walls = [RectSpec(x: x, y: 0, w: 0.15, h: gy), RectSpec(x: x, y: gy + gap, w: 0.15, h: h - gy - gap)]
            robotX = 0...x; targetX = rng.uniform() < 0.7 ? (x + 0.15)...w : 0...w
            boxCount = rng.int(0...2); moverCount = rng.uniform() < 0.3 ? 1 : 0
        case .cluttered:
            w = rng.uniform(6, 9); h = rng.uniform(5, 8)
            robotX = 0...w; targetX = 0...w
            boxCount = rng.int(5...9); moverCount = rng.int(0...2)
        case .pillars:
            w = rng.uniform(6, 9); h = rng.uniform(5, 8)
            let sp = rng.uniform(1.3, 1.7)
            var y = sp
            while y < h - 0.6 {
                var x = sp
                while x < w - 0.6 {
                    boxes.append(RectSpec(x: x - 0.15, y: y - 0.15, w: 0.3, h: 0.3))
                    x += sp
                }
                y += sp
            }
            robotX = 0...w; targetX = 0...w
        case .zigzag:
            w = rng.uniform(7, 9); h = rng.uniform(4, 5.5)
            let x1 = w / 3, x2 = 2 * w / 3, gap = 1.1
            walls = [RectSpec(x: x1, y: 0, w: 0.15, h: h - gap), RectSpec(x: x2, y: gap, w: 0.15, h: h - gap)]
            robotX = 0...x1; targetX = (x2 + 0.15)...w
        }

        func clearOfRects(_ p: Vec2, _ r: Double) -> Bool {
            if p.x < r || p.y < r || p.x > w - r || p.y > h - r { return false }
            for q in walls + boxes where q.rect.intersects(circle: p, radius: r) { return false }
            return true
        }

        for _ in 0..<boxCount {
            for _ in 0..<20 {
                let bw = rng.uniform(0.3, 0.9), bh = rng.uniform(0.3, 0.9)
                let b = RectSpec(x: rng.uniform(0.3, w - bw - 0.3), y: rng.uniform(0.3, h - bh - 0.3), w: bw, h: bh)
                let c = Vec2(b.x + bw / 2, b.y + bh / 2)
                // Keep a robot-wide lane around every box.
                if clearOfRects(c, max(bw, bh) / 2 + 0.7) { boxes.append(b); break }
            }
        }

        // Objects: a target and 1–3 distractors, all of different colours.
        var palette = colours
        shuffle(&palette, &rng)
        let objectCount = rng.int(2...4)
        var objects: [ObjectSpec] = []
        for k in 0..<objectCount {
            let kind = kinds[rng.int(0...(kinds.count - 1))]
            let radius = rng.uniform(0.12, 0.25)
            let xr = k == 0 ? targetX : 0...w
            var placed = false
            for _ in 0..<60 {
                let p = Vec2(rng.uniform(xr.lowerBound, xr.upperBound), rng.uniform(0, h))
                guard clearOfRects(p, radius + 0.6) else { continue }
                if objects.contains(where: { (Vec2($0.x, $0.y) - p).length < $0.radius + radius + 1.0 }) { continue }
                objects.append(ObjectSpec(id: k == 0 ? "target" : "obj\(k)", colour: palette[k], kind: kind,
                                          x: r3(p.x), y: r3(p.y), radius: r3(radius)))
                placed = true
                break
            }
            if !placed && k == 0 { return nil }
        }
        guard let target = objects.first else { return nil }

        // Robot start: clear of everything, at least 2 m from the target.
        var robot: RobotSpec? = nil
        for _ in 0..<80 {
            let p = Vec2(rng.uniform(robotX.lowerBound, robotX.upperBound), rng.uniform(0, h))
            guard clearOfRects(p, 0.45) else { continue }
            if objects.contains(where: { (Vec2($0.x, $0.y) - p).length < $0.radius + 0.8 }) { continue }
            if (Vec2(target.x, target.y) - p).length < 2.0 { continue }
            robot = RobotSpec(x: r3(p.x), y: r3(p.y), theta: r3(rng.uniform(-.pi, .pi)))
            break
        }
        guard let robot else { return nil }

        // Movers: short horizontal or vertical tracks in free space, away from the start.
        var movers: [MoverSpec] = []
        for _ in 0..<moverCount {
            for _ in 0..<30 {
                let a = Vec2(rng.uniform(0.5, w - 0.5), rng.uniform(0.5, h - 0.5))
                let len = rng.uniform(1.5, 3.0)
                let b = rng.uniform() < 0.5 ? Vec2(min(a.x + len, w - 0.5), a.y) : Vec2(a.x, min(a.y + len, h - 0.5))
                var ok = true
                for s in 0...10 {
                    let p = a + (b - a) * (Double(s) / 10)
                    if !clearOfRects(p, 0.35) || (p - Vec2(robot.x, robot.y)).length < 1.0
                        || objects.contains(where: { (Vec2($0.x, $0.y) - p).length < $0.radius + 0.5 }) { ok = false; break }
                }
                if ok {
                    movers.append(MoverSpec(x: r3(a.x), y: r3(a.y), to: Vec2(r3(b.x), r3(b.y)),
                                            radius: 0.2, speed: r3(rng.uniform(0.15, 0.35))))
                    break
                }
            }
        }

        let s = Scenario(name: "\(family.rawValue)_\(seed)", family: family.rawValue, seed: seed,
                         width: r3(w), height: r3(h), walls: walls.map(r3), obstacles: boxes.map(r3),
                         movers: movers, objects: objects, robot: robot, task: TaskSpec(target: "target"),
                         maxTicks: family == .zigzag ? 2500 : 1500)
        guard s.validationProblem() == nil else { return nil }
        // Solvable? Plan once on the static layout (movers removed).
        var still = s
        still.movers = []
        let world = World(scenario: still)
        var planner = RoutePlanner(grid: world.grid)
        return planner.plan(world) ? s : nil
    }

    private static func shuffle(_ a: inout [String], _ rng: inout SimRNG) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, rng.int(0...i)) }
    }

    private static func r3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
    private static func r3(_ r: RectSpec) -> RectSpec { RectSpec(x: r3(r.x), y: r3(r.y), w: r3(r.w), h: r3(r.h)) }
}

extension ScenarioGenerator {
    /// `scenario` with 1–3 random sensor faults (dropout, noise, freeze or contradiction on the
    /// scanner, camera or odometry) scheduled between ticks 50 and 750, drawn from `seed`.
    /// Used by `corpus --fault-fraction` / `expert --fault-fraction` for robustness data.
    public static func withRandomFaults(_ scenario: Scenario, seed: UInt64) -> Scenario {
        var rng = SimRNG(seed: SimRNG.mix(seed, 0xFA17))
        var s = scenario
        let sensors: [FaultSpec.Sensor] = [.scanner, .camera, .odometry]
        let sigmas: [FaultSpec.Sensor: Double] = [.scanner: 0.3, .camera: 0.2, .odometry: 0.1]
        for _ in 0..<rng.int(1...3) {
            let from = rng.int(50...600)
            let to = from + rng.int(20...150)
            let sensor = sensors[rng.int(0...2)]
            switch rng.int(0...3) {
            case 0: s.faults.append(FaultSpec(kind: .dropout, sensor: sensor, from: from, to: to))
            case 1: s.faults.append(FaultSpec(kind: .noise, sensor: sensor, from: from, to: to, sigma: sigmas[sensor]))
            case 2: s.faults.append(FaultSpec(kind: .freeze, sensor: sensor, from: from, to: to))
            default: s.faults.append(FaultSpec(kind: .contradict, from: from, to: min(to, from + 40)))
            }
        }
        return s
    }

    /// The hazards `withHazardFault` draws from: failures of the sensors that see what is ahead
    /// (the scanner) and how the robot moves (odometry) that leave a plausible-looking frame, and
    /// the perception stalls in which the navigation stack's route hint — planned on the
    /// scanner's costmap on a real robot — freezes with the scanner.
    /// Each hazard is the faults that begin together (same trigger, same duration).
    public static let hazards: [[(FaultSpec.Kind, FaultSpec.Sensor, sigma: Double?)]] = [
        [(.freeze, .scanner, nil)], [(.dropout, .scanner, nil)], [(.noise, .scanner, 0.3)],
        [(.freeze, .odometry, nil)], [(.dropout, .odometry, nil)],
        [(.freeze, .scanner, nil), (.freeze, .route, nil)],    // perception stall
        [(.dropout, .scanner, nil), (.freeze, .route, nil)],   // scanner lost, route stale
    ]

    /// `scenario` with one hazard (`hazards`, drawn from `seed`): armed from a tick in 20…200, its
    /// faults begin when the robot's true clearance ahead falls below 0.6…0.9 m and last 40…100
    /// ticks (0.8–2 s at 50 Hz) — the sensors fail on the approach to an obstacle, the moment a
    /// controller trusting them would hit it.
    public static func withHazardFault(_ scenario: Scenario, seed: UInt64) -> Scenario {
        var rng = SimRNG(seed: SimRNG.mix(seed, 0x4A2A))
        var s = scenario
        let hazard = hazards[rng.int(0...(hazards.count - 1))]
        let from = rng.int(20...200)
        let within = r3(0.6 + 0.3 * rng.uniform())
        let to = from + rng.int(40...100)
        for (kind, sensor, sigma) in hazard {
            s.faults.append(FaultSpec(kind: kind, sensor: sensor, from: from, to: to, sigma: sigma, whenWithin: within))
        }
        return s
    }

    /// True when the episode with scenario seed `seed` gets random faults at `fraction` (0…1).
    public static func hasFaults(seed: UInt64, fraction: Double) -> Bool {
        fraction > 0 && Double(SimRNG.mix(seed, 0xFA18) >> 11) * (1.0 / 9_007_199_254_740_992.0) < fraction
    }
}

extension ScenarioGenerator.Family {
    /// `training`, `heldout`, or a comma-separated list of family names (the `--families` option
    /// of mgpt-sim and mgpt). The error names the unknown family and the known ones.
    public static func list(_ text: String) throws(FamilyListError) -> [Self] {
        switch text {
        case "training": return training
        case "heldout": return heldOut
        default:
            var out: [Self] = []
            for name in text.split(separator: ",") {
                guard let f = Self(rawValue: String(name)) else {
                    throw FamilyListError(description: "unknown family '\(name)', expected training, heldout or any of "
                        + allCases.map(\.rawValue).joined(separator: ", "))
                }
                out.append(f)
            }
            return out
        }
    }
}

/// A `--families` value that names no known family.
public struct FamilyListError: Error, CustomStringConvertible, Sendable {
    public var description: String
}
