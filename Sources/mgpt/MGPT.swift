import ArgumentParser

/// `mgpt`: the MiniGPT engine's command line (tokenizer, model init, inference, training, benchmarks).
@main
struct MGPT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mgpt",
        abstract: "MiniGPT: a small transformer engine for real-time robot control.",
        version: "0.1.0",
        subcommands: [TokenizerCommand.self, InitCommand.self, LogitsCommand.self, GenerateCommand.self,
                      InspectCommand.self, TrainCommand.self, EvalCommand.self, EvalIntentsCommand.self, ReplayCommand.self, BenchCommand.self, QuantizeCommand.self, LowRankCommand.self, LoRACommand.self, AttentionCommand.self])
}

/// `mgpt bench ...`: benchmarks that print a table and end with one `key=value` line.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: each prints a table and ends with one key=value line.",
        subcommands: [BenchDecode.self, BenchLoop.self, BenchTrain.self, BenchTokenizer.self, BenchExit.self, BenchLadder.self, BenchKV.self])
}
