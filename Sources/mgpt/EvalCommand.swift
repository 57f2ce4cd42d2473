import ArgumentParser

/// Placeholder until its issue lands.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Not yet implemented.")
    func run() throws { throw ValidationError("not yet implemented") }
}
