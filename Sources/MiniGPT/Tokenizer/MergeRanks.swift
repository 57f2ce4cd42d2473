// Merge-rank lookup and the small min-heap of the BPE encoder (Tokenizer.bpe / bpeHeap).

/// Merge rank lookup: a flat (left, right) table when the byte+merge alphabet is small (the default
/// ~400 ids take 640 KB), a dictionary otherwise.
struct MergeRanks: Sendable {
    /// Ids that can occur inside a chunk: bytes and merges.
    let width: Int
    /// `flat[left * width + right]` = rank or -1; empty when `width > flatLimit`.
    let flat: [Int32]
    /// (left << 32 | right) → rank, used when `flat` is empty.
    let dict: [UInt64: Int32]
    /// Above this alphabet size the flat table (width² × 4 bytes) would exceed 4 MB.
    static let flatLimit = 1024

    init(merges: [(left: Int32, right: Int32)]) {
        width = 256 + merges.count
        if width <= Self.flatLimit {
            var t = [Int32](repeating: -1, count: width * width)
            for (r, m) in merges.enumerated() where t[Int(m.left) * width + Int(m.right)] < 0 {
                t[Int(m.left) * width + Int(m.right)] = Int32(r)
            }
            flat = t
            dict = [:]
        } else {
            var d: [UInt64: Int32] = [:]
            for (r, m) in merges.enumerated() where d[UInt64(m.left) << 32 | UInt64(m.right)] == nil {
                d[UInt64(m.left) << 32 | UInt64(m.right)] = Int32(r)
            }
            flat = []
            dict = d
        }
    }

    /// The rank of merging (a, b), or -1.
    @inline(__always) func rank(_ a: Int32, _ b: Int32) -> Int32 {
        if !flat.isEmpty { return flat[Int(a) * width + Int(b)] }
        return dict[UInt64(a) << 32 | UInt64(b)] ?? -1
    }
}

/// A binary min-heap of UInt64 keys.
struct MinHeap {
    private var a: [UInt64] = []
    var isEmpty: Bool { a.isEmpty }

    mutating func push(_ x: UInt64) {
        a.append(x)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if a[p] <= a[i] { break }
            a.swapAt(p, i)
            i = p
        }
    }

    mutating func pop() -> UInt64? {
        guard let last = a.popLast() else { return nil }
        guard !a.isEmpty else { return last }
        let top = a[0]
        a[0] = last
        var i = 0
        let n = a.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && a[l] < a[m] { m = l }
            if r < n && a[r] < a[m] { m = r }
            if m == i { break }
            a.swapAt(i, m)
            i = m
        }
        return top
    }
}
