import ArgumentParser
import Foundation
import MiniGPT

/// Exit codes of `mgpt`, from sysexits.h so scripts can tell failures apart.
enum Exit {
    /// Bad data in an input file (config, safetensors, tokenizer): EX_DATAERR.
    static let dataError: Int32 = 65
    /// An input file or folder is missing or unreadable: EX_NOINPUT.
    static let noInput: Int32 = 66
    /// A helper program (python3 for the numpy reference) failed: EX_UNAVAILABLE.
    static let unavailable: Int32 = 69
    /// A bad combination of command-line options found after loading the model: EX_USAGE.
    static let usage: Int32 = 64
    /// A benchmark target or budget was missed.
    static let budgetMissed: Int32 = 3
}

/// Prints `mgpt: error: message` to stderr and returns the exit code to throw.
func failure(_ message: String, code: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("mgpt: error: \(message)\n".utf8))
    return ExitCode(code)
}

/// Writes a line to stderr (progress and diagnostics stay off stdout, which carries results).
func note(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Loads a model folder's weights, turning file errors into a message and an exit code.
func loadWeights(_ path: String) throws -> ModelWeights {
    let url = URL(fileURLWithPath: path)
    guard FileManager.default.fileExists(atPath: url.appendingPathComponent(ModelFolder.configFile).path) else {
        throw failure("\(path): not a model folder (no \(ModelFolder.configFile); create one with `mgpt init --out \(path)`)", code: Exit.noInput)
    }
    do {
        return try ModelFolder.load(url)
    } catch {
        throw failure("\(error)", code: Exit.dataError)
    }
}

/// Loads a model folder's tokenizer.
func loadTokenizer(_ path: String) throws -> Tokenizer {
    let url = URL(fileURLWithPath: path)
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw failure("\(path): no such tokenizer file", code: Exit.noInput)
    }
    do { return try Tokenizer(contentsOf: url) } catch { throw failure("\(error)", code: Exit.dataError) }
}

/// Parses "1,2,3" (commas and/or spaces) into token ids.
func parseIDs(_ text: String) throws -> [Int] {
    let parts = text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" })
    return try parts.enumerated().map { i, s in
        guard let v = Int(s) else { throw ValidationError("--ids: item \(i + 1) \"\(s)\" is not an integer") }
        return v
    }
}

/// A JSON array of floats using Swift's shortest round-trip formatting (exact for Float).
func jsonArray<C: Collection>(_ values: C) -> String where C.Element == Float {
    "[" + values.map { $0.isFinite ? "\($0)" : "null" }.joined(separator: ",") + "]"
}

/// Renders rows as a fixed-width text table (first row is the header).
func table(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = [Int](repeating: 0, count: first.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ r: [String]) -> String {
        r.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
    }
    let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
    return ([line(first), rule] + rows.dropFirst().map(line)).joined(separator: "\n")
}

/// Formats a double with `digits` decimals.
func fmt(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
