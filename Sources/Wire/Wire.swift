import CZeroMQ
/// Placeholder: the ZeroMQ wrapper (issue 6).
public enum WireModule {}
