import Foundation
import MiniGPT

// Quantization-aware training (phase 15; Jacob et al. 2018, "Quantization and Training of Neural
// Networks for Efficient Integer-Arithmetic-Only Inference"; Bengio et al. 2013 for the
// straight-through estimator).
//
// Forward: the shards read fake-quantized weights, exactly what `mgpt quantize` will store and the
// INT8 engine will multiply by:
//
//   W_eff[r][c] = round(W[r][c] / s_r) · s_r,   s_r = max_c |W[r][c]| / 127   (QuantizedMatrix)
//
// Backward: round() has zero gradient almost everywhere, so the straight-through estimator treats
// it as the identity: ∂L/∂W = ∂L/∂W_eff. (With symmetric max scaling no element clips, so there is
// no clip mask to apply.) The optimizer updates the FP32 master W; the next forward re-quantizes.
//
// Not simulated: the engine's dynamic per-token activation quantization before each INT8 product
// (that lives inside the shard forward, another helper's file). QAT here is weights-only.

/// The recipe's `"qat"` section: which weight groups train through fake INT8 quantization.
public struct QATSpec: Codable, Sendable, Equatable {
    /// Fused QKV and output projections.
    public var attention: Bool
    /// Gate, up and down projections.
    public var ffn: Bool
    /// Width of the simulated integer grid: 8 = exactly the engine's INT8 weights; 2...7 simulate
    /// lower-precision weights the engine has no kernels for (compare with `mgpt quantize --fake-bits`).
    public var bits: Int

    /// Both groups by default, as `mgpt quantize` does without flags.
    public init(attention: Bool = true, ffn: Bool = true, bits: Int = 8) {
        self.attention = attention
        self.ffn = ffn
        self.bits = bits
    }

    enum CodingKeys: String, CodingKey { case attention, ffn, bits }

    /// `training.json`'s `qat`; records written before `bits` existed mean 8.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        attention = try c.decode(Bool.self, forKey: .attention)
        ffn = try c.decode(Bool.self, forKey: .ffn)
        bits = try c.decodeIfPresent(Int.self, forKey: .bits) ?? 8
    }

    /// Whether any group is fake-quantized.
    public var isEnabled: Bool { attention || ffn }
}

/// One matrix to fake-quantize: its place in the parameter layout and its shape.
struct FakeQuantMatrix: Sendable {
    /// First float in the layout.
    var offset: Int
    /// Output rows (one scale each) and input columns.
    var rows: Int, cols: Int
    /// Grid width (8 = the engine's INT8).
    var bits: Int = 8
}

extension QATSpec {
    /// The matrices of `layout` this spec fake-quantizes. Per-row scales make the fused gate|up
    /// slice (2F rows) equal to quantizing gate and up separately, and the fused QKV equal to the
    /// engine's fused QKV.
    func matrices(_ layout: ParameterLayout) throws -> [FakeQuantMatrix] {
        let c = layout.config, C = c.hiddenSize, F = c.intermediateSize
        if ffn && c.ffnRank > 0 {
            throw TrainError.recipe(path: "qat.ffn", message: "expected false for a low-rank FFN (ffn_rank \(c.ffnRank)): its factors stay FP32")
        }
        guard (2...8).contains(bits) else {
            throw TrainError.recipe(path: "qat.bits", message: "expected an integer in 2...8, found \(bits)")
        }
        var out: [FakeQuantMatrix] = []
        for s in layout.layers {
            if attention {
                out.append(FakeQuantMatrix(offset: s.qkv, rows: c.qkvDim, cols: C, bits: bits))
                out.append(FakeQuantMatrix(offset: s.o, rows: C, cols: c.qDim, bits: bits))
            }
            if ffn {
                out.append(FakeQuantMatrix(offset: s.gateUp, rows: 2 * F, cols: C, bits: bits))
                out.append(FakeQuantMatrix(offset: s.down, rows: C, cols: F, bits: bits))
            }
        }
        return out
    }
}

/// Replaces `m (rows, cols)` at `w` by its `bits`-bit round trip `q · s_r`, using the engine's own
/// quantizer (`fakeQuantized`, Quantization.swift: at 8 bits `QuantizedMatrix(quantizing:)`) so
/// training sees exactly the weights INT8 inference runs.
func fakeQuantize(_ w: FloatPtr, rows: Int, cols: Int, bits: Int = 8) {
    let master = Array(UnsafeBufferPointer(start: w, count: rows * cols))
    let dq = fakeQuantized(master, rows: rows, cols: cols, bits: bits)
    dq.withUnsafeBufferPointer { w.update(from: $0.baseAddress!, count: rows * cols) }
}
