import Foundation
import MiniGPT

// Shape legend: B sequences, T positions, N = B·T rows, C width, V vocabulary, NH query heads,
// KVH key/value heads, hd = C/NH, QKV = (NH + 2·KVH)·hd, F FFN width (see Ops.swift).

/// The activations of one forward pass over B sequences of T tokens, in ONE contiguous buffer with
/// named slices (llm.c's `ActivationTensors`), plus the gradient scratch its backward needs.
/// Shapes per Ops.swift's legend with N = B·T.
final class Activations {
    /// Offsets of one block's saved activations.
    struct Layer {
        var ln1 = 0      // (N, C) rmsnorm(x) before attention
        var rstd1 = 0    // (N)
        var qkv = 0      // (N, QKV) fused projection, q and k rotated
        var att = 0      // (B, NH, T, T) attention probabilities
        var attOut = 0   // (N, C) attention output before o_proj
        var xmid = 0     // (N, C) residual after attention
        var ln2 = 0      // (N, C) rmsnorm(xmid) before the FFN
        var rstd2 = 0    // (N)
        var gu = 0       // (N, 2F) gate | up pre-activations
        var hsw = 0      // (N, F) silu(gate) ⊙ up
        var xout = 0     // (N, C) residual after the FFN (= next layer's input)
    }

    let B: Int, T: Int
    let buffer: FloatPtr
    let count: Int
    var x0 = 0          // (N, C) token embeddings
    var layers: [Layer] = []
    var lnf = 0         // (N, C) final rmsnorm
    var rstdf = 0       // (N)
    var logits = 0      // (N, V) logits → probs (forward) → dlogits (backward), in place
    var losses = 0      // (N) per-position loss
    var tmp = 0         // (N, C) o_proj / down_proj output before the residual add
    // Gradient scratch (backward only).
    var dres = 0        // (N, C) ∂L/∂residual stream
    var dln = 0         // (N, C) ∂L/∂(an rmsnorm output)
    var dqkv = 0        // (N, QKV)
    var dattOut = 0     // (N, C)
    var dgu = 0         // (N, 2F)
    var dhsw = 0        // (N, F)
    var attScratch = 0  // attentionScratchCount(T, hd) floats

    init(config c: ModelConfig, B: Int, T: Int) {
        self.B = B; self.T = T
        let N = B * T, C = c.hiddenSize, F = c.intermediateSize, QKV = c.qkvDim, V = c.vocabSize
        var at = 0
        func add(_ n: Int) -> Int { defer { at += (n + 15) / 16 * 16 }; return at }  // 64-byte aligned slices
        x0 = add(N * C)
        for _ in 0..<c.numHiddenLayers {
            var l = Layer()
            l.ln1 = add(N * C); l.rstd1 = add(N); l.qkv = add(N * QKV)
            l.att = add(B * c.numAttentionHeads * T * T); l.attOut = add(N * C); l.xmid = add(N * C)
            l.ln2 = add(N * C); l.rstd2 = add(N); l.gu = add(N * 2 * F); l.hsw = add(N * F); l.xout = add(N * C)
            layers.append(l)
        }
        lnf = add(N * C); rstdf = add(N); logits = add(N * V); losses = add(N); tmp = add(N * C)
        dres = add(N * C); dln = add(N * C); dqkv = add(N * QKV); dattOut = add(N * C)
        dgu = add(N * 2 * F); dhsw = add(N * F); attScratch = add(attentionScratchCount(T: T, hd: c.headDim))
        count = at
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(at, 1) * 4, alignment: 64)
        buffer = raw.bindMemory(to: Float.self, capacity: max(at, 1))
        buffer.initialize(repeating: 0, count: max(at, 1))
    }

    deinit { buffer.deallocate() }

    @inline(__always) subscript(_ offset: Int) -> FloatPtr { buffer + offset }
}

/// One worker's share of a batch: B sequences of T tokens, their activations, its own gradient
/// buffer and GEMM workspace. Training splits a batch over two shards on two threads; each writes
/// only its own memory, and the trainer sums the gradient buffers in a fixed order.
final class ModelShard: @unchecked Sendable {
    let layout: ParameterLayout
    let acts: Activations
    let grads: ParameterBuffer
    let ws: GemmWorkspace
    let rope: RopeTable
    let ids: UnsafeMutablePointer<Int32>
    let targets: UnsafeMutablePointer<Int32>

    init(layout: ParameterLayout, B: Int, T: Int) {
        self.layout = layout
        let c = layout.config
        acts = Activations(config: c, B: B, T: T)
        grads = ParameterBuffer(count: layout.count)
        let N = B * T
        ws = GemmWorkspace(count: max(N * max(c.qkvDim, 2 * c.intermediateSize, c.vocabSize, c.hiddenSize),
                                      c.vocabSize * c.hiddenSize, 2 * c.intermediateSize * c.hiddenSize,
                                      c.qkvDim * c.hiddenSize))
        rope = RopeTable(T: T, hd: c.headDim, theta: c.ropeTheta)
        ids = .allocate(capacity: max(N, 1)); ids.initialize(repeating: 0, count: max(N, 1))
        targets = .allocate(capacity: max(N, 1)); targets.initialize(repeating: -1, count: max(N, 1))
    }

    deinit { ids.deallocate(); targets.deallocate() }

    var B: Int { acts.B }
    var T: Int { acts.T }

    /// Forward pass over `ids` (B, T) with `targets` (B, T) (−1 = no loss there); returns the sum of
    /// the per-position losses. Leaves probs (N, V) in the logits slice.
    @discardableResult
    func forward(params p: ConstFloatPtr, smoothing: Float) -> Double {
        let c = layout.config, a = acts
        let B = a.B, T = a.T, N = B * T, C = c.hiddenSize, F = c.intermediateSize, V = c.vocabSize
        let QKV = c.qkvDim, NH = c.numAttentionHeads, KVH = c.numKeyValueHeads, hd = c.headDim
        let eps = c.rmsNormEps
        embeddingForward(a[a.x0], ids, p + layout.embed, N: N, C: C)
        var x = a[a.x0]
        for (l, s) in layout.layers.enumerated() {
            let L = a.layers[l]
            rmsnormForward(a[L.ln1], a[L.rstd1], x, p + s.attnNorm, N: N, C: C, eps: eps)
            matmulForward(a[L.qkv], a[L.ln1], p + s.qkv, N: N, IC: C, OC: QKV, ws: ws)
            ropeForward(a[L.qkv], rope, B: B, T: T, heads: NH + KVH, hd: hd, QKV: QKV)
            attentionForward(a[L.attOut], a[L.att], a[L.qkv], a[a.attScratch], B: B, T: T, NH: NH, KVH: KVH, hd: hd)
            matmulForward(a[a.tmp], a[L.attOut], p + s.o, N: N, IC: c.qDim, OC: C, ws: ws)
            residualForward(a[L.xmid], x, a[a.tmp], count: N * C)
            rmsnormForward(a[L.ln2], a[L.rstd2], a[L.xmid], p + s.ffnNorm, N: N, C: C, eps: eps)
            matmulForward(a[L.gu], a[L.ln2], p + s.gateUp, N: N, IC: C, OC: 2 * F, ws: ws)
            swigluForward(a[L.hsw], a[L.gu], N: N, F: F)
            matmulForward(a[a.tmp], a[L.hsw], p + s.down, N: N, IC: F, OC: C, ws: ws)
            residualForward(a[L.xout], a[L.xmid], a[a.tmp], count: N * C)
            x = a[L.xout]
        }
        rmsnormForward(a[a.lnf], a[a.rstdf], x, p + layout.finalNorm, N: N, C: C, eps: eps)
        matmulForward(a[a.logits], a[a.lnf], p + layout.embed, N: N, IC: C, OC: V, ws: ws)
        crossEntropyForward(a[a.losses], a[a.logits], targets, N: N, V: V, smoothing: smoothing)
        var sum: Double = 0
        for n in 0..<N { sum += Double(a[a.losses][n]) }
        return sum
    }

    /// Backward pass after `forward`: zeroes this shard's gradients, then fills them with
    /// ∂(dloss · Σ losses)/∂params.
    func backward(params p: ConstFloatPtr, smoothing: Float, dloss: Float) {
        let c = layout.config, a = acts, g = grads.pointer
        let B = a.B, T = a.T, N = B * T, C = c.hiddenSize, F = c.intermediateSize, V = c.vocabSize
        let QKV = c.qkvDim, NH = c.numAttentionHeads, KVH = c.numKeyValueHeads, hd = c.headDim
        grads.zero()
        crossEntropyBackward(a[a.logits], targets, N: N, V: V, smoothing: smoothing, dloss: dloss)
        let xLast = layout.layers.isEmpty ? a[a.x0] : a[a.layers[layout.layers.count - 1].xout]
        // logits = lnf · wteᵀ (tied head): dwte gets its first share here.
        a[a.dln].update(repeating: 0, count: N * C)
        matmulBackward(a[a.dln], g + layout.embed, a[a.logits], a[a.lnf], p + layout.embed, N: N, IC: C, OC: V, ws: ws)
        a[a.dres].update(repeating: 0, count: N * C)
        rmsnormBackward(a[a.dres], g + layout.finalNorm, a[a.dln], xLast, p + layout.finalNorm, a[a.rstdf], N: N, C: C)
        for l in stride(from: layout.layers.count - 1, through: 0, by: -1) {
            let s = layout.layers[l], L = a.layers[l]
            let x = l == 0 ? a[a.x0] : a[a.layers[l - 1].xout]
            // xout = xmid + down(hsw): dres is ∂L/∂xout, and flows unchanged to xmid and to down's output.
            a[a.dhsw].update(repeating: 0, count: N * F)
            matmulBackward(a[a.dhsw], g + s.down, a[a.dres], a[L.hsw], p + s.down, N: N, IC: F, OC: C, ws: ws)
            a[a.dgu].update(repeating: 0, count: N * 2 * F)
            swigluBackward(a[a.dgu], a[a.dhsw], a[L.gu], N: N, F: F)
            a[a.dln].update(repeating: 0, count: N * C)
            matmulBackward(a[a.dln], g + s.gateUp, a[a.dgu], a[L.ln2], p + s.gateUp, N: N, IC: C, OC: 2 * F, ws: ws)
            rmsnormBackward(a[a.dres], g + s.ffnNorm, a[a.dln], a[L.xmid], p + s.ffnNorm, a[L.rstd2], N: N, C: C)
            // xmid = x + o(attOut): dres is now ∂L/∂xmid.
            a[a.dattOut].update(repeating: 0, count: N * C)
            matmulBackward(a[a.dattOut], g + s.o, a[a.dres], a[L.attOut], p + s.o, N: N, IC: c.qDim, OC: C, ws: ws)
            a[a.dqkv].update(repeating: 0, count: N * QKV)
            attentionBackward(a[a.dqkv], a[a.dattOut], a[L.att], a[L.qkv], a[a.attScratch], B: B, T: T, NH: NH, KVH: KVH, hd: hd)
            ropeBackward(a[a.dqkv], rope, B: B, T: T, heads: NH + KVH, hd: hd, QKV: QKV)
            a[a.dln].update(repeating: 0, count: N * C)
            matmulBackward(a[a.dln], g + s.qkv, a[a.dqkv], a[L.ln1], p + s.qkv, N: N, IC: C, OC: QKV, ws: ws)
            rmsnormBackward(a[a.dres], g + s.attnNorm, a[a.dln], x, p + s.attnNorm, a[L.rstd1], N: N, C: C)
        }
        embeddingBackward(g + layout.embed, a[a.dres], ids, N: N, C: C)
    }
}
