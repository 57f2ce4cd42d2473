import Foundation

/// One fused observation of the robot's senses at one simulation (or robot) tick.
///
/// This is the payload of the `obs` topic: versioned JSON (`"v": 2`) that a Python subscriber reads
/// with `json.loads`. Schema: `docs/sim.md` and `docs/schemas/obs.schema.json`.
///
/// Version 2 added `route`: what a navigation stack's global planner hands its local controller
/// (nav2's planner → controller split). Version 1 frames are rejected: a model trained on v2
/// frames cannot drive without the route hint.
///
/// Conventions: metres, seconds, radians; bearings are counter-clockwise from the robot's heading
/// (positive = to the left). Frames never say which sensor is faulty: a dropped scan is an empty
/// `ranges` array, a frozen or noisy sensor just looks frozen or noisy. They may say *when* each
/// sensor's reading was taken (`stamps`, optional): a stalled driver shows as a stamp that falls
/// behind `t`.
public struct ObservationFrame: Codable, Sendable, Equatable {
    /// The schema version this code writes and accepts.
    public static let version = 2
    /// Number of beams of the range scanner, evenly spread over 360°, beam 0 straight ahead.
    public static let beamCount = 16

    /// Schema version; always `ObservationFrame.version` for frames this code writes.
    public var v: Int
    /// Sequence number of the frame, counting from 0 at the start of the episode.
    public var seq: UInt64
    /// Simulation (or robot) time in seconds since the start of the episode.
    public var t: Double
    /// Range scanner: `beamCount` distances in metres from the robot's centre; beam `i` points at
    /// bearing `i · 2π / beamCount`. Readings are clipped to `rangeMax`. Empty when the scanner
    /// delivered nothing this tick.
    public var ranges: [Float]
    /// The scanner's maximum range in metres (a reading equal to it means "nothing seen").
    public var rangeMax: Float
    /// Camera-like detector: objects seen inside the field of view, nearest first.
    public var detections: [Detection]
    /// Wheel odometry: pose integrated from the wheels (drifts) and measured velocities.
    public var odom: Odometry
    /// Bumper: true while the robot's shell touches something.
    public var bump: Bool
    /// Battery state of charge in [0, 1].
    public var battery: Float
    /// The global planner's hint for this tick, or nil when it has no route (no path found, or no
    /// planner running). JSON `null`.
    public var route: Route?
    /// When each sensor's reading was taken, if the fusion stack knows (its drivers' message
    /// stamps); nil (JSON key absent or `null`): not reported. Optional within version 2.
    public var stamps: SensorStamps?

    /// JSON key names (snake_case where the Swift name is camelCase).
    enum CodingKeys: String, CodingKey {
        case v, seq, t, ranges, rangeMax = "range_max", detections, odom, bump, battery, route, stamps
    }

    /// A frame with every field given; `v` is always the current version.
    public init(seq: UInt64, t: Double, ranges: [Float], rangeMax: Float, detections: [Detection],
                odom: Odometry, bump: Bool, battery: Float, route: Route? = nil, stamps: SensorStamps? = nil) {
        self.v = Self.version
        self.seq = seq
        self.t = t
        self.ranges = ranges
        self.rangeMax = rangeMax
        self.detections = detections
        self.odom = odom
        self.bump = bump
        self.battery = battery
        self.route = route
        self.stamps = stamps
    }

    /// Decodes a frame and rejects any version other than `ObservationFrame.version`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        v = try c.decode(Int.self, forKey: .v)
        guard v == Self.version else {
            throw DecodingError.dataCorruptedError(
                forKey: .v, in: c, debugDescription: "expected version \(Self.version), found \(v)")
        }
        seq = try c.decode(UInt64.self, forKey: .seq)
        t = try c.decode(Double.self, forKey: .t)
        ranges = try c.decode([Float].self, forKey: .ranges)
        rangeMax = try c.decode(Float.self, forKey: .rangeMax)
        detections = try c.decode([Detection].self, forKey: .detections)
        odom = try c.decode(Odometry.self, forKey: .odom)
        bump = try c.decode(Bool.self, forKey: .bump)
        battery = try c.decode(Float.self, forKey: .battery)
        // Required key whose value may be null: a sender that forgot it is told so.
        guard c.contains(.route) else {
            throw DecodingError.keyNotFound(CodingKeys.route, DecodingError.Context(
                codingPath: c.codingPath, debugDescription: "required key (null when there is no route)"))
        }
        route = try c.decodeIfPresent(Route.self, forKey: .route)
        stamps = try c.decodeIfPresent(SensorStamps.self, forKey: .stamps)
    }

    /// Encodes every key, `route` as `null` when absent (synthesised encoding would drop it).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(v, forKey: .v)
        try c.encode(seq, forKey: .seq)
        try c.encode(t, forKey: .t)
        try c.encode(ranges, forKey: .ranges)
        try c.encode(rangeMax, forKey: .rangeMax)
        try c.encode(detections, forKey: .detections)
        try c.encode(odom, forKey: .odom)
        try c.encode(bump, forKey: .bump)
        try c.encode(battery, forKey: .battery)
        if let route { try c.encode(route, forKey: .route) } else { try c.encodeNil(forKey: .route) }
        try c.encodeIfPresent(stamps, forKey: .stamps)
    }
}

/// When each sensor's reading in a frame was taken: seconds on the clock of the frame's `t`
/// (a fusion stack copies its drivers' message stamps). A reading repeated because its driver
/// stalled keeps its old stamp; a sensor that delivers nothing keeps the stamp of its last
/// message. nil: that sensor's stamp is not reported.
public struct SensorStamps: Codable, Sendable, Equatable {
    /// The range scan's stamp.
    public var scanner: Double?
    /// The detections' stamp (the camera frame they came from).
    public var camera: Double?
    /// The odometry message's stamp.
    public var odom: Double?

    /// Stamps with every field given (nil = not reported).
    public init(scanner: Double? = nil, camera: Double? = nil, odom: Double? = nil) {
        self.scanner = scanner
        self.camera = camera
        self.odom = odom
    }
}

/// The route hint of a global planner: where the planned path goes next and how far is left.
///
/// This is the split of a navigation stack (nav2: planner server → controller server): a planner
/// with the map and the localised pose plans the path to the goal; the local controller (here,
/// the model) follows it while reacting to what the sensors show — clutter, movers, bumps, the
/// target in view. In the simulator the planner is A* on the room's occupancy grid from the
/// localised pose, re-planned at 10 Hz around the movers (`RoutePlanner`).
public struct Route: Codable, Sendable, Equatable {
    /// Bearing in radians (positive = left, in (−π, π]) from the robot's heading to the carrot:
    /// the point `RoutePlanner.lookahead` metres along the planned path, or the target itself
    /// once it is near and a robot-wide lane to it is clear.
    public var bearing: Float
    /// Metres left to the stopping point (the path length, bounded by the straight distance to
    /// the point `stopDistance` short of the target); 0 means arrived: stop and say `DONE`.
    public var distance: Float

    /// A hint with every field given.
    public init(bearing: Float, distance: Float) {
        self.bearing = bearing
        self.distance = distance
    }
}

/// One object seen by the camera-like detector.
public struct Detection: Codable, Sendable, Equatable {
    /// Colour name as the detector reports it (`red`, `green`, ...; may be a colour never seen in
    /// training, such as `orange`).
    public var colour: String
    /// Object kind (`box`, `ball`, `door`, `cone`).
    public var kind: String
    /// Bearing of the object's centre in radians, positive to the left, within the field of view.
    public var bearing: Float
    /// Distance from the robot's centre to the object's centre in metres.
    public var distance: Float

    /// A detection with every field given.
    public init(colour: String, kind: String, bearing: Float, distance: Float) {
        self.colour = colour
        self.kind = kind
        self.bearing = bearing
        self.distance = distance
    }
}

/// Wheel odometry: the pose integrated from wheel motion since the episode start and the measured
/// linear and angular velocities.
public struct Odometry: Codable, Sendable, Equatable {
    /// Integrated x position in metres (odometry frame; drifts from the true pose).
    public var x: Float
    /// Integrated y position in metres.
    public var y: Float
    /// Integrated heading in radians, wrapped to (-π, π].
    public var theta: Float
    /// Measured forward speed in m/s (negative when backing up).
    public var v: Float
    /// Measured turn rate in rad/s (positive = turning left).
    public var w: Float

    /// Odometry with every field given.
    public init(x: Float, y: Float, theta: Float, v: Float, w: Float) {
        self.x = x
        self.y = y
        self.theta = theta
        self.v = v
        self.w = w
    }
}

extension ObservationFrame {
    /// The frame as compact JSON (keys sorted, so the same frame always gives the same bytes).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    /// Decodes a frame from JSON; on failure the error names the key path and what was wrong.
    public static func decode(json: Data) throws(FrameDecodingError) -> ObservationFrame {
        do {
            return try JSONDecoder().decode(ObservationFrame.self, from: json)
        } catch let error as DecodingError {
            throw FrameDecodingError(message: decodingErrorDescription(error))
        } catch {
            throw FrameDecodingError(message: "\(error)")
        }
    }
}

/// A frame that could not be decoded; `message` names the key path, expected and found.
public struct FrameDecodingError: Error, CustomStringConvertible, Sendable {
    /// Human-readable reason, e.g. `detections[0].bearing: expected Float, found a string`.
    public let message: String
    /// Same as `message`.
    public var description: String { "observation frame: \(message)" }
}

/// Renders a `DecodingError` as `key.path[3].name: what was wrong` (shared with scenario loading).
public func decodingErrorDescription(_ error: DecodingError) -> String {
    func path(_ keys: [any CodingKey]) -> String {
        var out = ""
        for key in keys {
            if let i = key.intValue { out += "[\(i)]" } else { out += out.isEmpty ? key.stringValue : "." + key.stringValue }
        }
        return out.isEmpty ? "<root>" : out
    }
    switch error {
    case .typeMismatch(_, let ctx):
        // debugDescription says both sides: "Expected to decode Double but found a string instead."
        return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
    case .valueNotFound(let type, let ctx):
        return "\(path(ctx.codingPath)): expected \(type), found null"
    case .keyNotFound(let key, let ctx):
        return "\(path(ctx.codingPath + [key])): required key is missing"
    case .dataCorrupted(let ctx):
        let detail = ctx.underlyingError.map { " (\($0))" } ?? ""
        return "\(path(ctx.codingPath)): \(ctx.debugDescription)\(detail)"
    @unknown default:
        return "\(error)"
    }
}
