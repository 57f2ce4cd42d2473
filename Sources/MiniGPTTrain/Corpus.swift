import Foundation
import MiniGPT

/// A tokenized corpus the trainer samples from: one token stream plus, per token, whether the
/// model is trained to predict it. Text corpora predict every token; a sim corpus only the
/// intent tokens. A new corpus kind is one more type that produces a `TokenStream`.
public protocol TokenCorpus: Sendable {
    /// The corpus as one stream.
    var stream: TokenStream { get }
}

/// Tokens and the positions whose prediction counts.
public struct TokenStream: Sendable, Equatable {
    /// Token ids.
    public var tokens: [Int32]
    /// `predict[i]`: the loss includes predicting token i from the ones before (nil = every token).
    public var predict: [Bool]?
    /// Raw bytes and characters the tokens stand for (bits per byte/char in evaluation).
    public var bytes: Int
    /// Unicode scalars the tokens stand for.
    public var characters: Int
    /// Targets that differ from the next input token (nil = plain next-token prediction):
    /// predicting position i means predicting `labels[i]` while the input there is `tokens[i]`.
    /// A sim corpus puts the frame-end marker in the input and the intent in the label.
    public var labels: [Int32]? = nil
    /// Where training windows may start (nil = anywhere). A sim corpus starts every window at a
    /// segment's <|bos|>, so the model sees contexts shaped like the daemon's: sinks, then ticks.
    public var starts: [Int]? = nil

    /// A stream of `tokens` that predicts every token.
    public init(tokens: [Int32], predict: [Bool]? = nil, bytes: Int, characters: Int) {
        self.tokens = tokens; self.predict = predict; self.bytes = bytes; self.characters = characters
    }

    /// (ids, targets) of the window starting at token `start`, `T` long; targets are the next
    /// tokens, −1 where not predicted or past the end.
    public func window(start: Int, T: Int) -> (ids: [Int32], targets: [Int32]) {
        var ids = [Int32](repeating: 0, count: T), targets = [Int32](repeating: -1, count: T)
        for t in 0..<T where start + t < tokens.count {
            ids[t] = tokens[start + t]
            let next = start + t + 1
            if next < tokens.count && (predict?[next] ?? true) { targets[t] = labels?[next] ?? tokens[next] }
        }
        return (ids, targets)
    }

    /// A batch of `B` windows of `T` tokens at uniformly random starts drawn from `rng`.
    public func randomBatch(B: Int, T: Int, rng: inout RNG) -> (ids: [Int32], targets: [Int32]) {
        var ids: [Int32] = [], targets: [Int32] = []
        ids.reserveCapacity(B * T); targets.reserveCapacity(B * T)
        let span = max(tokens.count - T - 1, 1)
        for _ in 0..<B {
            let start = starts.map { $0.isEmpty ? 0 : $0[Int(rng.next() % UInt64($0.count))] } ?? Int(rng.next() % UInt64(span))
            let w = window(start: start, T: T)
            ids += w.ids; targets += w.targets
        }
        return (ids, targets)
    }

    /// Non-overlapping windows: window k reads tokens [k·T, (k+1)·T) and predicts tokens
    /// k·T+1 … (k+1)·T, so every token but the first is scored exactly once.
    public func evaluationWindows(T: Int) -> [(ids: [Int32], targets: [Int32])] {
        guard tokens.count > 1 else { return [] }
        return stride(from: 0, to: tokens.count - 1, by: T).map { window(start: $0, T: T) }
    }

    /// The tokens from `range` as their own stream (bytes/characters scaled by the share).
    public func slice(_ range: Range<Int>) -> TokenStream {
        let share = Double(range.count) / Double(max(tokens.count, 1))
        var out = TokenStream(tokens: Array(tokens[range]), predict: predict.map { Array($0[range]) },
                              bytes: Int(Double(bytes) * share), characters: Int(Double(characters) * share))
        out.labels = labels.map { Array($0[range]) }
        out.starts = starts?.filter { range.contains($0) }.map { $0 - range.lowerBound }
        return out
    }
}

/// Plain text files: each file's bytes encoded, files joined by <|eos|>.
public struct TextCorpus: TokenCorpus {
    /// The token stream.
    public let stream: TokenStream

    /// Encodes `documents` (raw bytes) with `tokenizer`.
    public init(documents: [[UInt8]], tokenizer: Tokenizer) {
        var tokens: [Int32] = []
        var bytes = 0, chars = 0
        for (i, d) in documents.enumerated() {
            if i > 0 { tokens.append(Int32(tokenizer.eosID)) }
            tokens += tokenizer.encode(d).map(Int32.init)
            bytes += d.count
            chars += String(decoding: d, as: UTF8.self).unicodeScalars.count
        }
        stream = TokenStream(tokens: tokens, bytes: bytes, characters: chars)
    }
}

/// A simulator corpus (JSONL, one episode a line):
/// `{"instruction": "…", "ticks": [{"obs": [3, 17], "intent": 5}, …]}`.
/// Each episode becomes overlapping segments shaped like the daemon's context: <|bos|> instruction,
/// then 8 ticks of <|obs_k|>… frame-end marker (stride 4); training windows start at segment
/// starts. Only intents are predicted: at each frame's last token the label is the expert's
/// intent while the input that follows is the marker, so actions never enter the context.
public struct SimCorpus: TokenCorpus {
    /// Ticks per training segment: `context.window_ticks` of the shipped robot.json.
    public static let segmentTicks = 8
    /// The token stream.
    public let stream: TokenStream

    /// Parses and encodes `data` (the file's bytes); errors name `path` and the line.
    public init(data: [UInt8], path: String, tokenizer: Tokenizer) throws {
        var tokens: [Int32] = [], predict: [Bool] = [], starts: [Int] = [], labels: [Int32] = []
        var bytes = 0, chars = 0
        func add(_ t: Int, _ p: Bool, label: Int? = nil) {
            tokens.append(Int32(t)); predict.append(p); labels.append(Int32(label ?? t))
        }
        var lineNo = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNo += 1
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw TrainError.file(path, "line \(lineNo): not a JSON object")
            }
            guard let instruction = obj["instruction"] as? String else {
                throw TrainError.file(path, "line \(lineNo): key \"instruction\": expected a string")
            }
            guard let ticks = obj["ticks"] as? [[String: Any]] else {
                throw TrainError.file(path, "line \(lineNo): key \"ticks\": expected an array of objects")
            }
            // Validate and map the ticks first: (observation token ids, intent token id).
            var mapped: [([Int], Int)] = []
            for (i, tick) in ticks.enumerated() {
                guard let obs = tick["obs"] as? [Int] else {
                    throw TrainError.file(path, "line \(lineNo): ticks[\(i)].obs: expected an array of integers")
                }
                guard let intent = tick["intent"] as? Int else {
                    throw TrainError.file(path, "line \(lineNo): ticks[\(i)].intent: expected an integer")
                }
                for o in obs where !(o >= 0 && o < tokenizer.observationTokenCount) {
                    throw TrainError.file(path, "line \(lineNo): ticks[\(i)].obs: \(o) outside 0..<\(tokenizer.observationTokenCount) (tokenizer.observation_tokens)")
                }
                guard intent >= 0 && intent < tokenizer.intentTokenCount else {
                    throw TrainError.file(path, "line \(lineNo): ticks[\(i)].intent: \(intent) outside 0..<\(tokenizer.intentTokenCount) (tokenizer.intent_tokens)")
                }
                mapped.append((obs.map(tokenizer.observationTokenID), tokenizer.intentTokenID(intent)))
            }
            let instructionIDs = tokenizer.encode(Array(instruction.utf8))
            bytes += instruction.utf8.count; chars += instruction.unicodeScalars.count
            // Segments shaped like the daemon's rolling context: <|bos|> instruction (the sinks),
            // then up to `segmentTicks` consecutive ticks; segments overlap by half.
            var s0 = 0
            repeat {
                starts.append(tokens.count)
                add(tokenizer.bosID, false)
                for t in instructionIDs { add(t, false) }
                for (obs, intent) in mapped[s0..<min(s0 + Self.segmentTicks, mapped.count)] {
                    for o in obs { add(o, false) }
                    add(tokenizer.frameEndTokenID, true, label: intent)
                }
                s0 += Self.segmentTicks / 2
            } while s0 + Self.segmentTicks / 2 < mapped.count
        }
        var st = TokenStream(tokens: tokens, predict: predict, bytes: bytes, characters: chars)
        st.starts = starts
        st.labels = labels
        stream = st
    }

    /// The instructions of every episode (tokenizer training text).
    public static func instructions(in data: [UInt8]) -> [[UInt8]] {
        data.split(separator: UInt8(ascii: "\n")).compactMap { line in
            ((try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any])?["instruction"]
                .flatMap { $0 as? String }.map { Array($0.utf8) }
        }
    }
}

/// Loads corpus files by kind: `*.jsonl` → `SimCorpus`, anything else → text.
public enum CorpusLoader {
    /// The bytes of `path`; errors name the file.
    public static func read(_ path: String) throws -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw TrainError.file(path, "cannot read corpus file (missing or unreadable)")
        }
        return [UInt8](d)
    }

    /// Whether `path` is a sim corpus.
    public static func isSim(_ path: String) -> Bool { path.hasSuffix(".jsonl") }

    /// One stream from all `paths` (text files joined by <|eos|>, sim files appended).
    public static func load(_ paths: [String], tokenizer: Tokenizer) throws -> TokenStream {
        var texts: [[UInt8]] = []
        var parts: [TokenStream] = []
        for p in paths {
            let bytes = try read(p)
            if isSim(p) { parts.append(try SimCorpus(data: bytes, path: p, tokenizer: tokenizer).stream) }
            else { texts.append(bytes) }
        }
        if !texts.isEmpty { parts.insert(TextCorpus(documents: texts, tokenizer: tokenizer).stream, at: 0) }
        var out = TokenStream(tokens: [], predict: nil, bytes: 0, characters: 0)
        let anyMask = parts.contains { $0.predict != nil }
        var mask: [Bool] = []
        var starts: [Int]? = nil
        let anyLabels = parts.contains { $0.labels != nil }
        var labels: [Int32] = []
        for s in parts {
            if let st = s.starts { starts = (starts ?? []) + st.map { $0 + out.tokens.count } }
            if anyLabels { labels += s.labels ?? s.tokens }
            out.tokens += s.tokens; out.bytes += s.bytes; out.characters += s.characters
            if anyMask { mask += s.predict ?? Array(repeating: true, count: s.tokens.count) }
        }
        out.predict = anyMask ? mask : nil
        out.starts = starts
        out.labels = anyLabels ? labels : nil
        return out
    }

    /// Bytes to train a tokenizer on: text files as they are, sim files' instructions.
    public static func tokenizerDocuments(_ paths: [String], limit: Int) throws -> [[UInt8]] {
        var docs: [[UInt8]] = []
        var left = limit
        for p in paths where left > 0 {
            let bytes = try read(p)
            let ds = isSim(p) ? SimCorpus.instructions(in: bytes) : [bytes]
            for d in ds where left > 0 {
                let take = Array(d.prefix(left))
                docs.append(take); left -= take.count
            }
        }
        return docs
    }
}
