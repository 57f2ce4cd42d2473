import ArgumentParser

/// Placeholder until its issue lands.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Not yet implemented.")
    func run() throws { throw ValidationError("not yet implemented") }
}
