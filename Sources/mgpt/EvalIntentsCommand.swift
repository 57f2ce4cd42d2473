import ArgumentParser
import Cognition
import Foundation
import MiniGPT
import Observation
import Runtime

/// `mgpt eval-intents`: how often the model's intent matches the expert's on recorded episodes,
/// decoded exactly as the daemon decodes (sinks + rolling window of `--window` ticks, each frame's
/// observation tokens then the frame-end marker; one intent constrained to the grammar per frame).
struct EvalIntentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-intents",
        abstract: "Score a robot model's intents against the expert's on a sim corpus (.jsonl).",
        discussion: "Last line: intent_accuracy=… kind_accuracy=… gated_rate=… ticks=… episodes=…")

    @Option(help: "Model folder (with tokenizer.json).") var model: String
    @Option(help: "Sim corpus file (mgpt-sim corpus output, .jsonl).") var corpus: String
    @Option(help: "robot.json whose controller thresholds and window to use.") var config = "Configs/robot.json"
    @Option(help: "Ticks kept in the rolling context (default: context.window_ticks of --config).") var window: Int?
    @Option(help: "Score at most this many episodes (0 = all).") var episodes = 0
    @Option(help: "Early exit for every decision: full, after:K or confident:H (default: confident:model.exit_entropy of --config when set, else full).") var exit: String?
    @Flag(help: "Print the whole result as JSON.") var json = false

    func run() throws {
        let weights = try loadWeights(model)
        let tok = try loadTokenizer(URL(fileURLWithPath: model).appendingPathComponent(ModelFolder.tokenizerFile).path)
        guard let data = FileManager.default.contents(atPath: corpus) else {
            throw failure("\(corpus): cannot read the corpus", code: Exit.noInput)
        }
        let robot: RobotConfig
        do { robot = try RobotConfig.load(path: config) } catch { throw failure("\(error)", code: 78) }
        let window = self.window ?? robot.windowTicks
        let rule: ExitRule
        if let exit {
            guard let r = ExitRule(parsing: exit) else {
                throw failure("--exit: expected full, after:K or confident:H, found \"\(exit)\"", code: Exit.usage)
            }
            rule = r
        } else {
            rule = robot.exitEntropy.map { ExitRule.confident(maxEntropy: $0) } ?? .full
        }
        do { try rule.validate(for: weights.config) } catch { throw failure("--exit: \(error)", code: Exit.usage) }
        let session = Session(model: Transformer(weights: weights))
        var layersRun = 0
        let vocab = IntentVocabulary(tokenizer: tok)
        var controller = MetaController(thresholds: robot.thresholds)
        var ticks = 0, correct = 0, kindCorrect = 0, gated = 0, eps = 0
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: Intent.tokenCount), count: Intent.tokenCount)
        var reasons = [GateReason: Int]()
        var entropies: [Double] = [], disagreements: [Double] = [], probabilities: [Double] = []
        var lineNo = 0
        for line in data.split(separator: UInt8(ascii: "\n")) {
            lineNo += 1
            if episodes > 0 && eps >= episodes { break }
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any],
                  let instruction = obj["instruction"] as? String, let steps = obj["ticks"] as? [[String: Any]] else {
                throw failure("\(corpus): line \(lineNo): expected {\"instruction\": …, \"ticks\": [...]}", code: Exit.dataError)
            }
            eps += 1
            session.reset()
            controller = MetaController(thresholds: robot.thresholds)
            let sinks = [tok.bosID] + tok.encode(instruction)
            session.prefill(sinks)
            var lengths: [Int] = []
            for (i, step) in steps.enumerated() {
                guard let obs = step["obs"] as? [Int], let expert = step["intent"] as? Int,
                      expert >= 0, expert < Intent.tokenCount, obs.allSatisfy({ $0 >= 0 && $0 < tok.observationTokenCount }) else {
                    throw failure("\(corpus): line \(lineNo): ticks[\(i)] malformed", code: Exit.dataError)
                }
                while !lengths.isEmpty && (lengths.count >= window || session.position + obs.count + 1 > session.capacity) {
                    session.evict(from: sinks.count, count: lengths.removeFirst())
                }
                for o in obs { session.step(tok.observationTokenID(o), exit: rule) }
                layersRun += session.lastExitLayer
                let p = IntentDecoding.decode(session.logits, vocab: vocab)
                let dis = HeadSignals.disagreement(session)
                let d = controller.decide(p, headDisagreement: dis)
                reasons[d.reason, default: 0] += 1
                entropies.append(Double(p.entropy)); disagreements.append(Double(dis)); probabilities.append(Double(p.probability))
                ticks += 1
                if p.index == expert { correct += 1 }
                if Intent(index: p.index)?.kind == Intent(index: expert)?.kind { kindCorrect += 1 }
                if d.gated { gated += 1 }
                confusion[expert][p.index] += 1
                session.step(tok.frameEndTokenID, exit: rule)  // as the daemon: the frame-end marker, never an intent
                lengths.append(obs.count + 1)
            }
        }
        guard ticks > 0 else { throw failure("\(corpus): no ticks to score", code: Exit.dataError) }
        let acc = Double(correct) / Double(ticks), kacc = Double(kindCorrect) / Double(ticks)
        let gr = Double(gated) / Double(ticks)
        let meanLayers = Double(layersRun) / Double(ticks)
        func q(_ v: [Double], _ p: Double) -> Double {  // nearest-rank percentile
            let s = v.sorted()
            return s[min(s.count - 1, max(0, Int((p * Double(s.count)).rounded(.up)) - 1))]
        }
        let signals: [String: [String: Double]] = [
            "entropy": ["p50": q(entropies, 0.5), "p90": q(entropies, 0.9), "p99": q(entropies, 0.99)],
            "head_disagreement": ["p50": q(disagreements, 0.5), "p90": q(disagreements, 0.9), "p99": q(disagreements, 0.99)],
            "probability": ["p1": q(probabilities, 0.01), "p10": q(probabilities, 0.1), "p50": q(probabilities, 0.5)],
        ]
        let reasonCounts = Dictionary(uniqueKeysWithValues: reasons.map { ($0.key.description, $0.value) })
        if json {
            let obj: [String: Any] = ["intent_accuracy": acc, "kind_accuracy": kacc, "gated_rate": gr, "ticks": ticks,
                                      "episodes": eps, "mean_layers": meanLayers, "exit": "\(rule)", "confusion": confusion, "signals": signals, "reasons": reasonCounts]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("intent match vs the expert: \(model) on \(corpus) (\(eps) episodes, window \(window) ticks, exit \(rule))\n")
        var rows = [["expert \\ model"] + Intent.all.map(\.text)]
        for (i, row) in confusion.enumerated() where row.reduce(0, +) > 0 {
            rows.append([Intent.all[i].text] + row.map(String.init))
        }
        print(table(rows))
        print("\ncontroller reasons (thresholds of \(config)): " + reasonCounts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        for (k, v) in signals.sorted(by: { $0.key < $1.key }) {
            print("\(k): " + v.sorted { $0.key < $1.key }.map { "\($0.key)=\(fmt($0.value, 3))" }.joined(separator: " "))
        }
        print("\nintent_accuracy=\(fmt(acc, 4)) kind_accuracy=\(fmt(kacc, 4)) gated_rate=\(fmt(gr, 4)) ticks=\(ticks) episodes=\(eps) mean_layers=\(fmt(meanLayers, 3))")
    }
}
