import Foundation
import CMiniGPTKernels

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
//     x += W_down · (silu(W_gate · h) ⊙ W_up · h)  (d)   (ffn_rank r > 0: each W = A·B, B·h first)
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
    let ffn: PackedFFN                          // dense SwiGLU or its low-rank factors

    /// The FFN's first matrix: (2F, d) gate|up when dense, (2r, d) their B factors when low-rank.
    var gateUp: PackedMatrix {
        switch ffn { case .dense(let gu, _): return gu; case .lowRank(let gub, _, _, _, _): return gub }
    }
    /// The FFN's last matrix: (d, F) down when dense, (d, r) its A factor when low-rank.
    var down: PackedMatrix {
        switch ffn { case .dense(_, let dn): return dn; case .lowRank(_, _, _, _, let da): return da }
    }
}

/// One block's SwiGLU FFN, packed: dense, or factored W ≈ A·B at `ffn_rank` r > 0 (LowRank.swift).
enum PackedFFN {
    /// (2F, d) gate rows then up rows (one pass over h); (d, F) down.
    case dense(gateUp: PackedMatrix, down: PackedMatrix)
    /// (2r, d) B of gate then B of up (one pass over h); (F, r) A of gate; (F, r) A of up;
    /// (r, F) B of down; (d, r) A of down. Always FP32.
    case lowRank(gateUpB: PackedMatrix, gateA: PackedMatrix, upA: PackedMatrix, downB: PackedMatrix, downA: PackedMatrix)

    /// Every packed matrix (init-time bookkeeping only: allocates).
    var matrices: [PackedMatrix] {
        switch self {
        case .dense(let gu, let dn): return [gu, dn]
        case .lowRank(let gub, let ga, let ua, let db, let da): return [gub, ga, ua, db, da]
        }
    }

    /// Scratch floats per token the FFN needs besides the (2F) gate|up buffer: (2r), 0 when dense.
    var lowRankScratch: Int {
        if case .lowRank(let gub, _, _, _, _) = self { return gub.rows }
        return 0
    }

    /// Calls `body(matrix, products)` for each product the FFN issues (a stacked matrix counts as
    /// the `products` matrices it stacks). Non-escaping: allocates nothing.
    @inline(__always)
    func forEachProduct(_ body: (PackedMatrix, Int) -> Void) {
        switch self {
        case .dense(let gu, let dn): body(gu, 2); body(dn, 1)
        case .lowRank(let gub, let ga, let ua, let db, let da): body(gub, 2); body(ga, 1); body(ua, 1); body(db, 1); body(da, 1)
        }
    }

    /// `x (T, d) += W_down · (silu(W_gate · h) ⊙ W_up · h)` for `T` rows of `h (T, d)`; `g (T, 2F)`
    /// and `z (T, lowRankScratch)` are scratch. `batched` picks the matrix–matrix kernels (prefill
    /// chunks, even of one token), else T must be 1 and the matrix–vector ones run (`step`, `forward`). Low rank: z = [B_gate·h | B_up·h] (2r), gate and
    /// up = A·z halves, then z[0..<r] = B_down·s and x += A_down·z: 3r(d+F) MACs instead of 3dF.
    @inline(__always)
    func apply(_ x: UnsafeMutablePointer<Float>, _ h: UnsafePointer<Float>, tokens T: Int, batched: Bool, d: Int, F: Int,
               g: UnsafeMutablePointer<Float>, z: UnsafeMutablePointer<Float>,
               xu: UnsafeMutablePointer<UInt8>, xs: UnsafeMutablePointer<Float>) {
        @inline(__always)
        func mm(_ m: PackedMatrix, _ out: UnsafeMutablePointer<Float>, _ ldo: Int, _ x: UnsafePointer<Float>, _ ldx: Int, _ acc: Bool) {
            if !batched { m.apply(out, x, accumulate: acc, xu: xu) }
            else { m.apply(out, ldo: ldo, x, ldx: ldx, tokens: T, accumulate: acc, xu: xu, xs: xs) }
        }
        switch self {
        case .dense(let gu, let dn):
            mm(gu, g, 2 * F, h, d, false)
            for t in 0..<T { swiglu(g + t * 2 * F, g + t * 2 * F + F, F) }
            mm(dn, x, d, g, 2 * F, true)
        case .lowRank(let gub, let ga, let ua, let db, let da):
            let r2 = gub.rows, r = ga.cols
            mm(gub, z, r2, h, d, false)
            mm(ga, g, 2 * F, z, r2, false)
            mm(ua, g + F, 2 * F, z + r, r2, false)
            for t in 0..<T { swiglu(g + t * 2 * F, g + t * 2 * F + F, F) }
            mm(db, z, r2, g, 2 * F, false)
            mm(da, x, d, z, r2, true)
        }
    }
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
            let ffn: PackedFFN
            if c.ffnRank > 0 {
                let r = c.ffnRank
                ffn = .lowRank(gateUpB: arena.packF32(l.gateB + l.upB, rows: 2 * r, cols: d),
                               gateA: arena.packF32(l.gateA, rows: F, cols: r), upA: arena.packF32(l.upA, rows: F, cols: r),
                               downB: arena.packF32(l.downB, rows: r, cols: F), downA: arena.packF32(l.downA, rows: d, cols: r))
            } else if dtypes.ffn == .int8 {
                ffn = .dense(gateUp: arena.packI8(.stacked([pack(TensorName.gate(i), l.gate, rows: F, cols: d, .int8)!,
                                                            pack(TensorName.up(i), l.up, rows: F, cols: d, .int8)!])),
                             down: matrix(TensorName.down(i), l.down, rows: d, cols: F, dtypes.ffn))
            } else {
                ffn = .dense(gateUp: arena.packF32(l.gate + l.up, rows: 2 * F, cols: d),
                             down: matrix(TensorName.down(i), l.down, rows: d, cols: F, dtypes.ffn))
            }
            return PackedLayer(attnNorm: ptrs[2 + 2 * i],
                               qkv: matrix(TensorName.qkv(i), l.qkv, rows: c.qkvDim, cols: d, dtypes.attention),
                               o: matrix(TensorName.o(i), l.o, rows: d, cols: c.qDim, dtypes.attention),
                               ffnNorm: ptrs[3 + 2 * i], ffn: ffn)
        }
        maxCols4 = ([head] + layers.flatMap { [$0.qkv, $0.o] + $0.ffn.matrices }).map(\.cols4).max()!
    }

    /// Reads every packed weight and norm gain once, so the next product finds them in the caches
    /// (`mgk_touch`: one load per 64 bytes, ≈ weightBytes / 64 loads). For a loop that idles between
    /// inputs: on a shared machine its weights leave the caches within milliseconds. Reads only;
    /// thread-safe; allocation-free. Returns a byte sum (meaningless; it keeps the reads).
    @discardableResult
    public func warmCaches() -> UInt64 {
        // The gains follow the embedding in `storage`: the final norm, then each layer's two.
        let gains = (config.hiddenSize + 15) / 16 * 16 * (2 * config.numHiddenLayers + 1)
        return arena.touch() &+ mgk_touch(finalNorm, 4 * gains)
    }

    /// Bytes of weights the decode step reads: matrices as stored (INT8 + scales, or FP32), the
    /// output head, the norms and one embedding row.
    public var weightBytes: Int {
        let d = config.hiddenSize
        let matrices = layers.reduce(head.weightBytes) { $0 + $1.qkv.weightBytes + $1.o.weightBytes + $1.ffn.matrices.reduce(0) { $0 + $1.weightBytes } }
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
        let z = FloatBuffer(count: 2 * c.ffnRank)     // (2r) low-rank FFN intermediate
        let xs = FloatBuffer(count: 1)                // INT8 activation scale (unused at T = 1)
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
                layer.ffn.apply(xt, ht, tokens: 1, batched: false, d: d, F: F, g: gu.pointer, z: z.pointer, xu: xu, xs: xs.pointer)
                layer.ffn.forEachProduct { m, products in
                    for _ in 0..<products { counter.matmul(rows: m.rows / products, cols: m.cols, bytesPerWeight: m.i8 == nil ? 4 : 1) }
                }
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
