// The pre-tokenizer: splits input bytes into the chunks BPE merges inside (merges never cross a chunk
// boundary). On valid UTF-8 it is exactly the split of Hugging Face's ByteLevel pre-tokenizer with
// use_regex=true and add_prefix_space=false, i.e. the GPT-2 regex (openai/gpt-2 `encoder.py`)
//
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// matched leftmost-first by Oniguruma, written out by hand below (no regex engine in the hot path).
// Classes as Oniguruma defines them for UTF-8: \p{L} = general category L*, \p{N} = N*, \s = the
// White_Space property (Unicode 16 data, see `hfUnicodeMajor`) (U+0009...U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000...U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000). The optional prefix " ?" is U+0020 only; the contractions are
// lowercase ASCII after U+0027 only.
//
// Bytes that are not valid UTF-8 (our extension; HF's API only takes valid strings): a byte that does
// not start a well-formed sequence (Unicode 15 Table 3-7: overlongs, surrogates, > U+10FFFF, stray
// continuation bytes, truncated sequences) is a chunk of its own, and it ends the text around it: the
// valid stretches on either side are split as if each were the whole input (so `\s+(?!\S)` sees the end
// of the string there). Every byte lands in exactly one chunk, so encoding stays lossless.

/// Character classes of the GPT-2 pattern.
enum ScalarClass: UInt8 {
    /// Anything else: `[^\s\p{L}\p{N}]`.
    case other = 0
    /// `\p{L}`: general category Lu, Ll, Lt, Lm or Lo.
    case letter = 1
    /// `\p{N}`: general category Nd, Nl or No.
    case number = 2
    /// `\s`: the White_Space property.
    case space = 3
    /// A byte that does not start well-formed UTF-8 (its own chunk).
    case invalid = 4
}

/// Splits bytes into BPE chunks (see the comment at the top of PreTokenizer.swift).
enum PreTokenizer {
    /// Calls `body(start, end)` for each chunk in order; the chunks tile `p` without gaps.
    @inline(__always)
    static func split(_ p: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        // Bind the class tables once per call (a `static let` access costs a `swift_once` check, 10%
        // of encode time when done per scalar).
        asciiClass.withUnsafeBufferPointer { ascii in
            bmpClass.withUnsafeBufferPointer { bmp in
                split(p, ascii: ascii, bmp: bmp, body)
            }
        }
    }

    @inline(__always)
    private static func split(_ p: UnsafeBufferPointer<UInt8>, ascii: UnsafeBufferPointer<ScalarClass>,
                              bmp: UnsafeBufferPointer<ScalarClass>, _ body: (Int, Int) -> Void) {
        @inline(__always) func classify(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> (ScalarClass, Int) {
            PreTokenizer.classify(p, i, ascii: ascii, bmp: bmp)
        }
        let n = p.count
        var i = 0
        while i < n {
            let (c, len) = classify(p, i)
            if c == .invalid { body(i, i + 1); i += 1; continue }

            // 1. 's|'t|'re|'ve|'m|'ll|'d
            if p[i] == 0x27, i + 1 < n {
                let b1 = p[i + 1]
                if b1 == 0x73 || b1 == 0x74 || b1 == 0x6D || b1 == 0x64 {          // s t m d
                    body(i, i + 2); i += 2; continue
                }
                if i + 2 < n {
                    let b2 = p[i + 2]
                    if ((b1 == 0x72 || b1 == 0x76) && b2 == 0x65) || (b1 == 0x6C && b2 == 0x6C) {  // re ve ll
                        body(i, i + 3); i += 3; continue
                    }
                }
            }

            // 2.-4. ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: one optional U+0020, then a run of one class.
            var runClass = c
            var j = i + len
            if c == .space {
                if p[i] == 0x20, j < n {
                    let (c2, len2) = classify(p, j)
                    if c2 != .space && c2 != .invalid { runClass = c2; j += len2 }
                }
            }
            if runClass != .space {
                while j < n {
                    let (cj, lj) = classify(p, j)
                    if cj != runClass { break }
                    j += lj
                }
                body(i, j); i = j; continue
            }

            // 5. `\s+(?!\S)`: a whitespace run, less its last scalar when a non-space follows (so that
            //    scalar can prefix the next word); 6. `\s+` when the run is a single scalar.
            var last = i
            var followedByNonSpace = false
            while j < n {
                let (cj, lj) = classify(p, j)
                if cj != .space { followedByNonSpace = cj != .invalid; break }
                last = j
                j += lj
            }
            if followedByNonSpace && last > i { body(i, last); i = last } else { body(i, j); i = j }
        }
    }

    /// The class and byte length of the scalar starting at `p[i]`; `(.invalid, 1)` when `p[i]` does
    /// not start a well-formed UTF-8 sequence (Unicode Table 3-7).
    @inline(__always)
    static func classify(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, ascii: UnsafeBufferPointer<ScalarClass>,
                         bmp: UnsafeBufferPointer<ScalarClass>) -> (ScalarClass, Int) {
        let b0 = p[i]
        if b0 < 0x80 { return (ascii[Int(b0)], 1) }
        let n = p.count
        @inline(__always) func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> UInt32? {
            guard k < n else { return nil }
            let b = p[k]
            return (b >= lo && b <= hi) ? UInt32(b & 0x3F) : nil
        }
        switch b0 {
        case 0xC2...0xDF:
            guard let c1 = cont(i + 1) else { return (.invalid, 1) }
            let v = UInt32(b0 & 0x1F) << 6 | c1
            return (bmp[Int(v)], 2)
        case 0xE0...0xEF:
            let lo: UInt8 = b0 == 0xE0 ? 0xA0 : 0x80
            let hi: UInt8 = b0 == 0xED ? 0x9F : 0xBF
            guard let c1 = cont(i + 1, lo, hi), let c2 = cont(i + 2) else { return (.invalid, 1) }
            let v = UInt32(b0 & 0x0F) << 12 | c1 << 6 | c2
            return (bmp[Int(v)], 3)
        case 0xF0...0xF4:
            let lo: UInt8 = b0 == 0xF0 ? 0x90 : 0x80
            let hi: UInt8 = b0 == 0xF4 ? 0x8F : 0xBF
            guard let c1 = cont(i + 1, lo, hi), let c2 = cont(i + 2), let c3 = cont(i + 3) else { return (.invalid, 1) }
            let v = UInt32(b0 & 0x07) << 18 | c1 << 12 | c2 << 6 | c3
            return (scalarClass(v), 4)
        default:
            return (.invalid, 1)
        }
    }

    /// The Unicode version of the Oniguruma tables inside Hugging Face `tokenizers` (0.23): code points
    /// assigned later (Swift 6.3 ships Unicode 17) are unassigned there, i.e. `[^\s\p{L}\p{N}]`.
    /// Measured: with this cut-off all 1,112,064 scalars get the class HF gives them.
    static let hfUnicodeMajor = 16

    /// The class of one code point from the Unicode tables Swift ships, capped at `hfUnicodeMajor`.
    static func scalarClass(_ v: UInt32) -> ScalarClass {
        guard let s = Unicode.Scalar(v) else { return .other }   // surrogates never reach here
        if let age = s.properties.age, age.major > hfUnicodeMajor { return .other }
        if s.properties.isWhitespace { return .space }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    /// Classes of U+0000...U+007F.
    static let asciiClass: [ScalarClass] = (0..<128).map { scalarClass(UInt32($0)) }

    /// Classes of the whole Basic Multilingual Plane (64 KiB, built once on first use), so the common
    /// case never searches the Unicode property tables.
    static let bmpClass: [ScalarClass] = (0..<0x1_0000).map { scalarClass(UInt32($0)) }
}
