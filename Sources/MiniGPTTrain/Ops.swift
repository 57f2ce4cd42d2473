import Foundation

// Forward/backward pairs of every op of the MiniGPT decoder except the matmul (Matmul.swift), in
// the order the forward pass meets them. Style of llm.c's train_gpt2.c: each `…Forward` saves what
// its `…Backward` needs; backward functions ACCUMULATE (+=) into the gradients they write, zeroing
// is the caller's explicit job. Kernel arguments: outputs first, then inputs, then dimensions.
//
// Shape legend (one letter per dimension):
//   B  sequences in a batch            T  positions per sequence (N = B·T rows)
//   C  model width (hidden_size)       V  vocabulary size
//   NH query heads                     KVH key/value heads (GQA: query head h reads kv head h/(NH/KVH))
//   hd head width C/NH                 QKV = (NH + 2·KVH)·hd: a fused qkv row is [q | k | v]
//   F  SwiGLU hidden width
// All tensors are row-major Float32; a "(N, C)" tensor has N rows of C contiguous floats.

/// A pointer to mutable Float32 storage.
public typealias FloatPtr = UnsafeMutablePointer<Float>
/// A pointer to read-only Float32 storage.
public typealias ConstFloatPtr = UnsafePointer<Float>

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always) func store16(_ p: UnsafeMutablePointer<Float>, _ v: SIMD16<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// Σ a[i]·b[i] over `n` floats (16 lanes at a time, then a scalar tail; fixed order).
@inline(__always) func dotProduct(_ a: ConstFloatPtr, _ b: ConstFloatPtr, _ n: Int) -> Float {
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    while i + 16 <= n { acc.addProduct(load16(a + i), load16(b + i)); i += 16 }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// Σ a[i]·b[i]·c[i] over `n` floats (16 lanes at a time, then a scalar tail; fixed order).
@inline(__always) func dotProduct3(_ a: ConstFloatPtr, _ b: ConstFloatPtr, _ c: ConstFloatPtr, _ n: Int) -> Float {
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    while i + 16 <= n { acc.addProduct(load16(a + i) * load16(b + i), load16(c + i)); i += 16 }
    var s = acc.sum()
    while i < n { s += a[i] * b[i] * c[i]; i += 1 }
    return s
}

/// y[i] += alpha·x[i] over `n` floats.
@inline(__always) func axpy(_ y: FloatPtr, _ alpha: Float, _ x: ConstFloatPtr, _ n: Int) {
    var i = 0
    let a = SIMD16<Float>(repeating: alpha)
    while i + 16 <= n { store16(y + i, load16(y + i).addingProduct(a, load16(x + i))); i += 16 }
    while i < n { y[i] += alpha * x[i]; i += 1 }
}

// MARK: - Embedding (tied with the output head)

/// out (N, C) = wte (V, C)[ids (N)].
func embeddingForward(_ out: FloatPtr, _ ids: UnsafePointer<Int32>, _ wte: ConstFloatPtr, N: Int, C: Int) {
    for n in 0..<N {
        (out + n * C).update(from: wte + Int(ids[n]) * C, count: C)
    }
}

/// dwte (V, C) += scatter of dout (N, C) by ids (N).
/// Forward copied row ids[n] of wte to row n of out, so row n of dout flows back to row ids[n].
/// The output head (logits = h·wteᵀ) adds its own part to the same dwte in `matmulBackward`.
func embeddingBackward(_ dwte: FloatPtr, _ dout: ConstFloatPtr, _ ids: UnsafePointer<Int32>, N: Int, C: Int) {
    for n in 0..<N {
        axpy(dwte + Int(ids[n]) * C, 1, dout + n * C, C)
    }
}

// MARK: - RMSNorm

/// out (N, C) = x / sqrt(mean(x²) + eps) · w (C); saves rstd (N) = 1/sqrt(mean(x²) + eps).
func rmsnormForward(_ out: FloatPtr, _ rstd: FloatPtr, _ x: ConstFloatPtr, _ w: ConstFloatPtr,
                    N: Int, C: Int, eps: Float) {
    for n in 0..<N {
        let xr = x + n * C, o = out + n * C
        let ms = dotProduct(xr, xr, C) / Float(C)
        let r = 1 / (ms + eps).squareRoot()
        rstd[n] = r
        for i in 0..<C { o[i] = xr[i] * r * w[i] }
    }
}

/// dx (N, C) += …, dw (C) += … given dout (N, C), x (N, C), w (C), rstd (N).
/// Forward: y_i = w_i·x_i·r with r = (Σ_j x_j²/C + eps)^(-1/2), so ∂r/∂x_j = -r³·x_j/C.
///   ∂L/∂w_i = Σ_n dout_i·x_i·r
///   ∂L/∂x_j = dout_j·w_j·r + Σ_i dout_i·w_i·x_i·(∂r/∂x_j)
///           = r·(dout_j·w_j) - (r³/C)·x_j·Σ_i (dout_i·w_i·x_i)
func rmsnormBackward(_ dx: FloatPtr, _ dw: FloatPtr, _ dout: ConstFloatPtr, _ x: ConstFloatPtr,
                     _ w: ConstFloatPtr, _ rstd: ConstFloatPtr, N: Int, C: Int) {
    for n in 0..<N {
        let xr = x + n * C, g = dout + n * C, dxr = dx + n * C
        let r = rstd[n]
        let k = r * r * r / Float(C) * dotProduct3(g, w, xr, C)
        for i in 0..<C {
            dxr[i] += r * g[i] * w[i] - k * xr[i]
            dw[i] += g[i] * xr[i] * r
        }
    }
}

// MARK: - RoPE (Hugging Face rotate_half convention)

/// Cos/sin tables (T, hd/2): angle(t, i) = t · theta^(-2i/hd), computed in Double then rounded.
public final class RopeTable: @unchecked Sendable {
    /// (T, hd/2) cosines.
    public let cos: UnsafeMutablePointer<Float>
    /// (T, hd/2) sines.
    public let sin: UnsafeMutablePointer<Float>
    /// Half the head width.
    public let half: Int
    /// Positions covered.
    public let T: Int

    /// Tables for positions 0..<T of heads `hd` wide.
    public init(T: Int, hd: Int, theta: Float) {
        half = hd / 2
        self.T = T
        cos = .allocate(capacity: max(T * half, 1))
        sin = .allocate(capacity: max(T * half, 1))
        for t in 0..<T {
            for i in 0..<half {
                let invFreq = pow(Double(theta), -2 * Double(i) / Double(hd))
                let angle = Double(t) * invFreq
                cos[t * half + i] = Float(Foundation.cos(angle))
                sin[t * half + i] = Float(Foundation.sin(angle))
            }
        }
    }

    deinit { cos.deallocate(); sin.deallocate() }
}

/// In place on the q and k heads of qkv (B, T, QKV): each head's pairs (i, i+hd/2) rotate by the
/// angle of position t: (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin). V is untouched.
func ropeForward(_ qkv: FloatPtr, _ table: RopeTable, B: Int, T: Int, heads: Int, hd: Int, QKV: Int) {
    let half = hd / 2
    for b in 0..<B {
        for t in 0..<T {
            let row = qkv + (b * T + t) * QKV
            let c = table.cos + t * half, s = table.sin + t * half
            for h in 0..<heads {  // heads = NH + KVH: the q heads then the k heads, adjacent in a row
                let x = row + h * hd
                for i in 0..<half {
                    let x1 = x[i], x2 = x[i + half]
                    x[i] = x1 * c[i] - x2 * s[i]
                    x[i + half] = x2 * c[i] + x1 * s[i]
                }
            }
        }
    }
}

/// In place on dqkv (B, T, QKV): the rotation is orthogonal, so its backward is the transposed
/// rotation (by −angle): (g1, g2) → (g1·cos + g2·sin, −g1·sin + g2·cos).
func ropeBackward(_ dqkv: FloatPtr, _ table: RopeTable, B: Int, T: Int, heads: Int, hd: Int, QKV: Int) {
    let half = hd / 2
    for b in 0..<B {
        for t in 0..<T {
            let row = dqkv + (b * T + t) * QKV
            let c = table.cos + t * half, s = table.sin + t * half
            for h in 0..<heads {
                let g = row + h * hd
                for i in 0..<half {
                    let g1 = g[i], g2 = g[i + half]
                    g[i] = g1 * c[i] + g2 * s[i]
                    g[i + half] = -g1 * s[i] + g2 * c[i]
                }
            }
        }
    }
}

// MARK: - Causal GQA attention over a fused qkv (fast: per-head GEMMs)

/// Floats of scratch `attentionForward` / `attentionBackward` need: 3 (T, T) and one (hd, T).
func attentionScratchCount(T: Int, hd: Int) -> Int { 3 * T * T + hd * T }

/// out (B, T, NH·hd), att (B, NH, T, T) ← qkv (B, T, QKV) (q and k already rotated).
/// att[b,h,t,t2] = softmax_t2≤t(q_t·k_t2 / sqrt(hd)); out_t = Σ_t2 att·v_t2. Entries t2 > t are 0.
/// Per (b, h): S (T, T) = Q (T, hd) · Kᵀ (hd, T) and O (T, hd) = P (T, T) · V (T, hd) as GEMMs,
/// reading Q, K, V in place from the fused rows (leading dimension QKV). The masked upper triangle
/// is computed and discarded (≈ 2× the needed flops, still far faster than per-key dot products).
func attentionForward(_ out: FloatPtr, _ att: FloatPtr, _ qkv: ConstFloatPtr, _ scratch: FloatPtr,
                      B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
    let QKV = (NH + 2 * KVH) * hd, qDim = NH * hd, kvDim = KVH * hd, group = NH / KVH
    let scale = 1 / Float(hd).squareRoot()
    let kT = scratch  // (hd, T)
    for b in 0..<B {
        let rows = qkv + b * T * QKV
        for h in 0..<NH {
            let q = rows + h * hd, k = rows + qDim + (h / group) * hd, v = rows + qDim + kvDim + (h / group) * hd
            let a = att + (b * NH + h) * T * T
            if h % group == 0 { transposeStrided(kT, ldo: T, k, ldi: QKV, rows: hd, cols: T) }
            gemm(a, ldc: T, q, lda: QKV, kT, ldb: T, M: T, Nc: T, K: hd, accumulate: false)
            for t in 0..<T {
                let r = a + t * T
                var maxv = -Float.infinity
                for t2 in 0...t { r[t2] *= scale; if r[t2] > maxv { maxv = r[t2] } }
                var sum: Float = 0
                for t2 in 0...t { let e = expf(r[t2] - maxv); r[t2] = e; sum += e }
                let inv = 1 / sum
                for t2 in 0...t { r[t2] *= inv }
                if t + 1 < T { (r + t + 1).update(repeating: 0, count: T - t - 1) }
            }
            gemm(out + b * T * qDim + h * hd, ldc: qDim, a, lda: T, v, ldb: QKV, M: T, Nc: hd, K: T, accumulate: false)
        }
    }
}

/// dqkv (B, T, QKV) += … given dout (B, T, NH·hd), att (B, NH, T, T), qkv (B, T, QKV).
/// Forward: S = Q·Kᵀ·scale, P = softmax(S) row-wise (causal), O = P·V. So, per (b, h):
///   dV += Pᵀ·dO           dP = dO·Vᵀ
///   dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale     (softmax Jacobian, then the scale)
///   dQ += dS·K            dK += dSᵀ·Q
/// GQA: the query heads of a group add into the same dK, dV in increasing head order.
func attentionBackward(_ dqkv: FloatPtr, _ dout: ConstFloatPtr, _ att: ConstFloatPtr, _ qkv: ConstFloatPtr,
                       _ scratch: FloatPtr, B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
    let QKV = (NH + 2 * KVH) * hd, qDim = NH * hd, kvDim = KVH * hd, group = NH / KVH
    let scale = 1 / Float(hd).squareRoot()
    let dP = scratch, tT = scratch + T * T, vT = scratch + 2 * T * T  // (T, T), (T, T), (hd, T)
    for b in 0..<B {
        let rows = qkv + b * T * QKV, drows = dqkv + b * T * QKV
        for h in 0..<NH {
            let kvOff = (h / group) * hd
            let q = rows + h * hd, k = rows + qDim + kvOff, v = rows + qDim + kvDim + kvOff
            let dq = drows + h * hd, dk = drows + qDim + kvOff, dv = drows + qDim + kvDim + kvOff
            let p = att + (b * NH + h) * T * T
            let dO = dout + b * T * qDim + h * hd
            if h % group == 0 { transposeStrided(vT, ldo: T, v, ldi: QKV, rows: hd, cols: T) }
            gemm(dP, ldc: T, dO, lda: qDim, vT, ldb: T, M: T, Nc: T, K: hd, accumulate: false)
            transposeStrided(tT, ldo: T, p, ldi: T, rows: T, cols: T)  // Pᵀ
            gemm(dv, ldc: QKV, tT, lda: T, dO, ldb: qDim, M: T, Nc: hd, K: T, accumulate: true)
            for t in 0..<T {
                let pr = p + t * T, d = dP + t * T
                let pdp = dotProduct(pr, d, t + 1)
                for t2 in 0...t { d[t2] = pr[t2] * (d[t2] - pdp) * scale }
                if t + 1 < T { (d + t + 1).update(repeating: 0, count: T - t - 1) }
            }
            gemm(dq, ldc: QKV, dP, lda: T, k, ldb: QKV, M: T, Nc: hd, K: T, accumulate: true)
            transposeStrided(tT, ldo: T, dP, ldi: T, rows: T, cols: T)  // dSᵀ
            gemm(dk, ldc: QKV, tT, lda: T, q, ldb: QKV, M: T, Nc: hd, K: T, accumulate: true)
        }
    }
}

// MARK: - Causal GQA attention: naive reference (per position, per key)

/// Naive twin of `attentionForward`: out (B, T, NH·hd), att (B, NH, T, T) ← qkv (B, T, QKV) (q and k already rotated).
/// att[b,h,t,t2] = softmax_t2≤t(q_t·k_t2 / sqrt(hd)); out_t = Σ_t2 att·v_t2. Entries t2 > t stay 0.
func attentionForwardNaive(_ out: FloatPtr, _ att: FloatPtr, _ qkv: ConstFloatPtr,
                      B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
    let QKV = (NH + 2 * KVH) * hd, qDim = NH * hd, kvDim = KVH * hd, group = NH / KVH
    let scale = 1 / Float(hd).squareRoot()
    for b in 0..<B {
        for h in 0..<NH {
            let kOff = qDim + (h / group) * hd, vOff = qDim + kvDim + (h / group) * hd
            for t in 0..<T {
                let q = qkv + (b * T + t) * QKV + h * hd
                let a = att + ((b * NH + h) * T + t) * T
                var maxv = -Float.infinity
                for t2 in 0...t {
                    let s = dotProduct(q, qkv + (b * T + t2) * QKV + kOff, hd) * scale
                    a[t2] = s
                    if s > maxv { maxv = s }
                }
                var sum: Float = 0
                for t2 in 0...t { let e = expf(a[t2] - maxv); a[t2] = e; sum += e }
                let inv = 1 / sum
                for t2 in 0...t { a[t2] *= inv }
                for t2 in (t + 1)..<T { a[t2] = 0 }
                let o = out + (b * T + t) * qDim + h * hd
                o.update(repeating: 0, count: hd)
                for t2 in 0...t { axpy(o, a[t2], qkv + (b * T + t2) * QKV + vOff, hd) }
            }
        }
    }
}

/// Naive twin of `attentionBackward`: dqkv (B, T, QKV) += … given dout (B, T, NH·hd), att (B, NH, T, T), qkv (B, T, QKV);
/// `scratch` holds T floats.
/// Forward: s = q·k·scale, p = softmax(s), o = Σ p·v. So
///   dv_t2 += p_t2·do          dp_t2 = do·v_t2
///   ds_t2 = p_t2·(dp_t2 − Σ_j p_j·dp_j)     (softmax Jacobian)
///   dq += Σ ds_t2·k_t2·scale  dk_t2 += ds_t2·q·scale
/// A kv head receives the sum over the query heads of its group.
func attentionBackwardNaive(_ dqkv: FloatPtr, _ dout: ConstFloatPtr, _ att: ConstFloatPtr, _ qkv: ConstFloatPtr,
                       _ scratch: FloatPtr, B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
    let QKV = (NH + 2 * KVH) * hd, qDim = NH * hd, kvDim = KVH * hd, group = NH / KVH
    let scale = 1 / Float(hd).squareRoot()
    let dp = scratch
    for b in 0..<B {
        for h in 0..<NH {
            let kOff = qDim + (h / group) * hd, vOff = qDim + kvDim + (h / group) * hd
            for t in 0..<T {
                let row = (b * T + t) * QKV
                let a = att + ((b * NH + h) * T + t) * T
                let g = dout + (b * T + t) * qDim + h * hd
                var pdp: Float = 0
                for t2 in 0...t {
                    let r2 = (b * T + t2) * QKV
                    dp[t2] = dotProduct(g, qkv + r2 + vOff, hd)
                    pdp += a[t2] * dp[t2]
                    axpy(dqkv + r2 + vOff, a[t2], g, hd)
                }
                let q = qkv + row + h * hd, dq = dqkv + row + h * hd
                for t2 in 0...t {
                    let ds = a[t2] * (dp[t2] - pdp) * scale
                    let r2 = (b * T + t2) * QKV
                    axpy(dq, ds, qkv + r2 + kOff, hd)
                    axpy(dqkv + r2 + kOff, ds, q, hd)
                }
            }
        }
    }
}

// MARK: - SwiGLU

/// out (N, F) = silu(gu[:, :F]) ⊙ gu[:, F:] where gu (N, 2F) holds [gate | up] per row (one matmul
/// computes both because gate and up are adjacent in the parameter buffer).
func swigluForward(_ out: FloatPtr, _ gu: ConstFloatPtr, N: Int, F: Int) {
    for n in 0..<N {
        let g = gu + n * 2 * F, u = g + F, o = out + n * F
        for i in 0..<F {
            let x = g[i]
            o[i] = x / (1 + expf(-x)) * u[i]
        }
    }
}

/// dgu (N, 2F) += … given dout (N, F), gu (N, 2F).
/// Forward: o = silu(g)·u with silu(g) = g·σ(g), silu'(g) = σ(g)·(1 + g·(1 − σ(g))). So
///   dg = do·u·σ(g)·(1 + g·(1 − σ(g)))     du = do·silu(g)
func swigluBackward(_ dgu: FloatPtr, _ dout: ConstFloatPtr, _ gu: ConstFloatPtr, N: Int, F: Int) {
    for n in 0..<N {
        let g = gu + n * 2 * F, u = g + F, d = dout + n * F
        let dg = dgu + n * 2 * F, du = dg + F
        for i in 0..<F {
            let x = g[i]
            let sig = 1 / (1 + expf(-x))
            dg[i] += d[i] * u[i] * sig * (1 + x * (1 - sig))
            du[i] += d[i] * x * sig
        }
    }
}

// MARK: - Residual add

/// out (N·C) = a + b.
func residualForward(_ out: FloatPtr, _ a: ConstFloatPtr, _ b: ConstFloatPtr, count: Int) {
    for i in 0..<count { out[i] = a[i] + b[i] }
}

// (Its backward is the identity: the gradient of the sum flows unchanged into both inputs, so the
// model's backward keeps one dresidual buffer that every branch adds into.)

// MARK: - Cross-entropy with label smoothing

/// losses (N) and probs (N, V) in place of logits (N, V), for targets (N) (−1 = ignored position).
/// The target distribution is (1−ε)·onehot(y) + ε/V, so with log p_j = z_j − m − log Σ exp(z − m):
///   loss = −(1−ε)·log p_y − (ε/V)·Σ_j log p_j
func crossEntropyForward(_ losses: FloatPtr, _ logits: FloatPtr, _ targets: UnsafePointer<Int32>,
                         N: Int, V: Int, smoothing eps: Float) {
    for n in 0..<N {
        let z = logits + n * V
        var m = -Float.infinity
        for j in 0..<V where z[j] > m { m = z[j] }
        var sum: Float = 0, zsum: Float = 0
        for j in 0..<V { zsum += z[j]; let e = expf(z[j] - m); z[j] = e; sum += e }
        let logZ = m + logf(sum)
        let inv = 1 / sum
        for j in 0..<V { z[j] *= inv }
        let y = Int(targets[n])
        if y < 0 { losses[n] = 0; continue }
        // z now holds probs; the original z_y is recovered as log p_y + logZ.
        let logPy = logf(max(z[y], Float.leastNormalMagnitude))
        let sumLogP = zsum - Float(V) * logZ
        losses[n] = -(1 - eps) * logPy - eps / Float(V) * sumLogP
    }
}

/// In place: probs (N, V) → dlogits (N, V) = dloss·(p − ((1−ε)·onehot(y) + ε/V)); rows whose
/// target is −1 get 0. `dloss` is ∂L/∂loss_n, e.g. 1/(valid targets in the whole batch) for a mean.
/// (Softmax + cross-entropy: ∂/∂z_j of −Σ_k q_k log p_k is p_j·Σ_k q_k − q_j = p_j − q_j.)
func crossEntropyBackward(_ dlogits: FloatPtr, _ targets: UnsafePointer<Int32>, N: Int, V: Int,
                          smoothing eps: Float, dloss: Float) {
    let base = eps / Float(V)
    for n in 0..<N {
        let p = dlogits + n * V
        let y = Int(targets[n])
        if y < 0 { p.update(repeating: 0, count: V); continue }
        for j in 0..<V { p[j] = (p[j] - base) * dloss }
        p[y] -= (1 - eps) * dloss
    }
}
