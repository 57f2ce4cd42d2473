import Foundation
@testable import MiniGPT

// Text for the tokenizer tests: a fixed paragraph with the cases the GPT-2 split must get right, and a
// seeded generator mixing words, punctuation, digits, whitespace runs, contractions and non-ASCII.

enum TokenizerTestCorpus {
    /// Hand-picked cases: contractions (lower and upper case), digits, whitespace runs and kinds,
    /// accents (precomposed and combining), CJK, emoji with ZWJ and skin tones, Arabic, Nl/No numbers.
    static let sample = """
    The quick brown fox jumps over the lazy dog. It's 2026, and we'll see: don't panic! I'M "fine", they've said; you'd think so, I'd say.
    Numbers: 3.14159, 1,000,000 and 42nd; phone +1 (555) 010-9999; ½ ⅓ ² Ⅻ ٣٤٥ १२३.
    Whitespace:   three spaces,\ttab,\t\t two tabs, trailing   \nnew\n\n\nlines\r\nCRLF \u{00A0}nbsp\u{3000}ideographic\u{2028}sep \u{85}nel  
    Café, naïve, résumé, Ångström, Straße, ÆØÅ; decomposed: cafe\u{301} e\u{301}e\u{301}.
    日本語のテキスト、中文文本。한국어 텍스트. Ελληνικά κείμενα. Русский текст. עברית. العربية.
    Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇩🇪 ❤️ — en–dash, “quotes”, ‘single’, ellipsis… «guillemets».
    Code: let x = a[i] + b[j]; if (x >= 10 && y != 0) { return f(x); } // comment ''' ``` ~~~ @#$%^&*
    Apostrophes: 's 't 're 've 'm 'll 'd 'S 'T 'RE 'x ''s ' s '  'll've rock'n'roll O'Neil's
    Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa the end.
    Long spaces:                                                                              x
    Long digits: 31415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679
    Special strings are just text: <|bos|> <|eos|> <|pad|> <|obs_0|> <|intent_3|>.
    """

    static let words = ["the", "robot", "moves", "left", "right", "forward", "obstacle", "sensor", "battery",
                        "The", "Robot", "goal", "reached", "turning", "slowly", "fast", "distance", "meters",
                        "it's", "don't", "we'll", "they're", "I'm", "you've", "she'd", "café", "naïve", "über",
                        "日本", "中文", "データ", "🤖", "😀", "Straße", "ÅSA", "x1", "v2.0", "3.5m", "-12", "100%"]
    static let separators = [" ", " ", " ", " ", "  ", ", ", ". ", "; ", ":", "!", "?", "\n", "\n\n", "\t", " - ",
                             " (", ") ", "'", "\"", "   ", " \n", "\u{00A0}", "...", " #", "$", "\r\n"]

    /// Deterministic pseudo-text of about `bytes` bytes.
    static func generated(bytes: Int, seed: UInt64) -> String {
        var rng = RNG(seed: seed)
        var s = ""
        s.reserveCapacity(bytes + 64)
        while s.utf8.count < bytes {
            let r = Int(rng.next() % 100)
            if r < 6 {
                s += String(rng.next() % 100_000)
            } else {
                s += words[Int(rng.next() % UInt64(words.count))]
            }
            s += separators[Int(rng.next() % UInt64(separators.count))]
        }
        return s
    }

    /// A small trained tokenizer shared by the tests (vocab 512 with the default 64 + 32 reserved ids,
    /// so 157 merges), built once.
    static let tokenizer: Tokenizer = {
        let docs = [Array(generated(bytes: 60_000, seed: 1).utf8), Array(sample.utf8)]
        return try! Tokenizer.train(corpus: docs, vocabSize: 512)
    }()
}
