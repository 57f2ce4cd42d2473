// Byte-level BPE training (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword
// Units", as GPT-2 and Hugging Face `tokenizers` BpeTrainer do it):
//   1. pre-tokenize every document and count each distinct chunk ("word");
//   2. count adjacent id pairs over all words, weighted by word frequency;
//   3. repeatedly take the most frequent pair (ties: smallest (left, right)), give it the next id, and
//      rewrite only the words that contain it, updating the pair counts incrementally.
// A max-heap with lazy deletion finds the best pair: an entry whose count is out of date is re-pushed
// with the current count when it surfaces, so each merge costs O(words touched · log pairs), not a
// recount of the corpus.
//
// A pair whose result would spell an existing token (possible: "ab"+"c" after "a"+"bc") or a special
// token's text is never merged, so every merge makes a new, unique token (the id layout relies on it).

/// Learns the merge list of a byte-level BPE tokenizer.
enum BPETrainer {
    /// Returns `mergeCount` merges in the order learned (merge r makes id 256 + r).
    static func learnMerges(corpus: [[UInt8]], mergeCount: Int, forbidden: Set<[UInt8]>) throws
        -> [(left: Int32, right: Int32)] {
        // 1. Distinct chunks and their counts. One-byte chunks have no pairs and are skipped.
        var chunkCounts: [[UInt8]: Int] = [:]
        for doc in corpus {
            doc.withUnsafeBufferPointer { p in
                PreTokenizer.split(p) { s, e in
                    if e - s > 1 { chunkCounts[Array(p[s..<e]), default: 0] += 1 }
                }
            }
        }
        var words: [[Int32]] = []
        var counts: [Int] = []
        words.reserveCapacity(chunkCounts.count)
        // Sorted so the work order (and any debugging output) does not depend on hash seeds; the merges
        // themselves would not change either way.
        for (chunk, c) in chunkCounts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            words.append(chunk.map { Int32($0) })
            counts.append(c)
        }
        chunkCounts = [:]

        // 2. Pair counts and, per pair, the words that (may) contain it.
        @inline(__always) func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }
        var pairCount: [UInt64: Int] = [:]
        var pairWords: [UInt64: [Int32]] = [:]
        for (w, word) in words.enumerated() {
            for k in 0..<(word.count - 1) {
                let pk = key(word[k], word[k + 1])
                pairCount[pk, default: 0] += counts[w]
                pairWords[pk, default: []].append(Int32(w))
            }
        }
        var heap = PairHeap()
        for (pk, c) in pairCount { heap.push(count: c, pair: pk) }

        // 3. Merge loop.
        var pieces: [[UInt8]] = (0..<256).map { [UInt8($0)] }
        var existing = forbidden
        var banned = Set<UInt64>()
        var merges: [(left: Int32, right: Int32)] = []
        merges.reserveCapacity(mergeCount)
        var visited = [Int32](repeating: -1, count: words.count)   // merge index that last rewrote the word
        var touched: [UInt64] = []
        while merges.count < mergeCount {
            guard let top = heap.pop() else {
                throw TokenizerError(message: "the corpus has pairs for only \(merges.count) merges, \(mergeCount) needed: lower the vocab size by \(mergeCount - merges.count) or give a larger corpus")
            }
            let current = pairCount[top.pair] ?? 0
            if current <= 0 || banned.contains(top.pair) { continue }
            if current != top.count { heap.push(count: current, pair: top.pair); continue }
            let a = Int32(truncatingIfNeeded: top.pair >> 32), b = Int32(truncatingIfNeeded: top.pair & 0xFFFF_FFFF)
            let joined = pieces[Int(a)] + pieces[Int(b)]
            if existing.contains(joined) { banned.insert(top.pair); continue }
            let newID = Int32(pieces.count)
            let mergeIndex = Int32(merges.count)
            merges.append((a, b))
            pieces.append(joined)
            existing.insert(joined)

            touched.removeAll(keepingCapacity: true)
            for w32 in pairWords[top.pair] ?? [] {
                let w = Int(w32)
                if visited[w] == mergeIndex { continue }
                visited[w] = mergeIndex
                let old = words[w]
                guard old.count > 1 else { continue }
                var merged: [Int32] = []
                merged.reserveCapacity(old.count)
                var k = 0
                var changed = false
                while k < old.count {
                    if k + 1 < old.count && old[k] == a && old[k + 1] == b {
                        merged.append(newID); k += 2; changed = true
                    } else {
                        merged.append(old[k]); k += 1
                    }
                }
                if !changed { continue }
                // Subtract the word's old pairs, add its new ones (words are short: simpler than
                // tracking neighbours and obviously right).
                let c = counts[w]
                for k in 0..<(old.count - 1) { pairCount[key(old[k], old[k + 1])]! -= c }
                for k in 0..<max(0, merged.count - 1) {
                    let pk = key(merged[k], merged[k + 1])
                    pairCount[pk, default: 0] += c
                    if merged[k] == newID || merged[k + 1] == newID {
                        pairWords[pk, default: []].append(w32)
                        touched.append(pk)
                    }
                }
                words[w] = merged
            }
            pairCount[top.pair] = nil
            pairWords[top.pair] = nil
            touched.sort()
            var last: UInt64? = nil
            for pk in touched where pk != last {
                last = pk
                if let c = pairCount[pk], c > 0 { heap.push(count: c, pair: pk) }
            }
        }
        return merges
    }
}

/// A binary max-heap of (count, pair): larger count first, then the smaller pair key, i.e. the
/// lexicographically smallest (left, right) ids; a total order, so the pop sequence is deterministic.
struct PairHeap {
    private var counts: [Int] = []
    private var pairs: [UInt64] = []

    @inline(__always) private func above(_ i: Int, _ j: Int) -> Bool {
        counts[i] > counts[j] || (counts[i] == counts[j] && pairs[i] < pairs[j])
    }

    private mutating func swap(_ i: Int, _ j: Int) {
        counts.swapAt(i, j)
        pairs.swapAt(i, j)
    }

    mutating func push(count: Int, pair: UInt64) {
        counts.append(count)
        pairs.append(pair)
        var i = counts.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if !above(i, p) { break }
            swap(i, p)
            i = p
        }
    }

    mutating func pop() -> (count: Int, pair: UInt64)? {
        guard !counts.isEmpty else { return nil }
        let top = (counts[0], pairs[0])
        let n = counts.count - 1
        swap(0, n)
        counts.removeLast()
        pairs.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && above(l, m) { m = l }
            if r < n && above(r, m) { m = r }
            if m == i { break }
            swap(i, m)
            i = m
        }
        return top
    }
}
