import ArgumentParser
import Foundation
import MiniGPT
import Runtime

/// `mgpt replay`: re-runs a recording offline and checks every decision is bit-identical.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-run a recorded mgptd session and check every decision is bit-identical.",
        discussion: "Last line: ticks=… identical=… first_diff=… (none when all match). Exit 0 when identical, 1 when not.")

    @Argument(help: "The .mcap recording.") var file: String
    @Option(help: "The robot.json to replay with (model and controller thresholds); default: the one the recording carries (mgptd writes it), else Configs/robot.json.") var config: String?
    @Flag(help: "Print the first difference in full.") var verbose = false

    func run() throws {
        guard FileManager.default.fileExists(atPath: file) else { throw failure("\(file): no such recording", code: Exit.noInput) }
        let recorded = try recordedMetadata(file)
        try followRecordedKernels(recorded, recording: file)
        let cfg = try replayConfig(recorded, recording: file, option: config)
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

/// The `mgptd.config` pairs of `recording` (read once for the two functions below); exit 65 for
/// a recording that does not read.
func recordedMetadata(_ recording: String) throws -> [String: String]? {
    do { return try Replay.recordedMetadata(path: recording) } catch { throw failure("\(error)", code: Exit.dataError) }
}

/// The config a replay of `recording` runs with: `--config` when given (with a note on stderr when
/// the recording carries a different one), else the one the recording carries (`metadata`), else
/// Configs/robot.json (recordings from before mgptd wrote its config). Exit 78 for a config that
/// does not load, 65 for a recorded one that does not parse.
func replayConfig(_ metadata: [String: String]?, recording: String, option: String?) throws -> RobotConfig {
    let recorded: RobotConfig?
    do { recorded = try Replay.recordedConfig(metadata, recording: recording) } catch { throw failure("\(error)", code: Exit.dataError) }
    if let option {
        let cfg: RobotConfig
        do { cfg = try RobotConfig.load(path: option) } catch { throw failure("\(error)", code: 78) }
        if let r = recorded, r.sourceJSON != cfg.sourceJSON {
            FileHandle.standardError.write(Data("note: \(recording) was recorded with \(r.sourceFile) (a different config); replaying with --config \(option)\n".utf8))
        }
        return cfg
    }
    if let recorded { return recorded }
    FileHandle.standardError.write(Data("note: \(recording) carries no config (recorded before mgptd wrote it): replaying with Configs/robot.json; pass --config FILE for the one the session ran with\n".utf8))
    do { return try RobotConfig.load(path: "Configs/robot.json") } catch { throw failure("\(error)", code: 78) }
}

/// A bit-identical replay runs the kernel path the session ran: the INT8 sums agree on every path,
/// but the float parts of a step (attention, softmax, norms) round differently across vector
/// widths (measured: `vnni` = `avx512`, `avx2` = `avxvnni`, `portable` apart). When the recording
/// names a path (`kernels` in its config `metadata`) that differs from this process's
/// and MINIGPT_KERNELS is not set, this re-executes the command with MINIGPT_KERNELS set to it if
/// the CPU has it; otherwise (set by the user, or missing here) it says on stderr why decisions
/// may differ in their last bits.
func followRecordedKernels(_ metadata: [String: String]?, recording: String) throws {
    guard let recorded = metadata?["kernels"], recorded != KernelPath.selected else { return }
    let note = { (s: String) in FileHandle.standardError.write(Data("note: \(s)\n".utf8)) }
    if let forced = ProcessInfo.processInfo.environment["MINIGPT_KERNELS"], !forced.isEmpty {
        note("\(recording) was recorded with kernels=\(recorded); replaying with kernels=\(KernelPath.selected) as MINIGPT_KERNELS asks: float results may differ in their last bits")
        return
    }
    guard KernelPath.supported.contains(recorded) else {
        note("\(recording) was recorded with kernels=\(recorded), which this CPU lacks (it has \(KernelPath.supported.joined(separator: ","))); replaying with kernels=\(KernelPath.selected): float results may differ in their last bits")
        return
    }
    note("\(recording) was recorded with kernels=\(recorded): replaying on it (MINIGPT_KERNELS=\(recorded))")
    setenv("MINIGPT_KERNELS", recorded, 1)
    let args = CommandLine.arguments
    var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
    execv("/proc/self/exe", &argv)
    throw failure("cannot re-execute \(args[0]) with MINIGPT_KERNELS=\(recorded): \(String(cString: strerror(errno)))", code: 71)
}
