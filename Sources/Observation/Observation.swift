/// Placeholder: observation frames and encoder (issue 5).
public enum ObservationModule {}
