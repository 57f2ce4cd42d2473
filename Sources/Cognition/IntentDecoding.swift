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

    /// The block as the tokenizer reserves it.
    public init(tokenizer: Tokenizer) {
        precondition(tokenizer.intentTokenCount >= Intent.tokenCount,
                     "tokenizer reserves \(tokenizer.intentTokenCount) intent tokens, the grammar needs \(Intent.tokenCount)")
        firstTokenID = tokenizer.intentTokenID(0)
        count = Intent.tokenCount
    }

    /// A block given directly (tests).
    public init(firstTokenID: Int, count: Int) {
        self.firstTokenID = firstTokenID
        self.count = count
    }

    /// Token id of intent `index`.
    @inline(__always) public func tokenID(_ index: Int) -> Int { firstTokenID + index }
}

/// The model's proposal for this tick, decoded under the intent grammar, with its uncertainty.
public struct IntentProposal: Sendable, Equatable {
    /// Proposed intent index (`Intent(index:)`).
    public var index: Int
    /// p(intent | context, "an intent comes next"): softmax renormalised over the intent block.
    public var probability: Float
    /// Entropy (nats) of that renormalised distribution: 0 = certain, ln(count) = uniform.
    public var entropy: Float
    /// Probability mass the unconstrained model puts on the intent block at all: low mass means
    /// the context looks unlike anything seen in training (the grammar is forcing the answer).
    public var grammarMass: Float

    /// A proposal with every field given.
    public init(index: Int, probability: Float, entropy: Float, grammarMass: Float) {
        self.index = index
        self.probability = probability
        self.entropy = entropy
        self.grammarMass = grammarMass
    }
}

/// Constrained decoding of one intent token (allocation-free).
public enum IntentDecoding {
    /// Picks the most likely intent in `vocab` from full-vocabulary `logits` (ties: lowest index)
    /// and measures its probability, entropy and the grammar mass.
    public static func decode(_ logits: UnsafeBufferPointer<Float>, vocab: IntentVocabulary) -> IntentProposal {
        // Log-sum-exp over the whole vocabulary and over the block, sharing one max for stability.
        var m = -Float.infinity
        for v in logits where v > m { m = v }
        var zAll: Float = 0
        for v in logits { zAll += expf(v - m) }
        var best = 0
        var zBlock: Float = 0, weighted: Float = 0
        for k in 0..<vocab.count {
            let l = logits[vocab.tokenID(k)]
            if l > logits[vocab.tokenID(best)] { best = k }
            let e = expf(l - m)
            zBlock += e
            weighted += e * (l - m)
        }
        // H = log Z − E[l − m] for p ∝ e^(l − m) restricted to the block.
        let entropy = max(0, logf(zBlock) - weighted / zBlock)
        let pBest = expf(logits[vocab.tokenID(best)] - m) / zBlock
        return IntentProposal(index: best, probability: pBest, entropy: entropy, grammarMass: zBlock / zAll)
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
