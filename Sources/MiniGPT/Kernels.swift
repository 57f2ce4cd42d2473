import Foundation

// Kernels: tiny pure functions, outputs first, then inputs, then dimensions (STYLE.md, llama2.c).
// The fast ones use SIMD16<Float> over unsafe pointers (the package builds the engine -Ounchecked
// for the host CPU, so these become AVX-512 FMAs); each keeps a naive twin below that is the
// reference in tests. Kernels trust their callers: shapes are debug-only preconditions.

/// A 64-byte aligned, uninitialised-then-zeroed float buffer that lives as long as its owner.
/// Everything the decode step touches is allocated once through this, at session creation.
public final class FloatBuffer: @unchecked Sendable {
    /// First element.
    public let pointer: UnsafeMutablePointer<Float>
    /// Number of floats.
    public let count: Int

    /// `count` zeroed floats aligned to a cache line.
    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// Copies `values` into a new aligned buffer.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    /// A view of `n` floats starting at `offset`.
    @inline(__always) public func slice(_ offset: Int, _ n: Int) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer + offset, count: n)
    }
}

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always) func store16(_ p: UnsafeMutablePointer<Float>, _ v: SIMD16<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// Dot product of two `n`-vectors.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    while i + 16 <= n {
        acc.addProduct(load16(a + i), load16(b + i))
        i += 16
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// `W (rows, cols) · x (cols) → out (rows)`; with `accumulate`, adds into `out` (residual update).
///
/// The hot spot of decoding: every weight is read once per token. Four rows share each load of `x`
/// so the loop is bound by streaming W, not by re-reading x.
@inline(__always)
func matvec(_ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
            rows: Int, cols: Int, accumulate: Bool = false) {
    guard cols % 16 == 0 else {
        matvecNaive(out, w, x, rows: rows, cols: cols, accumulate: accumulate)
        return
    }
    var r = 0
    while r + 4 <= rows {
        let w0 = w + r * cols, w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols
        var a0 = SIMD16<Float>(repeating: 0), a1 = a0, a2 = a0, a3 = a0
        var c = 0
        while c < cols {
            let xv = load16(x + c)
            a0.addProduct(load16(w0 + c), xv)
            a1.addProduct(load16(w1 + c), xv)
            a2.addProduct(load16(w2 + c), xv)
            a3.addProduct(load16(w3 + c), xv)
            c += 16
        }
        if accumulate {
            out[r] += a0.sum(); out[r + 1] += a1.sum(); out[r + 2] += a2.sum(); out[r + 3] += a3.sum()
        } else {
            out[r] = a0.sum(); out[r + 1] = a1.sum(); out[r + 2] = a2.sum(); out[r + 3] = a3.sum()
        }
        r += 4
    }
    while r < rows {
        let s = dot(w + r * cols, x, cols)
        out[r] = accumulate ? out[r] + s : s
        r += 1
    }
}

/// Naive twin of `matvec`: the reference the fast kernel is tested against.
func matvecNaive(_ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                 rows: Int, cols: Int, accumulate: Bool = false) {
    for r in 0..<rows {
        var s: Float = 0
        for c in 0..<cols { s += w[r * cols + c] * x[c] }
        out[r] = accumulate ? out[r] + s : s
    }
}

/// RMSNorm: `out = x / sqrt(mean(x²) + eps) ⊙ weight` over `n` (Zhang & Sennrich 2019).
@inline(__always)
func rmsnorm(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
             _ n: Int, eps: Float) {
    let ms = dot(x, x, n) / Float(n)
    let scale = 1 / (ms + eps).squareRoot()
    for i in 0..<n { out[i] = x[i] * scale * weight[i] }
}

/// e^x for 16 lanes: range reduction x = n·ln2 + r (|r| ≤ ln2/2), a degree-6 Taylor polynomial for
/// e^r (relative error < 2e-7, below float rounding), and 2^n built in the exponent bits (Cephes-style).
@inline(__always)
func exp16(_ v: SIMD16<Float>) -> SIMD16<Float> {
    let x = v.clamped(lowerBound: SIMD16(repeating: -87.3), upperBound: SIMD16(repeating: 88.7))
    let n = (x * 1.442_695_04).rounded(.toNearestOrEven)
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6
    var p = SIMD16<Float>(repeating: 1.0 / 720)
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let bits = (SIMD16<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: SIMD16<Float>.self)
}

/// In-place softmax over `n` values; subtracts the max for stability.
@inline(__always)
func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    var m = -Float.infinity
    for i in 0..<n where x[i] > m { m = x[i] }
    let mv = SIMD16<Float>(repeating: m)
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    while i + 16 <= n {
        let e = exp16(load16(x + i) - mv)
        store16(x + i, e)
        acc += e
        i += 16
    }
    var s = acc.sum()
    while i < n { let e = expf(x[i] - m); x[i] = e; s += e; i += 1 }
    let inv = 1 / s
    for j in 0..<n { x[j] *= inv }
}

/// Naive twin of `softmax`.
func softmaxNaive(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    var m = -Float.infinity
    for i in 0..<n where x[i] > m { m = x[i] }
    var s: Float = 0
    for i in 0..<n { let e = expf(x[i] - m); x[i] = e; s += e }
    for i in 0..<n { x[i] /= s }
}

/// SwiGLU's gate: `g ← silu(g) ⊙ u` over `n` (Shazeer 2020).
@inline(__always)
func swiglu(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n {
        let v = load16(g + i)
        store16(g + i, v / (1 + exp16(-v)) * load16(u + i))
        i += 16
    }
    while i < n {
        let v = g[i]
        g[i] = v / (1 + expf(-v)) * u[i]
        i += 1
    }
}

/// Rotary position embedding, Hugging Face "rotate_half" layout: element i pairs with i + hd/2.
/// `cos`/`sin` hold the `hd/2` angles for this position (precomputed per session).
@inline(__always)
func rope(_ x: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, headDim hd: Int) {
    let half = hd / 2
    for i in 0..<half {
        let a = x[i], b = x[i + half]
        x[i] = a * cos[i] - b * sin[i]
        x[i + half] = b * cos[i] + a * sin[i]
    }
}

/// The RoPE angle table: `(positions, hd/2)` cosines and sines of `pos · θ^(-2i/hd)`.
/// Angles are computed in Double so long positions keep full float precision.
func ropeTables(positions: Int, headDim hd: Int, theta: Float) -> (cos: FloatBuffer, sin: FloatBuffer) {
    let half = hd / 2
    let c = FloatBuffer(count: positions * half), s = FloatBuffer(count: positions * half)
    for p in 0..<positions {
        for i in 0..<half {
            let invFreq = pow(Double(theta), -2.0 * Double(i) / Double(hd))
            let angle = Double(p) * invFreq
            c.pointer[p * half + i] = Float(Foundation.cos(angle))
            s.pointer[p * half + i] = Float(Foundation.sin(angle))
        }
    }
    return (c, s)
}
