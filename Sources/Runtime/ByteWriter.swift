// Allocation-free JSON writer for the daemon's outgoing messages (`intent`, `telemetry`, `status`),
// used inside the decision tick where `JSONEncoder` and string interpolation are not allowed.

/// A fixed-capacity byte buffer, allocated once in `init`, with JSON value writers.
///
/// The caller writes the structure with `raw` literals and the values with the typed writers:
/// ```
/// w.reset(); w.raw("{\"v\":1,\"seq\":"); w.uint64(seq); w.raw(",\"speed\":"); w.float(v); w.raw("}")
/// ```
/// Nothing ever writes past the capacity: a piece that does not fit is dropped whole and sets
/// `overflowed` (later pieces are dropped too, until `reset`), so check `overflowed` before sending.
/// No writer allocates as long as the buffer is not shared with a copy of the writer (a copy shares
/// the storage until one of them writes, which then copies it once).
public struct ByteWriter {
    /// The storage: `capacity` bytes, of which the first `count` are the message.
    private var buffer: [UInt8]
    /// Number of bytes written since the last `reset`.
    public private(set) var count = 0
    /// True once a write did not fit; stays true until `reset`.
    public private(set) var overflowed = false

    /// A writer that holds at most `capacity` bytes (allocated here, once).
    public init(capacity: Int) {
        precondition(capacity >= 0, "ByteWriter capacity must not be negative")
        buffer = [UInt8](repeating: 0, count: capacity)
    }

    /// The most bytes the writer holds.
    public var capacity: Int { buffer.count }

    /// Empties the writer (keeps the storage) and clears `overflowed`.
    public mutating func reset() {
        count = 0
        overflowed = false
    }

    /// Calls `body` with the bytes written so far (valid only inside `body`).
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeBytes { all in try body(UnsafeRawBufferPointer(rebasing: all[0..<count])) }
    }

    // MARK: Raw bytes

    /// Appends the literal's UTF-8 bytes as they are (JSON structure such as `"{\"v\":1,"`).
    public mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends `b` as it is (e.g. a pre-rendered JSON fragment).
    public mutating func bytes(_ b: UnsafeRawBufferPointer) {
        append(b)
    }

    /// Appends all of `piece` or, when it does not fit, nothing and sets `overflowed`.
    private mutating func append(_ piece: UnsafeRawBufferPointer) {
        guard !overflowed, piece.count <= buffer.count - count else {
            overflowed = true
            return
        }
        if piece.isEmpty { return }
        let at = count
        buffer.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[at..<at + piece.count]).copyMemory(from: piece) }
        count += piece.count
    }

    /// Appends one byte, or sets `overflowed`. Callers undo a partial piece with `rollBack(to:)`.
    private mutating func append(_ byte: UInt8) {
        guard !overflowed, count < buffer.count else {
            overflowed = true
            return
        }
        buffer[count] = byte
        count += 1
    }

    /// Drops what a piece wrote after `mark` once it overflowed, so no half value stays behind.
    private mutating func rollBack(to mark: Int) {
        if overflowed { count = mark }
    }

    // MARK: Strings

    /// Appends `s` as a JSON string: quoted, with `"`, `\` and control characters escaped
    /// (RFC 8259 §7); everything else is copied as UTF-8.
    public mutating func string(_ s: String) {
        let mark = count
        append(UInt8(ascii: "\""))
        for b in s.utf8 { escaped(b) }
        append(UInt8(ascii: "\""))
        rollBack(to: mark)
    }

    /// Appends a literal as a JSON string (quoted and escaped like `string(_: String)`).
    public mutating func string(_ s: StaticString) {
        let mark = count
        append(UInt8(ascii: "\""))
        s.withUTF8Buffer { for b in $0 { escaped(b) } }
        append(UInt8(ascii: "\""))
        rollBack(to: mark)
    }

    private mutating func escaped(_ b: UInt8) {
        switch b {
        case UInt8(ascii: "\""): append(UInt8(ascii: "\\")); append(b)
        case UInt8(ascii: "\\"): append(UInt8(ascii: "\\")); append(b)
        case 0x0A: append(UInt8(ascii: "\\")); append(UInt8(ascii: "n"))
        case 0x0D: append(UInt8(ascii: "\\")); append(UInt8(ascii: "r"))
        case 0x09: append(UInt8(ascii: "\\")); append(UInt8(ascii: "t"))
        case 0x08: append(UInt8(ascii: "\\")); append(UInt8(ascii: "b"))
        case 0x0C: append(UInt8(ascii: "\\")); append(UInt8(ascii: "f"))
        case 0..<0x20:   // other control characters: \u00XX
            let hex: StaticString = "0123456789abcdef"
            append(UInt8(ascii: "\\")); append(UInt8(ascii: "u")); append(UInt8(ascii: "0")); append(UInt8(ascii: "0"))
            append(hex.utf8Start[Int(b >> 4)]); append(hex.utf8Start[Int(b & 0xF)])
        default: append(b)
        }
    }

    // MARK: Numbers and booleans

    /// Appends `v` in decimal.
    public mutating func int(_ v: Int) {
        let mark = count
        if v < 0 { append(UInt8(ascii: "-")) }
        uint64(UInt64(v.magnitude))
        rollBack(to: mark)
    }

    /// Appends `v` in decimal.
    public mutating func uint64(_ v: UInt64) {
        // Digits are produced last first into a 24-byte stack buffer (UInt64.max has 20).
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            var n = 0
            var rest = v
            repeat {
                d[23 - n] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                n += 1
            } while rest != 0
            append(UnsafeRawBufferPointer(rebasing: d[(24 - n)...]))
        }
    }

    /// Appends `v` as the shortest decimal that reads back as the same Float: the same text as
    /// `v.description` (e.g. `0.1`, `1.0`, `1e-05`, `3.4028235e+38`). NaN and ±infinity, which
    /// JSON cannot hold, are written as `null`.
    public mutating func float(_ v: Float) {
        guard v.isFinite else { return raw("null") }
        var text = FloatText()
        v.write(to: &text)
        text.withBytes { append($0) }
    }

    /// Appends `v` as the shortest decimal that reads back as the same Double: the same text as
    /// `v.description` (e.g. `0.30000000000000004`). NaN and ±infinity are written as `null`.
    public mutating func double(_ v: Double) {
        guard v.isFinite else { return raw("null") }
        var text = FloatText()
        v.write(to: &text)
        text.withBytes { append($0) }
    }

    /// Appends `true` or `false`.
    public mutating func bool(_ v: Bool) {
        if v { raw("true") } else { raw("false") }
    }
}

/// Receives the text of a Float or Double from its `write(to:)` on the stack.
///
/// `description` would build a `String`, which for Double text over 15 bytes is a heap allocation.
/// `write(to:)` (TextOutputStreamable) formats with the same shortest-round-trip algorithm and hands
/// the ASCII bytes to the stream's `_writeASCII` (an underscored but public requirement of
/// `TextOutputStream`) without making a `String`. Should a future standard library stop calling it,
/// `write(_:)` still gets the same text, correctly, only with an allocation, which
/// AllocCounterTests would report. (snprintf("%.17g") is no way out: Swift reaches it only through
/// `withVaList`, which allocates.)
private struct FloatText: TextOutputStream {
    /// Room for the longest text, `-2.2250738585072014e-308` (24 bytes).
    private var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var count = 0

    mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) {
        write(UnsafeRawBufferPointer(buffer))
    }

    mutating func write(_ string: String) {
        var string = string
        string.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    private mutating func write(_ bytes: UnsafeRawBufferPointer) {
        let at = count
        let n = min(bytes.count, 32 - at)
        withUnsafeMutableBytes(of: &storage) {
            UnsafeMutableRawBufferPointer(rebasing: $0[at..<at + n]).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
        }
        count += n
    }

    func withBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        var copy = storage
        let n = count
        withUnsafeBytes(of: &copy) { body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
}
