import ArgumentParser
import Foundation
import MiniGPT

/// `mgpt tokenizer ...`: train, encode and decode with the byte-level BPE tokenizer.
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train a byte-level BPE tokenizer, or encode and decode with one.",
        subcommands: [TokenizerTrain.self, TokenizerEncode.self, TokenizerDecode.self])
}

/// `mgpt tokenizer train --corpus FILE... --vocab-size N --out tokenizer.json`.
struct TokenizerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train byte-level BPE on corpus files and write tokenizer.json.")

    @Option(parsing: .upToNextOption, help: "Corpus files; each one is a document.") var corpus: [String]
    @Option(help: "Total ids: 256 bytes + merges + 3 specials + observation + intent tokens.") var vocabSize: Int
    @Option(help: "Output tokenizer.json path.") var out: String
    @Option(help: "Reserved observation tokens.") var observationTokens = 64
    @Option(help: "Reserved intent tokens.") var intentTokens = 32

    func validate() throws {
        guard !corpus.isEmpty else { throw ValidationError("--corpus needs at least one file") }
        guard observationTokens >= 0, intentTokens >= 0 else {
            throw ValidationError("--observation-tokens and --intent-tokens must be >= 0")
        }
    }

    func run() throws {
        var docs: [[UInt8]] = []
        for path in corpus {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw failure("\(path): cannot read corpus file", code: Exit.noInput)
            }
            docs.append([UInt8](data))
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let tok: Tokenizer
        do {
            tok = try Tokenizer.train(corpus: docs, vocabSize: vocabSize, observationTokens: observationTokens,
                                      intentTokens: intentTokens)
        } catch { throw failure("\(error)", code: Exit.dataError) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        do { try tok.save(to: URL(fileURLWithPath: out)) } catch { throw failure("\(error)", code: Exit.noInput) }
        let bytes = docs.reduce(0) { $0 + $1.count }
        let tokens = docs.reduce(0) { $0 + tok.encode($1).count }
        print("wrote \(out): vocab \(tok.vocabSize) = 256 bytes + \(tok.mergeCount) merges + 3 specials + \(observationTokens) observation + \(intentTokens) intent; trained on \(bytes) bytes in \(fmt(seconds, 2)) s; \(fmt(Double(bytes) / Double(max(tokens, 1)), 3)) bytes/token")
    }
}

/// `mgpt tokenizer encode --tokenizer FILE [--json]`: stdin bytes → ids.
struct TokenizerEncode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode", abstract: "Encode stdin (any bytes) to token ids on stdout.")

    @Option(help: "The tokenizer.json to use.") var tokenizer: String
    @Flag(help: "Print a JSON array instead of space-separated ids.") var json = false

    func run() throws {
        let tok = try loadTokenizer(tokenizer)
        let input = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
        let ids = tok.encode(input).map(String.init)
        print(json ? "[" + ids.joined(separator: ",") + "]" : ids.joined(separator: " "))
    }
}

/// `mgpt tokenizer decode --tokenizer FILE`: ids on stdin → raw bytes on stdout.
struct TokenizerDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Decode token ids on stdin (separated by spaces, commas or newlines, or a JSON array) to raw bytes on stdout.")

    @Option(help: "The tokenizer.json to use.") var tokenizer: String

    func run() throws {
        let tok = try loadTokenizer(tokenizer)
        let text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        var body = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        if body.hasPrefix("[") {
            guard body.hasSuffix("]") else { throw failure("stdin: a JSON array must end with ']'", code: Exit.dataError) }
            body = body.dropFirst().dropLast()
        }
        let parts = body.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" })
        var ids: [Int] = []
        ids.reserveCapacity(parts.count)
        for (i, s) in parts.enumerated() {
            guard let id = Int(s) else { throw failure("stdin: item \(i + 1) \"\(s.prefix(20))\" is not an integer id", code: Exit.dataError) }
            guard id >= 0 && id < tok.vocabSize else {
                throw failure("stdin: item \(i + 1) (\(id)) is outside the vocabulary 0..<\(tok.vocabSize) of \(tokenizer)", code: Exit.dataError)
            }
            ids.append(id)
        }
        FileHandle.standardOutput.write(Data(tok.decode(ids)))
    }
}
