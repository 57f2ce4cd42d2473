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
    // KV cache, (layers, KVH, capacity, hd): one head's keys are contiguous over positions.
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

    /// Bytes held by the KV cache.
    public var kvCacheBytes: Int { (keys.count + values.count) * 4 }

    /// The logits of the last step, (V).
    public var logits: UnsafeBufferPointer<Float> { UnsafeBufferPointer(logitsBuffer.slice(0, model.config.vocabSize)) }

    /// Attention probabilities of query `head` in the last layer at the last step, over positions
    /// `0..<position`: the raw material of head-disagreement signals.
    public func attention(head: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(scores.slice(head * capacity, position))
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
            for kv in 0..<KVH {  // append this position's k and v to the cache
                let slot = layerBase + (kv * capacity + pos) * hd
                (keys.pointer + slot).update(from: qkv + qDim + kv * hd, count: hd)
                (values.pointer + slot).update(from: qkv + qDim + kvDim + kv * hd, count: hd)
            }
            for head in 0..<H {
                let q = qkv + head * hd
                let kBase = keys.pointer + layerBase + (head / G) * capacity * hd
                let vBase = values.pointer + layerBase + (head / G) * capacity * hd
                let p = scores.pointer + head * capacity
                for s in 0..<n { p[s] = dot(q, kBase + s * hd, hd) * scale }
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
