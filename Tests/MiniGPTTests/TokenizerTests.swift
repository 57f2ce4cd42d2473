import Foundation
import Testing
@testable import MiniGPT

// The byte-level BPE tokenizer: GPT-2 byte alphabet, the hand-written GPT-2 split, lossless round
// trips on random bytes and text, the id layout, training (order, tie-break, determinism), the two
// merge algorithms against each other, tokenizer.json round trips and precise errors for bad files.

/// Chunks of `s` as strings (invalid UTF-8 bytes shown as \xNN).
private func split(_ bytes: [UInt8]) -> [String] {
    var out: [String] = []
    bytes.withUnsafeBufferPointer { p in
        PreTokenizer.split(p) { s, e in
            let chunk = Array(p[s..<e])
            if let str = String(validating: chunk, as: UTF8.self) { out.append(str) } else {
                out.append(chunk.map { "\\x" + String($0, radix: 16) }.joined())
            }
        }
    }
    return out
}

private func split(_ s: String) -> [String] { split(Array(s.utf8)) }

@Test func byteLevelAlphabet() {
    let scalars = ByteLevel.scalar
    #expect(Set(scalars).count == 256)
    #expect(scalars[0x20] == "Ġ" && scalars[0x0A] == "Ċ" && scalars[0x41] == "A" && scalars[0xAD] == "Ń")
    for b in 0..<256 { #expect(ByteLevel.byte(for: scalars[b]) == UInt8(b)) }
    #expect(ByteLevel.byte(for: "€") == nil)
    #expect(ByteLevel.decode(ByteLevel.encode([0, 32, 255, 10])) == [0, 32, 255, 10])
}

@Test func gpt2SplitOnKnownCases() {
    #expect(split("Hello world") == ["Hello", " world"])
    #expect(split("a   b") == ["a", "  ", " b"])
    #expect(split("hi  ") == ["hi", "  "])
    #expect(split("  hi") == [" ", " hi"])
    #expect(split("\n\nfoo") == ["\n", "\n", "foo"])
    #expect(split("don't we'll they're I'M") == ["don", "'t", " we", "'ll", " they", "'re", " I", "'", "M"])
    #expect(split("''s 'x") == ["''", "s", " '", "x"])
    #expect(split("abc123 45!?  ...x") == ["abc", "123", " 45", "!?", " ", " ...", "x"])
    #expect(split("café e\u{301}") == ["café", " e", "\u{301}"])        // U+0301 is Mn: not \p{L}
    #expect(split("日本語 テスト") == ["日本語", " テスト"])
    #expect(split("a\u{00A0}b") == ["a", "\u{00A0}", "b"])              // NBSP is \s, but only U+0020 prefixes
    #expect(split("x \t y") == ["x", " \t", " y"])
    #expect(split("😀👍 ok") == ["😀👍", " ok"])
    #expect(split("Ⅻ½²") == ["Ⅻ½²"])                                     // Nl, No, No: one \p{N}+ run
    #expect(split("") == [])
}

@Test func invalidUTF8BytesAreTheirOwnChunks() {
    #expect(split([0x61, 0xFF, 0x62]) == ["a", "\\xff", "b"])
    // Truncated 3-byte sequence, overlong "/" (C0 AF), a UTF-16 surrogate (ED A0 80), > U+10FFFF (F4 90).
    #expect(split([0xE6, 0x97, 0x20, 0x41]) == ["\\xe6", "\\x97", " A"])
    #expect(split([0xC0, 0xAF]) == ["\\xc0", "\\xaf"])
    #expect(split([0xED, 0xA0, 0x80]) == ["\\xed", "\\xa0", "\\x80"])
    #expect(split([0xF4, 0x90, 0x80, 0x80]) == ["\\xf4", "\\x90", "\\x80", "\\x80"])
    // An invalid byte ends the text on its left: the spaces before it are one chunk (\s+ at "end").
    #expect(split([0x61, 0x20, 0x20, 0xFF, 0x20, 0x62]) == ["a", "  ", "\\xff", " b"])
}

@Test func splitTilesEveryInput() {
    var rng = RNG(seed: 7)
    for _ in 0..<300 {
        let n = Int(rng.next() % 200)
        let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var end = 0
        bytes.withUnsafeBufferPointer { p in
            PreTokenizer.split(p) { s, e in
                #expect(s == end && e > s)
                end = e
            }
        }
        #expect(end == n)
    }
}

@Test func randomBytesRoundTrip() {
    let tok = TokenizerTestCorpus.tokenizer
    var rng = RNG(seed: 42)
    for round in 0..<300 {
        let n = Int(rng.next() % 400)
        var bytes: [UInt8]
        if round % 2 == 0 {
            bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        } else {
            // Mostly text with some random bytes spliced in, so merges and invalid bytes interleave.
            let text = Array(TokenizerTestCorpus.generated(bytes: n, seed: rng.next()).utf8)
            bytes = text.map { rng.next() % 25 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : $0 }
        }
        let ids = tok.encode(bytes)
        #expect(tok.decode(ids) == bytes)
        #expect(ids.allSatisfy { $0 >= 0 && $0 < tok.bosID })
    }
}

@Test func textRoundTripAndCompression() throws {
    let tok = TokenizerTestCorpus.tokenizer
    let text = TokenizerTestCorpus.sample + TokenizerTestCorpus.generated(bytes: 20_000, seed: 99)
    let ids = tok.encode(text)
    #expect(tok.decode(ids) == Array(text.utf8))
    #expect(String(decoding: ids.flatMap { tok.tokenBytes($0) }, as: UTF8.self) == text)
    // Trained on the same kind of text, 157 merges must compress well below one token per byte.
    let bytesPerToken = Double(text.utf8.count) / Double(ids.count)
    #expect(bytesPerToken > 2.0, "bytes/token \(bytesPerToken)")
    // Cached and uncached paths agree.
    tok.clearEncodeCache()
    #expect(tok.encode(text) == ids)
    #expect(tok.encode(text) == ids)
}

@Test func specialsLayout() throws {
    let tok = try Tokenizer.train(corpus: [Array(TokenizerTestCorpus.generated(bytes: 5000, seed: 3).utf8)],
                                  vocabSize: 300, observationTokens: 5, intentTokens: 4)
    #expect(tok.vocabSize == 300)
    let m = 300 - 256 - 3 - 5 - 4
    #expect(tok.mergeCount == m)
    #expect(tok.bosID == 256 + m && tok.eosID == 257 + m && tok.padID == 258 + m)
    #expect((0..<5).map(tok.observationTokenID) == Array((259 + m)..<(264 + m)))
    #expect((0..<4).map(tok.intentTokenID) == Array((264 + m)..<300))
    #expect(tok.observationTokenCount == 5 && tok.intentTokenCount == 4)
    #expect(tok.decode([tok.bosID, 104, 105, tok.eosID]) == Array("<|bos|>hi<|eos|>".utf8))
    #expect(tok.tokenBytes(tok.observationTokenID(4)) == Array("<|obs_4|>".utf8))
    #expect(tok.tokenBytes(tok.intentTokenID(0)) == Array("<|intent_0|>".utf8))
    #expect(tok.tokenBytes(65) == [65])
    #expect(tok.tokenBytes(-1) == [0xEF, 0xBF, 0xBD] && tok.tokenBytes(300) == [0xEF, 0xBF, 0xBD])
    // Special strings in the input are bytes, never special ids.
    let ids = tok.encode("<|bos|><|obs_4|><|pad|>")
    #expect(ids.allSatisfy { $0 < tok.bosID })
    #expect(tok.decode(ids) == Array("<|bos|><|obs_4|><|pad|>".utf8))
}

@Test func vocabTooSmallOrCorpusTooSmallThrows() {
    #expect(throws: TokenizerError.self) { try Tokenizer.train(corpus: [[1, 2]], vocabSize: 354) }
    do {
        _ = try Tokenizer.train(corpus: [Array("ab ab".utf8)], vocabSize: 280, observationTokens: 0, intentTokens: 0)
        Issue.record("expected an error")
    } catch let e as TokenizerError {
        #expect(e.description.contains("merges") && e.description.contains("lower the vocab size"))
    } catch { Issue.record("unexpected \(error)") }
    do {
        _ = try Tokenizer.train(corpus: [], vocabSize: 300, observationTokens: 64, intentTokens: 32)
        Issue.record("expected an error")
    } catch let e as TokenizerError {
        #expect(e.description.contains("at least 355"), "\(e)")
    } catch { Issue.record("unexpected \(error)") }
}

@Test func mergeOrderAndTieBreak() throws {
    // Chunks: "ab", " ab" ×2, " cd" ×2. Pairs: (a,b)=3; then (" ",ab)=(" ",c)=(c,d)=2, a tie that the
    // smallest (left, right) ids break: (32, 99) " c" < (32, 256) " ab" < (99, 100) "cd".
    let tok = try Tokenizer.train(corpus: [Array("ab ab ab cd cd".utf8)], vocabSize: 259 + 3,
                                  observationTokens: 0, intentTokens: 0)
    #expect(tok.merges.map { [$0.left, $0.right] } == [[97, 98], [32, 99], [32, 256]])
    #expect(tok.encode("ab cd ab") == [256, 257, 100, 258])
}

@Test func mergesNeverRepeatAToken() throws {
    // "abc" can be made as ab+c and as a+bc; the second way must not get a second id.
    let docs = [Array("abc abc abc xbc xbc xbc xbc ab ab ab ab ab".utf8)]
    let tok = try Tokenizer.train(corpus: docs, vocabSize: 256 + 3 + 6, observationTokens: 0, intentTokens: 0)
    let pieces = (256..<(256 + tok.mergeCount)).map { tok.tokenBytes($0) }
    #expect(Set(pieces).count == pieces.count)
}

@Test func quadraticAndHeapMergeAgree() {
    let tok = TokenizerTestCorpus.tokenizer
    var rng = RNG(seed: 5)
    let text = Array(TokenizerTestCorpus.generated(bytes: 40_000, seed: 11).utf8)
    for _ in 0..<400 {
        let n = 2 + Int(rng.next() % 60)
        let start = Int(rng.next() % UInt64(text.count - n))
        let chunk = Array(text[start..<(start + n)])
        let quadratic = chunk.withUnsafeBufferPointer { tok.bpe($0) }
        #expect(quadratic == tok.bpeHeap(chunk.map { Int32($0) }))
    }
}

@Test func trainingIsDeterministicAndSaveLoadRoundTrips() throws {
    let docs = [Array(TokenizerTestCorpus.generated(bytes: 30_000, seed: 8).utf8), Array(TokenizerTestCorpus.sample.utf8)]
    let a = try Tokenizer.train(corpus: docs, vocabSize: 400, observationTokens: 8, intentTokens: 4)
    let b = try Tokenizer.train(corpus: docs, vocabSize: 400, observationTokens: 8, intentTokens: 4)
    let dir = try TestTempDir("tok")
    try a.save(to: dir.file("a.json"))
    try b.save(to: dir.file("b.json"))
    let bytesA = try Data(contentsOf: dir.file("a.json")), bytesB = try Data(contentsOf: dir.file("b.json"))
    #expect(bytesA == bytesB)

    let c = try Tokenizer(contentsOf: dir.file("a.json"))
    try c.save(to: dir.file("c.json"))
    #expect(try Data(contentsOf: dir.file("c.json")) == bytesA)
    #expect(c.vocabSize == 400 && c.observationTokenCount == 8 && c.intentTokenCount == 4)
    let text = TokenizerTestCorpus.sample
    #expect(c.encode(text) == a.encode(text))
    // The file is JSON Foundation can read too, with the documented top-level keys.
    let obj = try #require(try JSONSerialization.jsonObject(with: bytesA) as? [String: Any])
    let model = try #require(obj["model"] as? [String: Any])
    #expect(model["type"] as? String == "BPE")
    #expect((model["vocab"] as? [String: Int])?["Ġ"] == 32)
    #expect((obj["added_tokens"] as? [[String: Any]])?.count == 3 + 8 + 4)
}

/// Loads `text` as a tokenizer.json and returns the error's description (records an issue if it loads).
private func loadError(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let dir = try TestTempDir("tok-bad")
    let url = dir.file("tokenizer.json")
    try Data(text.utf8).write(to: url)
    do {
        _ = try Tokenizer(contentsOf: url)
        Issue.record("loaded a bad file", sourceLocation: sourceLocation)
        return ""
    } catch let e as TokenizerError {
        #expect(e.file == url.path, sourceLocation: sourceLocation)
        #expect(e.description.hasPrefix(url.path), sourceLocation: sourceLocation)
        return e.description
    }
}

@Test func corruptedFilesGiveNamedErrors() throws {
    let tok = try Tokenizer.train(corpus: [Array(TokenizerTestCorpus.generated(bytes: 5000, seed: 3).utf8)],
                                  vocabSize: 280, observationTokens: 2, intentTokens: 2)
    let good = tok.jsonText()

    var e = try loadError(String(good.prefix(good.count / 2)))
    #expect(e.contains("invalid JSON at byte") && e.contains("end of file"), "\(e)")
    e = try loadError("{\"model\": [1, 2,, 3]}")
    #expect(e.contains("invalid JSON at byte 16"), "\(e)")
    e = try loadError("[]")
    #expect(e.contains("top level") && e.contains("expected an object"), "\(e)")
    e = try loadError(good.replacingOccurrences(of: "\"model\": {", with: "\"modelx\": {"))
    #expect(e.contains("model") && e.contains("missing key"), "\(e)")
    e = try loadError(good.replacingOccurrences(of: "\"type\": \"BPE\"", with: "\"type\": \"WordPiece\""))
    #expect(e.contains("model.type") && e.contains("WordPiece"), "\(e)")
    e = try loadError(good.replacingOccurrences(of: #"{"type": "ByteLevel", "add_prefix_space": false"#,
                                                with: #"{"type": "ByteLevel", "add_prefix_space": true"#))
    #expect(e.contains("pre_tokenizer.add_prefix_space") && e.contains("expected false"), "\(e)")

    // Swap two merges: the first one's result is no longer the next id.
    let lines = good.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let firstMerge = try #require(lines.firstIndex { $0.contains("\"merges\"") }) + 1
    var swapped = lines
    swapped.swapAt(firstMerge, firstMerge + 1)
    let fixComma = { (s: String) in s.hasSuffix(",") ? s : s + "," }
    swapped[firstMerge] = fixComma(swapped[firstMerge]); swapped[firstMerge + 1] = fixComma(swapped[firstMerge + 1])
    e = try loadError(swapped.joined(separator: "\n"))
    #expect(e.contains("model.merges[0]") && e.contains("id 256"), "\(e)")

    // A byte token with the wrong id.
    e = try loadError(good.replacingOccurrences(of: "\"A\": 65,", with: "\"A\": 66,"))
    #expect(e.contains("model.vocab[\"B\"]") && e.contains("id 66 is also used by \"A\""), "\(e)")
    // A token outside the byte alphabet.
    e = try loadError(good.replacingOccurrences(of: "\"A\": 65,", with: "\"€\": 65,"))
    #expect(e.contains("byte-level"), "\(e)")
    // Specials out of order.
    e = try loadError(good.replacingOccurrences(of: "\"<|eos|>\"", with: "\"<|pad|>\"", options: [], range: nil))
    #expect(e.contains("added_tokens[1].content") && e.contains("<|eos|>"), "\(e)")
    // Unreadable file.
    do {
        _ = try Tokenizer(contentsOf: URL(fileURLWithPath: "/nonexistent/tokenizer.json"))
        Issue.record("loaded a missing file")
    } catch let err as TokenizerError {
        #expect(err.file == "/nonexistent/tokenizer.json" && err.description.contains("cannot read"))
    }
}

@Test func concurrentEncodesAgree() {
    let tok = TokenizerTestCorpus.tokenizer
    let texts = (0..<8).map { TokenizerTestCorpus.generated(bytes: 3000, seed: 100 + UInt64($0)) }
    let expected = texts.map { tok.encode($0) }
    tok.clearEncodeCache()
    let results = Mutexed<[[Int]]>(Array(repeating: [], count: texts.count))
    DispatchQueue.concurrentPerform(iterations: texts.count * 4) { k in
        let i = k % texts.count
        let ids = tok.encode(texts[i])
        results.update { $0[i] = ids }
    }
    #expect(results.value == expected)
}

/// A value behind a lock, for collecting results from concurrent work in tests.
private final class Mutexed<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T { lock.lock(); defer { lock.unlock() }; return v }
    func update(_ f: (inout T) -> Void) { lock.lock(); f(&v); lock.unlock() }
}
