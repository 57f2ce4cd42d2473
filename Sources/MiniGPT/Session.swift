import Foundation
import CMiniGPTKernels

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
    /// Layers run fully in the last `step` / `prefill` (L unless an exit rule stopped earlier; for a
    /// chunked prefill, the depth of its last chunk, the one whose logits it returns).
    public private(set) var lastExitLayer = 0

    // Scratch, one token wide.
    private let x: FloatBuffer        // (d) residual stream
    private let h: FloatBuffer        // (d) normed input
    private let qkv: FloatBuffer      // (q_dim + 2·kv_dim)
    private let att: FloatBuffer      // (q_dim) concatenated head outputs
    private let g: FloatBuffer        // (2F) gate then up; the gate half becomes silu(gate) ⊙ up
    private let z: FloatBuffer        // (2r) low-rank FFN intermediate (`ffn_rank` r > 0)
    private let logitsBuffer: FloatBuffer  // (V)
    private let probeX: FloatBuffer        // (d) residual after `probeLayer` layers, last token
    private let probeBuffer: FloatBuffer   // (V) the head read at `probeLayer`
    private let scores: FloatBuffer   // (H, capacity) attention probabilities of the layer last run
    /// The KV cache (KVCache.swift) in the precision `kvOptions.dtype`: keys transposed,
    /// (layers, KVH, hd, capacity), so the scores of 16 consecutive positions are 16 lanes of one
    /// FMA per head dimension; values (layers, KVH, capacity, hd), read row by row.
    public let kvCache: KVCache
    /// Precision and sliding window of the cache: the options passed at init, else the config's `kv_cache`.
    public let kvOptions: KVCacheOptions
    private let ropeCos: FloatBuffer, ropeSin: FloatBuffer  // (capacity, hd/2)
    // Batched prefill scratch, `Session.prefillChunk` tokens wide: (P, d), (P, d), (P, qkv_dim),
    // (P, q_dim), (P, 2F); INT8 activations (P, maxCols4) and their scales (P).
    private let bx: FloatBuffer, bh: FloatBuffer, bqkv: FloatBuffer, batt: FloatBuffer, bg: FloatBuffer
    private let bz: FloatBuffer       // (P, 2r) low-rank FFN intermediate
    private let bscores: FloatBuffer  // (P, G, capacity) probabilities of one GQA group's queries
    private let xu: UnsafeMutablePointer<UInt8>
    private let xs: FloatBuffer

    /// Tokens one batched prefill pass carries (longer prompts run in chunks of this many): every
    /// weight matrix is read once per chunk instead of once per token.
    public static let prefillChunk = 16

    /// A session whose cache holds `capacity` positions (default: the model's context) in the
    /// precision and window of `kvCache` (default: the config's `kv_cache`, else FP32 without a window).
    /// With a window, the window is the capacity: pass no `capacity`, or the same value. An explicit
    /// `capacity` with options taken from the config keeps their dtype and drops their window (the
    /// caller manages positions itself, as benchmarks that `rewind` do).
    public init(model: Transformer, capacity: Int? = nil, kvCache options: KVCacheOptions? = nil) {
        let c = model.config
        self.model = model
        var opts = options ?? c.kvCache ?? KVCacheOptions()
        if options == nil, capacity != nil { (opts.window, opts.sinks) = (nil, 0) }
        do { try opts.validate() } catch { preconditionFailure("Session: \(error)") }
        precondition(opts.window == nil || capacity == nil || capacity == opts.window,
                     "Session: capacity \(capacity ?? 0) differs from the KV window \(opts.window ?? 0) (the window is the capacity)")
        kvOptions = opts
        self.capacity = opts.window ?? capacity ?? c.maxPositionEmbeddings
        x = FloatBuffer(count: c.hiddenSize)
        h = FloatBuffer(count: c.hiddenSize)
        qkv = FloatBuffer(count: c.qkvDim)
        att = FloatBuffer(count: c.qDim)
        g = FloatBuffer(count: 2 * c.intermediateSize)
        z = FloatBuffer(count: 2 * c.ffnRank)
        logitsBuffer = FloatBuffer(count: c.vocabSize)
        probeX = FloatBuffer(count: c.hiddenSize)
        probeBuffer = FloatBuffer(count: c.vocabSize)
        scores = FloatBuffer(count: c.numAttentionHeads * self.capacity)
        kvCache = KVCache(config: c, capacity: self.capacity, dtype: opts.dtype)
        (ropeCos, ropeSin) = ropeTables(positions: self.capacity, headDim: c.headDim, theta: c.ropeTheta)
        let P = Self.prefillChunk
        bx = FloatBuffer(count: P * c.hiddenSize)
        bh = FloatBuffer(count: P * c.hiddenSize)
        bqkv = FloatBuffer(count: P * c.qkvDim)
        batt = FloatBuffer(count: P * c.qDim)
        bg = FloatBuffer(count: P * 2 * c.intermediateSize)
        bz = FloatBuffer(count: P * 2 * c.ffnRank)
        bscores = FloatBuffer(count: P * c.groupSize * self.capacity)
        xu = UnsafeMutablePointer<UInt8>.allocate(capacity: P * model.maxCols4)
        xu.initialize(repeating: 128, count: P * model.maxCols4)
        xs = FloatBuffer(count: P)
    }

    deinit { xu.deallocate() }

    /// Forgets every cached position.
    public func reset() { position = 0 }

    /// Brings the model's weights and this session's KV cache back into the caches before the next
    /// call needs them (`Transformer.warmCaches`); changes nothing. Allocation-free.
    @discardableResult
    public func warmCaches() -> UInt64 {
        var s = model.warmCaches() &+ kvCache.touch()
        @inline(__always) func t(_ b: FloatBuffer) { s &+= mgk_touch(b.pointer, 4 * b.count) }
        t(x); t(h); t(qkv); t(att); t(g); t(bx); t(bh); t(bqkv); t(batt); t(bg); t(bscores); t(scores); t(logitsBuffer); t(probeBuffer)
        return s
    }

    func setPosition(_ p: Int) { position = p }

    /// Bytes held by the KV cache.
    public var kvCacheBytes: Int { kvCache.bytes }

    /// Layer count after which `step` / `prefill` also read the head for the last token (the
    /// early-exit head, without exiting): `probeLogits` then holds what an exit at that depth
    /// would have answered. 0 (default) = off. Costs one head product per call.
    public var probeLayer = 0
    private var probeValid = false

    /// The head read after `probeLayer` layers in the last call (nil when the probe is off or the
    /// call exited before that depth), (V).
    public var probeLogits: UnsafeBufferPointer<Float>? {
        probeValid ? UnsafeBufferPointer(probeBuffer.slice(0, model.config.vocabSize)) : nil
    }

    /// Keeps the residual `x` after layer `l` when the probe asks for that depth.
    @inline(__always) private func probe(_ x: UnsafePointer<Float>, afterLayer l: Int) {
        if l + 1 == probeLayer && probeLayer < model.config.numHiddenLayers {
            probeX.pointer.update(from: x, count: model.config.hiddenSize)
            probeValid = true
        }
    }

    /// Reads the head on the kept residual into `probeBuffer` (after the layer loop: `h` is free).
    @inline(__always) private func finishProbe() {
        guard probeValid else { return }
        let c = model.config
        rmsnorm(h.pointer, probeX.pointer, model.finalNorm, c.hiddenSize, eps: c.rmsNormEps)
        model.head.apply(probeBuffer.pointer, h.pointer, accumulate: false, xu: xu)
        count(model.head, tokens: 1)
    }

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
    /// Cost: one memmove of the cache tail and a rotation per moved key; no allocation. Works in
    /// every cache precision (FP16/INT8 keys are rounded again after re-rotation: `KVCache.evict`).
    public func evict(from start: Int, count: Int) {
        precondition(start >= 0 && count >= 0 && start + count <= position, "evict range outside the cache")
        guard count > 0 else { return }
        let half = model.config.headDim / 2
        kvCache.evict(from: start, count: count, position: position,
                      cos: ropeCos.pointer + count * half, sin: ropeSin.pointer + count * half)
        position -= count
    }

    /// With a rolling window, makes room for `n` more positions when the cache cannot take them:
    /// evicts `kvOptions.evictChunk` (a quarter of the window) or more of the oldest non-sink
    /// positions at once, so the memmove cost is paid once per chunk. No-op without a window.
    @inline(__always) private func makeRoom(_ n: Int) {
        guard kvOptions.window != nil, position + n > capacity else { return }
        let sinks = kvOptions.sinks
        evict(from: sinks, count: min(max(kvOptions.evictChunk, position + n - capacity), position - sinks))
    }

    /// Runs `tokens` through the model; returns the logits after the last one. Batched: each chunk
    /// of up to `prefillChunk` tokens reads every weight matrix once (matrix–matrix products), then
    /// attends causally per token against the cache. Equals `step` token by token (to rounding).
    /// `exit` picks how many layers run fully (EarlyExit.swift); `.after(k)` gives the same result as
    /// `step(_:exit:)` token by token. Allocates nothing. Precondition: `position + tokens.count <= capacity`, unless
    /// `kvOptions.window` rolls (then a full cache evicts, as in `step`).
    @discardableResult
    public func prefill(_ tokens: [Int], exit rule: ExitRule = .full) -> UnsafeBufferPointer<Float> {
        tokens.withUnsafeBufferPointer { prefill($0, exit: rule) }
    }

    /// `prefill` over ids in caller-owned memory (a real-time loop's preallocated token buffer).
    @discardableResult
    public func prefill(_ tokens: UnsafeBufferPointer<Int>, exit rule: ExitRule = .full) -> UnsafeBufferPointer<Float> {
        precondition(kvOptions.window != nil || position + tokens.count <= capacity,
                     "KV cache full (\(capacity) positions): reset() or use a window")
        if tokens.count == 1 { return step(tokens[0], exit: rule) }
        var start = 0
        while start < tokens.count {
            makeRoom(1)  // a full rolling window evicts here, at the same points as `step`; else a no-op
            let n = min(Self.prefillChunk, tokens.count - start, capacity - position)
            prefillChunk(tokens, start: start, count: n, logits: start + n == tokens.count, exit: rule)
            start += n
        }
        return logits
    }

    /// Token-by-token prefill: the reference `prefill` is tested against and benchmarked beside.
    @discardableResult
    public func prefillSequential(_ tokens: [Int]) -> UnsafeBufferPointer<Float> {
        for t in tokens { step(t) }
        return logits
    }

    @inline(__always) private func count(_ m: PackedMatrix, tokens: Int, products: Int = 1) {
        counter.matmuls += products
        counter.macs += m.rows * m.cols * tokens
        counter.weightBytes += m.weightBytes
    }

    /// Rotates q and k of one token at `pos` and appends its k (a column) and v (a row) to layer `l`'s cache.
    @inline(__always) private func rotateAndAppend(_ qkv: UnsafeMutablePointer<Float>, layer l: Int, pos: Int) {
        let c = model.config
        let (hd, H, KVH, qDim, kvDim) = (c.headDim, c.numAttentionHeads, c.numKeyValueHeads, c.qDim, c.kvDim)
        let half = hd / 2
        let cosp = ropeCos.pointer + pos * half, sinp = ropeSin.pointer + pos * half
        for head in 0..<(H + KVH) { rope(qkv + head * hd, cos: cosp, sin: sinp, headDim: hd) }
        for kv in 0..<KVH {
            kvCache.store(layer: l, kvHead: kv, position: pos, key: qkv + qDim + kv * hd, value: qkv + qDim + kvDim + kv * hd)
        }
    }

    /// `rotateAndAppend` for `T` tokens at positions `pos..<pos+T` (rows of `qkv (T, qkv_dim)`): every
    /// row rotated, then each KV head's T keys and values stored in one call (`KVCache.storeBlock`:
    /// the same cache bits as T single appends).
    @inline(__always) private func rotateAndAppendBlock(_ qkv: UnsafeMutablePointer<Float>, layer l: Int, pos: Int, tokens T: Int) {
        let c = model.config
        let (hd, H, KVH, qDim, kvDim, qkvDim) = (c.headDim, c.numAttentionHeads, c.numKeyValueHeads, c.qDim, c.kvDim, c.qkvDim)
        let half = hd / 2
        for t in 0..<T {
            let cosp = ropeCos.pointer + (pos + t) * half, sinp = ropeSin.pointer + (pos + t) * half
            let row = qkv + t * qkvDim
            for head in 0..<(H + KVH) { rope(row + head * hd, cos: cosp, sin: sinp, headDim: hd) }
        }
        for kv in 0..<KVH {
            kvCache.storeBlock(layer: l, kvHead: kv, position: pos, count: T,
                               keys: qkv + qDim + kv * hd, values: qkv + qDim + kvDim + kv * hd, ld: qkvDim)
        }
    }

    /// Causal attention of one token's queries over the first `n` cached positions of layer `l`:
    /// `att (q_dim)`; the probabilities stay in `scores` (what `attention(head:)` reports).
    @inline(__always) private func attend(_ att: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>, layer l: Int, n: Int) {
        let c = model.config
        let (hd, H, KVH, G) = (c.headDim, c.numAttentionHeads, c.numKeyValueHeads, c.groupSize)
        let scale = 1 / Float(hd).squareRoot()
        for kv in 0..<KVH {  // the G query heads sharing KV head `kv` read its K and V once
            let head = kv * G
            kvCache.attend(att + head * hd, scores.pointer + head * capacity, pstride: capacity, qkv + head * hd,
                           layer: l, kvHead: kv, groupSize: G, n: n, scale: scale)
        }
        counter.macs += 2 * H * hd * n
    }

    /// Causal attention of `T` tokens at positions `start..<start+T` (rows of `qkv`, (T, qkv_dim))
    /// over layer `l`'s cache, one GQA group at a time so each K block is read once for all of them;
    /// `att` (T, q_dim). The last token's probabilities are copied to `scores` for `attention(head:)`.
    /// `keepScores` false skips that copy (a layer that cannot be the chunk's last one run fully).
    @inline(__always) private func attendBlock(_ att: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>, layer l: Int, tokens T: Int, start: Int,
                                               keepScores: Bool = true) {
        let c = model.config
        let (hd, H, KVH, G) = (c.headDim, c.numAttentionHeads, c.numKeyValueHeads, c.groupSize)
        let scale = 1 / Float(hd).squareRoot()
        let n = start + T
        for kv in 0..<KVH {
            kvCache.attendBlock(att + kv * G * hd, ldo: c.qDim, bscores.pointer, pstride: capacity, qkv + kv * G * hd, ldq: c.qkvDim,
                                layer: l, kvHead: kv, tokens: T, groupSize: G, start: start, scale: scale)
            for g in 0..<G where keepScores {
                (scores.pointer + (kv * G + g) * capacity).update(from: bscores.pointer + ((T - 1) * G + g) * capacity, count: n)
            }
        }
        for t in 0..<T { counter.macs += 2 * H * hd * (start + t + 1) }
    }

    /// One batched pass over `count` tokens starting at `tokens[start]`; logits for the last if asked
    /// (always computed when `.confident` decides the chunk's depth on them).
    private func prefillChunk(_ tokens: UnsafeBufferPointer<Int>, start: Int, count T: Int, logits wantLogits: Bool, exit rule: ExitRule) {
        let c = model.config
        let (d, F, qkvDim, qDim) = (c.hiddenSize, c.intermediateSize, c.qkvDim, c.qDim)
        let pos = position
        let x = bx.pointer, h = bh.pointer, qkv = bqkv.pointer, att = batt.pointer, g = bg.pointer
        let (xu, xs) = (xu, xs.pointer)
        for t in 0..<T {
            let token = tokens[start + t]
            precondition(token >= 0 && token < c.vocabSize, "token \(token) outside the vocabulary 0..<\(c.vocabSize)")
            (x + t * d).update(from: model.embed + token * d, count: d)
        }
        var depth = rule.fixedDepth(layers: c.numHiddenLayers)  // layers run fully
        var haveLogits = false
        probeValid = false
        var confident = false
        if case .confident = rule { confident = true }
        for (l, layer) in model.layers.enumerated() {
            if l >= depth {  // exited: state propagation into this layer's cache only
                propagate(x, layer: l, tokens: T, start: pos)
                continue
            }
            // Attention block: one QKV product for all T tokens, then per-token causal attention.
            // The last layer's outputs feed nothing but the head, which reads the last token only:
            // there the other tokens need only their K and V rows of the QKV product (for the cache;
            // their q rows are left stale, as in `propagate`), and attention, W_o and the FFN run for
            // the last token alone (rows r0..<T; the other rows of x are never read again). Every
            // row computed is computed exactly as before, so this changes no bit.
            let r0 = l == c.numHiddenLayers - 1 ? T - 1 : 0, n = T - r0
            mgk_rmsnorm_rows_f32(h, Int32(d), x, Int32(d), layer.attnNorm, Int32(T), Int32(d), c.rmsNormEps)
            if r0 > 0, let kvRows = layer.qkv.rowSuffix(from: qDim) {
                kvRows.apply(qkv + qDim, ldo: qkvDim, h, ldx: d, tokens: r0, accumulate: false, xu: xu, xs: xs)
                count(kvRows, tokens: r0)
            } else if r0 > 0 {  // q_dim not a multiple of 16: no row view, all rows
                layer.qkv.apply(qkv, ldo: qkvDim, h, ldx: d, tokens: r0, accumulate: false, xu: xu, xs: xs)
                count(layer.qkv, tokens: r0)
            }
            layer.qkv.apply(qkv + r0 * qkvDim, ldo: qkvDim, h + r0 * d, ldx: d, tokens: n, accumulate: false, xu: xu, xs: xs)
            count(layer.qkv, tokens: n)
            rotateAndAppendBlock(qkv, layer: l, pos: pos, tokens: T)
            // Only the last layer run fully reports its probabilities (`attention(head:)`): with a
            // fixed depth that is layer depth − 1; a `.confident` rule may stop at any layer.
            attendBlock(att + r0 * qDim, qkv + r0 * qkvDim, layer: l, tokens: n, start: pos + r0, keepScores: l + 1 == depth || confident)
            layer.o.apply(x + r0 * d, ldo: d, att + r0 * qDim, ldx: qDim, tokens: n, accumulate: true, xu: xu, xs: xs)
            count(layer.o, tokens: n)
            // Feed-forward block.
            mgk_rmsnorm_rows_f32(h + r0 * d, Int32(d), x + r0 * d, Int32(d), layer.ffnNorm, Int32(n), Int32(d), c.rmsNormEps)
            layer.ffn.apply(x + r0 * d, h + r0 * d, tokens: n, batched: true, d: d, F: F, g: g, z: bz.pointer, xu: xu, xs: xs)
            layer.ffn.forEachProduct { m, products in count(m, tokens: n, products: products) }
            if wantLogits { probe(x + (T - 1) * d, afterLayer: l) }
            if case .confident(let maxEntropy) = rule, c.earlyExitLayers.contains(l + 1) {
                headLogits(x + (T - 1) * d)
                if Sampler.entropy(logits) <= maxEntropy { depth = l + 1; haveLogits = true }
            }
        }
        position = pos + T
        lastExitLayer = depth
        if wantLogits && !haveLogits { headLogits(x + (T - 1) * d) }
        if wantLogits { finishProbe() }
    }

    /// One decode step: appends `token` at `position`, returns the next-token logits (V), valid until
    /// the next call. `exit` picks how many layers run fully (EarlyExit.swift); skipped layers still
    /// receive this token's K and V. Allocates nothing. Precondition: `position < capacity`, unless `kvOptions.window`
    /// rolls: then a full cache first evicts `kvOptions.evictChunk` positions after the sinks.
    @discardableResult
    public func step(_ token: Int, exit rule: ExitRule = .full) -> UnsafeBufferPointer<Float> {
        decode(token, exit: rule, outputs: true)
        return logits
    }

    /// Appends `token` to the cache when nothing will read its outputs (a record's end marker):
    /// the cache receives exactly the K and V bits `step(token, exit: rule)` would write, but with
    /// every layer run fully the last one computes only its K and V rows (no attention, W_o or FFN)
    /// and the head is not read — about a quarter of the layer work and the head product saved.
    /// `logits`, `attention(head:)` and `probeLogits` are left as the previous call made them (the
    /// probe reads nil). A `.confident` rule needs the head to pick its depth: then this is `step`.
    public func append(_ token: Int, exit rule: ExitRule = .full) {
        if case .confident = rule { step(token, exit: rule); return }
        decode(token, exit: rule, outputs: false)
    }

    /// `step` (`outputs`) or `append` (not `outputs`: the last layer run fully stops after its K/V
    /// when it is the model's last layer, and the head and the probe are not read).
    @inline(__always) private func decode(_ token: Int, exit rule: ExitRule, outputs: Bool) {
        let c = model.config
        let (d, F) = (c.hiddenSize, c.intermediateSize)
        makeRoom(1)  // a rolling window evicts here; otherwise a no-op
        let pos = position
        precondition(pos < capacity, "KV cache full (\(capacity) positions): reset() or use a window")
        precondition(token >= 0 && token < c.vocabSize, "token \(token) outside the vocabulary 0..<\(c.vocabSize)")
        let x = x.pointer, h = h.pointer, qkv = qkv.pointer, att = att.pointer, g = g.pointer, z = z.pointer, xu = xu
        var depth = rule.fixedDepth(layers: c.numHiddenLayers)  // layers run fully
        var haveLogits = false
        probeValid = false

        x.update(from: model.embed + token * d, count: d)
        for (l, layer) in model.layers.enumerated() {
            if l >= depth || (!outputs && l == c.numHiddenLayers - 1) {
                // exited, or the last layer of an `append`: this layer's cache only (the K/V rows
                // `propagate` computes are the rows the full QKV product gives, bit for bit)
                propagate(x, layer: l, tokens: 1, start: pos)
                continue
            }
            // Attention block.
            rmsnorm(h, x, layer.attnNorm, d, eps: c.rmsNormEps)
            layer.qkv.apply(qkv, h, accumulate: false, xu: xu)
            count(layer.qkv, tokens: 1)
            rotateAndAppend(qkv, layer: l, pos: pos)
            attend(att, qkv, layer: l, n: pos + 1)
            layer.o.apply(x, att, accumulate: true, xu: xu)
            count(layer.o, tokens: 1)
            // Feed-forward block: gate and up in one pass over h.
            rmsnorm(h, x, layer.ffnNorm, d, eps: c.rmsNormEps)
            layer.ffn.apply(x, h, tokens: 1, batched: false, d: d, F: F, g: g, z: z, xu: xu, xs: xs.pointer)
            layer.ffn.forEachProduct { m, products in count(m, tokens: 1, products: products) }
            if outputs { probe(x, afterLayer: l) }
            if case .confident(let maxEntropy) = rule, c.earlyExitLayers.contains(l + 1) {
                headLogits(x)
                if Sampler.entropy(logits) <= maxEntropy { depth = l + 1; haveLogits = true }
            }
        }
        if outputs {
            if !haveLogits { headLogits(x) }
            finishProbe()
        }
        position = pos + 1
        lastExitLayer = depth
    }

    /// `logits (V) = head · rmsnorm(x (d), final_norm)`, counted; `h` is overwritten.
    @inline(__always) private func headLogits(_ x: UnsafePointer<Float>) {
        let c = model.config
        rmsnorm(h.pointer, x, model.finalNorm, c.hiddenSize, eps: c.rmsNormEps)
        model.head.apply(logitsBuffer.pointer, h.pointer, accumulate: false, xu: xu)
        count(model.head, tokens: 1)
    }

    /// State propagation for an exited layer `l`: the `T` rows of `x (T, d)` (tokens at positions
    /// `start..<start+T`) go through l's attention RMSNorm and the K and V rows of its QKV projection
    /// (all rows when q_dim is not a multiple of 16), and the rotated K and V are appended to l's
    /// cache. No queries, attention, W_o or FFN; `x` is unchanged.
    @inline(__always) private func propagate(_ x: UnsafePointer<Float>, layer l: Int, tokens T: Int, start: Int) {
        let c = model.config
        let (d, qkvDim) = (c.hiddenSize, c.qkvDim)
        let layer = model.layers[l]
        let kv = layer.qkv.rowSuffix(from: c.qDim)   // (2·kv_dim, d) view of the K and V rows
        let m = kv ?? layer.qkv, skip = kv == nil ? 0 : c.qDim
        if T == 1 {
            rmsnorm(h.pointer, x, layer.attnNorm, d, eps: c.rmsNormEps)
            m.apply(qkv.pointer + skip, h.pointer, accumulate: false, xu: xu)
            rotateAndAppend(qkv.pointer, layer: l, pos: start)  // also rotates stale q rows: harmless
        } else {
            mgk_rmsnorm_rows_f32(bh.pointer, Int32(d), x, Int32(d), layer.attnNorm, Int32(T), Int32(d), c.rmsNormEps)
            m.apply(bqkv.pointer + skip, ldo: qkvDim, bh.pointer, ldx: d, tokens: T, accumulate: false, xu: xu, xs: xs.pointer)
            rotateAndAppendBlock(bqkv.pointer, layer: l, pos: start, tokens: T)
        }
        count(m, tokens: T)
    }
}

// The attention of one head in Swift: `attentionNaive` composes these; the C kernel
// `mgk_attention_f32` (fp32.c, four FMA chains per pass instead of one) is tested against it.

/// Naive twin of `mgk_attention_f32`: scores, softmax, weighted sum for one query head.
func attentionNaive(_ out: UnsafeMutablePointer<Float>, _ p: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>,
                    _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>, n: Int, hd: Int, stride: Int, scale: Float) {
    scoresTransposed(p, q, k, n: n, hd: hd, stride: stride, scale: scale)
    softmaxNaive(p, n)
    weightedSum(out, p, v, n: n, hd: hd)
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
