// GPT-2's reversible byte → unicode mapping (openai/gpt-2 `encoder.py`, `bytes_to_unicode`), which the
// Hugging Face `tokenizers` ByteLevel pre-tokenizer and decoder use to write byte tokens as printable
// strings in tokenizer.json: the 188 printable Latin-1 bytes (33...126, 161...172, 174...255) stand for
// themselves, the other 68 bytes (controls, space, 127...160, 173) become U+0100, U+0101, ... in byte order.
// So byte 0x20 (space) is written "Ġ" (U+0120) and byte 0x0A (newline) "Ċ" (U+010A).

/// The GPT-2 byte-level alphabet: every byte has one printable code point and back.
enum ByteLevel {
    /// `scalar[b]`: the code point standing for byte `b`.
    static let scalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte a code point stands for, or nil when it is not in the alphabet.
    static func byte(for s: Unicode.Scalar) -> UInt8? {
        let v = s.value
        if (33...126).contains(v) || (161...172).contains(v) || (174...255).contains(v) { return UInt8(v) }
        guard v >= 256, v < 256 + 68 else { return nil }
        return unprintable[Int(v - 256)]
    }

    /// The bytes of U+0100 ... U+0143 in order: the 68 bytes that are not printable Latin-1.
    private static let unprintable: [UInt8] = (0..<256).compactMap { b in
        let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
        return printable ? nil : UInt8(b)
    }

    /// The tokenizer.json spelling of a token's bytes, e.g. [0x20, 0x74] → "Ġt".
    static func encode(_ bytes: [UInt8]) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalar[Int(b)]) }
        return String(s)
    }

    /// The bytes a tokenizer.json token string stands for, or nil if a code point is outside the
    /// alphabet (the string cannot come from a byte-level tokenizer).
    static func decode(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.unicodeScalars.count)
        for u in s.unicodeScalars {
            guard let b = byte(for: u) else { return nil }
            out.append(b)
        }
        return out
    }
}
