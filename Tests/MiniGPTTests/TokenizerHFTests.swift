import Foundation
import Testing
@testable import MiniGPT

// Hugging Face compatibility: our tokenizer.json loads in the `tokenizers` Python package
// (pip install tokenizers), its ByteLevel pre-tokenizer splits our test corpus exactly where ours does,
// and it produces exactly our ids (and decodes them back to the text). Runs
// Tests/reference/hf_tokenizer_check.py through python3 from PATH.

/// Fails the test (with the pip command) when `tokenizers` is missing.
private func requireTokenizers() throws {
    if let missing = missingPythonModules(["tokenizers"], pip: ["tokenizers"]) {
        throw TestSupportError(description: missing)   // a thrown error fails the test with this message
    }
}

/// The cross-check corpus: the hand-written cases plus generated text (different seed from training).
private let crossCheckText = TokenizerTestCorpus.sample + TokenizerTestCorpus.generated(bytes: 30_000, seed: 2024)

/// Byte lengths of our chunks of `text`.
private func ourChunkLengths(_ text: String) -> [Int] {
    var lengths: [Int] = []
    Array(text.utf8).withUnsafeBufferPointer { p in PreTokenizer.split(p) { s, e in lengths.append(e - s) } }
    return lengths
}

@Test func hfPreTokenizerSplitsLikeOurs() throws {
    try requireTokenizers()
    let dir = try TestTempDir("tok-hf")
    try TokenizerTestCorpus.tokenizer.save(to: dir.file("tokenizer.json"))
    // Unicode scalars, each after a letter and before " x", so each one's class (\s, \p{L}, \p{N}, other)
    // decides the split: the Unicode tables of Swift and of HF's Oniguruma must agree. All of the BMP,
    // every scalar newer than HF's tables, and every 5th other assigned supplementary scalar (all
    // 1,112,064 took 15 s in HF alone; they agreed).
    var probeBytes: [UInt8] = []
    probeBytes.reserveCapacity(1_000_000)
    for v in UInt32(0x80)..<0x11_0000 where !(0xD800..<0xE000).contains(v) {
        let u = Unicode.Scalar(v)!
        if v >= 0x1_0000 {
            let newer = (u.properties.age?.major ?? 0) > PreTokenizer.hfUnicodeMajor
            let assigned = u.properties.generalCategory != .unassigned && u.properties.generalCategory != .privateUse
            guard newer || (assigned && v % 5 == 0) else { continue }
        }
        probeBytes.append(0x61)
        probeBytes += Array(String(u).utf8)
        probeBytes += [0x20, 0x78]
    }
    let probe = String(decoding: probeBytes, as: UTF8.self)
    for text in [crossCheckText, probe] {
        try Data(text.utf8).write(to: dir.file("corpus.txt"))
        let r = try runPython([TestPaths.reference("hf_tokenizer_check.py").path, dir.file("tokenizer.json").path,
                               dir.file("corpus.txt").path, "--splits"])
        try #require(r.succeeded, "hf_tokenizer_check.py --splits failed: \(r.stderr)")
        let hf = try decodeJSON([Int].self, from: r.stdout)
        let ours = ourChunkLengths(text)
        if hf != ours {
            let k = zip(hf, ours).prefix { $0 == $1 }.count
            let at = ours.prefix(k).reduce(0, +)
            let context = String(decoding: Array(text.utf8)[max(0, at - 10)..<min(text.utf8.count, at + 20)], as: UTF8.self)
            Issue.record("split differs at chunk \(k) (byte \(at)): hf \(hf.dropFirst(k).prefix(5)) ours \(ours.dropFirst(k).prefix(5)) near \(context.debugDescription)")
        }
    }
}

@Test(arguments: [512, 1500])
func hfTokenizersGivesOurIds(vocabSize: Int) throws {
    try requireTokenizers()
    let dir = try TestTempDir("tok-hf")
    let tok: Tokenizer
    if vocabSize == 512 {
        tok = TokenizerTestCorpus.tokenizer
    } else {
        // Over 1024 bytes + merges: exercises the dictionary rank path and longer merge chains.
        let docs = [Array(TokenizerTestCorpus.generated(bytes: 200_000, seed: 5).utf8), Array(TokenizerTestCorpus.sample.utf8)]
        tok = try Tokenizer.train(corpus: docs, vocabSize: vocabSize, observationTokens: 64, intentTokens: 32)
        #expect(tok.ranks.flat.isEmpty)
    }
    try tok.save(to: dir.file("tokenizer.json"))
    try Data(crossCheckText.utf8).write(to: dir.file("corpus.txt"))
    let ids = tok.encode(crossCheckText)
    try Data(("[" + ids.map(String.init).joined(separator: ",") + "]").utf8).write(to: dir.file("ids.json"))
    let r = try runPython([TestPaths.reference("hf_tokenizer_check.py").path, dir.file("tokenizer.json").path,
                           dir.file("corpus.txt").path, "--expect", dir.file("ids.json").path])
    #expect(r.succeeded, "\(r.stdout)\(r.stderr)")
    #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok tokens=\(ids.count) vocab=\(vocabSize)",
            "\(r.stdout)\(r.stderr)")
}

@Test func fileResavedByHFLoadsAndEncodesTheSame() throws {
    try requireTokenizers()
    let dir = try TestTempDir("tok-hf")
    let tok = TokenizerTestCorpus.tokenizer
    try tok.save(to: dir.file("ours.json"))
    try Data("unused".utf8).write(to: dir.file("corpus.txt"))
    let r = try runPython([TestPaths.reference("hf_tokenizer_check.py").path, dir.file("ours.json").path,
                           dir.file("corpus.txt").path, "--resave", dir.file("hf.json").path])
    try #require(r.succeeded, "\(r.stdout)\(r.stderr)")
    // HF writes its own layout (merges as [left, right] pairs, its key order); we must read it back.
    let back = try Tokenizer(contentsOf: dir.file("hf.json"))
    #expect(back.vocabSize == tok.vocabSize && back.mergeCount == tok.mergeCount)
    #expect(back.observationTokenCount == tok.observationTokenCount && back.intentTokenCount == tok.intentTokenCount)
    #expect(back.jsonText() == tok.jsonText())
    #expect(back.encode(crossCheckText) == tok.encode(crossCheckText))
}
