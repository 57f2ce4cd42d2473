import Foundation
import MiniGPT
import Observation

/// Where the intent tokens live in the model's vocabulary: a contiguous block reserved by the
/// tokenizer, whose k-th token is `Intent(index: k)`.
public struct IntentVocabulary: Sendable, Equatable {
    /// Token id of intent index 0.
    public let firstTokenID: Int
    /// Number of intents (`Intent.tokenCount`).
    public let count: Int
    /// Verb (`Intent.Kind`) index of each intent, in `0..<8` (a SIMD8 lane per verb).
    let kindOf: [Int]

    /// The block as the tokenizer reserves it.
    public init(tokenizer: Tokenizer) {
        precondition(tokenizer.intentTokenCount >= Intent.tokenCount,
                     "tokenizer reserves \(tokenizer.intentTokenCount) intent tokens, the grammar needs \(Intent.tokenCount)")
        firstTokenID = tokenizer.intentTokenID(0)
        count = Intent.tokenCount
        kindOf = Self.kinds(count)
    }

    static func kinds(_ count: Int) -> [Int] {
        (0..<count).map { i in Intent(index: i).map { Intent.Kind.allCases.firstIndex(of: $0.kind)! } ?? 0 }
    }

    /// A block given directly (tests).
    public init(firstTokenID: Int, count: Int) {
        self.firstTokenID = firstTokenID
        self.count = count
        kindOf = Self.kinds(count)
    }

    /// Token id of intent `index`.
    @inline(__always) public func tokenID(_ index: Int) -> Int { firstTokenID + index }
}

/// The model's proposal for this tick, decoded under the intent grammar, with its uncertainty.
public struct IntentProposal: Sendable, Equatable {
    /// Proposed intent index (`Intent(index:)`): the most likely verb, then its most likely argument.
    public var index: Int
    /// Probability of the proposed *verb* (its argument levels summed), softmax renormalised over
    /// the intent block: how sure the model is about what to do, not how fast.
    public var probability: Float
    /// Entropy (nats) of the verb distribution: 0 = certain, ln 6 ≈ 1.79 = uniform over verbs.
    /// Uncertainty between argument levels (TURN_RIGHT(0.5) vs (1.0)) does not count here.
    public var entropy: Float
    /// Probability mass the unconstrained model puts on the intent block at all: low mass means
    /// the context looks unlike anything seen in training (the grammar is forcing the answer).
    public var grammarMass: Float
    /// Probability of the proposed verb minus that of the runner-up verb (0…1).
    public var margin: Float
    /// The verb distribution (lane `j` = `Intent.Kind.allCases[j]`, lanes 6 and 7 zero), renormalised
    /// over the intent block: what the exit-agreement signal compares between depths.
    public var verbs: SIMD8<Float>

    /// A proposal with every field given (`margin` defaults to `probability`, `verbs` to zero).
    public init(index: Int, probability: Float, entropy: Float, grammarMass: Float,
                margin: Float? = nil, verbs: SIMD8<Float> = .zero) {
        self.index = index
        self.probability = probability
        self.entropy = entropy
        self.grammarMass = grammarMass
        self.margin = margin ?? probability
        self.verbs = verbs
    }
}

/// Constrained decoding of one intent token (allocation-free).
public enum IntentDecoding {
    /// Picks the most likely verb in `vocab` (argument levels summed), then that verb's most
    /// likely argument, from full-vocabulary `logits`; measures the verb's probability and the verb
    /// entropy, and the grammar mass. Ties: lowest index. Allocation-free (verbs in SIMD8 lanes).
    public static func decode(_ logits: UnsafeBufferPointer<Float>, vocab: IntentVocabulary) -> IntentProposal {
        var m = -Float.infinity
        for v in logits where v > m { m = v }
        var zAll: Float = 0
        for v in logits { zAll += expf(v - m) }
        var kindMass = SIMD8<Float>(repeating: 0)
        var zBlock: Float = 0
        for k in 0..<vocab.count {
            let e = expf(logits[vocab.tokenID(k)] - m)
            kindMass[vocab.kindOf[k]] += e
            zBlock += e
        }
        var bestKind = 0
        for j in 1..<8 where kindMass[j] > kindMass[bestKind] { bestKind = j }
        var best = -1
        for k in 0..<vocab.count where vocab.kindOf[k] == bestKind {
            if best < 0 || logits[vocab.tokenID(k)] > logits[vocab.tokenID(best)] { best = k }
        }
        var entropy: Float = 0
        var second: Float = 0
        for j in 0..<8 where kindMass[j] > 0 {
            let p = kindMass[j] / zBlock
            entropy -= p * logf(p)
            if j != bestKind { second = max(second, kindMass[j]) }
        }
        let verbs = kindMass / zBlock
        return IntentProposal(index: max(best, 0), probability: verbs[bestKind],
                              entropy: max(0, entropy), grammarMass: zBlock / zAll,
                              margin: (kindMass[bestKind] - second) / zBlock, verbs: verbs)
    }
}

/// Signals read from the attention pattern of the step that proposed the intent.
public enum HeadSignals {
    /// Mean pairwise Jensen–Shannon divergence between the last layer's query heads' attention
    /// distributions, divided by ln 2 so it lies in [0, 1]: 0 when every head looks at the same
    /// positions, 1 when they look at disjoint ones. Allocation-free; O(H² · positions).
    public static func disagreement(_ session: Session) -> Float {
        let H = session.model.config.numAttentionHeads
        guard H > 1, session.position > 0 else { return 0 }
        var total: Float = 0
        var pairs = 0
        for a in 0..<H {
            let p = session.attention(head: a)
            for b in (a + 1)..<H {
                let q = session.attention(head: b)
                var js: Float = 0
                for i in 0..<p.count {
                    let pi = p[i], qi = q[i]
                    let mi = 0.5 * (pi + qi)
                    if pi > 0 { js += 0.5 * pi * logf(pi / mi) }
                    if qi > 0 { js += 0.5 * qi * logf(qi / mi) }
                }
                total += js
                pairs += 1
            }
        }
        return min(1, max(0, total / Float(pairs) / logf(2)))
    }
}
