/// Placeholder: the simulated world (issue 5).
public enum RobotSimModule {}
