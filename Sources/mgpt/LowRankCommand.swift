import ArgumentParser
import Foundation
import MiniGPT

/// `mgpt lowrank`: factors every FFN projection of a dense model into rank-r SVD factors (phase 7,
/// LowRank.swift), printing each matrix's relative Frobenius error and the parameter counts.
struct LowRankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lowrank",
        abstract: "Replace a model's FFN matrices by truncated-SVD factors W ≈ A·B of rank R (ffn_rank).",
        discussion: "Last line: rank=… params_before=… params_after=… max_rel_err=… mean_rel_err=…")

    @Option(help: "Dense model folder to read.") var model: String
    @Option(help: "FFN rank r (1...min(hidden_size, intermediate_size)).") var rank: Int
    @Option(help: "Model folder to write (config ffn_rank, tensors …_proj.weight_a / weight_b).") var out: String

    func run() throws {
        let source = try loadWeights(model)
        let result: (weights: ModelWeights, report: [LowRankReport])
        do {
            result = try source.lowRank(rank: rank)
        } catch let e as LowRankError {
            throw failure("\(model): \(e)", code: Exit.dataError)
        }
        let dir = URL(fileURLWithPath: out)
        do {
            try ModelFolder.save(result.weights, to: dir, metadata: ["lowrank_from": model, "ffn_rank": "\(rank)"])
            let tok = URL(fileURLWithPath: model).appendingPathComponent(ModelFolder.tokenizerFile)
            let dst = dir.appendingPathComponent(ModelFolder.tokenizerFile)
            if FileManager.default.fileExists(atPath: tok.path) {
                try? FileManager.default.removeItem(at: dst)
                try FileManager.default.copyItem(at: tok, to: dst)
            }
        } catch {
            throw failure("\(out): cannot write the low-rank model: \(error)", code: 73)  // EX_CANTCREAT
        }
        print("matrix                                   shape      rel_frobenius_err")
        for r in result.report {
            print("\(r.name.padding(toLength: 40, withPad: " ", startingAt: 0)) \("\(r.rows)x\(r.cols)".padding(toLength: 10, withPad: " ", startingAt: 0)) \(fmt(r.relativeError, 5))")
        }
        let errs = result.report.map(\.relativeError)
        let c = result.weights.config
        print("wrote \(out): ffn_rank \(rank); FFN MACs per token \(3 * rank * (c.hiddenSize + c.intermediateSize)) per layer "
              + "(dense \(3 * c.hiddenSize * c.intermediateSize))")
        print("rank=\(rank) params_before=\(source.parameterCount) params_after=\(result.weights.parameterCount) "
              + "max_rel_err=\(fmt(errs.max() ?? 0, 5)) mean_rel_err=\(fmt(errs.reduce(0, +) / Double(max(errs.count, 1)), 5))")
    }
}
