import Foundation
import Testing

// Shared helpers for the MiniGPT tests: temporary folders, the package root, and running python3
// (the independent numpy reference in Tests/reference/, the `safetensors` pip package) as a child
// process.

/// A fresh temporary directory, deleted when the value goes away.
final class TestTempDir {
    /// The directory.
    let url: URL

    /// Creates `$TMPDIR/<prefix>-<uuid>/`.
    init(_ prefix: String = "minigpt-test") throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// `url/name`.
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}

/// Paths inside the package, resolved from this source file so tests work from any cwd.
enum TestPaths {
    /// The package root (the folder holding `Package.swift`).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()   // Tests/MiniGPTTests
        .deletingLastPathComponent()   // Tests
        .deletingLastPathComponent()   // root

    /// `Tests/reference/<name>`.
    static func reference(_ name: String) -> URL {
        packageRoot.appendingPathComponent("Tests/reference/\(name)")
    }
}

/// What a child process did.
struct ProcessOutput {
    /// Exit status (or the terminating signal's number when it was killed).
    var status: Int32
    /// Everything written to stdout.
    var stdout: String
    /// Everything written to stderr.
    var stderr: String
    /// `status == 0`.
    var succeeded: Bool { status == 0 }
}

/// Errors of the helpers themselves (not of the code under test).
struct TestSupportError: Error, CustomStringConvertible {
    /// What went wrong.
    var description: String
}

/// Runs `executable` (looked up on PATH through /usr/bin/env) with `arguments` in the package root
/// and waits. stdout/stderr go to temporary files, so large outputs cannot dead-lock on a pipe.
func runProcess(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> ProcessOutput {
    let tmp = try TestTempDir("minigpt-proc")
    let outURL = tmp.file("stdout"), errURL = tmp.file("stderr"), inURL = tmp.file("stdin")
    try Data().write(to: outURL)
    try Data().write(to: errURL)
    try Data((stdin ?? "").utf8).write(to: inURL)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    let input = try FileHandle(forReadingFrom: inURL)
    defer { try? out.close(); try? err.close(); try? input.close() }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [executable] + arguments
    p.currentDirectoryURL = TestPaths.packageRoot
    p.standardOutput = out
    p.standardError = err
    p.standardInput = input
    do { try p.run() } catch {
        throw TestSupportError(description: "cannot start \(executable): \(error)")
    }
    p.waitUntilExit()
    let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return ProcessOutput(status: p.terminationStatus, stdout: stdout, stderr: stderr)
}

/// Runs `python3 arguments...` from the package root.
func runPython(_ arguments: [String], stdin: String? = nil) throws -> ProcessOutput {
    try runProcess("python3", arguments, stdin: stdin)
}

/// Runs a Python snippet given on stdin (`python3 - args...`).
func runPythonSnippet(_ code: String, _ arguments: [String] = []) throws -> ProcessOutput {
    try runPython(["-"] + arguments, stdin: code)
}

/// nil when every module in `modules` imports in python3; otherwise a message naming the missing
/// ones and the pip command that installs them.
func missingPythonModules(_ modules: [String], pip: [String]) -> String? {
    let code = modules.map { "import \($0)" }.joined(separator: "\n")
    guard let r = try? runPythonSnippet(code) else { return "python3 is not runnable (is it installed and on PATH?)" }
    if r.succeeded { return nil }
    let last = r.stderr.split(separator: "\n").last.map(String.init) ?? r.stderr
    return "python3 cannot import \(modules.joined(separator: ", ")) (\(last)); run: pip install \(pip.joined(separator: " "))"
}

/// Parses JSON text into `T` (e.g. `[Double]`, `[[Double]]`), failing with the first bytes of the text.
func decodeJSON<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
    do { return try JSONDecoder().decode(T.self, from: Data(text.utf8)) } catch {
        throw TestSupportError(description: "cannot decode \(T.self) from \(text.prefix(200))…: \(error)")
    }
}
