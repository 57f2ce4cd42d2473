import Foundation

// Low-rank FFN (phase 7): each SwiGLU projection W (out, in) is replaced by A (out, r) · B (r, in),
// so a token costs r·(out + in) multiply-adds instead of out·in. The factors come from a truncated
// SVD of the trained matrix (Eckart–Young: the best rank-r approximation in Frobenius norm):
//
//   W = U Σ Vᵀ,   A = U_r Σ_r (out, r),   B = V_rᵀ (r, in),   ‖W − A·B‖_F² = Σ_{j ≥ r} σ_j².
//
// The SVD is one-sided Jacobi (Hestenes 1958; Demmel & Veselić 1992): rotate pairs of columns of
// W until they are mutually orthogonal; the column norms are then the singular values and the
// accumulated rotations are V. Double precision, a fixed sweep order: deterministic, and accurate
// to ~1e-15 relative — plenty for the 128×320 matrices of this model (a few hundred ms, release).

/// A thin singular value decomposition `W (m, n) = U (m, k) · diag(s) (k) · Vᵀ (k, n)`, k = min(m, n),
/// singular values in descending order. Row-major, Double.
public struct SingularValueDecomposition: Sendable, Equatable {
    /// Rows and columns of W; k = min(m, n).
    public let m: Int, n: Int, k: Int
    /// (m, k) left singular vectors as columns (a zero column for a zero singular value).
    public var u: [Double]
    /// (k) singular values, descending.
    public var s: [Double]
    /// (k, n) right singular vectors as rows.
    public var vt: [Double]

    /// Decomposes row-major `w (rows, cols)` by one-sided Jacobi. Deterministic.
    public init(_ w: [Float], rows m: Int, cols n: Int) {
        precondition(w.count == m * n && m > 0 && n > 0, "matrix of \(w.count) floats is not \(m)×\(n)")
        self.m = m; self.n = n; k = min(m, n)
        if m >= n {
            let (a, v, s) = Self.jacobi(w.map(Double.init), rows: m, cols: n, transposed: false)
            // a: column j (length m) = σ_j u_j; v: column j (length n) = v_j.
            (u, self.s, vt) = Self.assemble(a: a, v: v, s: s, aLen: m, vLen: n, k: n, uRowsFromA: true)
        } else {
            // W = (Wᵀ)ᵀ: decompose Wᵀ (n, m) = U' Σ V'ᵀ, then W = V' Σ U'ᵀ.
            let (a, v, s) = Self.jacobi(w.map(Double.init), rows: m, cols: n, transposed: true)
            (u, self.s, vt) = Self.assemble(a: a, v: v, s: s, aLen: n, vLen: m, k: m, uRowsFromA: false)
        }
    }

    /// Column-major working copy `a` (columns of length `len`), orthogonalized in place; `v` the
    /// accumulated rotations (cols × cols, column-major); `s` the column norms.
    private static func jacobi(_ w: [Double], rows m: Int, cols n: Int, transposed: Bool)
        -> (a: [Double], v: [Double], s: [Double]) {
        // The matrix whose columns are rotated: W (m ≥ n) or Wᵀ (m < n). Column j of W is
        // w[i*n + j]; column j of Wᵀ is row j of W.
        let len = transposed ? n : m, cnt = transposed ? m : n
        var a = [Double](repeating: 0, count: len * cnt)
        for j in 0..<cnt { for i in 0..<len { a[j * len + i] = transposed ? w[j * n + i] : w[i * n + j] } }
        var v = [Double](repeating: 0, count: cnt * cnt)
        for j in 0..<cnt { v[j * cnt + j] = 1 }
        a.withUnsafeMutableBufferPointer { ap in
            v.withUnsafeMutableBufferPointer { vp in
                for _ in 0..<80 {
                    var rotated = false
                    for p in 0..<(cnt - 1) {
                        for q in (p + 1)..<cnt {
                            let cp = ap.baseAddress! + p * len, cq = ap.baseAddress! + q * len
                            var alpha = 0.0, beta = 0.0, gamma = 0.0
                            for i in 0..<len { alpha += cp[i] * cp[i]; beta += cq[i] * cq[i]; gamma += cp[i] * cq[i] }
                            if gamma == 0 || abs(gamma) <= 1e-15 * (alpha * beta).squareRoot() { continue }
                            rotated = true
                            let zeta = (beta - alpha) / (2 * gamma)
                            let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                            let c = 1 / (1 + t * t).squareRoot(), s = c * t
                            for i in 0..<len { let x = cp[i], y = cq[i]; cp[i] = c * x - s * y; cq[i] = s * x + c * y }
                            let vp0 = vp.baseAddress! + p * cnt, vq = vp.baseAddress! + q * cnt
                            for i in 0..<cnt { let x = vp0[i], y = vq[i]; vp0[i] = c * x - s * y; vq[i] = s * x + c * y }
                        }
                    }
                    if !rotated { break }
                }
            }
        }
        let s = (0..<cnt).map { j in (0..<len).reduce(0.0) { $0 + a[j * len + $1] * a[j * len + $1] }.squareRoot() }
        return (a, v, s)
    }

    /// Sorts by singular value (descending, ties by index) and lays out U (m, k), s, Vᵀ (k, n).
    private static func assemble(a: [Double], v: [Double], s: [Double], aLen: Int, vLen: Int, k: Int, uRowsFromA: Bool)
        -> (u: [Double], s: [Double], vt: [Double]) {
        let order = (0..<k).sorted { s[$0] != s[$1] ? s[$0] > s[$1] : $0 < $1 }
        // Left vectors of the rotated matrix: a_j / σ_j (length aLen); right: v_j (length vLen).
        let m = uRowsFromA ? aLen : vLen, n = uRowsFromA ? vLen : aLen
        var u = [Double](repeating: 0, count: m * k), vt = [Double](repeating: 0, count: k * n)
        for (r, j) in order.enumerated() {
            let inv = s[j] > 0 ? 1 / s[j] : 0
            for i in 0..<aLen {
                let left = a[j * aLen + i] * inv
                if uRowsFromA { u[i * k + r] = left } else { vt[r * n + i] = left }
            }
            for i in 0..<vLen {
                let right = v[j * vLen + i]
                if uRowsFromA { vt[r * n + i] = right } else { u[i * k + r] = right }
            }
        }
        return (u, order.map { s[$0] }, vt)
    }

    /// The best rank-`r` factors (Eckart–Young): `a = U_r Σ_r (m, r)`, `b = V_rᵀ (r, n)`, FP32.
    public func factors(rank r: Int) -> (a: [Float], b: [Float]) {
        precondition(r >= 1 && r <= k, "rank \(r) outside 1...\(k)")
        var a = [Float](repeating: 0, count: m * r), b = [Float](repeating: 0, count: r * n)
        for i in 0..<m { for j in 0..<r { a[i * r + j] = Float(u[i * k + j] * s[j]) } }
        for j in 0..<r { for c in 0..<n { b[j * n + c] = Float(vt[j * n + c]) } }
        return (a, b)
    }

    /// ‖W − W_r‖_F / ‖W‖_F of the best rank-`r` approximation: √(Σ_{j ≥ r} σ_j² / Σ_j σ_j²).
    public func tailError(rank r: Int) -> Double {
        let total = s.reduce(0) { $0 + $1 * $1 }
        guard total > 0 else { return 0 }
        return (s[min(r, k)...].reduce(0) { $0 + $1 * $1 } / total).squareRoot()
    }
}

/// `‖W − A·B‖_F / ‖W‖_F` for row-major `w (m, n)`, `a (m, r)`, `b (r, n)`, in Double.
public func relativeFrobeniusError(_ w: [Float], _ a: [Float], _ b: [Float], rows m: Int, cols n: Int, rank r: Int) -> Double {
    var err = 0.0, norm = 0.0
    for i in 0..<m {
        for j in 0..<n {
            var p = 0.0
            for t in 0..<r { p += Double(a[i * r + t]) * Double(b[t * n + j]) }
            let x = Double(w[i * n + j])
            err += (x - p) * (x - p); norm += x * x
        }
    }
    return norm > 0 ? (err / norm).squareRoot() : err.squareRoot()
}

/// One factored FFN matrix: its tensor name and the relative Frobenius error of its rank-r factors.
public struct LowRankReport: Sendable, Equatable {
    /// The dense tensor name (`TensorName.gate(i)`, `up(i)` or `down(i)`).
    public var name: String
    /// (rows, cols) of the dense matrix.
    public var rows: Int, cols: Int
    /// ‖W − A·B‖_F / ‖W‖_F with the FP32 factors.
    public var relativeError: Double
}

/// Errors of the low-rank conversion.
public enum LowRankError: Error, CustomStringConvertible, Equatable {
    /// The source already has factored FFNs (`ffn_rank` > 0).
    case alreadyLowRank(Int)
    /// The rank is outside 1...min(hidden_size, intermediate_size).
    case badRank(Int, max: Int)

    public var description: String {
        switch self {
        case .alreadyLowRank(let r): return "ffn_rank: expected 0 (a dense model to factor), found \(r)"
        case .badRank(let r, let mx): return "rank: expected 1...\(mx), found \(r)"
        }
    }
}

extension ModelWeights {
    /// A copy whose FFN projections are the rank-`rank` truncated SVD factors of these dense ones
    /// (config `ffn_rank = rank`; dense fields emptied; INT8 FFN forms dropped, factors are FP32),
    /// with the per-matrix relative Frobenius errors, in order gate, up, down per layer.
    public func lowRank(rank: Int) throws -> (weights: ModelWeights, report: [LowRankReport]) {
        let c = config, d = c.hiddenSize, f = c.intermediateSize
        guard c.ffnRank == 0 else { throw LowRankError.alreadyLowRank(c.ffnRank) }
        guard rank >= 1 && rank <= min(d, f) else { throw LowRankError.badRank(rank, max: min(d, f)) }
        var w = self
        w.config.ffnRank = rank
        if var dt = w.config.weightDType, dt.ffn != .float32 { dt.ffn = .float32; w.config.weightDType = dt }
        var report: [LowRankReport] = []
        func factor(_ name: String, _ m: [Float], _ rows: Int, _ cols: Int) -> (a: [Float], b: [Float]) {
            let ab = SingularValueDecomposition(m, rows: rows, cols: cols).factors(rank: rank)
            report.append(LowRankReport(name: name, rows: rows, cols: cols,
                                        relativeError: relativeFrobeniusError(m, ab.a, ab.b, rows: rows, cols: cols, rank: rank)))
            w.quantized[name] = nil
            return ab
        }
        for i in w.layers.indices {
            let l = layers[i]
            (w.layers[i].gateA, w.layers[i].gateB) = factor(TensorName.gate(i), l.gate, f, d)
            (w.layers[i].upA, w.layers[i].upB) = factor(TensorName.up(i), l.up, f, d)
            (w.layers[i].downA, w.layers[i].downB) = factor(TensorName.down(i), l.down, d, f)
            w.layers[i].gate = []; w.layers[i].up = []; w.layers[i].down = []
        }
        return (w, report)
    }
}
