import ArgumentParser
import Foundation
import Runtime

/// `mgpt replay`: re-runs a recording offline and checks every decision is bit-identical.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-run a recorded mgptd session and check every decision is bit-identical.",
        discussion: "Last line: ticks=… identical=… first_diff=… (none when all match). Exit 0 when identical, 1 when not.")

    @Argument(help: "The .mcap recording.") var file: String
    @Option(help: "The robot.json the session ran with (model and controller thresholds).") var config: String = "Configs/robot.json"
    @Flag(help: "Print the first difference in full.") var verbose = false

    func run() throws {
        let cfg: RobotConfig
        do { cfg = try RobotConfig.load(path: config) } catch { throw failure("\(error)", code: 78) }
        guard FileManager.default.fileExists(atPath: file) else { throw failure("\(file): no such recording", code: Exit.noInput) }
        let report: ReplayReport
        do { report = try Replay.run(path: file, config: cfg) } catch let e as DaemonError {
            throw failure(e.message, code: e.code)
        } catch {
            throw failure("\(error)", code: Exit.dataError)
        }
        print("replayed \(file): \(report.ticks) ticks, \(report.frames) frames\(report.truncated ? " (file truncated: replayed up to its last complete record)" : "")")
        if let d = report.firstDiff, verbose { print("first difference at tick \(d.tick): \(d.what)") }
        print("ticks=\(report.ticks) identical=\(report.identical) first_diff=\(report.firstDiff.map { "\($0.tick)" } ?? "none")")
        if report.identical != report.ticks { throw ExitCode(1) }
    }
}
