import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The safetensors format (huggingface/safetensors, "Format" section of its README):
//   [8 bytes: N, little-endian u64] [N bytes: UTF-8 JSON header] [byte buffer]
// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} with offsets
// relative to the start of the byte buffer, plus an optional "__metadata__" string→string map.
// Tensors must cover the buffer without holes or overlaps; data is little-endian, row-major.

/// Element types MiniGPT stores.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", i8 = "I8", i32 = "I32"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16: return 2
        case .i8: return 1
        }
    }
}

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable, Equatable {
    /// Tensor name, e.g. `model.layers.0.mlp.up_proj.weight`.
    public var name: String
    /// Element type.
    public var dtype: DType
    /// Shape, outermost first.
    public var shape: [Int]
    /// Byte range inside the data buffer.
    public var offsets: Range<Int>
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// Errors reading a safetensors file: each names the file and, where there is one, the tensor
/// and the byte offset.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    /// The file.
    public var path: String
    /// What is wrong, with expected and found values.
    public var message: String
    public var description: String { "\(path): \(message)" }
}

/// A safetensors file mapped read-only into memory. Tensor data is read in place (zero copy)
/// until the engine packs it into its kernel layout.
public final class SafeTensorsFile: @unchecked Sendable {
    /// The file's path (for error messages).
    public let path: String
    /// Tensors by name.
    public let tensors: [String: TensorInfo]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    private let base: UnsafeMutableRawPointer?
    private let mappedLength: Int
    private let dataStart: Int

    /// Maps and validates `url`. Throws `SafeTensorsError` for anything the spec forbids.
    public init(url: URL) throws {
        path = url.path
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw SafeTensorsError(path: url.path, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw SafeTensorsError(path: url.path, message: "cannot stat: \(String(cString: strerror(errno)))")
        }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw SafeTensorsError(path: url.path, message: "truncated: file is \(size) bytes, the 8-byte header length alone needs 8")
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw SafeTensorsError(path: url.path, message: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = p
        mappedLength = size
        do {
            (tensors, metadata, dataStart) = try Self.parseHeader(p, size: size, path: url.path)
        } catch {
            munmap(p, size)
            throw error
        }
    }

    deinit { if let base { munmap(base, mappedLength) } }

    private static func parseHeader(_ p: UnsafeMutableRawPointer, size: Int, path: String) throws
        -> ([String: TensorInfo], [String: String], Int) {
        func fail(_ m: String) -> SafeTensorsError { SafeTensorsError(path: path, message: m) }
        let n = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
        // The spec caps the header at 100 MB to refuse absurd lengths before reading them.
        guard n <= 100_000_000 else { throw fail("header length \(n) at byte 0 exceeds the 100 MB limit (corrupted file?)") }
        guard 8 + Int(n) <= size else {
            throw fail("truncated: header claims \(n) bytes but only \(size - 8) follow byte 8")
        }
        let headerData = Data(bytes: p + 8, count: Int(n))
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw fail("header (bytes 8..<\(8 + n)) is not valid JSON: \(error.localizedDescription)")
        }
        guard let dict = json as? [String: Any] else { throw fail("header is not a JSON object") }
        var infos: [String: TensorInfo] = [:]
        var meta: [String: String] = [:]
        let dataStart = 8 + Int(n)
        let dataSize = size - dataStart
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                meta = m
                continue
            }
            guard let e = value as? [String: Any] else { throw fail("tensor \"\(name)\": entry is not an object") }
            guard let ds = e["dtype"] as? String else { throw fail("tensor \"\(name)\": missing dtype") }
            guard let dtype = DType(rawValue: ds) else {
                throw fail("tensor \"\(name)\": dtype \(ds) is not supported (expected one of \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let shape = (e["shape"] as? [NSNumber])?.map(\.intValue), shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("tensor \"\(name)\": shape must be a list of non-negative integers")
            }
            guard let off = (e["data_offsets"] as? [NSNumber])?.map(\.intValue), off.count == 2, off[0] >= 0, off[0] <= off[1] else {
                throw fail("tensor \"\(name)\": data_offsets must be [begin, end] with 0 <= begin <= end")
            }
            // Element and byte counts with overflow checks: a corrupted shape must not trap.
            var count = 1
            for dim in shape {
                let (m, overflow) = count.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw fail("tensor \"\(name)\": shape \(shape) has more elements than can be addressed") }
                count = m
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow else { throw fail("tensor \"\(name)\": shape \(shape) of \(ds) has more bytes than can be addressed") }
            guard off[1] - off[0] == bytes else {
                throw fail("tensor \"\(name)\": shape \(shape) of \(ds) needs \(count * dtype.size) bytes, data_offsets give \(off[1] - off[0])")
            }
            guard off[1] <= dataSize else {
                throw fail("truncated: tensor \"\(name)\" ends at byte \(dataStart + off[1]) but the file has \(size) bytes")
            }
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape, offsets: off[0]..<off[1])
        }
        // No holes, no overlaps (spec: "the byte buffer needs to be entirely indexed").
        var cursor = 0
        for t in infos.values.sorted(by: { ($0.offsets.lowerBound, $0.offsets.upperBound) < ($1.offsets.lowerBound, $1.offsets.upperBound) }) {
            guard t.offsets.lowerBound == cursor else {
                throw fail(t.offsets.lowerBound < cursor
                    ? "tensor \"\(t.name)\" overlaps the previous tensor at data byte \(t.offsets.lowerBound)"
                    : "hole in the data buffer at data bytes \(cursor)..<\(t.offsets.lowerBound) before tensor \"\(t.name)\"")
            }
            cursor = t.offsets.upperBound
        }
        guard cursor == dataSize else {
            throw fail("data buffer has \(dataSize) bytes but tensors cover \(cursor) (trailing bytes or truncation)")
        }
        return (infos, meta, dataStart)
    }

    /// The tensor `name`, checked against an expected dtype set and shape.
    public func info(_ name: String, shape: [Int]? = nil) throws -> TensorInfo {
        guard let t = tensors[name] else {
            throw SafeTensorsError(path: path, message: "missing tensor \"\(name)\"")
        }
        if let shape, shape != t.shape {
            throw SafeTensorsError(path: path, message: "tensor \"\(name)\": expected shape \(shape), found \(t.shape)")
        }
        return t
    }

    /// Raw bytes of a tensor, valid while this object lives.
    public func bytes(_ t: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base! + dataStart + t.offsets.lowerBound, count: t.offsets.count)
    }

    /// Reads a float tensor (F32 or F16) as `[Float]`, checking its shape.
    public func floats(_ name: String, shape: [Int]? = nil) throws -> [Float] {
        let t = try info(name, shape: shape)
        let raw = bytes(t)
        switch t.dtype {
        case .f32:
            return (0..<t.count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        case .f16:
            return (0..<t.count).map { Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) }
        default:
            throw SafeTensorsError(path: path, message: "tensor \"\(name)\": expected dtype F32 or F16, found \(t.dtype.rawValue)")
        }
    }

    /// Reads an I8 tensor, checking its shape.
    public func int8s(_ name: String, shape: [Int]? = nil) throws -> [Int8] {
        let t = try info(name, shape: shape)
        guard t.dtype == .i8 else {
            throw SafeTensorsError(path: path, message: "tensor \"\(name)\": expected dtype I8, found \(t.dtype.rawValue)")
        }
        return Array(bytes(t).bindMemory(to: Int8.self))
    }
}

/// Builds a safetensors file in memory and writes it atomically.
public struct SafeTensorsWriter {
    private var entries: [(name: String, dtype: DType, shape: [Int], data: [UInt8])] = []
    /// Free-form string metadata stored under `__metadata__`.
    public var metadata: [String: String] = [:]

    /// An empty writer.
    public init() {}

    /// Adds an F32 tensor (or F16 when `as: .f16`).
    public mutating func add(_ name: String, shape: [Int], floats: [Float], as dtype: DType = .f32) {
        precondition(shape.reduce(1, *) == floats.count, "\(name): shape \(shape) does not match \(floats.count) values")
        var out = [UInt8]()
        switch dtype {
        case .f32:
            out.reserveCapacity(floats.count * 4)
            for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        case .f16:
            out.reserveCapacity(floats.count * 2)
            for f in floats { withUnsafeBytes(of: Float16(f).bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        default: preconditionFailure("add(floats:) takes F32 or F16")
        }
        entries.append((name, dtype, shape, out))
    }

    /// Adds an I8 tensor.
    public mutating func add(_ name: String, shape: [Int], int8s: [Int8]) {
        precondition(shape.reduce(1, *) == int8s.count, "\(name): shape \(shape) does not match \(int8s.count) values")
        entries.append((name, .i8, shape, int8s.map { UInt8(bitPattern: $0) }))
    }

    /// The serialised file.
    public func serialized() -> [UInt8] {
        // Header entries in insertion order (JSONSerialization sorts keys, so build the text by hand).
        var parts: [String] = []
        if !metadata.isEmpty {
            let m = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            parts.append("\"__metadata__\":{\(m.joined(separator: ","))}")
        }
        var offset = 0
        for e in entries {
            let shape = e.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.data.count)]}")
            offset += e.data.count
        }
        var header = Array("{\(parts.joined(separator: ","))}".utf8)
        // Pad with spaces so the data buffer starts 8-byte aligned (allowed by the spec).
        while (8 + header.count) % 8 != 0 { header.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for e in entries { out.append(contentsOf: e.data) }
        return out
    }

    /// Writes the file atomically (temporary file + rename).
    public func write(to url: URL) throws {
        try Data(serialized()).write(to: url, options: .atomic)
    }
}

/// A JSON string literal for `s`.
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
