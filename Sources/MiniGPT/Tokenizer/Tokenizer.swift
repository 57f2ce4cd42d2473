import Foundation

/// Errors of the tokenizer: a bad tokenizer.json (naming the file, the JSON path or byte offset, and
/// expected vs found) or impossible training arguments.
public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file involved, or "" when none is (training arguments).
    public var file: String
    /// What is wrong, where, what was expected and what was found.
    public var message: String

    /// An error about `file` (empty when no file is involved).
    public init(file: String = "", message: String) {
        self.file = file
        self.message = message
    }

    /// "file: message", or just the message when no file is involved.
    public var description: String { file.isEmpty ? message : "\(file): \(message)" }
}

/// MiniGPT's byte-level BPE tokenizer, stored as a Hugging Face `tokenizers` tokenizer.json.
///
/// Id layout (fixed; the model, the observation encoder and the intent grammar rely on it):
///
///     0 ... 255                     the 256 single bytes in byte order (id b = byte b)
///     256 ..< 256+M                 the M merges in the order they were learned (merge r makes id 256+r)
///     256+M, +1, +2                 <|bos|>, <|eos|>, <|pad|>
///     then observationTokenCount    <|obs_0|>, <|obs_1|>, ...
///     then intentTokenCount         <|intent_0|>, <|intent_1|>, ...
///
/// `vocabSize` counts all of them. Encoding (see `PreTokenizer` for the split) is lossless for any bytes
/// and never produces a special id: special strings in the input are just bytes. On valid UTF-8 it gives
/// exactly the ids Hugging Face `tokenizers` gives for the same tokenizer.json (with
/// `encode_special_tokens = True`, so HF does not match the special strings either). Bytes that are not
/// valid UTF-8 each become a one-byte chunk (token id = the byte) and split the text around them.
///
/// Thread safety: immutable except for a bounded chunk → ids cache behind a lock; concurrent `encode`
/// calls on one instance serialize, `decode` and `tokenBytes` never lock.
public final class Tokenizer: Sendable {
    /// Merge r joins ids (left, right) into id 256 + r.
    let merges: [(left: Int32, right: Int32)]
    /// The bytes of every id (specials: their text, e.g. "<|bos|>").
    let pieces: [[UInt8]]
    /// Reserved observation tokens.
    public let observationTokenCount: Int
    /// Reserved intent tokens.
    public let intentTokenCount: Int
    /// All pieces back to back (decode copies slices of this one buffer).
    let flatPieces: [UInt8]
    /// Piece `id` is `flatPieces[pieceStart[id] ..< pieceStart[id + 1]]`; vocabSize + 1 entries.
    let pieceStart: [Int32]
    let ranks: MergeRanks
    let cache = EncodeCache()

    /// Beginning of sequence.
    public var bosID: Int { 256 + merges.count }
    /// End of sequence.
    public var eosID: Int { 256 + merges.count + 1 }
    /// Padding.
    public var padID: Int { 256 + merges.count + 2 }
    /// Total number of ids: bytes + merges + specials.
    public var vocabSize: Int { pieces.count }
    /// Number of learned merges (ids 256 ..< 256 + mergeCount).
    public var mergeCount: Int { merges.count }

    /// The id of observation token k, k in 0..<observationTokenCount.
    public func observationTokenID(_ k: Int) -> Int {
        precondition(k >= 0 && k < observationTokenCount, "observation token \(k) outside 0..<\(observationTokenCount)")
        return padID + 1 + k
    }

    /// The "frame end, decide now" marker: the last reserved observation token. A robot context is
    /// sinks, then per tick the frame's observation tokens and this marker; the intent is predicted
    /// at the frame's last token but never enters the context (so the policy cannot copy its own
    /// previous action — the "copycat" failure of behaviour cloning with action history).
    public var frameEndTokenID: Int { observationTokenID(observationTokenCount - 1) }

    /// The id of intent token k, k in 0..<intentTokenCount.
    public func intentTokenID(_ k: Int) -> Int {
        precondition(k >= 0 && k < intentTokenCount, "intent token \(k) outside 0..<\(intentTokenCount)")
        return padID + 1 + observationTokenCount + k
    }

    /// The text forms of the special tokens in id order.
    static func specialNames(observation: Int, intent: Int) -> [String] {
        ["<|bos|>", "<|eos|>", "<|pad|>"] + (0..<observation).map { "<|obs_\($0)|>" }
            + (0..<intent).map { "<|intent_\($0)|>" }
    }

    /// Builds the tables from merges (already validated: each side is an id below 256 + its rank).
    init(merges: [(left: Int32, right: Int32)], observationTokens: Int, intentTokens: Int) {
        self.merges = merges
        observationTokenCount = observationTokens
        intentTokenCount = intentTokens
        var pieces = (0..<256).map { [UInt8($0)] }
        pieces.reserveCapacity(256 + merges.count + 3 + observationTokens + intentTokens)
        for m in merges { pieces.append(pieces[Int(m.left)] + pieces[Int(m.right)]) }
        for name in Self.specialNames(observation: observationTokens, intent: intentTokens) {
            pieces.append(Array(name.utf8))
        }
        self.pieces = pieces
        flatPieces = pieces.flatMap { $0 }
        var start: [Int32] = [0]
        for p in pieces { start.append(start.last! + Int32(p.count)) }
        pieceStart = start
        ranks = MergeRanks(merges: merges)
    }

    /// Trains byte-level BPE on the corpus documents to `vocabSize` total ids (bytes + merges + specials).
    ///
    /// Each document is pre-tokenized on its own; the most frequent adjacent pair is merged until
    /// `vocabSize - 256 - 3 - observationTokens - intentTokens` merges exist (ties: smallest (left, right)
    /// ids). Throws when `vocabSize` leaves no room for the bytes and specials, or when the corpus runs
    /// out of pairs first (the message says the largest vocab size it supports).
    public static func train(corpus: [[UInt8]], vocabSize: Int, observationTokens: Int = 64,
                             intentTokens: Int = 32) throws -> Tokenizer {
        guard observationTokens >= 0, intentTokens >= 0 else {
            throw TokenizerError(message: "observation and intent token counts must be >= 0, found \(observationTokens) and \(intentTokens)")
        }
        let fixed = 256 + 3 + observationTokens + intentTokens
        guard vocabSize >= fixed else {
            throw TokenizerError(message: "vocab size \(vocabSize) is too small: 256 bytes + 3 specials + \(observationTokens) observation + \(intentTokens) intent tokens need at least \(fixed)")
        }
        let specials = Set(specialNames(observation: observationTokens, intent: intentTokens).map { Array($0.utf8) })
        let merges = try BPETrainer.learnMerges(corpus: corpus, mergeCount: vocabSize - fixed, forbidden: specials)
        return Tokenizer(merges: merges, observationTokens: observationTokens, intentTokens: intentTokens)
    }

    // MARK: - Encode

    /// Encodes any bytes (valid UTF-8 or not) losslessly: `decode(encode(b)) == b`. Never returns special ids.
    public func encode(_ bytes: [UInt8]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(bytes.count / 3 + 1)
        bytes.withUnsafeBufferPointer { p in
            cache.lock.lock()
            defer { cache.lock.unlock() }
            PreTokenizer.split(p) { s, e in encodeChunk(UnsafeBufferPointer(rebasing: p[s..<e]), into: &out) }
        }
        return out
    }

    /// Encodes the UTF-8 bytes of `text`.
    public func encode(_ text: String) -> [Int] { encode(Array(text.utf8)) }

    /// Drops the chunk cache (benchmarks use it to time a cold start).
    public func clearEncodeCache() {
        cache.lock.lock()
        cache.clear()
        cache.lock.unlock()
    }

    /// Encodes one pre-tokenized chunk through the cache. Caller holds `cache.lock`.
    private func encodeChunk(_ chunk: UnsafeBufferPointer<UInt8>, into out: inout [Int]) {
        let n = chunk.count
        if n == 1 { out.append(Int(chunk[0])); return }
        if n <= EncodeCache.maxShort {
            // Up to 7 bytes pack exactly into the key (length in the top byte): no hashing collisions.
            var key = UInt64(n) << 56
            for k in 0..<n { key |= UInt64(chunk[k]) << (8 * UInt64(k)) }
            if cache.appendShort(key, to: &out) { return }
            let ids = bpe(chunk)
            cache.insertShort(key, ids)
            for id in ids { out.append(Int(id)) }
            return
        }
        if n > EncodeCache.maxLong {
            for id in bpe(chunk) { out.append(Int(id)) }
            return
        }
        var h: UInt64 = 0xCBF2_9CE4_8422_2325       // FNV-1a
        for b in chunk { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        if let entry = cache.long[h], entry.bytes.elementsEqual(chunk) {
            for id in entry.ids { out.append(Int(id)) }
            return
        }
        let ids = bpe(chunk)
        cache.insertLong(h, Array(chunk), ids)
        for id in ids { out.append(Int(id)) }
    }

    /// BPE on one chunk, Hugging Face's order: repeatedly apply the lowest-rank merge among adjacent
    /// pairs, leftmost first on ties (`tokenizers` `Word::merge_all`).
    func bpe(_ chunk: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var sym = chunk.map { Int32($0) }
        if sym.count > Self.quadraticLimit { return bpeHeap(sym) }
        var m = sym.count
        sym.withUnsafeMutableBufferPointer { s in
            while m > 1 {
                var best = Int32.max, bestPos = -1
                for k in 0..<(m - 1) {
                    let r = ranks.rank(s[k], s[k + 1])
                    if r >= 0 && r < best { best = r; bestPos = k }
                }
                if bestPos < 0 { break }
                s[bestPos] = 256 + best
                for k in (bestPos + 1)..<(m - 1) { s[k] = s[k + 1] }
                m -= 1
            }
        }
        sym.removeLast(sym.count - m)
        return sym
    }

    /// Chunks longer than this use the O(n log n) heap merge instead of the O(n²) scan.
    static let quadraticLimit = 48

    /// The same merge order as `bpe` with a linked list and a min-heap of (rank, position), for long
    /// chunks (a megabyte of letters without a space must not take n² time).
    func bpeHeap(_ input: [Int32]) -> [Int32] {
        var sym = input
        let n = sym.count
        var next = (0..<n).map { Int32($0 + 1) }
        next[n - 1] = -1
        var prev = (0..<n).map { Int32($0 - 1) }
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        for k in 0..<(n - 1) {
            let r = ranks.rank(sym[k], sym[k + 1])
            if r >= 0 { heap.push(UInt64(r) << 32 | UInt64(k)) }
        }
        while let top = heap.pop() {
            let r = Int32(top >> 32), pos = Int(top & 0xFFFF_FFFF)
            guard alive[pos], next[pos] >= 0 else { continue }
            let nx = Int(next[pos])
            guard ranks.rank(sym[pos], sym[nx]) == r else { continue }   // stale entry
            sym[pos] = 256 + r
            alive[nx] = false
            next[pos] = next[nx]
            if next[nx] >= 0 { prev[Int(next[nx])] = Int32(pos) }
            if prev[pos] >= 0 {
                let p = Int(prev[pos])
                let rp = ranks.rank(sym[p], sym[pos])
                if rp >= 0 { heap.push(UInt64(rp) << 32 | UInt64(p)) }
            }
            if next[pos] >= 0 {
                let rn = ranks.rank(sym[pos], sym[Int(next[pos])])
                if rn >= 0 { heap.push(UInt64(rn) << 32 | UInt64(pos)) }
            }
        }
        var out: [Int32] = []
        var k = 0
        while k >= 0 { out.append(sym[k]); k = Int(next[k]) }
        return out
    }

    // MARK: - Decode

    /// The bytes of `ids` concatenated; specials give their text (e.g. "<|bos|>"), an id outside the
    /// vocabulary gives U+FFFD's bytes (EF BF BD) so bad model output stays visible without a crash.
    public func decode(_ ids: [Int]) -> [UInt8] {
        flatPieces.withUnsafeBufferPointer { bytes in
            pieceStart.withUnsafeBufferPointer { start in
                let n = start.count - 1
                var total = 0
                for id in ids { total += id >= 0 && id < n ? Int(start[id + 1] - start[id]) : Self.replacement.count }
                // Two passes: sizes first, then a plain byte copy into the exact-size result (no
                // per-token append bookkeeping: 1.5x faster measured on `mgpt bench tokenizer`).
                return [UInt8](unsafeUninitializedCapacity: total) { out, count in
                    var o = 0
                    for id in ids {
                        if id >= 0 && id < n {
                            for k in Int(start[id])..<Int(start[id + 1]) { out[o] = bytes[k]; o += 1 }
                        } else {
                            for b in Self.replacement { out[o] = b; o += 1 }
                        }
                    }
                    count = o
                }
            }
        }
    }

    /// The bytes of one token (for streaming output); U+FFFD's bytes for an id outside the vocabulary.
    public func tokenBytes(_ id: Int) -> [UInt8] {
        id >= 0 && id < pieces.count ? pieces[id] : Self.replacement
    }

    static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]
}
