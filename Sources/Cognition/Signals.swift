import Foundation

/// Every signal behind one decision: what the controller gates on, what telemetry publishes and
/// what `mgpt explain` / `mgpt calibrate` read. Filled by the decision tick, allocation-free.
public struct DecisionSignals: Sendable, Equatable {
    /// Raw probability of the proposed verb under the intent grammar.
    public var probability: Float = 0
    /// Entropy (nats) of the verb distribution.
    public var entropy: Float = 0
    /// Mass the unconstrained model puts on the intent block.
    public var grammarMass: Float = 0
    /// Proposed verb's probability minus the runner-up's.
    public var margin: Float = 0
    /// Mean pairwise JS divergence of the last layer's heads' attention at the decision position
    /// (÷ ln 2). Kept for comparison: on the trained model it is 0.8–1.0 whatever the input.
    public var headDisagreement: Float = 0
    /// JS divergence (÷ ln 2) between the verb distribution read at the first early-exit layer and
    /// the final one: 0 when the shallow and the full model agree (0 when the model has no exit layer).
    public var exitDisagreement: Float = 0
    /// JS divergence (÷ ln 2) between this decision's verb distribution and the previous
    /// decision's: high when the model flips between verbs from one frame to the next, which it
    /// does at the boundaries between what the expert would do (0 for the first decision).
    public var temporalDisagreement: Float = 0
    /// Age of the observation when the decision was taken (ms).
    public var frameAgeMs: Float = 0
    /// What the frame checks found.
    public var sensors = SensorHealth()
    /// Calibrated probability that the proposed verb is right (the published `confidence` of an
    /// accepted decision); equals `probability` without a calibration.
    public var confidence: Float = 0

    /// Zero signals.
    public init() {}

    /// The calibration features, in `ConfidenceMap.featureNames` order.
    @inline(__always) public var features: SIMD8<Float> {
        let p = min(max(probability, 1e-6), 1 - 1e-6)
        return SIMD8(logf(p / (1 - p)), entropy, logf(max(grammarMass, 1e-12)), margin,
                     headDisagreement, exitDisagreement, temporalDisagreement, 0)
    }
}

/// The map from signals to a calibrated confidence, fitted by `mgpt calibrate` (robot.json
/// `controller.calibration`): logistic regression on the signal features (multi-feature Platt
/// scaling), `confidence = σ(bias + Σ weight_i · feature_i)`. The weight of `logit_probability`
/// is kept ≥ 0 so confidence never falls when the model's own probability rises. Without a
/// calibration the map is the identity on the raw probability (weight 1 on its logit).
public struct ConfidenceMap: Sendable, Equatable {
    /// Feature names, the keys of `controller.calibration.weights`.
    public static let featureNames = ["logit_probability", "entropy", "log_grammar_mass", "margin",
                                      "head_disagreement", "exit_disagreement", "temporal_disagreement"]
    /// Weights in `featureNames` order (lane 7 unused).
    public var weights: SIMD8<Float>
    /// Intercept.
    public var bias: Float

    /// The identity map: confidence = raw probability.
    public static let identity = ConfidenceMap(weights: SIMD8(1, 0, 0, 0, 0, 0, 0, 0), bias: 0)

    /// A map from its weights and bias.
    public init(weights: SIMD8<Float>, bias: Float) {
        self.weights = weights
        self.bias = bias
    }

    /// Calibrated confidence for `s`.
    @inline(__always) public func confidence(_ s: DecisionSignals) -> Float {
        let z = bias + (weights * s.features).sum()
        return 1 / (1 + expf(-z))
    }

    /// Fits the map to `(signals, correct)` pairs by L2-regularised logistic regression (Newton's
    /// method, deterministic), restricted to the features in `use`; `logit_probability`'s weight is
    /// projected to ≥ 0 (monotone in the model's own probability).
    public static func fit(_ samples: [(DecisionSignals, Bool)], use: [String] = featureNames,
                           l2: Double = 1e-3, iterations: Int = 50) -> ConfidenceMap {
        let idx = use.compactMap { featureNames.firstIndex(of: $0) }
        let k = idx.count + 1   // + bias
        guard !samples.isEmpty else { return .identity }
        let X: [[Double]] = samples.map { s in
            let f = s.0.features
            return idx.map { Double(f[$0]) } + [1]
        }
        let y = samples.map { $0.1 ? 1.0 : 0.0 }
        var w = [Double](repeating: 0, count: k)
        if let j = idx.firstIndex(of: 0) { w[j] = 1 }
        let n = Double(samples.count)
        for _ in 0..<iterations {
            var g = [Double](repeating: 0, count: k)
            var H = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
            for (x, yi) in zip(X, y) {
                var z = 0.0
                for j in 0..<k { z += w[j] * x[j] }
                let p = 1 / (1 + exp(-z))
                let r = p * (1 - p)
                for a in 0..<k {
                    g[a] += (p - yi) * x[a] / n
                    for b in 0..<k { H[a][b] += r * x[a] * x[b] / n }
                }
            }
            for a in 0..<(k - 1) { g[a] += l2 * w[a]; H[a][a] += l2 }
            guard let step = solve(H, g) else { break }
            var change = 0.0
            for j in 0..<k { w[j] -= step[j]; change = max(change, abs(step[j])) }
            if let j = idx.firstIndex(of: 0), w[j] < 0 { w[j] = 0 }
            if change < 1e-9 { break }
        }
        var weights = SIMD8<Float>(repeating: 0)
        for (j, f) in idx.enumerated() { weights[f] = Float(w[j]) }
        return ConfidenceMap(weights: weights, bias: Float(w[k - 1]))
    }

    /// Solves `A x = b` by Gaussian elimination with partial pivoting (nil when singular).
    static func solve(_ A: [[Double]], _ b: [Double]) -> [Double]? {
        let n = b.count
        var M = A, v = b
        for c in 0..<n {
            var p = c
            for r in (c + 1)..<n where abs(M[r][c]) > abs(M[p][c]) { p = r }
            guard abs(M[p][c]) > 1e-15 else { return nil }
            M.swapAt(c, p); v.swapAt(c, p)
            for r in (c + 1)..<n {
                let f = M[r][c] / M[c][c]
                guard f != 0 else { continue }
                for j in c..<n { M[r][j] -= f * M[c][j] }
                v[r] -= f * v[c]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = v[r]
            for j in (r + 1)..<n { s -= M[r][j] * x[j] }
            x[r] = s / M[r][r]
        }
        return x
    }
}

extension DecisionSignals {
    /// Jensen–Shannon divergence of two verb distributions, ÷ ln 2 (0…1).
    public static func js(_ p: SIMD8<Float>, _ q: SIMD8<Float>) -> Float {
        var d: Float = 0
        for j in 0..<8 {
            let m = 0.5 * (p[j] + q[j])
            if p[j] > 0 { d += 0.5 * p[j] * logf(p[j] / m) }
            if q[j] > 0 { d += 0.5 * q[j] * logf(q[j] / m) }
        }
        return min(1, max(0, d / logf(2)))
    }
}
