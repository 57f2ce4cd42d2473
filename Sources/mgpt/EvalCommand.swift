import ArgumentParser
import Foundation
import MiniGPT
import MiniGPTTrain

/// `mgpt eval`: held-out log-prob, perplexity, bits per char/byte and entropy of a model folder.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score a model on a corpus (default: `mgpt eval --model … --corpus …`) or evaluate the meta-controller (`mgpt eval controller`).",
        subcommands: [EvalCorpusCommand.self, EvalControllerCommand.self, EvalAdversarialCommand.self], defaultSubcommand: EvalCorpusCommand.self)
}

/// `mgpt eval [corpus]`: log-prob, perplexity, bits per char and byte, entropy of a model on a corpus.
struct EvalCorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Score a model folder on a corpus: log-prob, perplexity, bits per char and byte, entropy.")

    @Option(help: "The model folder (config.json, model.safetensors, tokenizer.json).")
    var model: String
    @Option(parsing: .upToNextOption, help: "Corpus files (text, or sim corpus *.jsonl).")
    var corpus: [String]
    @Option(name: .customLong("seq-len"), help: "Window length (default: the trained sequence length).")
    var seqLen: Int?
    @Flag(help: "Score with the inference engine's Session (packed FP32/INT8/low-rank kernels) instead of the trainer's forward.")
    var engine = false
    @Option(help: "A LoRA adapter folder merged into the model at load (adapter_config.json, adapter_model.safetensors).")
    var adapter: String?
    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if corpus.isEmpty { throw ValidationError("--corpus needs at least one file.") }
        if let seqLen, seqLen < 1 { throw ValidationError("--seq-len must be ≥ 1, found \(seqLen).") }
    }

    func run() throws {
        let r: EvalReport
        do {
            r = try Evaluator.evaluate(modelDir: URL(fileURLWithPath: model), corpus: corpus, seqLen: seqLen, engine: engine,
                                       adapter: adapter.map { URL(fileURLWithPath: $0) })
        } catch let e as AdapterError {
            throw failure("\(adapter ?? model): \(e)", code: Exit.dataError)
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(r), as: UTF8.self))
            return
        }
        print("model \(model)\(adapter.map { " + adapter \($0)" } ?? "") [\(engine ? "engine" : "trainer")] on \(corpus.joined(separator: ", ")) (windows of \(r.seqLen) tokens)")
        print(String(format: "  tokens          %d", r.tokens))
        print(String(format: "  avg log-prob    %.4f nats/token", r.avgLogprob))
        print(String(format: "  perplexity      %.3f", r.perplexity))
        print(String(format: "  bits/char       %.4f", r.bitsPerChar))
        print(String(format: "  bits/byte       %.4f", r.bitsPerByte))
        print(String(format: "  avg entropy     %.4f nats", r.avgEntropy))
    }
}
