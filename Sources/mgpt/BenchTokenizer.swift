import ArgumentParser

/// Placeholder until its issue lands.
struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer", abstract: "Not yet implemented.")
    func run() throws { throw ValidationError("not yet implemented") }
}
