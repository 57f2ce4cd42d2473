import Foundation

/// The statistics behind `mgpt calibrate` and `mgpt eval controller`: error-detection AUROC,
/// risk–coverage, expected calibration error and conformal threshold choice. Offline only.
public enum Calibration {
    /// Area under the ROC curve of `score` as a detector of `positive` (ties count half): the
    /// probability that a random positive scores above a random negative. 0.5 = no information.
    /// nil when either class is empty.
    public static func auroc(_ score: [Double], _ positive: [Bool]) -> Double? {
        let pos = positive.filter { $0 }.count, neg = positive.count - pos
        guard pos > 0, neg > 0 else { return nil }
        let order = score.indices.sorted { score[$0] < score[$1] }
        var rankSum = 0.0
        var i = 0
        while i < order.count {   // average ranks over ties
            var j = i
            while j + 1 < order.count && score[order[j + 1]] == score[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j where positive[order[k]] { rankSum += rank }
            i = j + 1
        }
        return (rankSum - Double(pos) * Double(pos + 1) / 2) / (Double(pos) * Double(neg))
    }

    /// Expected calibration error over `bins` equal-width confidence bins: Σ (n_b / n) ·
    /// |accuracy_b − mean confidence_b|.
    public static func ece(_ confidence: [Double], _ correct: [Bool], bins: Int = 15) -> Double {
        guard !confidence.isEmpty else { return 0 }
        var n = [Int](repeating: 0, count: bins), acc = [Double](repeating: 0, count: bins), conf = acc
        for (c, ok) in zip(confidence, correct) {
            let b = min(bins - 1, max(0, Int(c * Double(bins))))
            n[b] += 1
            conf[b] += c
            if ok { acc[b] += 1 }
        }
        var e = 0.0
        for b in 0..<bins where n[b] > 0 {
            e += Double(n[b]) / Double(confidence.count) * abs(acc[b] / Double(n[b]) - conf[b] / Double(n[b]))
        }
        return e
    }

    /// One point of a risk–coverage curve: accept the `coverage` fraction with the highest
    /// confidence; `risk` = error rate among them.
    public struct RiskPoint: Sendable, Equatable {
        public var coverage: Double, risk: Double, threshold: Double
    }

    /// The risk–coverage curve of `confidence` (accept the most confident first), one point per
    /// distinct confidence value, and its area (AURC: mean selective risk over coverage).
    public static func riskCoverage(_ confidence: [Double], _ wrong: [Bool]) -> (curve: [RiskPoint], aurc: Double) {
        let order = confidence.indices.sorted { confidence[$0] > confidence[$1] }
        var curve: [RiskPoint] = []
        var errors = 0, area = 0.0
        for (k, i) in order.enumerated() {
            if wrong[i] { errors += 1 }
            let risk = Double(errors) / Double(k + 1)
            area += risk
            if k + 1 == order.count || confidence[order[k + 1]] != confidence[i] {
                curve.append(RiskPoint(coverage: Double(k + 1) / Double(order.count), risk: risk, threshold: confidence[i]))
            }
        }
        return (curve, order.isEmpty ? 0 : area / Double(order.count))
    }

    /// Conformal risk control (Angelopoulos et al. 2022; as used for robot help-seeking by Ren et
    /// al. 2023): the smallest threshold λ such that accepting decisions with confidence ≥ λ keeps
    /// the loss `1{accepted ∧ wrong}` at most `alpha` in expectation on exchangeable new data:
    /// λ̂ = inf { λ : (n · R̂(λ) + 1) / (n + 1) ≤ α }, with R̂ the calibration set's joint error rate.
    /// The loss only falls as λ rises, as the method needs. Returns 1 (accept nothing useful)
    /// when no λ qualifies. Then the error *among accepted* decisions is ≤ α / coverage.
    public static func conformalThreshold(_ confidence: [Double], _ wrong: [Bool], alpha: Double) -> Double {
        let n = Double(confidence.count)
        guard n > 0 else { return 1 }
        let order = confidence.indices.sorted { confidence[$0] > confidence[$1] }
        // Walk λ downwards through the distinct confidences; the joint error only grows.
        var errors = 0
        var best = 1.0
        var k = 0
        while k < order.count {
            var j = k
            while j + 1 < order.count && confidence[order[j + 1]] == confidence[order[k]] { j += 1 }
            for m in k...j where wrong[order[m]] { errors += 1 }
            if (Double(errors) + 1) / (n + 1) <= alpha { best = confidence[order[k]] } else { break }
            k = j + 1
        }
        return best
    }

    /// The split-conformal upper limit for a score whose nominal values are `nominal`: the
    /// ⌈(n + 1)(1 − δ)⌉-th smallest, so a new nominal score exceeds it with probability ≤ δ
    /// (false alarms). +∞ when n is too small for δ.
    public static func conformalLimit(_ nominal: [Double], delta: Double) -> Double {
        let s = nominal.sorted()
        let k = Int((Double(s.count + 1) * (1 - delta)).rounded(.up))
        return k <= s.count && k >= 1 ? s[k - 1] : .infinity
    }
}
