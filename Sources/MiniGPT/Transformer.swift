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

/// Pointers to one block's weights inside the packed buffer.
struct PackedLayer {
    let attnNorm: UnsafeMutablePointer<Float>   // (d)
    let qkv: UnsafeMutablePointer<Float>        // (q_dim + 2·kv_dim, d)
    let o: UnsafeMutablePointer<Float>          // (d, q_dim)
    let ffnNorm: UnsafeMutablePointer<Float>    // (d)
    let gate: UnsafeMutablePointer<Float>       // (F, d)
    let up: UnsafeMutablePointer<Float>         // (F, d)
    let down: UnsafeMutablePointer<Float>       // (d, F)
}

/// A loaded model: configuration plus FP32 weights packed into one aligned buffer in the layout the
/// kernels read contiguously. Immutable after init, so any number of sessions may share it.
public final class Transformer: @unchecked Sendable {
    /// The model's shape.
    public let config: ModelConfig
    /// All weights, one contiguous block.
    let storage: FloatBuffer
    let embed: UnsafeMutablePointer<Float>       // (V, d)
    let head: UnsafeMutablePointer<Float>        // (V, d): `embed` when tied
    let finalNorm: UnsafeMutablePointer<Float>   // (d)
    let layers: [PackedLayer]

    /// Packs `weights` for inference.
    public init(weights: ModelWeights) {
        let c = weights.config
        config = c
        var arrays: [[Float]] = [weights.embed, weights.finalNorm]
        if let h = weights.lmHead { arrays.append(h) }
        for l in weights.layers { arrays += [l.attnNorm, l.qkv, l.o, l.ffnNorm, l.gate, l.up, l.down] }
        // Each tensor starts on a 64-byte boundary (16 floats) so SIMD loads never split cache lines.
        func padded(_ n: Int) -> Int { (n + 15) / 16 * 16 }
        storage = FloatBuffer(count: arrays.reduce(0) { $0 + padded($1.count) })
        var offset = 0
        var ptrs: [UnsafeMutablePointer<Float>] = []
        for a in arrays {
            let p = storage.pointer + offset
            a.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: a.count) }
            ptrs.append(p)
            offset += padded(a.count)
        }
        embed = ptrs[0]
        finalNorm = ptrs[1]
        var next = 2
        if weights.lmHead != nil { head = ptrs[2]; next = 3 } else { head = embed }
        layers = (0..<c.numHiddenLayers).map { i in
            let b = next + i * 7
            return PackedLayer(attnNorm: ptrs[b], qkv: ptrs[b + 1], o: ptrs[b + 2], ffnNorm: ptrs[b + 3],
                               gate: ptrs[b + 4], up: ptrs[b + 5], down: ptrs[b + 6])
        }
    }

    /// Bytes of weights the decode step reads (the tied head is counted once).
    public var weightBytes: Int {
        let c = config
        let perLayer = 2 * c.hiddenSize + c.qkvDim * c.hiddenSize + c.hiddenSize * c.qDim + 3 * c.hiddenSize * c.intermediateSize
        return 4 * (c.numHiddenLayers * perLayer + c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2) + c.hiddenSize)
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
        var x = [Float](repeating: 0, count: T * d)           // (T, d) residual stream
        var h = [Float](repeating: 0, count: T * d)           // (T, d) normed input
        var qkv = [Float](repeating: 0, count: T * c.qkvDim)  // (T, qkv_dim)
        var att = [Float](repeating: 0, count: T * c.qDim)    // (T, q_dim) attention output
        var g = [Float](repeating: 0, count: F), u = [Float](repeating: 0, count: F)
        var scores = [Float](repeating: 0, count: T)
        for (t, tok) in tokens.enumerated() {
            for i in 0..<d { x[t * d + i] = embed[tok * d + i] }
        }
        for layer in layers {
            // Attention: project every position, rotate, then causal attention per head.
            for t in 0..<T {
                x.withUnsafeBufferPointer { xp in h.withUnsafeMutableBufferPointer { hp in
                    rmsnorm(hp.baseAddress! + t * d, xp.baseAddress! + t * d, layer.attnNorm, d, eps: c.rmsNormEps)
                } }
                h.withUnsafeBufferPointer { hp in qkv.withUnsafeMutableBufferPointer { qp in
                    let row = qp.baseAddress! + t * c.qkvDim
                    matvec(row, layer.qkv, hp.baseAddress! + t * d, rows: c.qkvDim, cols: d)
                    counter.matmul(rows: c.qkvDim, cols: d)
                    let half = hd / 2
                    for head in 0..<(H + c.numKeyValueHeads) {  // q heads then k heads (contiguous)
                        Kernels.ropeAt(row + head * hd, rope, position: t, half: half, hd: hd)
                    }
                } }
            }
            for t in 0..<T {
                for head in 0..<H {
                    let kvHead = head / G
                    let q = t * c.qkvDim + head * hd
                    for s in 0...t {
                        let k = s * c.qkvDim + c.qDim + kvHead * hd
                        var dotp: Float = 0
                        for i in 0..<hd { dotp += qkv[q + i] * qkv[k + i] }
                        scores[s] = dotp / Float(hd).squareRoot()
                    }
                    scores.withUnsafeMutableBufferPointer { softmax($0.baseAddress!, t + 1) }
                    let out = t * c.qDim + head * hd
                    for i in 0..<hd { att[out + i] = 0 }
                    for s in 0...t {
                        let v = s * c.qkvDim + c.qDim + c.kvDim + kvHead * hd
                        for i in 0..<hd { att[out + i] += scores[s] * qkv[v + i] }
                    }
                    counter.macs += 2 * hd * (t + 1)
                }
                att.withUnsafeBufferPointer { ap in x.withUnsafeMutableBufferPointer { xp in
                    matvec(xp.baseAddress! + t * d, layer.o, ap.baseAddress! + t * c.qDim, rows: d, cols: c.qDim, accumulate: true)
                } }
                counter.matmul(rows: d, cols: c.qDim)
            }
            // Feed-forward, position by position.
            for t in 0..<T {
                x.withUnsafeMutableBufferPointer { xp in h.withUnsafeMutableBufferPointer { hp in
                    g.withUnsafeMutableBufferPointer { gp in u.withUnsafeMutableBufferPointer { up in
                        let xt = xp.baseAddress! + t * d, ht = hp.baseAddress! + t * d
                        rmsnorm(ht, xt, layer.ffnNorm, d, eps: c.rmsNormEps)
                        matvec(gp.baseAddress!, layer.gate, ht, rows: F, cols: d)
                        matvec(up.baseAddress!, layer.up, ht, rows: F, cols: d)
                        swiglu(gp.baseAddress!, up.baseAddress!, F)
                        matvec(xt, layer.down, gp.baseAddress!, rows: d, cols: F, accumulate: true)
                    } }
                } }
                counter.matmul(rows: F, cols: d); counter.matmul(rows: F, cols: d); counter.matmul(rows: d, cols: F)
            }
        }
        var logits = [Float](repeating: 0, count: T * V)
        for t in 0..<T {
            x.withUnsafeBufferPointer { xp in h.withUnsafeMutableBufferPointer { hp in
                logits.withUnsafeMutableBufferPointer { lp in
                    rmsnorm(hp.baseAddress!, xp.baseAddress! + t * d, finalNorm, d, eps: c.rmsNormEps)
                    matvec(lp.baseAddress! + t * V, head, hp.baseAddress!, rows: V, cols: d)
                }
            } }
            counter.matmul(rows: V, cols: d)
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
