import Foundation

/// How the next token is chosen from logits.
public struct SamplingOptions: Sendable, Equatable {
    /// Softmax temperature; 0 means greedy (argmax).
    public var temperature: Float
    /// Keep only the `topK` most likely tokens (0 = off).
    public var topK: Int
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `topP` (1 = off)
    /// (Holtzman et al. 2019, "The Curious Case of Neural Text Degeneration").
    public var topP: Float
    /// Entropy-aware decoding (phase 13): when > 0, each step's temperature is scaled by
    /// `clamp(H / entropyReference, minTemperatureScale, 1)`, where H is the entropy (nats) of the
    /// step's distribution at temperature 1. Confident steps sample close to greedy (no random
    /// derailment where the model is sure); uncertain steps keep the full temperature. 0 = off.
    public var entropyReference: Float
    /// Lower bound of the entropy-aware temperature scale.
    public var minTemperatureScale: Float

    /// Greedy by default.
    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, entropyReference: Float = 0,
                minTemperatureScale: Float = 0.1) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.entropyReference = entropyReference
        self.minTemperatureScale = minTemperatureScale
    }

    /// The temperature used for a step whose distribution has entropy `entropy` (nats, at T = 1).
    public func effectiveTemperature(entropy: Float) -> Float {
        guard entropyReference > 0 else { return temperature }
        return temperature * min(1, max(minTemperatureScale, entropy / entropyReference))
    }
}

/// Picks tokens from logits. Owns its seeded RNG (same seed → same tokens) and its scratch, so
/// `sample` allocates nothing.
public struct Sampler: Sendable {
    /// The rule applied at each step.
    public var options: SamplingOptions
    private var rng: RNG
    private let probs: FloatBuffer          // (V) working probabilities
    private var order: [Int32]              // (V) candidate indices, sorted by probability

    /// A sampler for a vocabulary of `vocabSize` tokens.
    public init(vocabSize: Int, options: SamplingOptions = .init(), seed: UInt64 = 0) {
        self.options = options
        rng = RNG(seed: seed)
        probs = FloatBuffer(count: vocabSize)
        order = [Int32](repeating: 0, count: vocabSize)
    }

    /// Index of the largest logit (the first on ties).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return best
    }

    /// Shannon entropy (nats) of softmax(logits / temperature): the uncertainty signal.
    public static func entropy(_ logits: UnsafeBufferPointer<Float>, temperature: Float = 1) -> Float {
        var m = -Float.infinity
        for v in logits where v > m { m = v }
        var z: Float = 0, s: Float = 0
        for v in logits {
            let a = (v - m) / temperature
            let e = expf(a)
            z += e
            s += e * a
        }
        return logf(z) - s / z
    }

    /// The next token. Greedy when `temperature == 0`; otherwise temperature, then top-k, then top-p,
    /// then one draw from the renormalised distribution.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int {
        let V = logits.count
        precondition(V <= probs.count, "logits wider than the sampler's vocabulary")
        if options.temperature <= 0 { return Self.argmax(logits) }
        let temperature = options.entropyReference > 0
            ? options.effectiveTemperature(entropy: Self.entropy(logits)) : options.temperature
        let p = probs.pointer
        var m = -Float.infinity
        for v in logits where v > m { m = v }
        var z: Float = 0
        for i in 0..<V { let e = expf((logits[i] - m) / temperature); p[i] = e; z += e }
        for i in 0..<V { p[i] /= z }
        let k = options.topK > 0 ? min(options.topK, V) : V
        if k == V && options.topP >= 1 {
            return draw(count: V) { $0 }
        }
        // Sort candidates by probability (descending; index breaks ties so results are stable).
        let n = order.withUnsafeMutableBufferPointer { ord -> Int in
            for i in 0..<V { ord[i] = Int32(i) }
            // In-place heapsort: the standard library's sort may allocate a merge buffer.
            heapSort(ord) { p[Int($0)] > p[Int($1)] || (p[Int($0)] == p[Int($1)] && $0 < $1) }
            var n = k
            if options.topP < 1 {
                var cum: Float = 0
                for j in 0..<k {
                    cum += p[Int(ord[j])]
                    if cum >= options.topP { n = j + 1; break }
                }
            }
            return n
        }
        return order.withUnsafeBufferPointer { ord in draw(count: n) { Int(ord[$0]) } }
    }

    /// Draws among the first `count` candidates (`index(j)` maps a rank to a token) in proportion
    /// to their probabilities.
    private mutating func draw(count: Int, _ index: (Int) -> Int) -> Int {
        let p = probs.pointer
        var total: Float = 0
        for j in 0..<count { total += p[index(j)] }
        let r = rng.nextUniform() * total
        var cum: Float = 0
        for j in 0..<count {
            cum += p[index(j)]
            if r < cum { return index(j) }
        }
        return index(count - 1)
    }
}

/// Sorts `a` in place so that `before(a[i], a[j])` holds for i < j; allocation-free (heapsort).
func heapSort<T>(_ a: UnsafeMutableBufferPointer<T>, by before: (T, T) -> Bool) {
    // Build a heap whose root is the element that sorts last, then move roots to the end.
    func siftDown(_ start: Int, _ end: Int) {
        var root = start
        while true {
            var child = 2 * root + 1
            if child >= end { return }
            if child + 1 < end && before(a[child], a[child + 1]) { child += 1 }
            if before(a[root], a[child]) { a.swapAt(root, child); root = child } else { return }
        }
    }
    let n = a.count
    guard n > 1 else { return }
    for start in stride(from: n / 2 - 1, through: 0, by: -1) { siftDown(start, n) }
    for end in stride(from: n - 1, to: 0, by: -1) {
        a.swapAt(0, end)
        siftDown(0, end)
    }
}
