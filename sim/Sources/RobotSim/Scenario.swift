import Foundation
import Observation

/// A scenario: one room layout, the robot's start, the task and the scheduled sensor faults.
///
/// Stored as JSON in `sim/scenarios/*.json` (hand-written) or produced by `ScenarioGenerator`
/// (procedural, seeded). Keys are snake_case; optional keys have the defaults documented on each
/// property. The full format is in `docs/sim.md`.
public struct Scenario: Codable, Sendable, Equatable {
    /// Short name (the file's base name for hand-written scenarios).
    public var name: String
    /// Layout family (`open_room`, `two_rooms`, `cluttered`, `pillars`, `zigzag`, or `custom`).
    public var family: String
    /// Seed of the sensor-noise stream (and of the instruction wording when `task.instruction` is
    /// absent). Default 0.
    public var seed: UInt64
    /// Room width (x extent) in metres; the outer walls enclose `[0, width] × [0, height]`.
    public var width: Double
    /// Room height (y extent) in metres.
    public var height: Double
    /// Interior walls (axis-aligned rectangles). Default none.
    public var walls: [RectSpec]
    /// Static obstacles (axis-aligned boxes). Default none.
    public var obstacles: [RectSpec]
    /// Moving obstacles, each going back and forth between its start and `to`. Default none.
    public var movers: [MoverSpec]
    /// Coloured objects; one of them is the task's target.
    public var objects: [ObjectSpec]
    /// The robot's start state.
    public var robot: RobotSpec
    /// What the robot must do.
    public var task: TaskSpec
    /// Episode length limit in physics ticks (50 Hz). Default 1500.
    public var maxTicks: Int
    /// Physics ticks per policy decision (the expert decides, and the corpus records, every
    /// `decisionEvery` ticks). Default 5 (10 Hz).
    public var decisionEvery: Int
    /// Sensor faults scheduled by tick ranges. Default none.
    public var faults: [FaultSpec]

    enum CodingKeys: String, CodingKey {
        case name, family, seed, width, height, walls, obstacles, movers, objects, robot, task
        case maxTicks = "max_ticks", decisionEvery = "decision_every", faults
    }

    /// A scenario with every field given.
    public init(name: String, family: String, seed: UInt64, width: Double, height: Double,
                walls: [RectSpec], obstacles: [RectSpec], movers: [MoverSpec], objects: [ObjectSpec],
                robot: RobotSpec, task: TaskSpec, maxTicks: Int = 1500, decisionEvery: Int = 5,
                faults: [FaultSpec] = []) {
        self.name = name; self.family = family; self.seed = seed
        self.width = width; self.height = height
        self.walls = walls; self.obstacles = obstacles; self.movers = movers; self.objects = objects
        self.robot = robot; self.task = task
        self.maxTicks = maxTicks; self.decisionEvery = decisionEvery; self.faults = faults
    }

    /// Decodes a scenario, filling defaults for optional keys.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? "unnamed"
        family = try c.decodeIfPresent(String.self, forKey: .family) ?? "custom"
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
        width = try c.decode(Double.self, forKey: .width)
        height = try c.decode(Double.self, forKey: .height)
        walls = try c.decodeIfPresent([RectSpec].self, forKey: .walls) ?? []
        obstacles = try c.decodeIfPresent([RectSpec].self, forKey: .obstacles) ?? []
        movers = try c.decodeIfPresent([MoverSpec].self, forKey: .movers) ?? []
        objects = try c.decode([ObjectSpec].self, forKey: .objects)
        robot = try c.decode(RobotSpec.self, forKey: .robot)
        task = try c.decode(TaskSpec.self, forKey: .task)
        maxTicks = try c.decodeIfPresent(Int.self, forKey: .maxTicks) ?? 1500
        decisionEvery = try c.decodeIfPresent(Int.self, forKey: .decisionEvery) ?? 5
        faults = try c.decodeIfPresent([FaultSpec].self, forKey: .faults) ?? []
    }
}

/// An axis-aligned rectangle in a scenario file: `{"x": …, "y": …, "w": …, "h": …}` (lower-left
/// corner, width, height; metres).
public struct RectSpec: Codable, Sendable, Equatable {
    /// Lower-left x.
    public var x: Double
    /// Lower-left y.
    public var y: Double
    /// Width, > 0.
    public var w: Double
    /// Height, > 0.
    public var h: Double
    /// A rectangle spec from its fields.
    public init(x: Double, y: Double, w: Double, h: Double) { self.x = x; self.y = y; self.w = w; self.h = h }
    /// The geometric rectangle.
    public var rect: Rect { Rect(x: x, y: y, w: w, h: h) }
}

/// A moving obstacle (a disc) that shuttles between its start `(x, y)` and `to` at `speed`.
public struct MoverSpec: Codable, Sendable, Equatable {
    /// Start x.
    public var x: Double
    /// Start y.
    public var y: Double
    /// Other end of its track.
    public var to: Vec2
    /// Disc radius in metres. Default 0.2.
    public var radius: Double
    /// Speed in m/s. Default 0.3.
    public var speed: Double

    enum CodingKeys: String, CodingKey { case x, y, to, radius, speed }

    /// A mover spec from its fields.
    public init(x: Double, y: Double, to: Vec2, radius: Double = 0.2, speed: Double = 0.3) {
        self.x = x; self.y = y; self.to = to; self.radius = radius; self.speed = speed
    }

    /// Decodes a mover, filling defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        x = try c.decode(Double.self, forKey: .x)
        y = try c.decode(Double.self, forKey: .y)
        to = try c.decode(Vec2.self, forKey: .to)
        radius = try c.decodeIfPresent(Double.self, forKey: .radius) ?? 0.2
        speed = try c.decodeIfPresent(Double.self, forKey: .speed) ?? 0.3
    }
}

/// A coloured object (a disc for physics and sensing).
public struct ObjectSpec: Codable, Sendable, Equatable {
    /// Unique id within the scenario (the task names its target by id).
    public var id: String
    /// Colour name (`red`, `green`, `blue`, `yellow`, `purple`; others are "unseen" colours).
    public var colour: String
    /// Kind: `box`, `ball`, `cone` or `door` (used in instructions and detections).
    public var kind: String
    /// Centre x.
    public var x: Double
    /// Centre y.
    public var y: Double
    /// Radius in metres (0.05…0.3). Default 0.2.
    public var radius: Double

    enum CodingKeys: String, CodingKey { case id, colour, kind, x, y, radius }

    /// An object spec from its fields.
    public init(id: String, colour: String, kind: String, x: Double, y: Double, radius: Double = 0.2) {
        self.id = id; self.colour = colour; self.kind = kind; self.x = x; self.y = y; self.radius = radius
    }

    /// Decodes an object, filling defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        colour = try c.decode(String.self, forKey: .colour)
        kind = try c.decode(String.self, forKey: .kind)
        x = try c.decode(Double.self, forKey: .x)
        y = try c.decode(Double.self, forKey: .y)
        radius = try c.decodeIfPresent(Double.self, forKey: .radius) ?? 0.2
    }
}

/// The robot's start state.
public struct RobotSpec: Codable, Sendable, Equatable {
    /// Start x.
    public var x: Double
    /// Start y.
    public var y: Double
    /// Start heading in radians (0 = +x). Default 0.
    public var theta: Double
    /// Start state of charge in [0, 1]. Default 1.
    public var battery: Double
    /// Charge used per second of operation (idle part; moving costs 2× more). Default 0.002.
    public var batteryDrain: Double

    enum CodingKeys: String, CodingKey { case x, y, theta, battery, batteryDrain = "battery_drain" }

    /// A robot spec from its fields.
    public init(x: Double, y: Double, theta: Double = 0, battery: Double = 1, batteryDrain: Double = 0.002) {
        self.x = x; self.y = y; self.theta = theta; self.battery = battery; self.batteryDrain = batteryDrain
    }

    /// Decodes the robot, filling defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        x = try c.decode(Double.self, forKey: .x)
        y = try c.decode(Double.self, forKey: .y)
        theta = try c.decodeIfPresent(Double.self, forKey: .theta) ?? 0
        battery = try c.decodeIfPresent(Double.self, forKey: .battery) ?? 1
        batteryDrain = try c.decodeIfPresent(Double.self, forKey: .batteryDrain) ?? 0.002
    }
}

/// The episode's task: reach the target object and say `DONE`.
public struct TaskSpec: Codable, Sendable, Equatable {
    /// Id of the target object in `objects`.
    public var target: String
    /// Natural-language instruction; when absent one is drawn from the templates with the
    /// scenario's seed.
    public var instruction: String?
    /// A task spec from its fields.
    public init(target: String, instruction: String? = nil) { self.target = target; self.instruction = instruction }
}

/// One scheduled sensor fault, active for physics ticks `from ..< to`.
///
/// Frames never flag faults; only the simulator's metrics know (`World.faultTicks`).
public struct FaultSpec: Codable, Sendable, Equatable {
    /// What goes wrong.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// The sensor delivers nothing (scanner: empty `ranges`; camera: no detections;
        /// odometry: all zeros; bumper: never pressed; battery: reads 0).
        case dropout
        /// Gaussian noise of standard deviation `sigma` (metres / radians / relative).
        case noise
        /// The sensor repeats the reading it had when the fault began.
        case freeze
        /// Readings disagree: the scanner sees nothing anywhere, the bumper reads pressed and the
        /// camera reports every object on the mirrored side.
        case contradict
        /// The camera reports the target object with colour `colour` (e.g. one never trained on).
        case recolour
    }
    /// A sensor a fault can hit.
    public enum Sensor: String, Codable, Sendable, CaseIterable {
        /// 16-beam range scanner.
        case scanner
        /// Camera-like object detector.
        case camera
        /// Wheel odometry.
        case odometry
        /// Bumper.
        case bumper
        /// Battery gauge.
        case battery
        /// The navigation stack's route hint (`dropout`: no route; `noise`: bearing noise in rad;
        /// `freeze`: the hint stops updating).
        case route
    }
    /// What goes wrong.
    public var kind: Kind
    /// Which sensor (required for `dropout`, `noise`, `freeze`).
    public var sensor: Sensor?
    /// First faulty tick.
    public var from: Int
    /// First tick after the fault.
    public var to: Int
    /// Noise standard deviation (required for `noise`).
    public var sigma: Double?
    /// Reported colour (required for `recolour`).
    public var colour: String?
    /// A hazard trigger (metres, JSON `when_within`): when set, the fault is armed at tick `from`,
    /// begins at the first tick the robot's true clearance ahead (`World.frontClearance`) is below
    /// this, and then lasts `to − from` ticks — the sensor fails as the robot closes in on
    /// something, when a wrong reading costs most. Nil: active for ticks `from ..< to`.
    public var whenWithin: Double?

    enum CodingKeys: String, CodingKey { case kind, sensor, from, to, sigma, colour, whenWithin = "when_within" }

    /// A fault spec from its fields.
    public init(kind: Kind, sensor: Sensor? = nil, from: Int, to: Int, sigma: Double? = nil, colour: String? = nil,
                whenWithin: Double? = nil) {
        self.kind = kind; self.sensor = sensor; self.from = from; self.to = to; self.sigma = sigma; self.colour = colour
        self.whenWithin = whenWithin
    }

    /// True when a scheduled (untriggered) fault is active at `tick`; a triggered fault's window
    /// depends on the run (`World.activeFaults`).
    @inline(__always)
    public func isActive(at tick: Int) -> Bool { whenWithin == nil && tick >= from && tick < to }

    /// Its name in metrics and sample lists: `kind/sensor` (`kind` alone without a sensor).
    public var name: String { sensor.map { "\(kind.rawValue)/\($0.rawValue)" } ?? kind.rawValue }
}

/// A scenario file that could not be read; names the file and the key path.
public struct ScenarioError: Error, CustomStringConvertible, Sendable {
    /// The file (or `<generated>`).
    public let file: String
    /// Where in the file, e.g. `objects[2].radius`, and what was expected vs found.
    public let message: String
    /// `file: message`.
    public var description: String { "\(file): \(message)" }
}

extension Scenario {
    /// Reads and validates a scenario file. Errors name the file and the key path.
    public static func load(path: String) throws(ScenarioError) -> Scenario {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ScenarioError(file: path, message: "cannot read file (\(error.localizedDescription))")
        }
        return try decode(data, file: path)
    }

    /// Decodes and validates scenario JSON; `file` is used in error messages.
    public static func decode(_ data: Data, file: String = "<scenario>") throws(ScenarioError) -> Scenario {
        let s: Scenario
        do {
            s = try JSONDecoder().decode(Scenario.self, from: data)
        } catch let e as DecodingError {
            throw ScenarioError(file: file, message: decodingErrorDescription(e))
        } catch {
            throw ScenarioError(file: file, message: "\(error)")
        }
        if let problem = s.validationProblem() { throw ScenarioError(file: file, message: problem) }
        return s
    }

    /// Pretty, key-sorted JSON for this scenario (what `mgpt-sim generate` prints).
    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(self)
    }

    /// The first semantic problem (`key.path: expected …, found …`), or nil when valid.
    public func validationProblem() -> String? {
        func positive(_ v: Double, _ key: String) -> String? {
            v.isFinite && v > 0 ? nil : "\(key): expected a positive number, found \(v)"
        }
        if let p = positive(width, "width") ?? positive(height, "height") { return p }
        func inside(_ x: Double, _ y: Double, _ key: String) -> String? {
            (0...width).contains(x) && (0...height).contains(y) ? nil
                : "\(key): expected a point inside the room [0, \(width)] × [0, \(height)], found (\(x), \(y))"
        }
        for (name, list) in [("walls", walls), ("obstacles", obstacles)] {
            for (i, r) in list.enumerated() {
                if let p = positive(r.w, "\(name)[\(i)].w") ?? positive(r.h, "\(name)[\(i)].h") { return p }
            }
        }
        for (i, m) in movers.enumerated() {
            if let p = positive(m.radius, "movers[\(i)].radius") ?? positive(m.speed, "movers[\(i)].speed")
                ?? inside(m.x, m.y, "movers[\(i)]") ?? inside(m.to.x, m.to.y, "movers[\(i)].to") { return p }
        }
        var ids = Set<String>()
        for (i, o) in objects.enumerated() {
            if !(0.05...0.3).contains(o.radius) {
                return "objects[\(i)].radius: expected 0.05…0.3, found \(o.radius)"
            }
            if let p = inside(o.x, o.y, "objects[\(i)]") { return p }
            if o.colour.isEmpty { return "objects[\(i)].colour: expected a colour name, found an empty string" }
            if !ids.insert(o.id).inserted { return "objects[\(i)].id: duplicate id '\(o.id)'" }
        }
        if !ids.contains(task.target) {
            return "task.target: expected the id of an object (\(ids.sorted().joined(separator: ", "))), found '\(task.target)'"
        }
        if let p = inside(robot.x, robot.y, "robot") { return p }
        if !(0...1).contains(robot.battery) { return "robot.battery: expected 0…1, found \(robot.battery)" }
        if !(robot.batteryDrain >= 0) { return "robot.battery_drain: expected ≥ 0, found \(robot.batteryDrain)" }
        let robotAt = Vec2(robot.x, robot.y)
        for (i, r) in (walls + obstacles).enumerated() where r.rect.intersects(circle: robotAt, radius: RobotParams.radius) {
            let key = i < walls.count ? "walls[\(i)]" : "obstacles[\(i - walls.count)]"
            return "robot: start (\(robot.x), \(robot.y)) overlaps \(key)"
        }
        if maxTicks < 1 { return "max_ticks: expected ≥ 1, found \(maxTicks)" }
        if decisionEvery < 1 { return "decision_every: expected ≥ 1, found \(decisionEvery)" }
        for (i, f) in faults.enumerated() {
            let key = "faults[\(i)]"
            if f.from < 0 || f.to <= f.from { return "\(key): expected 0 ≤ from < to, found from \(f.from), to \(f.to)" }
            if let w = f.whenWithin, !(w > 0) { return "\(key).when_within: expected > 0 metres, found \(w)" }
            switch f.kind {
            case .dropout, .freeze, .noise:
                if f.sensor == nil { return "\(key).sensor: required for kind '\(f.kind.rawValue)'" }
                if f.kind == .noise {
                    guard let s = f.sigma else { return "\(key).sigma: required for kind 'noise'" }
                    if !(s > 0) { return "\(key).sigma: expected > 0, found \(s)" }
                    if f.sensor == .bumper || f.sensor == .battery {
                        return "\(key).sensor: noise applies to scanner, camera or odometry, found '\(f.sensor!.rawValue)'"
                    }
                }
            case .recolour:
                if (f.colour ?? "").isEmpty { return "\(key).colour: required for kind 'recolour'" }
            case .contradict:
                break
            }
        }
        return nil
    }
}
