import Foundation

// The MiniGPT transformer, top to bottom (Llama family, pre-norm; DESIGN.md "The model"):
//
//   x = E[token]                                   (d)
//   for each layer:
//     h = rmsnorm(x, attn_norm)                    (d)
//     q, k, v = split(W_qkv · h)                   (H·hd), (KVH·hd), (KVH·hd)
//     q, k = rope(q, pos), rope(k, pos)
//     a_h = softmax(q_h · K_gᵀ / √hd) · V_g       per query head h, KV group g = h / (H/KVH)
//     x += W_o · concat(a_h)                       (d)
//     h = rmsnorm(x, ffn_norm)
//     x += W_down · (silu(W_gate · h) ⊙ W_up · h)  (d)
//   logits = E · rmsnorm(x, final_norm)            (V)   (tied head: phase 4)
//
// Shape legend: d = hidden_size, H = query heads, KVH = key/value heads, hd = d/H, F = FFN hidden,
// V = vocabulary, T = sequence length. Weight matrices are (out, in) row-major.
//
// `Transformer` owns the read-only packed weights; `Session` (Session.swift) owns the scratch and
// KV cache of one decoding stream. `forward(tokens:)` here is phase 1: the whole sequence, no cache.

/// Counts the matrix products of a forward pass: cheap enough to stay on (two adds per matmul).
public struct OpCounter: Sendable, Equatable {
    /// Matrix–vector (or matrix–matrix) products issued.
    public var matmuls = 0
    /// Multiply–adds in those products and in attention.
    public var macs = 0
    /// Weight bytes streamed from memory.
    public var weightBytes = 0

    /// A zeroed counter.
    public init() {}

    @inline(__always) mutating func matmul(rows: Int, cols: Int, bytesPerWeight: Int = 4) {
        matmuls += 1
        macs += rows * cols
        weightBytes += rows * cols * bytesPerWeight
    }
}

/// One block's weights, packed for the kernels (`PackedMatrix`: FP32 panels or INT8 + scales).
struct PackedLayer {
    let attnNorm: UnsafeMutablePointer<Float>   // (d)
    let qkv: PackedMatrix                       // (q_dim + 2·kv_dim, d)
    let o: PackedMatrix                         // (d, q_dim)
    let ffnNorm: UnsafeMutablePointer<Float>    // (d)
    let gateUp: PackedMatrix                    // (2F, d): gate rows, then up rows (one pass over h)
    let down: PackedMatrix                      // (d, F)
}

/// A loaded model: configuration plus weights packed once, in the layout the kernels read
/// contiguously (FP32 panels, or INT8 panels per `config.weightDType`). Immutable after init, so
/// any number of sessions may share it.
public final class Transformer: @unchecked Sendable {
    /// The model's shape.
    public let config: ModelConfig
    /// Norm gains and the row-major embedding (looked up one row per token).
    let storage: FloatBuffer
    /// The packed matrices' memory.
    let arena = PackedArena()
    let embed: UnsafeMutablePointer<Float>       // (V, d) row-major
    let head: PackedMatrix                       // (V, d): a packed copy of `embed` when tied
    let finalNorm: UnsafeMutablePointer<Float>   // (d)
    let layers: [PackedLayer]
    /// Widest matrix input, padded to 4 (the INT8 activation scratch a session needs per token).
    let maxCols4: Int

    /// Packs `weights` for inference. Groups marked `int8` in `config.weightDType` use the stored
    /// INT8 matrices (`weights.quantized`) when they still match the FP32 master, else quantize it.
    public init(weights: ModelWeights) {
        let c = weights.config
        config = c
        let (d, F, V) = (c.hiddenSize, c.intermediateSize, c.vocabSize)
        let dtypes = c.weightDType ?? WeightDTypes()
        var vectors: [[Float]] = [weights.embed, weights.finalNorm]
        for l in weights.layers { vectors += [l.attnNorm, l.ffnNorm] }
        // Each vector starts on a 64-byte boundary (16 floats) so SIMD loads never split cache lines.
        func padded(_ n: Int) -> Int { (n + 15) / 16 * 16 }
        storage = FloatBuffer(count: vectors.reduce(0) { $0 + padded($1.count) })
        var offset = 0
        var ptrs: [UnsafeMutablePointer<Float>] = []
        for a in vectors {
            let p = storage.pointer + offset
            a.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: a.count) }
            ptrs.append(p)
            offset += padded(a.count)
        }
        embed = ptrs[0]
        finalNorm = ptrs[1]
        let arena = arena
        head = arena.packF32(weights.lmHead ?? weights.embed, rows: V, cols: d)
        func pack(_ name: String, _ m: [Float], rows: Int, cols: Int, _ dtype: WeightDType) -> QuantizedMatrix? {
            dtype == .int8 ? (weights.currentQuantized(name, master: m) ?? QuantizedMatrix(quantizing: m, rows: rows, cols: cols)) : nil
        }
        layers = weights.layers.enumerated().map { i, l in
            func matrix(_ name: String, _ m: [Float], rows: Int, cols: Int, _ dtype: WeightDType) -> PackedMatrix {
                if let q = pack(name, m, rows: rows, cols: cols, dtype) { return arena.packI8(q) }
                return arena.packF32(m, rows: rows, cols: cols)
            }
            let gateUp: PackedMatrix
            if dtypes.ffn == .int8 {
                gateUp = arena.packI8(.stacked([pack(TensorName.gate(i), l.gate, rows: F, cols: d, .int8)!,
                                                pack(TensorName.up(i), l.up, rows: F, cols: d, .int8)!]))
            } else {
                gateUp = arena.packF32(l.gate + l.up, rows: 2 * F, cols: d)
            }
            return PackedLayer(attnNorm: ptrs[2 + 2 * i],
                               qkv: matrix(TensorName.qkv(i), l.qkv, rows: c.qkvDim, cols: d, dtypes.attention),
                               o: matrix(TensorName.o(i), l.o, rows: d, cols: c.qDim, dtypes.attention),
                               ffnNorm: ptrs[3 + 2 * i], gateUp: gateUp,
                               down: matrix(TensorName.down(i), l.down, rows: d, cols: F, dtypes.ffn))
        }
        maxCols4 = ([head] + layers.flatMap { [$0.qkv, $0.o, $0.gateUp, $0.down] }).map(\.cols4).max()!
    }

    /// Bytes of weights the decode step reads: matrices as stored (INT8 + scales, or FP32), the
    /// output head, the norms and one embedding row.
    public var weightBytes: Int {
        let d = config.hiddenSize
        let matrices = layers.reduce(head.weightBytes) { $0 + $1.qkv.weightBytes + $1.o.weightBytes + $1.gateUp.weightBytes + $1.down.weightBytes }
        return matrices + 4 * d * (2 * config.numHiddenLayers + 2)
    }

    /// Phase 1: logits for every position of `tokens`, computing the whole sequence at once with no
    /// cache. Returns `(T, V)` row-major. Allocates freely; this is the readable reference path.
    public func forward(tokens: [Int], counter: inout OpCounter) -> [Float] {
        let c = config
        let (T, d, V, hd) = (tokens.count, c.hiddenSize, c.vocabSize, c.headDim)
        let (H, G, F) = (c.numAttentionHeads, c.groupSize, c.intermediateSize)
        precondition(T <= c.maxPositionEmbeddings, "sequence of \(T) exceeds the context \(c.maxPositionEmbeddings)")
        for t in tokens { precondition(t >= 0 && t < V, "token \(t) outside the vocabulary 0..<\(V)") }
        let rope = ropeTables(positions: max(T, 1), headDim: hd, theta: c.ropeTheta)
        let x = FloatBuffer(count: T * d)             // (T, d) residual stream
        let h = FloatBuffer(count: T * d)             // (T, d) normed input
        let qkv = FloatBuffer(count: T * c.qkvDim)    // (T, qkv_dim)
        let att = FloatBuffer(count: T * c.qDim)      // (T, q_dim) attention output
        let gu = FloatBuffer(count: 2 * F)            // (2F) gate, then up
        let scores = FloatBuffer(count: max(T, 1))
        let xu = UnsafeMutablePointer<UInt8>.allocate(capacity: maxCols4)  // INT8 activation scratch
        defer { xu.deallocate() }
        let (xp, hp, qp, ap, sp) = (x.pointer, h.pointer, qkv.pointer, att.pointer, scores.pointer)
        for (t, tok) in tokens.enumerated() { (xp + t * d).update(from: embed + tok * d, count: d) }
        for layer in layers {
            // Attention: project every position, rotate, then causal attention per head.
            for t in 0..<T {
                rmsnorm(hp + t * d, xp + t * d, layer.attnNorm, d, eps: c.rmsNormEps)
                let row = qp + t * c.qkvDim
                layer.qkv.apply(row, hp + t * d, accumulate: false, xu: xu)
                counter.matmul(rows: c.qkvDim, cols: d, bytesPerWeight: layer.qkv.i8 == nil ? 4 : 1)
                for head in 0..<(H + c.numKeyValueHeads) {  // q heads then k heads (contiguous)
                    Kernels.ropeAt(row + head * hd, rope, position: t, half: hd / 2, hd: hd)
                }
            }
            for t in 0..<T {
                for head in 0..<H {
                    let kvHead = head / G
                    let q = t * c.qkvDim + head * hd
                    for s in 0...t {
                        let k = s * c.qkvDim + c.qDim + kvHead * hd
                        var dotp: Float = 0
                        for i in 0..<hd { dotp += qp[q + i] * qp[k + i] }
                        sp[s] = dotp / Float(hd).squareRoot()
                    }
                    softmaxNaive(sp, t + 1)
                    let out = t * c.qDim + head * hd
                    for i in 0..<hd { ap[out + i] = 0 }
                    for s in 0...t {
                        let v = s * c.qkvDim + c.qDim + c.kvDim + kvHead * hd
                        for i in 0..<hd { ap[out + i] += sp[s] * qp[v + i] }
                    }
                    counter.macs += 2 * hd * (t + 1)
                }
                layer.o.apply(xp + t * d, ap + t * c.qDim, accumulate: true, xu: xu)
                counter.matmul(rows: d, cols: c.qDim, bytesPerWeight: layer.o.i8 == nil ? 4 : 1)
            }
            // Feed-forward, position by position.
            for t in 0..<T {
                let xt = xp + t * d, ht = hp + t * d
                rmsnorm(ht, xt, layer.ffnNorm, d, eps: c.rmsNormEps)
                layer.gateUp.apply(gu.pointer, ht, accumulate: false, xu: xu)
                swiglu(gu.pointer, gu.pointer + F, F)
                layer.down.apply(xt, gu.pointer, accumulate: true, xu: xu)
                let bytes = layer.down.i8 == nil ? 4 : 1
                counter.matmul(rows: F, cols: d, bytesPerWeight: bytes); counter.matmul(rows: F, cols: d, bytesPerWeight: bytes)
                counter.matmul(rows: d, cols: F, bytesPerWeight: bytes)
            }
        }
        var logits = [Float](repeating: 0, count: T * V)
        logits.withUnsafeMutableBufferPointer { lp in
            for t in 0..<T {
                rmsnorm(hp, xp + t * d, finalNorm, d, eps: c.rmsNormEps)
                head.apply(lp.baseAddress! + t * V, hp, accumulate: false, xu: xu)
                counter.matmul(rows: V, cols: d)
            }
        }
        return logits
    }

    /// Phase 1 forward without counting.
    public func forward(tokens: [Int]) -> [Float] {
        var counter = OpCounter()
        return forward(tokens: tokens, counter: &counter)
    }
}

/// Namespace for small helpers shared by the full-sequence and the cached paths.
enum Kernels {
    /// Applies RoPE for `position` to one head vector using the session's tables.
    @inline(__always)
    static func ropeAt(_ x: UnsafeMutablePointer<Float>, _ tables: (cos: FloatBuffer, sin: FloatBuffer),
                       position: Int, half: Int, hd: Int) {
        rope(x, cos: tables.cos.pointer + position * half, sin: tables.sin.pointer + position * half, headDim: hd)
    }
}
