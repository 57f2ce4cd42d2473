import Foundation
import Observation

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
    /// What the frame shows that the expert's threshold calls depend on: the nearest scanner range
    /// (m; +∞ without a scan) and the planner's route-hint bearing (rad; +∞ without a hint).
    public var nearestRange: Float = .infinity
    public var routeBearing: Float = .infinity
    /// The proposed verb (`Intent.Kind.allCases` lane; −1 before a proposal).
    public var verbLane: Int = -1

    /// Zero signals.
    public init() {}

    /// Obstacle nearness from `nearestRange`: e^(−r / 0.3 m), 1 at contact, ≈ 0 beyond 1.5 m.
    @inline(__always) public var nearObstacle: Float { nearestRange.isNaN ? 0 : expf(-max(nearestRange, 0) / 0.3) }
    /// Route alignment from `routeBearing`: e^(−|b| / 0.2 rad), 1 straight ahead, 0 without a hint.
    @inline(__always) public var routeAhead: Float { routeBearing.isNaN ? 0 : expf(-abs(routeBearing) / 0.2) }

    /// The `verbLane` of a verb (`Intent.Kind.allCases` order), without building `allCases`.
    @inline(__always) public static func lane(_ k: Intent.Kind) -> Int {
        switch k { case .stop: 0; case .done: 1; case .backup: 2; case .forward: 3; case .turnLeft: 4; case .turnRight: 5 }
    }

    /// The calibration features, in `ConfidenceMap.featureNames` order: the model's signals, then
    /// per proposed verb (DONE is the reference) an indicator and its products with obstacle
    /// nearness and route alignment — the expert switches verbs at clearance and bearing thresholds,
    /// so how sure a verb can be depends on where the robot is (docs/controller.md).
    @inline(__always) public var features: SIMD32<Float> {
        let p = min(max(probability, 1e-6), 1 - 1e-6)
        var f = SIMD32<Float>(repeating: 0)
        f[0] = logf(p / (1 - p)); f[1] = entropy; f[2] = logf(max(grammarMass, 1e-12)); f[3] = margin
        f[4] = headDisagreement; f[5] = exitDisagreement; f[6] = temporalDisagreement
        if let k = ConfidenceMap.verbSlot(verbLane) {
            f[7 + 3 * k] = 1
            f[8 + 3 * k] = nearObstacle
            f[9 + 3 * k] = routeAhead
        }
        return f
    }
}

/// The map from signals to a calibrated confidence, fitted by `mgpt calibrate` (robot.json
/// `controller.calibration`): logistic regression on the signal features (multi-feature Platt
/// scaling), `confidence = σ(bias + Σ weight_i · feature_i)`. The weight of `logit_probability`
/// is kept ≥ 0 so confidence never falls when the model's own probability rises. Without a
/// calibration the map is the identity on the raw probability (weight 1 on its logit).
public struct ConfidenceMap: Sendable, Equatable {
    /// The verbs with their own features (`Intent.Kind` lanes; DONE, lane 1, is the reference).
    static let verbFeatureLanes = [0, 2, 3, 4, 5]
    /// Feature slot of a verb lane (nil for DONE and unknown lanes).
    @inline(__always) static func verbSlot(_ lane: Int) -> Int? { verbFeatureLanes.firstIndex(of: lane) }

    /// Feature names, the keys of `controller.calibration.weights`: the model's seven signals,
    /// then `verb_<v>`, `near_obstacle_<v>`, `route_ahead_<v>` for STOP, BACKUP, FORWARD,
    /// TURN_LEFT, TURN_RIGHT. A calibration naming only some of them leaves the others at 0.
    public static let featureNames: [String] = ["logit_probability", "entropy", "log_grammar_mass", "margin",
                                                "head_disagreement", "exit_disagreement", "temporal_disagreement"]
        + verbFeatureLanes.flatMap { lane -> [String] in
            let v = Intent.Kind.allCases[lane].rawValue.lowercased()
            return ["verb_\(v)", "near_obstacle_\(v)", "route_ahead_\(v)"]
        }
    /// Weights in `featureNames` order (lanes past `featureNames.count` unused).
    public var weights: SIMD32<Float>
    /// Intercept.
    public var bias: Float

    /// The identity map: confidence = raw probability.
    public static let identity: ConfidenceMap = {
        var w = SIMD32<Float>(repeating: 0)
        w[0] = 1
        return ConfidenceMap(weights: w, bias: 0)
    }()

    /// A map from its weights and bias.
    public init(weights: SIMD32<Float>, bias: Float) {
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
    /// constrained to ≥ 0 (monotone in the model's own probability): when the unconstrained fit
    /// gives it a negative weight, the constraint is active and the map is refitted with that
    /// weight fixed at 0 (projecting each Newton step instead diverges when the probability is
    /// nearly collinear with entropy and margin, as it is). The regression runs on
    /// standardised features (zero mean, unit variance; a constant feature is left out), so the L2
    /// term weighs every feature alike: a feature that is small on most decisions (obstacle
    /// nearness) is not shrunk to nothing. The weights are mapped back to the raw features.
    public static func fit(_ samples: [(DecisionSignals, Bool)], use: [String] = featureNames,
                           l2: Double = 1e-3, iterations: Int = 50) -> ConfidenceMap {
        guard !samples.isEmpty else { return .identity }
        let free = fitUnconstrained(samples, use: use, l2: l2, iterations: iterations)
        guard free.weights[0] < 0 else { return free }
        return fitUnconstrained(samples, use: use.filter { $0 != featureNames[0] }, l2: l2, iterations: iterations)
    }

    private static func fitUnconstrained(_ samples: [(DecisionSignals, Bool)], use: [String],
                                         l2: Double, iterations: Int) -> ConfidenceMap {
        let n = Double(samples.count)
        let used = use.compactMap { featureNames.firstIndex(of: $0) }
        let raw: [[Double]] = samples.map { s in
            let f = s.0.features
            return used.map { Double(f[$0]) }
        }
        var idx: [Int] = [], mean: [Double] = [], sd: [Double] = [], cols: [Int] = []
        for (c, j) in used.enumerated() {
            let m = raw.reduce(0) { $0 + $1[c] } / n
            let v = raw.reduce(0) { $0 + ($1[c] - m) * ($1[c] - m) } / n
            guard v > 1e-12 else { continue }   // constant on these decisions: no information
            idx.append(j); cols.append(c); mean.append(m); sd.append(v.squareRoot())
        }
        let k = idx.count + 1   // + bias
        let X: [[Double]] = raw.map { r in cols.indices.map { (r[cols[$0]] - mean[$0]) / sd[$0] } + [1] }
        let y = samples.map { $0.1 ? 1.0 : 0.0 }
        var w = [Double](repeating: 0, count: k)
        // Penalised log-loss, for the step-size search (Newton's full step can overshoot and
        // diverge on nearly collinear features: each step is halved until the loss falls).
        func loss(_ w: [Double]) -> Double {
            var total = 0.0
            for (x, yi) in zip(X, y) {
                var z = 0.0
                for j in 0..<k { z += w[j] * x[j] }
                let m = yi > 0.5 ? -z : z   // −log σ(±z) = log(1 + e^{m}), computed stably
                total += m > 0 ? m + log1p(exp(-m)) : log1p(exp(m))
            }
            var penalty = 0.0
            for a in 0..<(k - 1) { penalty += w[a] * w[a] }
            return total / n + 0.5 * l2 * penalty
        }
        var current = loss(w)
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
            var t = 1.0, next = w, nextLoss = current
            for _ in 0..<30 {
                for j in 0..<k { next[j] = w[j] - t * step[j] }
                nextLoss = loss(next)
                if nextLoss <= current { break }
                t *= 0.5
            }
            guard nextLoss <= current else { break }   // no descent left: converged to rounding
            var change = 0.0
            for j in 0..<k { change = max(change, abs(next[j] - w[j])) }
            (w, current) = (next, nextLoss)
            if change < 1e-9 { break }
        }
        var weights = SIMD32<Float>(repeating: 0)
        var bias = w[k - 1]
        for (j, f) in idx.enumerated() {
            weights[f] = Float(w[j] / sd[j])
            bias -= w[j] * mean[j] / sd[j]
        }
        return ConfidenceMap(weights: weights, bias: Float(bias))
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
