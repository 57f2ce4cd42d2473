import Observation

/// The low-level controller's set-points: what each intent asks of the wheels.
///
/// `FORWARD(s)` drives straight at `s · maxSpeed`; `TURN_*(r)` turns in place at
/// `r · maxTurnRate`; `BACKUP` reverses at `backupSpeed`; `STOP` and `DONE` brake. The world
/// tracks these set-points under acceleration limits, so switching intents gives smooth arcs.
public enum Controller {
    /// Target (forward speed m/s, turn rate rad/s) for `intent`.
    public static func command(for intent: Intent) -> (v: Double, w: Double) {
        let arg = Double(intent.argument ?? 0)
        switch intent.kind {
        case .forward: return (arg * RobotParams.maxSpeed, 0)
        case .turnLeft: return (0, arg * RobotParams.maxTurnRate)
        case .turnRight: return (0, -arg * RobotParams.maxTurnRate)
        case .backup: return (-RobotParams.backupSpeed, 0)
        case .stop, .done: return (0, 0)
        }
    }
}
