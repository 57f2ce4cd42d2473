import ArgumentParser
import Dispatch
import Foundation
import MiniGPT
import MiniGPTTrain

/// `mgpt train`: trains a model from a JSON recipe into a model folder; flags override the recipe.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model from a JSON recipe into a model folder (Ctrl-C saves a checkpoint).")

    @Option(help: "The recipe JSON (e.g. Configs/train/shakespeare.json).")
    var recipe: String
    @Option(parsing: .upToNextOption, help: "Corpus files (text, or sim corpus *.jsonl); replaces the recipe's.")
    var corpus: [String] = []
    @Option(name: .customLong("val-corpus"), parsing: .upToNextOption, help: "Held-out corpus files; replaces the recipe's.")
    var valCorpus: [String] = []
    @Option(help: "Output model folder.")
    var out: String?
    @Option(help: "Total optimizer steps.")
    var steps: Int?
    @Option(help: "Seed of the initial weights and data order.")
    var seed: UInt64?
    @Option(help: "Sequences per step.")
    var batch: Int?
    @Option(name: .customLong("seq-len"), help: "Tokens per sequence.")
    var seqLen: Int?
    @Option(help: "Peak learning rate.")
    var lr: Float?
    @Option(name: .customLong("label-smoothing"), help: "Label smoothing epsilon.")
    var labelSmoothing: Float?
    @Option(name: .customLong("eval-interval"), help: "Steps between held-out evaluations.")
    var evalInterval: Int?
    @Option(name: .customLong("vocab-size"), help: "Train a tokenizer with this many ids.")
    var vocabSize: Int?
    @Option(help: "Reuse this tokenizer.json instead of training one.")
    var tokenizer: String?
    @Option(name: .customLong("model-config"), help: "A config.json whose keys replace the recipe's model.")
    var modelConfig: String?
    @Option(name: .customLong("init-from"), help: "Start from this model folder's weights, shape and tokenizer (recipe init_from).")
    var initFrom: String?
    @Option(help: "Train LoRA adapters of this rank on the frozen init_from base (recipe lora; targets all projections unless the recipe says).")
    var lora: Int?
    @Flag(help: "Quantization-aware training of attention and FFN weights (recipe qat).")
    var qat = false
    @Flag(help: "Continue from the checkpoint in the output folder.")
    var resume = false
    @Flag(help: "Only errors and the final line on stderr.")
    var quiet = false

    func validate() throws {
        if let steps, steps < 1 { throw ValidationError("--steps must be ≥ 1, found \(steps).") }
        if let batch, batch < 1 { throw ValidationError("--batch must be ≥ 1, found \(batch).") }
        if let seqLen, seqLen < 2 { throw ValidationError("--seq-len must be ≥ 2, found \(seqLen).") }
        if let lr, !(lr >= 0) { throw ValidationError("--lr must be ≥ 0, found \(lr).") }
        if let labelSmoothing, !(labelSmoothing >= 0 && labelSmoothing < 1) { throw ValidationError("--label-smoothing must be in [0, 1), found \(labelSmoothing).") }
        if let lora, lora < 1 { throw ValidationError("--lora must be ≥ 1, found \(lora).") }
        if let vocabSize, vocabSize < 260 { throw ValidationError("--vocab-size must be ≥ 260, found \(vocabSize).") }
    }

    func run() throws {
        var r: Recipe
        do { r = try Recipe.load(URL(fileURLWithPath: recipe)) } catch { throw ValidationError("\(error)") }
        if !corpus.isEmpty { r.corpus = corpus }
        if !valCorpus.isEmpty { r.validationCorpus = valCorpus }
        if let out { r.out = out }
        if let steps { r.training.steps = steps }
        if let seed { r.training.seed = seed }
        if let batch { r.training.batch = batch }
        if let seqLen { r.training.seqLen = seqLen }
        if let lr { r.training.optimizer.learningRate = lr }
        if let labelSmoothing { r.training.labelSmoothing = labelSmoothing }
        if let evalInterval { r.training.evalInterval = evalInterval }
        if let vocabSize { r.tokenizer.vocabSize = vocabSize; r.tokenizer.file = nil }
        if let tokenizer { r.tokenizer.file = tokenizer }
        if let initFrom { r.initFrom = initFrom }
        if let lora { r.lora = LoRASpec(rank: lora, alpha: r.lora?.rank == lora ? r.lora?.alpha : nil, targets: r.lora?.targets ?? LoRATarget.allCases) }
        if qat && r.qat == nil { r.qat = QATSpec() }
        if let modelConfig {
            let data = try Data(contentsOf: URL(fileURLWithPath: modelConfig))
            guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ValidationError("\(modelConfig): expected a JSON object")
            }
            var wrapped = ["model": obj] as [String: Any]
            wrapped["training"] = ["seq_len": r.training.seqLen]
            let parsed = try Recipe(json: JSONSerialization.data(withJSONObject: wrapped))
            r.model = parsed.model
        }

        // Ctrl-C: finish the current step, save a checkpoint, exit 0.
        let stop = StopFlag()
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: DispatchQueue.global())
        source.setEventHandler {
            stop.set()
            FileHandle.standardError.write(Data("\nSIGINT: stopping after this step and saving a checkpoint…\n".utf8))
        }
        source.resume()
        defer { source.cancel() }

        let trainer = Trainer(recipe: r)
        let style: ProgressStyle = quiet ? .quiet : (isatty(2) != 0 ? .bar : .lines)
        let result = try trainer.run(resume: resume, progress: style, shouldStop: { stop.isSet })
        if quiet {
            FileHandle.standardError.write(Data("\(result.interrupted ? "interrupted" : "done") at step \(result.step): \(result.out.path)\n".utf8))
        }
    }
}

/// A flag set from the signal handler's queue and read by the training loop between steps.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    /// Requests a stop.
    func set() { lock.lock(); value = true; lock.unlock() }
    /// Whether a stop was requested.
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
