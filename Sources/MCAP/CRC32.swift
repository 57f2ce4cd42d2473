// CRC-32 (ISO-HDLC, the zlib/PNG polynomial 0xEDB88320 reflected), which MCAP uses for its
// data-section, summary and chunk checksums. Byte-at-a-time table lookup: ~1 ns/byte, enough for
// recording JSON messages of a few hundred bytes per tick.

/// The 256-entry lookup table for `crc32Update`.
let crc32Table: [UInt32] = (0..<256).map { n -> UInt32 in
    var c = UInt32(n)
    for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}

/// Continues a CRC-32 over `bytes`. Start with `crc = 0`; the result equals `zlib.crc32(bytes, crc)`.
@inline(__always)
func crc32Update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var c = ~crc
    crc32Table.withUnsafeBufferPointer { table in
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    }
    return ~c
}
