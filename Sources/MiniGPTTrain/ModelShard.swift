import Foundation
import MiniGPT

// Shape legend: B sequences, T positions, N = B·T rows, C width, V vocabulary, NH query heads,
// KVH key/value heads, hd = C/NH, QKV = (NH + 2·KVH)·hd, F FFN width (see Ops.swift), r FFN rank
// (low-rank FFN, W ≈ A·B; 0 = dense).

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
        var z = 0        // (N, 2r) low-rank: [gateB·ln2 | upB·ln2]
        var gu = 0       // (N, 2F) gate | up pre-activations
        var hsw = 0      // (N, F) silu(gate) ⊙ up
        var zd = 0       // (N, r) low-rank: downB·hsw
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
    var dz = 0          // (N, 2r) low-rank
    var dzd = 0         // (N, r) low-rank
    var attScratch = 0  // attentionScratchCount(T, hd) floats

    init(config c: ModelConfig, B: Int, T: Int) {
        self.B = B; self.T = T
        let N = B * T, C = c.hiddenSize, F = c.intermediateSize, QKV = c.qkvDim, V = c.vocabSize, r = c.ffnRank
        var at = 0
        func add(_ n: Int) -> Int { defer { at += (n + 15) / 16 * 16 }; return at }  // 64-byte aligned slices
        x0 = add(N * C)
        for _ in 0..<c.numHiddenLayers {
            var l = Layer()
            l.ln1 = add(N * C); l.rstd1 = add(N); l.qkv = add(N * QKV)
            l.att = add(B * c.numAttentionHeads * T * T); l.attOut = add(N * C); l.xmid = add(N * C)
            l.ln2 = add(N * C); l.rstd2 = add(N); l.z = add(N * 2 * r); l.gu = add(N * 2 * F); l.hsw = add(N * F)
            l.zd = add(N * r); l.xout = add(N * C)
            layers.append(l)
        }
        lnf = add(N * C); rstdf = add(N); logits = add(N * V); losses = add(N); tmp = add(N * C)
        dres = add(N * C); dln = add(N * C); dqkv = add(N * QKV); dattOut = add(N * C)
        dgu = add(N * 2 * F); dhsw = add(N * F); dz = add(N * 2 * r); dzd = add(N * r); attScratch = add(attentionScratchCount(T: T, hd: c.headDim))
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
///
/// Early-exit auxiliary losses: for each l in `exitLayers` (exit after l blocks), logits_l =
/// finalNorm(x_l)·wteᵀ through the SHARED final norm and tied head, cross-entropy on the same
/// targets; the objective becomes Σ loss_final + w·Σ_l Σ loss_l (w = `exitLossWeight`). No extra
/// activation memory: each exit borrows the final head's lnf / logits / losses slices in forward
/// (before the final head runs) and is recomputed in backward when the residual gradient reaches
/// layer l.
final class ModelShard: @unchecked Sendable {
    let layout: ParameterLayout
    let acts: Activations
    let grads: ParameterBuffer
    let ws: GemmWorkspace
    let rope: RopeTable
    let ids: UnsafeMutablePointer<Int32>
    let targets: UnsafeMutablePointer<Int32>
    /// Exit layers (sorted, each in 1..<layers), from the config's `early_exit_layers`.
    let exitLayers: [Int]
    /// w of the auxiliary losses (0 = none: the forward/backward of a plain model, bit for bit).
    var exitLossWeight: Float = 0
    /// Compute the exit losses in `forward` even when w = 0 (evaluation).
    var measureExits = false
    /// Σ of the per-position losses at each exit layer (order of `exitLayers`) of the last forward
    /// that computed them; zeros otherwise.
    var exitLossSums: [Double]

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
        exitLayers = Array(Set(c.earlyExitLayers.filter { $0 >= 1 && $0 < c.numHiddenLayers })).sorted()
        exitLossSums = Array(repeating: 0, count: exitLayers.count)
    }

    deinit { ids.deallocate(); targets.deallocate() }

    var B: Int { acts.B }
    var T: Int { acts.T }

    /// Whether `forward` computes the exit losses.
    var computesExits: Bool { !exitLayers.isEmpty && (exitLossWeight > 0 || measureExits) }

    /// The residual stream after `l` blocks (l = 0: the embeddings).
    func residual(after l: Int) -> FloatPtr { l == 0 ? acts[acts.x0] : acts[acts.layers[l - 1].xout] }

    /// The head on `x` (N, C): lnf, rstdf ← finalNorm(x); logits ← probs of lnf·wteᵀ; losses (N).
    /// Returns Σ losses. Used by the final head and by every exit (same slices, same weights).
    func headForward(_ x: ConstFloatPtr, params p: ConstFloatPtr, smoothing: Float) -> Double {
        let c = layout.config, a = acts
        let N = a.B * a.T, C = c.hiddenSize, V = c.vocabSize
        rmsnormForward(a[a.lnf], a[a.rstdf], x, p + layout.finalNorm, N: N, C: C, eps: c.rmsNormEps)
        matmulForward(a[a.logits], a[a.lnf], p + layout.embed, N: N, IC: C, OC: V, ws: ws)
        crossEntropyForward(a[a.losses], a[a.logits], targets, N: N, V: V, smoothing: smoothing)
        var sum: Double = 0
        for n in 0..<N { sum += Double(a[a.losses][n]) }
        return sum
    }

    /// Backward of `headForward` on `x` with ∂L/∂loss_n = dloss: adds into dres (N, C) = ∂L/∂x and
    /// into the gradients of the final norm and the embedding. Needs the head's probs in logits.
    func headBackward(_ x: ConstFloatPtr, params p: ConstFloatPtr, smoothing: Float, dloss: Float) {
        let c = layout.config, a = acts, g = grads.pointer
        let N = a.B * a.T, C = c.hiddenSize, V = c.vocabSize
        crossEntropyBackward(a[a.logits], targets, N: N, V: V, smoothing: smoothing, dloss: dloss)
        // logits = lnf · wteᵀ (tied head): dwte gets a share here.
        a[a.dln].update(repeating: 0, count: N * C)
        matmulBackward(a[a.dln], g + layout.embed, a[a.logits], a[a.lnf], p + layout.embed, N: N, IC: C, OC: V, ws: ws)
        rmsnormBackward(a[a.dres], g + layout.finalNorm, a[a.dln], x, p + layout.finalNorm, a[a.rstdf], N: N, C: C)
    }

    /// Forward pass over `ids` (B, T) with `targets` (B, T) (−1 = no loss there); returns the sum of
    /// the final head's per-position losses (exit losses, when computed, go to `exitLossSums`).
    /// Leaves the final head's probs (N, V) in the logits slice.
    @discardableResult
    func forward(params p: ConstFloatPtr, smoothing: Float) -> Double {
        let c = layout.config, a = acts
        let B = a.B, T = a.T, N = B * T, C = c.hiddenSize, F = c.intermediateSize, r = c.ffnRank
        let QKV = c.qkvDim, NH = c.numAttentionHeads, KVH = c.numKeyValueHeads, hd = c.headDim
        let eps = c.rmsNormEps
        let exits = computesExits
        for e in exitLossSums.indices { exitLossSums[e] = 0 }
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
            if r == 0 {
                matmulForward(a[L.gu], a[L.ln2], p + s.gateUp, N: N, IC: C, OC: 2 * F, ws: ws)
                swigluForward(a[L.hsw], a[L.gu], N: N, F: F)
                matmulForward(a[a.tmp], a[L.hsw], p + s.down, N: N, IC: F, OC: C, ws: ws)
            } else {
                // z (N, 2r) = ln2 · [gateB; upB]ᵀ; gate (N, F) = z[:, :r]·gateAᵀ; up = z[:, r:]·upAᵀ.
                matmulForward(a[L.z], a[L.ln2], p + s.gateUpB, N: N, IC: C, OC: 2 * r, ws: ws)
                matmulForward(a[L.gu], a[L.z], p + s.gateA, N: N, IC: r, OC: F, ws: ws, ldOut: 2 * F, ldIn: 2 * r)
                matmulForward(a[L.gu] + F, a[L.z] + r, p + s.upA, N: N, IC: r, OC: F, ws: ws, ldOut: 2 * F, ldIn: 2 * r)
                swigluForward(a[L.hsw], a[L.gu], N: N, F: F)
                // zd (N, r) = hsw · downBᵀ; out (N, C) = zd · downAᵀ.
                matmulForward(a[L.zd], a[L.hsw], p + s.downB, N: N, IC: F, OC: r, ws: ws)
                matmulForward(a[a.tmp], a[L.zd], p + s.downA, N: N, IC: r, OC: C, ws: ws)
            }
            residualForward(a[L.xout], a[L.xmid], a[a.tmp], count: N * C)
            x = a[L.xout]
            if exits, let e = exitLayers.firstIndex(of: l + 1) {
                exitLossSums[e] = headForward(x, params: p, smoothing: smoothing)
            }
        }
        return headForward(x, params: p, smoothing: smoothing)
    }

    /// Backward pass after `forward`: zeroes this shard's gradients, then fills them with
    /// ∂(dloss · (Σ losses + w · Σ_exits Σ exit losses))/∂params (w = `exitLossWeight`).
    func backward(params p: ConstFloatPtr, smoothing: Float, dloss: Float) {
        let c = layout.config, a = acts, g = grads.pointer
        let B = a.B, T = a.T, N = B * T, C = c.hiddenSize, F = c.intermediateSize, r = c.ffnRank
        let QKV = c.qkvDim, NH = c.numAttentionHeads, KVH = c.numKeyValueHeads, hd = c.headDim
        let exitWeight = exitLossWeight
        grads.zero()
        a[a.dres].update(repeating: 0, count: N * C)
        headBackward(residual(after: layout.layers.count), params: p, smoothing: smoothing, dloss: dloss)
        for l in stride(from: layout.layers.count - 1, through: 0, by: -1) {
            let s = layout.layers[l], L = a.layers[l]
            let x = residual(after: l)
            // dres is ∂L/∂xout_l. An exit after l + 1 blocks reads xout_l: recompute its head (the
            // final head's slices are free now) and add its gradient.
            if exitWeight > 0, exitLayers.contains(l + 1) {
                let xl = residual(after: l + 1)
                _ = headForward(xl, params: p, smoothing: smoothing)
                headBackward(xl, params: p, smoothing: smoothing, dloss: dloss * exitWeight)
            }
            // xout = xmid + down(hsw): dres is ∂L/∂xout, and flows unchanged to xmid and to down's output.
            a[a.dhsw].update(repeating: 0, count: N * F)
            if r == 0 {
                matmulBackward(a[a.dhsw], g + s.down, a[a.dres], a[L.hsw], p + s.down, N: N, IC: F, OC: C, ws: ws)
            } else {
                a[a.dzd].update(repeating: 0, count: N * r)
                matmulBackward(a[a.dzd], g + s.downA, a[a.dres], a[L.zd], p + s.downA, N: N, IC: r, OC: C, ws: ws)
                matmulBackward(a[a.dhsw], g + s.downB, a[a.dzd], a[L.hsw], p + s.downB, N: N, IC: F, OC: r, ws: ws)
            }
            a[a.dgu].update(repeating: 0, count: N * 2 * F)
            swigluBackward(a[a.dgu], a[a.dhsw], a[L.gu], N: N, F: F)
            a[a.dln].update(repeating: 0, count: N * C)
            if r == 0 {
                matmulBackward(a[a.dln], g + s.gateUp, a[a.dgu], a[L.ln2], p + s.gateUp, N: N, IC: C, OC: 2 * F, ws: ws)
            } else {
                a[a.dz].update(repeating: 0, count: N * 2 * r)
                matmulBackward(a[a.dz], g + s.gateA, a[a.dgu], a[L.z], p + s.gateA, N: N, IC: r, OC: F, ws: ws,
                               ldOut: 2 * F, ldIn: 2 * r)
                matmulBackward(a[a.dz] + r, g + s.upA, a[a.dgu] + F, a[L.z] + r, p + s.upA, N: N, IC: r, OC: F, ws: ws,
                               ldOut: 2 * F, ldIn: 2 * r)
                matmulBackward(a[a.dln], g + s.gateUpB, a[a.dz], a[L.ln2], p + s.gateUpB, N: N, IC: C, OC: 2 * r, ws: ws)
            }
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

extension TrainableModel {
    /// Weight w of the early-exit auxiliary losses: the trained objective is the final loss +
    /// w · Σ over `config.earlyExitLayers` of the loss of the shared head (final norm + tied
    /// embedding) on the residual stream after that many blocks. 0 (default) = the final loss alone,
    /// bit-identical to a model without exits. The returned / printed "loss" stays the final head's.
    public var earlyExitLossWeight: Float {
        get { shards[0].exitLossWeight }
        set { for s in shards { s.exitLossWeight = newValue } }
    }

    /// The exit layers whose losses `exitLosses` reports (the config's `early_exit_layers`, sorted).
    public var exitLayers: [Int] { shards[0].exitLayers }

    /// Mean loss per exit layer (order of `exitLayers`, same smoothing as the step) over the valid
    /// targets of the last `forwardBackward` / `loss` / `score`, when that pass computed them
    /// (w > 0 or `measureExits`); nil otherwise.
    public var exitLosses: [Float]? {
        guard shards[0].computesExits else { return nil }
        var valid = 0
        var sums = Array(repeating: 0.0, count: exitLayers.count)
        for s in shards {
            for n in 0..<(s.B * s.T) where s.targets[n] >= 0 { valid += 1 }
            for e in sums.indices { sums[e] += s.exitLossSums[e] }
        }
        return sums.map { Float($0 / Double(max(valid, 1))) }
    }

    /// Whether forward passes compute the exit losses even when `earlyExitLossWeight` is 0
    /// (evaluation; does not change any gradient).
    var measureExits: Bool {
        get { shards[0].measureExits }
        set { for s in shards { s.measureExits = newValue } }
    }
}
