import ArgumentParser

struct InitCommand: ParsableCommand { static let configuration = CommandConfiguration(commandName: "init") }
struct LogitsCommand: ParsableCommand { static let configuration = CommandConfiguration(commandName: "logits") }
struct GenerateCommand: ParsableCommand { static let configuration = CommandConfiguration(commandName: "generate") }
struct InspectCommand: ParsableCommand { static let configuration = CommandConfiguration(commandName: "inspect") }
struct BenchDecode: ParsableCommand { static let configuration = CommandConfiguration(commandName: "decode") }
