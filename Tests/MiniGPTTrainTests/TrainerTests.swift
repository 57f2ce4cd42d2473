import Foundation
import Testing
import MiniGPT
@testable import MiniGPTTrain

/// A small deterministic text corpus made by code (tests never use the network).
func generatedCorpus(lines: Int = 600, seed: UInt64 = 3) -> String {
    let words = "the robot moves to the red door and picks up the blue box then turns left at the wall".split(separator: " ")
    var rng = RNG(seed: seed)
    var out = ""
    for _ in 0..<lines {
        let n = 4 + Int(rng.next() % 8)
        out += (0..<n).map { _ in String(words[Int(rng.next() % UInt64(words.count))]) }.joined(separator: " ") + ".\n"
    }
    return out
}

/// A fresh temporary folder.
func tempDir(_ name: String) throws -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("mgpt-train-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

/// The tiny recipe over `corpus`, writing to `out`.
func tinyRecipe(corpus: URL, out: URL, steps: Int = 12) throws -> Recipe {
    let json = """
    {"corpus": ["\(corpus.path)"], "tokenizer": {"vocab_size": 300},
     "model": {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
               "intermediate_size": 24, "max_position_embeddings": 32},
     "training": {"steps": \(steps), "batch": 4, "seq_len": 16, "learning_rate": 0.01, "warmup_steps": 2,
                  "eval_interval": 4, "eval_batches": 2, "checkpoint_interval": 0, "seed": 5, "label_smoothing": 0.1},
     "out": "\(out.path)"}
    """
    return try Recipe(json: Data(json.utf8))
}

@Suite("Trainer, recipe, checkpoints and evaluation")
struct TrainerTests {
    @Test func trainWritesAFolderThatEvalReads() throws {
        let dir = try tempDir("fold")
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = dir.appendingPathComponent("corpus.txt")
        try generatedCorpus().write(to: corpus, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("model")
        let result = try Trainer(recipe: tinyRecipe(corpus: corpus, out: out)).run(progress: .quiet)
        #expect(result.step == 12 && !result.interrupted)
        for f in ["config.json", "model.safetensors", "tokenizer.json", "optimizer.safetensors", "training.json"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), "missing \(f)")
        }
        let record = try #require(try TrainingRecord.load(from: out))
        #expect(record.trainSeqLen == 16 && record.step == 12 && record.curve.count == 3)
        let report = try Evaluator.evaluate(modelDir: out, corpus: [corpus.path])
        #expect(report.seqLen == 16)
        #expect(report.tokens > 1000)
        #expect(abs(report.perplexity - exp(-report.avgLogprob)) < 1e-9 * report.perplexity)
        // Learned something: below the uniform distribution over the 300 ids.
        #expect(-report.avgLogprob < log(300.0) - 0.5, "avg log-prob \(report.avgLogprob)")
        #expect(report.avgEntropy > 0 && report.avgEntropy < log(300.0))
        // ASCII corpus: bytes = characters.
        #expect(abs(report.bitsPerChar - report.bitsPerByte) < 1e-12)
        // The folder loads in the engine's reader too.
        let w = try ModelFolder.load(out)
        #expect(w.config.hiddenSize == 16)
    }

    @Test func rerunIsBitIdenticalAndResumeContinuesExactly() throws {
        let dir = try tempDir("resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = dir.appendingPathComponent("corpus.txt")
        try generatedCorpus().write(to: corpus, atomically: true, encoding: .utf8)
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b"), c = dir.appendingPathComponent("c")
        _ = try Trainer(recipe: tinyRecipe(corpus: corpus, out: a, steps: 8)).run(progress: .quiet)
        _ = try Trainer(recipe: tinyRecipe(corpus: corpus, out: b, steps: 8)).run(progress: .quiet)
        let wa = try Data(contentsOf: a.appendingPathComponent("model.safetensors"))
        #expect(wa == (try Data(contentsOf: b.appendingPathComponent("model.safetensors"))))
        // Interrupted after 3 steps (as Ctrl-C would), then resumed: the same weights as straight through.
        var polls = 0
        let first = try Trainer(recipe: tinyRecipe(corpus: corpus, out: c, steps: 8)).run(progress: .quiet) {
            polls += 1
            return polls > 3
        }
        #expect(first.interrupted && first.step == 3)
        let second = try Trainer(recipe: tinyRecipe(corpus: corpus, out: c, steps: 8)).run(resume: true, progress: .quiet)
        #expect(second.step == 8 && !second.interrupted)
        #expect(wa == (try Data(contentsOf: c.appendingPathComponent("model.safetensors"))))
    }

    @Test func recipeRejectsUnknownKeysWithTheirPath() throws {
        func error(_ json: String) -> String {
            do { _ = try Recipe(json: Data(json.utf8)); return "" } catch { return "\(error)" }
        }
        #expect(error(#"{"training": {"learnig_rate": 0.1}}"#).contains("training.learnig_rate"))
        #expect(error(#"{"model": {"num_layers": 2}}"#).contains("model.num_layers"))
        #expect(error(#"{"corpuss": []}"#).contains("corpuss"))
        #expect(error(#"{"training": {"batch": "16"}}"#).contains("training.batch"))
        #expect(error(#"{"training": {"batch": 0}}"#).contains("≥ 1"))
        let r = try Recipe(json: Data(#"{"training": {"steps": 7, "label_smoothing": 0.1}, "model": {"hidden_size": 64}}"#.utf8))
        #expect(r.training.steps == 7 && r.training.labelSmoothing == 0.1)
        let c = try r.modelConfig(vocabSize: 300)
        #expect(c.hiddenSize == 64 && c.vocabSize == 300 && c.numHiddenLayers == ModelConfig().numHiddenLayers)
        // Every shipped recipe parses.
        let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Configs/train")
        for f in try FileManager.default.contentsOfDirectory(atPath: configs.path) where f.hasSuffix(".json") {
            _ = try Recipe.load(configs.appendingPathComponent(f))
        }
    }

    @Test func simCorpusPredictsOnlyIntentTokens() throws {
        let tok = try Tokenizer.train(corpus: [Array(generatedCorpus(lines: 50).utf8)], vocabSize: 300, observationTokens: 8, intentTokens: 4)
        let jsonl = """
        {"instruction": "go", "ticks": [{"obs": [3, 7], "intent": 1}, {"obs": [0], "intent": 2}]}

        {"instruction": "door", "ticks": [{"obs": [], "intent": 3}]}
        """
        let s = try SimCorpus(data: Array(jsonl.utf8), path: "x.jsonl", tokenizer: tok).stream
        // The input holds the frame-end marker where the label holds the intent: actions never
        // enter the context.
        let labels = try #require(s.labels)
        let predictedInputs = zip(s.tokens, try #require(s.predict)).filter { $1 }.map { Int($0.0) }
        let predictedLabels = zip(labels, try #require(s.predict)).filter { $1 }.map { Int($0.0) }
        #expect(predictedLabels == [tok.intentTokenID(1), tok.intentTokenID(2), tok.intentTokenID(3)])
        #expect(predictedInputs == [tok.frameEndTokenID, tok.frameEndTokenID, tok.frameEndTokenID])
        #expect(!s.tokens.contains { (tok.intentTokenID(0)..<tok.intentTokenID(0) + 4).contains(Int($0)) })
        #expect(s.tokens.first == Int32(tok.bosID))
        // One segment per episode here: <|bos|> "go" 3 7 end 0 end, then "door".
        #expect(s.starts == [0, 1 + tok.encode("go").count + 5])
        let w = s.window(start: 0, T: s.tokens.count - 1)
        #expect(w.targets.filter { $0 >= 0 } == [tok.intentTokenID(1), tok.intentTokenID(2), tok.intentTokenID(3)].map(Int32.init))
        do {
            _ = try SimCorpus(data: Array("{\"instruction\": \"go\", \"ticks\": [{\"obs\": [9], \"intent\": 0}]}".utf8), path: "bad.jsonl", tokenizer: tok)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("bad.jsonl") && "\(error)".contains("line 1") && "\(error)".contains("obs"))
        }
    }

    @Test func evaluationWindowsScoreEveryTokenOnce() {
        let s = TokenStream(tokens: (0..<10).map(Int32.init), bytes: 10, characters: 10)
        let w = s.evaluationWindows(T: 4)
        #expect(w.count == 3)
        let targets = w.flatMap { $0.targets }.filter { $0 >= 0 }
        #expect(targets == (1..<10).map(Int32.init))
    }
}
