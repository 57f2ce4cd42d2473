import Foundation

/// One decoding stream over a shared `Transformer`: the KV cache and every scratch buffer, allocated
/// once at init. `step` (phase 3: incremental decoding with a KV cache) allocates nothing.
///
/// Not thread-safe: one session per thread. Many sessions may share one `Transformer`.
public final class Session: @unchecked Sendable {
    /// The model this session runs.
    public let model: Transformer
    /// Positions the KV cache holds.
    public let capacity: Int
    /// Tokens processed since the last `reset()`; the next token's position.
    public private(set) var position = 0
    /// Matrix products since creation (or the last `counter = OpCounter()`).
    public var counter = OpCounter()

    // Scratch, one token wide.
    private let x: FloatBuffer        // (d) residual stream
    private let h: FloatBuffer        // (d) normed input
    private let qkv: FloatBuffer      // (q_dim + 2·kv_dim)
    private let att: FloatBuffer      // (q_dim) concatenated head outputs
    private let g: FloatBuffer        // (F) gate, then silu(gate) ⊙ up
    private let u: FloatBuffer        // (F) up
    private let logitsBuffer: FloatBuffer  // (V)
    private let scores: FloatBuffer   // (H, capacity) attention probabilities of the layer last run
    // KV cache. Keys are stored transposed, (layers, KVH, hd, capacity), so the scores of 16
    // consecutive positions are 16 lanes of one FMA per head dimension (no horizontal sums);
    // values are (layers, KVH, capacity, hd), read row by row in the weighted sum.
    private let keys: FloatBuffer
    private let values: FloatBuffer
    private let ropeCos: FloatBuffer, ropeSin: FloatBuffer  // (capacity, hd/2)

    /// A session whose cache holds `capacity` positions (default: the model's context).
    public init(model: Transformer, capacity: Int? = nil) {
        let c = model.config
        self.model = model
        self.capacity = capacity ?? c.maxPositionEmbeddings
        x = FloatBuffer(count: c.hiddenSize)
        h = FloatBuffer(count: c.hiddenSize)
        qkv = FloatBuffer(count: c.qkvDim)
        att = FloatBuffer(count: c.qDim)
        g = FloatBuffer(count: c.intermediateSize)
        u = FloatBuffer(count: c.intermediateSize)
        logitsBuffer = FloatBuffer(count: c.vocabSize)
        scores = FloatBuffer(count: c.numAttentionHeads * self.capacity)
        let cacheSize = c.numHiddenLayers * c.numKeyValueHeads * self.capacity * c.headDim
        keys = FloatBuffer(count: cacheSize)
        values = FloatBuffer(count: cacheSize)
        (ropeCos, ropeSin) = ropeTables(positions: self.capacity, headDim: c.headDim, theta: c.ropeTheta)
    }

    /// Forgets every cached position.
    public func reset() { position = 0 }

    func setPosition(_ p: Int) { position = p }

    /// Bytes held by the KV cache.
    public var kvCacheBytes: Int { (keys.count + values.count) * 4 }

    /// The logits of the last step, (V).
    public var logits: UnsafeBufferPointer<Float> { UnsafeBufferPointer(logitsBuffer.slice(0, model.config.vocabSize)) }

    /// Attention probabilities of query `head` in the last layer at the last step, over positions
    /// `0..<position`: the raw material of head-disagreement signals.
    public func attention(head: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(scores.slice(head * capacity, position))
    }

    /// Removes `count` cached positions starting at `start` (StreamingLLM-style eviction: Xiao et al.
    /// 2023, "Efficient Streaming Language Models with Attention Sinks"). Later positions slide down
    /// and their keys are re-rotated by −count positions (RoPE rotations compose: R(p−n) = R(−n)·R(p)),
    /// so positions stay inside the trained range forever while the sinks before `start` stay put.
    /// Cost: one memmove of the cache tail and a rotation per moved key; no allocation.
    public func evict(from start: Int, count: Int) {
        precondition(start >= 0 && count >= 0 && start + count <= position, "evict range outside the cache")
        guard count > 0 else { return }
        let c = model.config
        let hd = c.headDim, half = hd / 2
        let moved = position - start - count
        let cosp = ropeCos.pointer + count * half, sinp = ropeSin.pointer + count * half
        for lk in 0..<(c.numHiddenLayers * c.numKeyValueHeads) {
            let base = lk * capacity * hd
            let vDst = values.pointer + base + start * hd
            vDst.update(from: vDst + count * hd, count: moved * hd)  // overlapping: a memmove
            let k = keys.pointer + base
            for i in 0..<hd {
                let row = k + i * capacity + start
                row.update(from: row + count, count: moved)
            }
            for i in 0..<half {  // rotate by −count: cos(−a) = cos a, sin(−a) = −sin a
                let ra = k + i * capacity + start, rb = k + (i + half) * capacity + start
                let cs = cosp[i], sn = sinp[i]
                for s in 0..<moved {
                    let a = ra[s], b = rb[s]
                    ra[s] = a * cs + b * sn
                    rb[s] = b * cs - a * sn
                }
            }
        }
        position -= count
    }

    /// Runs `tokens` through the model; returns the logits after the last one.
    @discardableResult
    public func prefill(_ tokens: [Int]) -> UnsafeBufferPointer<Float> {
        for t in tokens { step(t) }
        return logits
    }

    /// One decode step: appends `token` at `position`, returns the next-token logits (V), valid until
    /// the next call. Allocates nothing. Precondition: `position < capacity`.
    @discardableResult
    public func step(_ token: Int) -> UnsafeBufferPointer<Float> {
        let c = model.config
        let (d, hd, H, KVH, F) = (c.hiddenSize, c.headDim, c.numAttentionHeads, c.numKeyValueHeads, c.intermediateSize)
        let (qDim, kvDim, qkvDim, G) = (c.qDim, c.kvDim, c.qkvDim, c.groupSize)
        let pos = position
        precondition(pos < capacity, "KV cache full (\(capacity) positions): reset() or use a window")
        precondition(token >= 0 && token < c.vocabSize, "token \(token) outside the vocabulary 0..<\(c.vocabSize)")
        let x = x.pointer, h = h.pointer, qkv = qkv.pointer, att = att.pointer, g = g.pointer, u = u.pointer
        let half = hd / 2
        let cosp = ropeCos.pointer + pos * half, sinp = ropeSin.pointer + pos * half
        let scale = 1 / Float(hd).squareRoot()
        let n = pos + 1

        (model.embed + token * d).withMemoryRebound(to: Float.self, capacity: d) { x.update(from: $0, count: d) }
        for (l, layer) in model.layers.enumerated() {
            // Attention block.
            rmsnorm(h, x, layer.attnNorm, d, eps: c.rmsNormEps)
            matvec(qkv, layer.qkv, h, rows: qkvDim, cols: d)
            counter.matmul(rows: qkvDim, cols: d)
            for head in 0..<(H + KVH) { rope(qkv + head * hd, cos: cosp, sin: sinp, headDim: hd) }
            let layerBase = l * KVH * capacity * hd
            for kv in 0..<KVH {  // append this position's k (a column) and v (a row) to the cache
                let head = layerBase + kv * capacity * hd
                let k = qkv + qDim + kv * hd
                for i in 0..<hd { keys.pointer[head + i * capacity + pos] = k[i] }
                (values.pointer + head + pos * hd).update(from: qkv + qDim + kvDim + kv * hd, count: hd)
            }
            for head in 0..<H {
                let q = qkv + head * hd
                let kBase = keys.pointer + layerBase + (head / G) * capacity * hd
                let vBase = values.pointer + layerBase + (head / G) * capacity * hd
                let p = scores.pointer + head * capacity
                scoresTransposed(p, q, kBase, n: n, hd: hd, stride: capacity, scale: scale)
                softmax(p, n)
                weightedSum(att + head * hd, p, vBase, n: n, hd: hd)
            }
            counter.macs += 2 * H * hd * n
            matvec(x, layer.o, att, rows: d, cols: qDim, accumulate: true)
            counter.matmul(rows: d, cols: qDim)
            // Feed-forward block.
            rmsnorm(h, x, layer.ffnNorm, d, eps: c.rmsNormEps)
            matvec(g, layer.gate, h, rows: F, cols: d)
            matvec(u, layer.up, h, rows: F, cols: d)
            swiglu(g, u, F)
            matvec(x, layer.down, g, rows: d, cols: F, accumulate: true)
            counter.matmul(rows: F, cols: d); counter.matmul(rows: F, cols: d); counter.matmul(rows: d, cols: F)
        }
        rmsnorm(h, x, model.finalNorm, d, eps: c.rmsNormEps)
        matvec(logitsBuffer.pointer, model.head, h, rows: c.vocabSize, cols: d)
        counter.matmul(rows: c.vocabSize, cols: d)
        position = pos + 1
        return logits
    }
}

/// `out (hd) = Σ_s p[s] · v[s] (hd)` over `n` cached positions.
@inline(__always)
func weightedSum(_ out: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, _ v: UnsafePointer<Float>, n: Int, hd: Int) {
    if hd % 16 == 0 {
        var c = 0
        while c < hd {
            var acc = SIMD16<Float>(repeating: 0)
            for s in 0..<n { acc.addProduct(SIMD16(repeating: p[s]), load16(v + s * hd + c)) }
            store16(out + c, acc)
            c += 16
        }
    } else {
        for i in 0..<hd { out[i] = 0 }
        for s in 0..<n { for i in 0..<hd { out[i] += p[s] * v[s * hd + i] } }
    }
}

/// `scores (n) = scale · Kᵀ q` for keys stored transposed, `k (hd, stride)`: lanes run over positions.
@inline(__always)
func scoresTransposed(_ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                      n: Int, hd: Int, stride: Int, scale: Float) {
    var s = 0
    while s + 16 <= n {
        var acc = SIMD16<Float>(repeating: 0)
        for i in 0..<hd { acc.addProduct(SIMD16(repeating: q[i]), load16(k + i * stride + s)) }
        store16(out + s, acc * scale)
        s += 16
    }
    while s < n {
        var acc: Float = 0
        for i in 0..<hd { acc += q[i] * k[i * stride + s] }
        out[s] = acc * scale
        s += 1
    }
}
