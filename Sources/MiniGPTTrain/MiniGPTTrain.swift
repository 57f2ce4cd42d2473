/// Placeholder: the training module (issue 4) fills this target.
public enum MiniGPTTrainModule {}
