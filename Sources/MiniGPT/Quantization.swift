import Foundation
import CMiniGPTKernels

// INT8 weights (phases 5/6): symmetric per-output-channel post-training quantization.
//
//   s_r = max_c |W[r][c]| / 127,   q[r][c] = round(W[r][c] / s_r) ∈ [−127, 127],   W ≈ q · s_r
//
// so every element's error is at most s_r / 2. Stored in `model.safetensors` as an `I8` tensor
// under the weight's usual name plus an `F32` sibling `<name>.scale` of shape [rows]; `config.json`
// says which groups run in INT8 with `"weight_dtype": {"attention": "int8", "ffn": "int8"}`.
// At inference the activation vector is quantized per call (dynamic, symmetric, one scale) and the
// product runs in integers (VNNI `vpdpbusd`; CMiniGPTKernels/int8.c).

/// Storage type of a group of weight matrices.
public enum WeightDType: String, Codable, Sendable, CaseIterable {
    /// IEEE single precision (the default).
    case float32
    /// Symmetric per-row INT8 with an FP32 scale per output row.
    case int8
}

/// Which weight groups are stored and run in INT8: the `weight_dtype` key of `config.json`.
/// Embedding, output head and norms always stay FP32.
public struct WeightDTypes: Codable, Sendable, Equatable {
    /// Fused QKV and output projections.
    public var attention: WeightDType
    /// Gate, up and down projections.
    public var ffn: WeightDType

    /// Both groups default to FP32.
    public init(attention: WeightDType = .float32, ffn: WeightDType = .float32) {
        self.attention = attention
        self.ffn = ffn
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case attention, ffn }

    /// Decodes `{"attention": …, "ffn": …}`; unknown keys and values are errors naming the key path.
    public init(from decoder: any Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        for key in any.allKeys where CodingKeys(rawValue: key.stringValue) == nil {
            throw ModelConfigError.unknownKey("weight_dtype.\(key.stringValue)")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func value(_ k: CodingKeys) throws -> WeightDType {
            guard let s = try c.decodeIfPresent(String.self, forKey: k) else { return .float32 }
            guard let v = WeightDType(rawValue: s) else {
                throw ModelConfigError.invalid(key: "weight_dtype.\(k.rawValue)", expected: "\"float32\" or \"int8\"", found: "\"\(s)\"")
            }
            return v
        }
        attention = try value(.attention)
        ffn = try value(.ffn)
    }
}

/// A weight matrix in INT8: row-major values and one scale per output row (`W ≈ values · scale`).
public struct QuantizedMatrix: Sendable, Equatable {
    /// Output rows and input columns.
    public let rows: Int, cols: Int
    /// (rows, cols) row-major, each in −127…127.
    public let values: [Int8]
    /// (rows) per-row scales, ≥ 0.
    public let scales: [Float]

    /// Wraps stored values; shapes are checked.
    public init(values: [Int8], scales: [Float], rows: Int, cols: Int) {
        precondition(values.count == rows * cols && scales.count == rows, "quantized matrix shape mismatch")
        (self.values, self.scales, self.rows, self.cols) = (values, scales, rows, cols)
    }

    /// Post-training quantization of row-major `w (rows, cols)`: symmetric, per output row.
    /// The division and rounding run in Double, so |w − q·s| ≤ s/2 holds for every element.
    public init(quantizing w: [Float], rows: Int, cols: Int) {
        precondition(w.count == rows * cols, "matrix of \(w.count) floats is not \(rows)×\(cols)")
        var q = [Int8](repeating: 0, count: rows * cols)
        var s = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            var amax: Float = 0
            for c in 0..<cols { amax = max(amax, abs(w[r * cols + c])) }
            let scale = amax / 127
            s[r] = scale
            guard scale > 0 else { continue }
            for c in 0..<cols {
                let v = (Double(w[r * cols + c]) / Double(scale)).rounded(.toNearestOrEven)
                q[r * cols + c] = Int8(max(-127, min(127, v)))
            }
        }
        self.init(values: q, scales: s, rows: rows, cols: cols)
    }

    /// `values · scale` as FP32, row-major (each element a single rounded product).
    public func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows { for c in 0..<cols { out[r * cols + c] = Float(values[r * cols + c]) * scales[r] } }
        return out
    }

    /// Rows `range` as their own matrix (splitting a fused QKV).
    public func rows(_ range: Range<Int>) -> QuantizedMatrix {
        QuantizedMatrix(values: Array(values[(range.lowerBound * cols)..<(range.upperBound * cols)]),
                        scales: Array(scales[range]), rows: range.count, cols: cols)
    }

    /// Stacks matrices of equal width row-wise (fusing Q, K, V).
    public static func stacked(_ parts: [QuantizedMatrix]) -> QuantizedMatrix {
        precondition(Set(parts.map(\.cols)).count == 1, "stacked matrices differ in width")
        return QuantizedMatrix(values: parts.flatMap(\.values), scales: parts.flatMap(\.scales),
                               rows: parts.reduce(0) { $0 + $1.rows }, cols: parts[0].cols)
    }
}

extension SafeTensorsFile {
    /// A 2-D weight matrix: an F32/F16 tensor, or an I8 tensor with its F32 `<name>.scale` sibling
    /// (shape [rows]), returned dequantized together with the INT8 original.
    func matrix(_ name: String, rows: Int, cols: Int) throws -> (floats: [Float], quantized: QuantizedMatrix?) {
        let t = try info(name, shape: [rows, cols])
        guard t.dtype == .i8 else { return (try floats(name, shape: [rows, cols]), nil) }
        let scaleName = name + ".scale"
        guard tensors[scaleName] != nil else {
            throw SafeTensorsError(path: path, message: "I8 tensor \"\(name)\" has no F32 sibling \"\(scaleName)\" (shape [\(rows)])")
        }
        let scales = try floats(scaleName, shape: [rows])
        for (r, s) in scales.enumerated() where !(s >= 0 && s.isFinite) {
            throw SafeTensorsError(path: path, message: "tensor \"\(scaleName)\": row \(r): expected a finite scale >= 0, found \(s)")
        }
        let values = try int8s(name, shape: [rows, cols])
        if let bad = values.firstIndex(of: -128) {
            throw SafeTensorsError(path: path, message: "tensor \"\(name)\": element \(bad): expected −127…127 (symmetric INT8), found −128")
        }
        let q = QuantizedMatrix(values: values, scales: scales, rows: rows, cols: cols)
        return (q.dequantized(), q)
    }
}

extension SafeTensorsWriter {
    /// Adds a matrix as I8 + `<name>.scale` when `quantized` is given, else as F32.
    mutating func addMatrix(_ name: String, rows: Int, cols: Int, floats: [Float], quantized: QuantizedMatrix?) {
        if let q = quantized {
            add(name, shape: [rows, cols], int8s: q.values)
            add(name + ".scale", shape: [rows], floats: q.scales)
        } else {
            add(name, shape: [rows, cols], floats: floats)
        }
    }
}

/// `w` (rows × cols, row-major) rounded to the symmetric per-row grid of `bits`-bit integers and
/// back: s_r = max|W_r| / L with L = 2^(bits−1) − 1, W' = clamp(round(W / s_r), ±L) · s_r.
/// At 8 bits this is exactly `QuantizedMatrix(quantizing:).dequantized()`, the weights the INT8
/// engine multiplies by; below 8 bits it simulates a grid the engine has no kernels for (the
/// weights stay FP32), which is how QAT and PTQ are compared at low bit widths.
public func fakeQuantized(_ w: [Float], rows: Int, cols: Int, bits: Int) -> [Float] {
    precondition((2...8).contains(bits), "fakeQuantized: bits \(bits) outside 2...8")
    if bits == 8 { return QuantizedMatrix(quantizing: w, rows: rows, cols: cols).dequantized() }
    let levels = Double((1 << (bits - 1)) - 1)
    var out = w
    for r in 0..<rows {
        var amax: Float = 0
        for c in 0..<cols { amax = max(amax, abs(w[r * cols + c])) }
        let scale = amax / Float(levels)
        for c in 0..<cols {
            guard scale > 0 else { out[r * cols + c] = 0; continue }
            let v = (Double(w[r * cols + c]) / Double(scale)).rounded(.toNearestOrEven)
            out[r * cols + c] = Float(max(-levels, min(levels, v))) * scale
        }
    }
    return out
}

extension ModelWeights {
    /// These weights with the chosen groups rounded to a `bits`-bit per-row grid (`fakeQuantized`),
    /// stored as FP32: a simulation of lower-precision weights for quality studies (`mgpt quantize
    /// --fake-bits`). The config is unchanged (no `weight_dtype`): the engine runs them in FP32.
    public func fakeQuantized(bits: Int, attention: Bool, ffn requestedFFN: Bool) -> ModelWeights {
        let ffn = requestedFFN && config.ffnRank == 0
        var w = self
        let c = config, d = c.hiddenSize, f = c.intermediateSize
        for i in w.layers.indices {
            if attention {
                w.layers[i].qkv = MiniGPT.fakeQuantized(w.layers[i].qkv, rows: c.qkvDim, cols: d, bits: bits)
                w.layers[i].o = MiniGPT.fakeQuantized(w.layers[i].o, rows: d, cols: c.qDim, bits: bits)
            }
            if ffn {
                w.layers[i].gate = MiniGPT.fakeQuantized(w.layers[i].gate, rows: f, cols: d, bits: bits)
                w.layers[i].up = MiniGPT.fakeQuantized(w.layers[i].up, rows: f, cols: d, bits: bits)
                w.layers[i].down = MiniGPT.fakeQuantized(w.layers[i].down, rows: d, cols: f, bits: bits)
            }
        }
        w.quantized = [:]
        return w
    }

    /// The stored INT8 form of matrix `name` if it still dequantizes exactly to the FP32 master
    /// (training may have moved the master since it was loaded: then it is stale and ignored).
    public func currentQuantized(_ name: String, master: [Float]) -> QuantizedMatrix? {
        guard let q = quantized[name], q.rows * q.cols == master.count else { return nil }
        return q.dequantized() == master ? q : nil
    }

    /// Post-training quantization: these weights with the chosen groups quantized to INT8 (the FP32
    /// master becomes the dequantized values, so training and the FP32 path see what INT8 runs).
    public func quantized(attention: Bool, ffn requestedFFN: Bool) -> ModelWeights {
        // A low-rank FFN (ffn_rank > 0) has no dense matrices to quantize; its factors stay FP32.
        let ffn = requestedFFN && config.ffnRank == 0
        var w = self
        let c = config, d = c.hiddenSize, f = c.intermediateSize
        var dtypes = c.weightDType ?? WeightDTypes()
        var made: [String: QuantizedMatrix] = [:]
        func q(_ name: String, _ m: inout [Float], rows: Int, cols: Int) {
            let qm = currentQuantized(name, master: m) ?? QuantizedMatrix(quantizing: m, rows: rows, cols: cols)
            made[name] = qm
            m = qm.dequantized()
        }
        for i in w.layers.indices {
            if attention {
                q(TensorName.qkv(i), &w.layers[i].qkv, rows: c.qkvDim, cols: d)
                q(TensorName.o(i), &w.layers[i].o, rows: d, cols: c.qDim)
            }
            if ffn {
                q(TensorName.gate(i), &w.layers[i].gate, rows: f, cols: d)
                q(TensorName.up(i), &w.layers[i].up, rows: f, cols: d)
                q(TensorName.down(i), &w.layers[i].down, rows: d, cols: f)
            }
        }
        w.quantized.merge(made) { _, new in new }
        if attention { dtypes.attention = .int8 }
        if ffn { dtypes.ffn = .int8 }
        w.config.weightDType = dtypes
        return w
    }
}
