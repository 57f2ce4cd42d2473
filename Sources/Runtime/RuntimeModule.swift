/// The real-time runtime (robot.json, decision loop, recorder, replay).
public enum RuntimeModule {}
