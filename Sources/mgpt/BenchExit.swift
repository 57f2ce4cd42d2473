import ArgumentParser
import Foundation
import MiniGPT
import MiniGPTTrain

/// `mgpt bench exit`: what early exit (EarlyExit.swift) costs and saves on real text. For every
/// rule — full, `.after(k)` for k = 1..<L, `.confident` at a few entropy thresholds — it decodes the
/// same held-out tokens step by step and reports agreement of the argmax with the full model,
/// nats/token of the actual next token, mean layers run fully, MACs and µs per step. The rules run
/// side by side in one process, interleaved window by window, so machine drift hits them alike.
struct BenchExit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exit",
        abstract: "Early exit on a corpus: argmax agreement, nats/token, layers run and µs/token per exit rule.")

    @Option(help: "Model folder (config.json, model.safetensors, tokenizer.json).") var model: String
    @Option(help: "Text file to decode (e.g. data/shakespeare/val.txt).") var corpus: String
    @Option(help: "Tokens decoded per rule (from the start of the corpus).") var tokens = 4096
    @Option(name: .customLong("seq-len"), help: "Window length; the cache is reset at each window (default: the trained sequence length).")
    var seqLen: Int?
    @Option(help: "Entropy thresholds (nats) for the .confident rules, comma-separated.") var thresholds = "0.5,1,2,3"
    @Option(name: .customLong("exit-layers"), help: "Layer counts .confident checks when config.json lists none (default: 1..<L).")
    var exitLayers: String?

    func validate() throws {
        guard tokens > 0 else { throw ValidationError("--tokens must be > 0, found \(tokens)") }
        if let seqLen, seqLen < 2 { throw ValidationError("--seq-len must be ≥ 2, found \(seqLen)") }
    }

    /// Totals of one rule over the run.
    struct Row {
        let rule: ExitRule
        var agree = 0, scored = 0, layers = 0, steps = 0
        var nll = 0.0
        var cpuNanos: UInt64 = 0
        var ops = OpCounter()
        var micros: [Double] = []
        init(_ rule: ExitRule) { self.rule = rule }
    }

    func run() throws {
        var weights = try loadWeights(model)
        let L = weights.config.numHiddenLayers
        let thresholdValues: [Float] = try thresholds.split(separator: ",").map {
            guard let v = Float($0.trimmingCharacters(in: .whitespaces)), v.isFinite else {
                throw ValidationError("--thresholds: \"\($0)\" is not a number of nats")
            }
            return v
        }
        if let exitLayers {
            let ls = try parseIDs(exitLayers)
            weights.config.earlyExitLayers = ls
        } else if weights.config.earlyExitLayers.isEmpty {
            weights.config.earlyExitLayers = Array(1..<L)
        }
        do { try weights.config.validate() } catch { throw ValidationError("--exit-layers: \(error)") }
        let checks = weights.config.earlyExitLayers.sorted()

        let tokenizer = try loadTokenizer(URL(fileURLWithPath: model).appendingPathComponent(ModelFolder.tokenizerFile).path)
        let text: String
        do { text = try String(contentsOfFile: corpus, encoding: .utf8) } catch {
            throw failure("\(corpus): cannot read as UTF-8 text: \(error.localizedDescription)", code: Exit.noInput)
        }
        let ids = tokenizer.encode(text)
        let record = try? TrainingRecord.load(from: URL(fileURLWithPath: model))
        let T = seqLen ?? record?.trainSeqLen ?? weights.config.maxPositionEmbeddings
        guard T <= weights.config.maxPositionEmbeddings else {
            throw ValidationError("--seq-len \(T): expected 2...\(weights.config.maxPositionEmbeddings) (max_position_embeddings)")
        }
        let n = min(tokens, ids.count - 1)
        guard n >= 1 else { throw failure("\(corpus): \(ids.count) tokens, need at least 2", code: Exit.dataError) }

        let rules: [ExitRule] = [.full] + (1..<L).map { .after($0) } + thresholdValues.map { .confident(maxEntropy: $0) }
        for r in rules { try r.validate(for: weights.config) }
        let engine = Transformer(weights: weights)
        let session = Session(model: engine, capacity: T)
        var rows = rules.map(Row.init)
        for r in rows.indices { rows[r].micros.reserveCapacity(n) }
        var reference = [Int](repeating: 0, count: T)  // the full model's argmax per window position
        var start = 0
        while start < n {
            let count = min(T, n - start)
            for r in rows.indices {  // rule 0 is .full: it fills `reference` for the others
                session.reset()
                session.counter = OpCounter()
                for i in 0..<count {
                    let c0 = threadCPUNanos(), t0 = monotonicNanos()
                    let logits = session.step(ids[start + i], exit: rows[r].rule)
                    let dt = monotonicNanos() - t0
                    rows[r].cpuNanos += threadCPUNanos() - c0
                    let best = Sampler.argmax(logits)
                    if r == 0 { reference[i] = best }
                    rows[r].micros.append(Double(dt) / 1000)
                    rows[r].layers += session.lastExitLayer
                    rows[r].steps += 1
                    if best == reference[i] { rows[r].agree += 1 }
                    rows[r].nll += Self.negLogProb(logits, ids[start + i + 1])
                    rows[r].scored += 1
                }
                rows[r].ops.matmuls += session.counter.matmuls
                rows[r].ops.macs += session.counter.macs
                rows[r].ops.weightBytes += session.counter.weightBytes
            }
            start += count
        }

        let c = weights.config
        print("early-exit benchmark: \(model) on \(corpus): \(n) tokens in windows of \(T); d=\(c.hiddenSize) layers=\(L); "
              + ".confident checks after layers \(checks)")
        var table_ = [["rule", "argmax = full", "nats/token", "mean layers", "MACs/token", "µs p50", "µs mean", "CPU µs/token"]]
        var fields: [(String, String)] = [("tokens", "\(n)"), ("seq_len", "\(T)")]
        for row in rows {
            let stats = LatencyStats(row.micros)
            let agree = Double(row.agree) / Double(row.steps), nats = row.nll / Double(row.scored)
            let layers = Double(row.layers) / Double(row.steps), macs = Double(row.ops.macs) / Double(row.steps)
            let cpu = Double(row.cpuNanos) / 1000 / Double(row.steps)
            let name: String
            switch row.rule {
            case .full: name = "full"
            case .after(let k): name = "after\(k)"
            case .confident(let h): name = "confident\(h)"
            }
            table_.append([row.rule.description, fmt(100 * agree, 1) + " %", fmt(nats, 4), fmt(layers, 2),
                           fmt(macs, 0), fmt(stats.p50, 2), fmt(stats.mean, 2), fmt(cpu, 2)])
            fields += [("\(name)_agree", fmt(agree, 4)), ("\(name)_nats", fmt(nats, 4)), ("\(name)_layers", fmt(layers, 3)),
                       ("\(name)_macs", fmt(macs, 0)), ("\(name)_us_p50", fmt(stats.p50, 2)), ("\(name)_cpu_us", fmt(cpu, 2))]
        }
        print(table(table_))
        print("")
        print(fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
    }

    /// −log softmax(logits)[target] in Double.
    static func negLogProb(_ logits: UnsafeBufferPointer<Float>, _ target: Int) -> Double {
        var m = -Double.infinity
        for v in logits { m = max(m, Double(v)) }
        var z = 0.0
        for v in logits { z += exp(Double(v) - m) }
        return m + log(z) - Double(logits[target])
    }
}
