import Foundation
import MiniGPT

/// Held-out scores of a model on a corpus (`mgpt eval`).
public struct EvalReport: Codable, Sendable, Equatable {
    /// Mean ln p(token) over the scored tokens (nats, ≤ 0).
    public var avgLogprob: Double
    /// exp(−avgLogprob).
    public var perplexity: Double
    /// −Σ log₂ p / characters (Unicode scalars) of the corpus.
    public var bitsPerChar: Double
    /// −Σ log₂ p / bytes of the corpus.
    public var bitsPerByte: Double
    /// Mean entropy of the predicted distributions (nats).
    public var avgEntropy: Double
    /// Tokens scored.
    public var tokens: Int
    /// Window length used.
    public var seqLen: Int
    /// The same tokens scored by the early-exit heads (shared final norm + tied embedding after
    /// l blocks), one per `early_exit_layers` entry in increasing l; nil for a model without exits.
    public var exits: [ExitScore]? = nil

    enum CodingKeys: String, CodingKey {
        case perplexity, tokens, exits
        case avgLogprob = "avg_logprob", bitsPerChar = "bits_per_char", bitsPerByte = "bits_per_byte"
        case avgEntropy = "avg_entropy", seqLen = "seq_len"
    }
}

/// Held-out score of one early-exit head.
public struct ExitScore: Codable, Sendable, Equatable {
    /// Blocks run before the head (1..<num_hidden_layers).
    public var layer: Int
    /// Mean ln p(token) over the scored tokens (nats, ≤ 0).
    public var avgLogprob: Double
    /// −Σ log₂ p / bytes of the corpus.
    public var bitsPerByte: Double

    enum CodingKeys: String, CodingKey {
        case layer
        case avgLogprob = "avg_logprob", bitsPerByte = "bits_per_byte"
    }
}

/// Scores a model folder on a corpus in non-overlapping windows.
public enum Evaluator {
    /// Scores `stream` with `weights` in windows of `seqLen` tokens (`batch` windows per pass).
    /// Bits per byte/char divide the total information by the stream's bytes/characters, so they
    /// are comparable across tokenizers; the first token of the stream is not scored.
    public static func evaluate(weights: ModelWeights, stream: TokenStream, seqLen: Int, batch: Int = 8,
                                threads: Int = 2) throws -> EvalReport {
        let windows = stream.evaluationWindows(T: seqLen)
        guard !windows.isEmpty else { throw TrainError.message("corpus too short to score: \(stream.tokens.count) tokens") }
        let model = try TrainableModel(weights: weights, batch: batch, seqLen: seqLen, workers: threads)
        model.measureExits = true  // a no-op without early_exit_layers
        let exitLayers = model.exitLayers
        var exitSums = Array(repeating: 0.0, count: exitLayers.count)  // Σ −ln p per exit
        var sums = ScoreSums()
        var i = 0
        while i < windows.count {
            var ids: [Int32] = [], targets: [Int32] = []
            for k in 0..<batch {
                if i + k < windows.count { ids += windows[i + k].ids; targets += windows[i + k].targets }
                else { ids += Array(repeating: 0, count: seqLen); targets += Array(repeating: -1, count: seqLen) }
            }
            sums.add(model.score(ids: ids, targets: targets))
            // score() runs without smoothing, so each exit's loss sum is Σ −ln p(target).
            for shard in model.shards { for e in exitSums.indices { exitSums[e] += shard.exitLossSums[e] } }
            i += batch
        }
        let n = Double(max(sums.count, 1))
        let bits = -sums.logProb / log(2.0)
        let exits = exitLayers.enumerated().map { e, l in
            ExitScore(layer: l, avgLogprob: -exitSums[e] / n, bitsPerByte: exitSums[e] / log(2.0) / Double(max(stream.bytes, 1)))
        }
        return EvalReport(avgLogprob: sums.logProb / n, perplexity: exp(-sums.logProb / n),
                          bitsPerChar: bits / Double(max(stream.characters, 1)),
                          bitsPerByte: bits / Double(max(stream.bytes, 1)),
                          avgEntropy: sums.entropy / n, tokens: sums.count, seqLen: seqLen,
                          exits: exits.isEmpty ? nil : exits)
    }

    /// Loads the folder `dir` (config, weights, tokenizer.json, training.json) and scores `corpus`
    /// files; `seqLen` defaults to the trained sequence length.
    public static func evaluate(modelDir dir: URL, corpus: [String], seqLen: Int? = nil) throws -> EvalReport {
        let weights = try ModelFolder.load(dir)
        let tokenizer = try Tokenizer(contentsOf: dir.appendingPathComponent(ModelFolder.tokenizerFile))
        let record = try TrainingRecord.load(from: dir)
        let T = seqLen ?? record?.trainSeqLen ?? weights.config.maxPositionEmbeddings
        guard T >= 1, T <= weights.config.maxPositionEmbeddings else {
            throw TrainError.message("--seq-len \(T): expected 1...\(weights.config.maxPositionEmbeddings) (max_position_embeddings)")
        }
        if let trained = record?.trainSeqLen, T > trained {
            FileHandle.standardError.write(Data("warning: scoring windows of \(T) tokens, longer than the trained \(trained)\n".utf8))
        }
        let stream = try CorpusLoader.load(corpus, tokenizer: tokenizer)
        return try evaluate(weights: weights, stream: stream, seqLen: T)
    }
}
