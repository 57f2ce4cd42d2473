import ArgumentParser
import Foundation
import MiniGPT

/// `mgpt`: the MiniGPT engine's command line (tokenizer, model init, inference, training, benchmarks).
@main
struct MGPT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mgpt",
        abstract: "MiniGPT: a small transformer engine for real-time robot control.",
        version: "0.1.0",
        subcommands: [TokenizerCommand.self, InitCommand.self, LogitsCommand.self, GenerateCommand.self,
                      InspectCommand.self, TrainCommand.self, EvalCommand.self, EvalIntentsCommand.self, CalibrateCommand.self, ExplainCommand.self, ReplayCommand.self, BenchCommand.self, QuantizeCommand.self, LowRankCommand.self, LoRACommand.self, AttentionCommand.self])

    /// Settles the kernel path (MINIGPT_KERNELS) before any command runs: a refused value exits 78
    /// (EX_CONFIG) with the message, instead of a command starting on kernels nobody asked for.
    static func main() {
        do { try KernelPath.configure() } catch {
            FileHandle.standardError.write(Data("mgpt: error: \(error)\n".utf8))
            Self.exit(withError: ExitCode(78))
        }
        main(nil)
    }
}

/// `mgpt bench ...`: benchmarks that print a table and end with one `key=value` line.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: each prints a table and ends with one key=value line.",
        subcommands: [BenchDecode.self, BenchLoop.self, BenchTrain.self, BenchTokenizer.self, BenchExit.self, BenchLadder.self, BenchKV.self])
}
