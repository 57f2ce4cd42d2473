import ArgumentParser
import Cognition
import Foundation
import MiniGPT

/// `mgpt attention`: every query head's attention probabilities while a prompt runs through a
/// `Session`, per layer, as a self-contained HTML page of heatmaps (inline SVG + CSS, no scripts),
/// plus per-head entropy and the head-disagreement figure printed to stdout.
///
/// `Session.attention(head:)` reports the last layer that attended. For layer l < L−1, each token is
/// first stepped with the exit rule `.after(l + 1)` (layers 0…l run fully, so their scores are the
/// full model's), the probabilities are read, the session is rewound one position and the token is
/// stepped again fully; the cache is then exactly the full model's (Session and EarlyExit untouched).
struct AttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Write every head's attention over a prompt as HTML heatmaps; print head entropy and disagreement.",
        discussion: "Last line: tokens=… layers=… heads=… mean_entropy=… disagreement=… last_step_disagreement=…")

    @Option(help: "Model folder (with tokenizer.json).") var model: String
    @Option(help: "Prompt text (encoded with the folder's tokenizer).") var prompt: String
    @Option(help: "Only this layer (0-based; default: every layer).") var layer: Int?
    @Option(help: "HTML file to write.") var out: String
    @Option(help: "Use at most this many prompt tokens (heatmaps grow quadratically).") var maxTokens = 64

    func validate() throws {
        if maxTokens < 1 { throw ValidationError("--max-tokens must be ≥ 1, found \(maxTokens).") }
        if prompt.isEmpty { throw ValidationError("--prompt must not be empty.") }
    }

    /// Probabilities of one layer: `p[head][t]` = head's attention at step t over positions 0...t.
    typealias LayerAttention = [[[Float]]]

    func run() throws {
        let weights = try loadWeights(model)
        let c = weights.config
        let tok = try loadTokenizer(URL(fileURLWithPath: model).appendingPathComponent(ModelFolder.tokenizerFile).path)
        let ids = Array(tok.encode(prompt).prefix(min(maxTokens, c.maxPositionEmbeddings)))
        guard !ids.isEmpty else { throw failure("--prompt: encodes to no tokens", code: Exit.dataError) }
        if let layer, !(0..<c.numHiddenLayers).contains(layer) {
            throw failure("--layer \(layer): expected 0...\(c.numHiddenLayers - 1) (num_hidden_layers \(c.numHiddenLayers))", code: Exit.dataError)
        }
        let layers = layer.map { [$0] } ?? Array(0..<c.numHiddenLayers)
        let H = c.numAttentionHeads
        let session = Session(model: Transformer(weights: weights), capacity: ids.count)
        var maps = [Int: LayerAttention]()
        for l in layers { maps[l] = Array(repeating: [], count: H) }
        func read(_ l: Int) { for h in 0..<H { maps[l]![h].append(Array(session.attention(head: h))) } }
        for (t, id) in ids.enumerated() {
            for l in layers where l < c.numHiddenLayers - 1 {
                session.step(id, exit: .after(l + 1))
                read(l)
                session.rewind(to: t)
            }
            session.step(id)
            if layers.contains(c.numHiddenLayers - 1) { read(c.numHiddenLayers - 1) }
        }
        let lastStep = HeadSignals.disagreement(session)

        let labels = ids.map { Self.label(tok.decode([$0])) }
        var rows = [["layer", "head", "mean entropy (nats)", "last-step entropy", "mean disagreement (layer)"]]
        var entropySum = 0.0, entropyCount = 0, disSum = 0.0
        var perLayer: [(Int, [Double], Double)] = []
        for l in layers {
            let m = maps[l]!
            let ent = m.map { steps in steps.map(Self.entropy).reduce(0, +) / Double(steps.count) }
            let dis = (0..<ids.count).map { t in Self.disagreement(m.map { $0[t] }) }.reduce(0, +) / Double(ids.count)
            perLayer.append((l, ent, dis))
            for h in 0..<H {
                rows.append(["\(l)", "\(h)", fmt(ent[h], 4), fmt(Self.entropy(m[h].last!), 4), h == 0 ? fmt(dis, 4) : ""])
            }
            entropySum += ent.reduce(0, +); entropyCount += H; disSum += dis
        }
        print("attention of \(model) over \(ids.count) prompt tokens (\(layers.count) layer(s) × \(H) heads)\n")
        print(table(rows))
        print("\nentropy: mean over steps of −Σ p ln p of each head's distribution (a step t spreads over t+1 positions, max ln(t+1));")
        print("disagreement: mean over steps of the heads' mean pairwise Jensen–Shannon divergence / ln 2 (HeadSignals.disagreement); "
              + "last step, last layer: \(fmt(Double(lastStep), 4))\n")
        let html = Self.html(model: model, prompt: prompt, labels: labels, maps: maps, perLayer: perLayer)
        do { try html.write(toFile: out, atomically: true, encoding: .utf8) } catch {
            throw failure("\(out): cannot write: \(error.localizedDescription)", code: 73)  // EX_CANTCREAT
        }
        note("wrote \(out)")
        print("tokens=\(ids.count) layers=\(layers.count) heads=\(H) mean_entropy=\(fmt(entropySum / Double(max(entropyCount, 1)), 4)) "
              + "disagreement=\(fmt(disSum / Double(layers.count), 4)) last_step_disagreement=\(fmt(Double(lastStep), 4))")
    }

    /// −Σ p ln p (nats).
    static func entropy(_ p: [Float]) -> Double {
        p.reduce(0.0) { $1 > 0 ? $0 - Double($1) * log(Double($1)) : $0 }
    }

    /// Mean pairwise Jensen–Shannon divergence of the heads' distributions, / ln 2, in [0, 1]: the
    /// formula of `HeadSignals.disagreement`, on stored arrays.
    static func disagreement(_ heads: [[Float]]) -> Double {
        guard heads.count > 1 else { return 0 }
        var total = 0.0, pairs = 0
        for a in 0..<heads.count {
            for b in (a + 1)..<heads.count {
                var js = 0.0
                for (p, q) in zip(heads[a], heads[b]) {
                    let (pi, qi) = (Double(p), Double(q))
                    let mi = 0.5 * (pi + qi)
                    if pi > 0 { js += 0.5 * pi * log(pi / mi) }
                    if qi > 0 { js += 0.5 * qi * log(qi / mi) }
                }
                total += js; pairs += 1
            }
        }
        return min(1, max(0, total / Double(pairs) / log(2)))
    }

    /// A token's text for a label: visible whitespace, invalid UTF-8 as hex.
    static func label(_ bytes: [UInt8]) -> String {
        guard let s = String(bytes: bytes, encoding: .utf8) else { return bytes.map { String(format: "x%02X", $0) }.joined() }
        return s.replacingOccurrences(of: " ", with: "␣").replacingOccurrences(of: "\n", with: "↵").replacingOccurrences(of: "\t", with: "⇥")
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// One head's heatmap: rows = query steps, columns = key positions; colour = √p (so small
    /// weights stay visible), exact value in each cell's tooltip.
    static func heatmap(_ m: [[Float]], labels: [String], cell: Int) -> String {
        let n = labels.count
        let pad = 70
        let size = pad + n * cell + 4
        var s = "<svg width=\"\(size)\" height=\"\(size)\" font-size=\"\(max(7, cell - 4))\" font-family=\"monospace\">"
        for (i, l) in labels.enumerated() {
            let y = pad + i * cell + cell - 3
            let text = escape(String(l.prefix(8)))
            s += "<text x=\"\(pad - 3)\" y=\"\(y)\" text-anchor=\"end\">\(text)</text>"
            let x = pad + i * cell + cell - 3
            s += "<text x=\"\(x)\" y=\"\(pad - 3)\" transform=\"rotate(-90 \(x) \(pad - 3))\">\(text)</text>"
        }
        for (t, row) in m.enumerated() {
            for (j, p) in row.enumerated() {
                let a = Double(p).squareRoot()
                s += "<rect x=\"\(pad + j * cell)\" y=\"\(pad + t * cell)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"#1f4e9c\" fill-opacity=\"\(String(format: "%.3f", a))\">"
                s += "<title>\(escape(labels[t])) → \(escape(labels[j])): \(String(format: "%.4f", p))</title></rect>"
            }
        }
        s += "<rect x=\"\(pad)\" y=\"\(pad)\" width=\"\(n * cell)\" height=\"\(n * cell)\" fill=\"none\" stroke=\"#999\"/></svg>"
        return s
    }

    static func html(model: String, prompt: String, labels: [String], maps: [Int: LayerAttention], perLayer: [(Int, [Double], Double)]) -> String {
        let cell = labels.count > 40 ? 10 : 14
        var s = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>MiniGPT attention: \(escape(model))</title>
            <style>
            body { font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
            .layer { margin-bottom: 28px; } .heads { display: flex; flex-wrap: wrap; gap: 18px; }
            .head { border: 1px solid #ddd; padding: 8px; } .head h3 { font-size: 13px; margin: 0 0 6px 0; }
            code { background: #f3f3f3; padding: 1px 4px; }
            </style></head><body>
            <h1>Attention of <code>\(escape(model))</code></h1>
            <p>Prompt (\(labels.count) tokens): <code>\(escape(prompt))</code></p>
            <p>Rows: the token being read (query step); columns: the positions it attends to (causal, so the upper
            triangle is empty). Colour intensity is √p so small weights stay visible; hover a cell for the exact
            probability. Entropy: mean over steps of −Σ p ln p (nats). Disagreement: mean pairwise Jensen–Shannon
            divergence between heads / ln 2 (0 = same positions, 1 = disjoint), averaged over steps.</p>

            """
        for (l, ent, dis) in perLayer {
            s += "<div class=\"layer\"><h2>Layer \(l) — head disagreement \(String(format: "%.3f", dis))</h2><div class=\"heads\">\n"
            for (h, m) in maps[l]!.enumerated() {
                s += "<div class=\"head\"><h3>head \(h) · entropy \(String(format: "%.3f", ent[h])) nats</h3>"
                s += heatmap(m, labels: labels, cell: cell) + "</div>\n"
            }
            s += "</div></div>\n"
        }
        s += "<p>Generated by <code>mgpt attention</code>.</p></body></html>\n"
        return s
    }
}
