import Foundation

/// AdamW hyper-parameters (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization").
public struct AdamWConfig: Codable, Sendable, Equatable {
    /// Peak learning rate.
    public var learningRate: Float = 3e-3
    /// Learning rate at the end of the cosine decay, as a fraction of the peak.
    public var minLRFraction: Float = 0.1
    /// Linear warm-up steps from ~0 to the peak.
    public var warmupSteps: Int = 100
    /// β₁.
    public var beta1: Float = 0.9
    /// β₂.
    public var beta2: Float = 0.95
    /// ε in the denominator.
    public var epsilon: Float = 1e-8
    /// Decoupled weight decay for matrices (never on norm weights).
    public var weightDecay: Float = 0.1
    /// Global gradient-norm clip; 0 = off.
    public var gradClip: Float = 1.0

    /// The defaults above.
    public init() {}

    /// Learning rate at `step` (0-based) of `total`: linear warm-up, then cosine decay to
    /// `minLRFraction · learningRate` at the last step.
    public func learningRate(step: Int, total: Int) -> Float {
        if step < warmupSteps { return learningRate * Float(step + 1) / Float(warmupSteps) }
        let decaySteps = max(total - warmupSteps, 1)
        let progress = min(Float(step - warmupSteps) / Float(decaySteps), 1)
        let minLR = learningRate * minLRFraction
        return minLR + 0.5 * (learningRate - minLR) * (1 + cos(Float.pi * progress))
    }
}

/// AdamW's state: first and second moments in the parameter layout, and the step count.
public final class AdamW: @unchecked Sendable {
    /// Hyper-parameters.
    public let config: AdamWConfig
    /// First moments (parameter layout).
    public let m: ParameterBuffer
    /// Second moments (parameter layout).
    public let v: ParameterBuffer
    /// Updates applied so far (bias correction uses step + 1).
    public var step: Int = 0

    /// Zeroed state for `count` parameters.
    public init(config: AdamWConfig, count: Int) {
        self.config = config
        m = ParameterBuffer(count: count)
        v = ParameterBuffer(count: count)
    }

    /// One update of params[lo..<hi) from grads (already summed over shards), scaled by `gradScale`
    /// (the clip factor), with learning rate `lr` and bias-correction step `t` (1-based).
    /// Per element: g' = s·g; m = β₁m + (1−β₁)g'; v = β₂v + (1−β₂)g'²;
    /// p −= lr·(wd·p) [if `decays`]; p −= lr·m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
    func update(params: FloatPtr, grads: ConstFloatPtr, range: Range<Int>, decays: Bool,
                lr: Float, t: Int, gradScale: Float) {
        let c = config
        let b1 = c.beta1, b2 = c.beta2
        let bc1 = 1 - powf(b1, Float(t)), bc2 = 1 - powf(b2, Float(t))
        let wd = decays ? c.weightDecay : 0
        let m = self.m.pointer, v = self.v.pointer
        for i in range {
            let g = grads[i] * gradScale
            let mi = b1 * m[i] + (1 - b1) * g
            let vi = b2 * v[i] + (1 - b2) * g * g
            m[i] = mi; v[i] = vi
            let mhat = mi / bc1, vhat = vi / bc2
            var p = params[i]
            p -= lr * wd * p
            p -= lr * mhat / (vhat.squareRoot() + c.epsilon)
            params[i] = p
        }
    }
}
