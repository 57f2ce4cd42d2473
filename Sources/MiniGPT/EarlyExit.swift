import Foundation

// Early exit (phase 15): stop the layer stack early and read the next token from an intermediate
// residual stream through the SHARED final RMSNorm and the tied output head (no extra parameters):
//
//   x_k = layers 0..<k (x_0 = E[token])
//   logits = E · rmsnorm(x_k, final_norm)                        (V)
//
// Later tokens still attend at every layer: for each skipped layer l in k..<L the exited state is
// "propagated" into l's KV cache (CALM: Schuster et al. 2022, "Confident Adaptive Language
// Modeling"; Elbayad et al. 2020, "Depth-Adaptive Transformer"):
//
//   h = rmsnorm(x_k, attn_norm_l);  k, v = split(W_kv_l · h);  k = rope(k, pos)
//   append k, v to layer l's cache                    (no queries, attention, W_o or FFN)
//
// W_kv_l is the K and V rows of the fused QKV matrix, read in place (`PackedMatrix.rowSuffix`).
// A skipped layer then costs 16 K of the 172 K weight MACs of a full layer at the default shape.
// Layer k itself gets the same K and V as in a full run (its input is x_k either way); only
// layers after k see a stale input. The intermediate heads are only as good as training made
// them: without an auxiliary loss at `early_exit_layers` they are poor (docs/performance.md
// "Early exit").
//
// After an exit, `Session.attention(head:)` reports the last layer that ran fully, and
// `Session.lastExitLayer` says which one it was.

/// How deep `Session.step` / `Session.prefill` run the layer stack for one call.
public enum ExitRule: Sendable, Equatable, CustomStringConvertible {
    /// Every layer (today's behaviour; the default).
    case full
    /// Run layers `0..<k` fully, then propagate the state into the KV caches of layers `k..<L`;
    /// logits = head(final_norm(x_k)). `k` must be in `1...L`; `.after(L)` equals `.full`.
    case after(Int)
    /// Evaluate the head after each layer count listed in `config.earlyExitLayers` (ascending) and
    /// exit at the first whose next-token entropy (nats, temperature 1) is ≤ `maxEntropy`; else run
    /// every layer. Each evaluation is one head product (counted). A model with no exit layers runs
    /// every layer. In `prefill` the decision is taken once per chunk of `Session.prefillChunk`
    /// tokens, on the chunk's last token, and the whole chunk exits at that depth.
    case confident(maxEntropy: Float)

    /// `"full"`, `"after:k"` or `"confident:h"`: the form `init(parsing:)` reads.
    public var description: String {
        switch self {
        case .full: return "full"
        case .after(let k): return "after:\(k)"
        case .confident(let h): return "confident:\(h)"
        }
    }

    /// Parses `"full"`, `"after:k"` or `"confident:h"` (h in nats); nil when malformed.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count) {
        case ("full", 1): self = .full
        case ("after", 2): guard let k = Int(parts[1]) else { return nil }; self = .after(k)
        case ("confident", 2): guard let h = Float(parts[1]), !h.isNaN else { return nil }; self = .confident(maxEntropy: h)
        default: return nil
        }
    }

    /// Throws unless this rule fits a model of `config`'s depth (`.after(k)` needs k in 1...L).
    public func validate(for config: ModelConfig) throws {
        if case .after(let k) = self, k < 1 || k > config.numHiddenLayers {
            throw ExitRuleError(rule: self, expected: "after:k with k in 1...\(config.numHiddenLayers) (num_hidden_layers)")
        }
        if case .confident(let h) = self, h.isNaN {
            throw ExitRuleError(rule: self, expected: "confident:h with h a number of nats")
        }
    }

    /// Layers run fully before any entropy check: k for `.after(k)`, else L.
    @inline(__always) func fixedDepth(layers L: Int) -> Int {
        if case .after(let k) = self {
            precondition(k >= 1 && k <= L, "exit rule after:\(k) outside 1...\(L) layers")
            return k
        }
        return L
    }
}

/// An exit rule that does not fit the model.
public struct ExitRuleError: Error, CustomStringConvertible {
    /// The rule given.
    public var rule: ExitRule
    /// What would have fit.
    public var expected: String
    /// "exit rule <rule>: expected <…>".
    public var description: String { "exit rule \(rule): expected \(expected)" }
}

extension PackedMatrix {
    /// Rows `first..<rows` as a matrix of their own: a view into the same panels, no copy. Nil
    /// unless `first` starts a 16-row panel (both FP32 and INT8 panels are 16 rows tall, stored one
    /// panel after the other). State propagation uses it to project only K and V out of the fused
    /// QKV matrix: at the default shape that halves the product.
    func rowSuffix(from first: Int) -> PackedMatrix? {
        guard first > 0, first < rows, first % 16 == 0 else { return nil }
        return PackedMatrix(rows: rows - first, cols: cols, f32: f32.map { $0 + first * cols },
                            i8: i8.map { $0 + first * cols4 }, scales: scales.map { $0 + first }, bias: bias.map { $0 + first })
    }
}
