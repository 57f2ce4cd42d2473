/// Fixed physical and sensor parameters of the simulated robot (a small differential-drive base,
/// roughly the size of a TurtleBot 3 Burger).
public enum RobotParams {
    /// Physics rate: ticks per second.
    public static let tickRate = 50
    /// Physics step in seconds (1 / `tickRate`).
    public static let dt = 1.0 / Double(tickRate)
    /// Radius of the robot's round shell in metres.
    public static let radius = 0.2
    /// Top forward speed in m/s (`FORWARD(1.0)`).
    public static let maxSpeed = 0.6
    /// Top turn rate in rad/s (`TURN_LEFT(1.0)`).
    public static let maxTurnRate = 2.0
    /// Linear acceleration limit of the low-level controller in m/s².
    public static let maxAccel = 1.5
    /// Angular acceleration limit of the low-level controller in rad/s².
    public static let maxAngAccel = 8.0
    /// Reverse speed of `BACKUP` in m/s.
    public static let backupSpeed = 0.15
    /// Range scanner: maximum range in metres.
    public static let rangeMax = 6.0
    /// Range scanner: noise standard deviation in metres.
    public static let rangeNoise = 0.01
    /// Camera: full horizontal field of view in radians (120°).
    public static let cameraFOV = 2.0 * Double.pi / 3
    /// Camera: maximum detection distance in metres.
    public static let cameraRange = 6.0
    /// Camera: bearing noise (radians) and relative distance noise.
    public static let cameraBearingNoise = 0.01, cameraDistanceNoise = 0.01
    /// Odometry: per-tick speed noise in m/s and turn-rate noise in rad/s.
    public static let odomSpeedNoise = 0.005, odomTurnNoise = 0.01
    /// The task is done when the robot's centre is within this distance (metres) of the target's
    /// centre and it says `DONE`. Matches `ObservationEncoder.closeDistance`.
    public static let reachDistance = 0.8
}
