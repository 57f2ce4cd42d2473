import Foundation
import MiniGPT

// Engine-side evaluation (`mgpt eval --engine`): the same windows and sums as `Evaluator`, but each
// window runs through the inference engine's `Session` (the packed FP32 / INT8 / low-rank kernels,
// INT8 activations quantized per token), so any folder the engine loads is scored as it will run.

extension Evaluator {
    /// Scores `stream` with the engine `Session` over `weights` in the same non-overlapping windows
    /// of `seqLen` tokens as `evaluate(weights:stream:seqLen:)`: the cache is reset per window and
    /// each token's logits score the next. Windows split over `threads` sessions in two fixed
    /// halves; per-window sums are added in window order, so the result is deterministic.
    public static func evaluateEngine(weights: ModelWeights, stream: TokenStream, seqLen: Int, threads: Int = 2) throws -> EvalReport {
        let windows = stream.evaluationWindows(T: seqLen)
        guard !windows.isEmpty else { throw TrainError.message("corpus too short to score: \(stream.tokens.count) tokens") }
        guard seqLen >= 1, seqLen <= weights.config.maxPositionEmbeddings else {
            throw TrainError.message("--seq-len \(seqLen): expected 1...\(weights.config.maxPositionEmbeddings) (max_position_embeddings)")
        }
        let model = Transformer(weights: weights)
        let V = weights.config.vocabSize
        let perWindow = WindowSums(count: windows.count)
        let workers = max(1, min(threads, windows.count))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let session = Session(model: model, capacity: seqLen)
            let lo = w * windows.count / workers, hi = (w + 1) * windows.count / workers
            var logp = [Double](repeating: 0, count: V)
            for k in lo..<hi {
                let (ids, targets) = windows[k]
                guard let last = targets.lastIndex(where: { $0 >= 0 }) else { continue }
                session.reset()
                var s = ScoreSums()
                for t in 0...last {
                    let logits = session.step(Int(ids[t]))
                    guard targets[t] >= 0 else { continue }
                    // log-softmax in Double.
                    var mx = -Double.infinity
                    for j in 0..<V { mx = max(mx, Double(logits[j])) }
                    var z = 0.0
                    for j in 0..<V { logp[j] = Double(logits[j]) - mx; z += exp(logp[j]) }
                    let lz = log(z)
                    var h = 0.0
                    for j in 0..<V { logp[j] -= lz; h -= exp(logp[j]) * logp[j] }
                    s.logProb += logp[Int(targets[t])]
                    s.entropy += h
                    s.count += 1
                }
                perWindow[k] = s
            }
        }
        var sums = ScoreSums()
        for k in 0..<windows.count { sums.add(perWindow[k]) }
        let n = Double(max(sums.count, 1))
        let bits = -sums.logProb / log(2.0)
        return EvalReport(avgLogprob: sums.logProb / n, perplexity: exp(-sums.logProb / n),
                          bitsPerChar: bits / Double(max(stream.characters, 1)),
                          bitsPerByte: bits / Double(max(stream.bytes, 1)),
                          avgEntropy: sums.entropy / n, tokens: sums.count, seqLen: seqLen)
    }

    /// Loads the folder `dir` (plus the LoRA adapter folder `adapter`, merged at load) and scores
    /// `corpus` with the engine (`engine: true`) or the trainer's forward pass. `seqLen` defaults
    /// to the trained sequence length (training.json of the adapter, else of the model).
    public static func evaluate(modelDir dir: URL, corpus: [String], seqLen: Int? = nil, engine: Bool,
                                adapter: URL? = nil) throws -> EvalReport {
        let weights = try ModelFolder.load(dir, adapter: adapter)
        let tokenizer = try Tokenizer(contentsOf: dir.appendingPathComponent(ModelFolder.tokenizerFile))
        let record = try adapter.flatMap { try TrainingRecord.load(from: $0) } ?? TrainingRecord.load(from: dir)
        let T = seqLen ?? record?.trainSeqLen ?? weights.config.maxPositionEmbeddings
        guard T >= 1, T <= weights.config.maxPositionEmbeddings else {
            throw TrainError.message("--seq-len \(T): expected 1...\(weights.config.maxPositionEmbeddings) (max_position_embeddings)")
        }
        let stream = try CorpusLoader.load(corpus, tokenizer: tokenizer)
        if engine { return try evaluateEngine(weights: weights, stream: stream, seqLen: T) }
        var w = weights
        // The trainer's forward reads the FP32 fields, which hold the dequantized INT8 values.
        w.config.weightDType = nil
        return try evaluate(weights: w, stream: stream, seqLen: T)
    }
}

/// Per-window sums written by concurrent workers, each to its own indices; read after they join.
final class WindowSums: @unchecked Sendable {
    private let values: UnsafeMutablePointer<ScoreSums>
    init(count: Int) {
        values = .allocate(capacity: max(count, 1))
        values.initialize(repeating: ScoreSums(), count: max(count, 1))
    }
    deinit { values.deallocate() }
    subscript(i: Int) -> ScoreSums {
        get { values[i] }
        set { values[i] = newValue }
    }
}
