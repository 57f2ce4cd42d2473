import Foundation
import CMiniGPTKernels

// Kernels: tiny pure functions, outputs first, then inputs, then dimensions (STYLE.md, llama2.c).
// The fast ones use SIMD16<Float> over unsafe pointers (the package builds the engine -Ounchecked;
// with MINIGPT_NATIVE=1 for the host CPU, so these become AVX-512 FMAs) or call the C kernels,
// which pick their instruction set at run time (`KernelPath`); each keeps a naive twin below that
// is the reference in tests. Kernels trust their callers: shapes are debug-only preconditions.

/// The C kernels' instruction-set path (CMiniGPTKernels/include/mgk_dispatch.h): chosen once per
/// process, from `MINIGPT_KERNELS` when set, else the fastest this CPU supports.
public enum KernelPath {
    /// A refused `MINIGPT_KERNELS` value: the message names the variable, the value and the paths
    /// this CPU supports. The command-line tools exit with 78 (EX_CONFIG) on it.
    public struct SelectionError: Error, CustomStringConvertible {
        /// One line, e.g. `MINIGPT_KERNELS=avxvnni: this CPU lacks the avxvnni instructions (it supports vnni,avx512,avx2,portable)`.
        public let description: String
    }

    /// Reads `MINIGPT_KERNELS` (once; later calls repeat the first answer) and returns the path's
    /// name. Call it at start-up: a kernel running before a refused value was seen exits the process.
    @discardableResult
    public static func configure() throws -> String {
        var err = [CChar](repeating: 0, count: 256)
        guard mgk_kernels_init(&err, Int32(err.count)) == 0 else {
            throw SelectionError(description: String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return selected
    }

    /// The name of the selected path (`vnni`, `avx2`, `portable`, …): what benches print as `kernels=`.
    public static var selected: String { String(cString: mgk_path_name(mgk_selected_path())) }

    /// The paths this CPU can run, fastest first.
    public static var supported: [String] {
        var buf = [CChar](repeating: 0, count: 128)
        mgk_supported_paths(&buf, Int32(buf.count))
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: ",").map(String.init)
    }
}

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

/// RMSNorm: `out = x / sqrt(mean(x²) + eps) ⊙ weight` over `n` (Zhang & Sennrich 2019). C kernel
/// (fp32.c, `mgk_rmsnorm_f32`): `rmsnormSwift`'s arithmetic bit for bit on every path (KernelTests),
/// with hardware FMA where the CPU has it even when the Swift code is built without (MINIGPT_PORTABLE=1:
/// there the fused `addProduct` was one libm `fmaf` call per lane).
@inline(__always)
func rmsnorm(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
             _ n: Int, eps: Float) {
    mgk_rmsnorm_f32(out, x, weight, Int32(n), eps)
}

/// The Swift RMSNorm (the engine's before issue 11): the reference `mgk_rmsnorm_f32` equals bit for bit.
func rmsnormSwift(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                  _ n: Int, eps: Float) {
    let ms = dot(x, x, n) / Float(n)
    let scale = 1 / (ms + eps).squareRoot()
    for i in 0..<n { out[i] = x[i] * scale * weight[i] }
}

/// In-place softmax over `n` values; subtracts the max for stability. C kernel (fp32.c): the
/// AVX-512 e^x polynomial (range reduction x = n·ln2 + r, degree-6 Taylor for e^r, relative error
/// < 2e-7, 2^n built in the exponent bits). Swift's generic SIMD clamp/convert calls did not inline
/// and cost a third of a decode step (perf, 2026-11-25).
@inline(__always)
func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) { mgk_softmax_f32(x, Int32(n)) }

/// Naive twin of `softmax`.
func softmaxNaive(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    var m = -Float.infinity
    for i in 0..<n where x[i] > m { m = x[i] }
    var s: Float = 0
    for i in 0..<n { let e = expf(x[i] - m); x[i] = e; s += e }
    for i in 0..<n { x[i] /= s }
}

/// SwiGLU's gate: `g ← silu(g) ⊙ u` over `n` (Shazeer 2020). C kernel (fp32.c).
@inline(__always)
func swiglu(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int) { mgk_swiglu_f32(g, u, Int32(n)) }

/// Naive twin of `swiglu`.
func swigluNaive(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { g[i] = g[i] / (1 + expf(-g[i])) * u[i] }
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

// MARK: Packed weight matrices (C kernels in Sources/CMiniGPTKernels)

/// A weight matrix `W (rows, cols)` packed once at load into the panel layout the C kernels read
/// contiguously (CMiniGPTKernels/include/mgk_fp32.h, mgk_int8.h): FP32 panels, or INT8 panels with
/// per-row scales and the +128 bias of the VNNI kernel. The memory belongs to the `Transformer`.
struct PackedMatrix {
    /// Output rows and input columns of W.
    let rows: Int, cols: Int
    /// FP32 panels, or nil when quantized.
    let f32: UnsafeMutablePointer<Float>?
    /// INT8 panels (rows → 16s, cols → 4s), or nil.
    let i8: UnsafeMutablePointer<Int8>?
    /// (rows) per-row weight scales when quantized.
    let scales: UnsafeMutablePointer<Float>?
    /// (rows padded to 16) 128·Σ_c q[r][c] when quantized.
    let bias: UnsafeMutablePointer<Int32>?
    /// Columns padded to a multiple of 4 (the INT8 activation width).
    var cols4: Int { (cols + 3) / 4 * 4 }
    /// Bytes of weights one product streams.
    var weightBytes: Int { i8 != nil ? rows * cols + 4 * rows : 4 * rows * cols }

    /// `out (rows) [+]= W · x (cols)`. An INT8 matrix quantizes `x` into `xu` (≥ cols4 bytes) first.
    @inline(__always)
    func apply(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, accumulate: Bool,
               xu: UnsafeMutablePointer<UInt8>) {
        if let i8 {
            let s = mgk_quantize_activation(xu, x, Int32(cols), Int32(cols4))
            mgk_matvec_i8(out, i8, scales, bias, xu, s, Int32(rows), Int32(cols4), accumulate ? 1 : 0, Int32(MGK_PATH_AUTO))
        } else {
            mgk_matvec_f32(out, f32, x, Int32(rows), Int32(cols), accumulate ? 1 : 0)
        }
    }

    /// `out (T, ldo) [+]= X (T, ldx) · Wᵀ`, every panel read once for all T tokens. An INT8 matrix
    /// quantizes each token row into `xu` (T·cols4 bytes) with its scale in `xs` (T) first.
    @inline(__always)
    func apply(_ out: UnsafeMutablePointer<Float>, ldo: Int, _ x: UnsafePointer<Float>, ldx: Int, tokens T: Int,
               accumulate: Bool, xu: UnsafeMutablePointer<UInt8>, xs: UnsafeMutablePointer<Float>) {
        if let i8 {
            mgk_quantize_rows(xu, xs, x, Int32(ldx), Int32(T), Int32(cols), Int32(cols4))  // one call for the T rows
            mgk_matmul_i8(out, Int32(ldo), i8, scales, bias, xu, xs, Int32(T), Int32(rows), Int32(cols4), accumulate ? 1 : 0, Int32(MGK_PATH_AUTO))
        } else {
            mgk_matmul_f32(out, Int32(ldo), f32, x, Int32(ldx), Int32(T), Int32(rows), Int32(cols), accumulate ? 1 : 0)
        }
    }
}

/// Owns the aligned allocations behind a model's `PackedMatrix` values.
final class PackedArena: @unchecked Sendable {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var sizes: [Int] = []

    deinit { for b in blocks { b.deallocate() } }

    /// Reads every cache line of every block (`mgk_touch`); returns the byte sum. Allocation-free.
    func touch() -> UInt64 {
        var s: UInt64 = 0
        for i in blocks.indices { s &+= mgk_touch(blocks[i], sizes[i]) }
        return s
    }

    private func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 64))
        blocks.append(p)
        sizes.append(max(bytes, 64))
        return p
    }

    /// Packs row-major FP32 `w (rows, cols)` into panels.
    func packF32(_ w: [Float], rows: Int, cols: Int) -> PackedMatrix {
        precondition(w.count == rows * cols, "matrix of \(w.count) floats is not \(rows)×\(cols)")
        let n = Int(mgk_panel_f32_count(Int32(rows), Int32(cols)))
        let p = allocate(4 * n).bindMemory(to: Float.self, capacity: n)
        w.withUnsafeBufferPointer { mgk_pack_panel_f32(p, $0.baseAddress!, Int32(rows), Int32(cols)) }
        return PackedMatrix(rows: rows, cols: cols, f32: p, i8: nil, scales: nil, bias: nil)
    }

    /// Packs a quantized matrix into INT8 panels with its scales and VNNI bias.
    func packI8(_ q: QuantizedMatrix) -> PackedMatrix {
        let (rows, cols) = (q.rows, q.cols)
        let n = Int(mgk_panel_i8_count(Int32(rows), Int32(cols)))
        let rows16 = (rows + 15) / 16 * 16
        let p = allocate(n).bindMemory(to: Int8.self, capacity: n)
        let bias = allocate(4 * rows16).bindMemory(to: Int32.self, capacity: rows16)
        let scales = allocate(4 * rows16).bindMemory(to: Float.self, capacity: rows16)
        q.values.withUnsafeBufferPointer { mgk_pack_panel_i8(p, bias, $0.baseAddress!, Int32(rows), Int32(cols)) }
        for r in 0..<rows { scales[r] = q.scales[r] }
        return PackedMatrix(rows: rows, cols: cols, f32: nil, i8: p, scales: scales, bias: bias)
    }
}
