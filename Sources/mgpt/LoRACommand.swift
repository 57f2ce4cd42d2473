import ArgumentParser
import Foundation
import MiniGPT
import MiniGPTTrain

/// `mgpt lora …`: LoRA adapter tools (MiniGPT/Adapter.swift; trained by `mgpt train --lora R`).
struct LoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lora",
        abstract: "LoRA adapters: merge an adapter into its base, or show its size.",
        subcommands: [LoRAMerge.self, LoRAInfo.self])
}

/// Loads `adapter` onto the FP32 base `model` (merged), turning errors into a message and an exit code.
private func mergedWeights(model: String, adapter: String) throws -> (weights: ModelWeights, adapter: LoRAAdapter, base: ModelWeights) {
    let base = try loadWeights(model)
    let a: LoRAAdapter
    do { a = try LoRAAdapter.load(URL(fileURLWithPath: adapter), for: base.config) } catch {
        throw failure("\(error)", code: Exit.dataError)
    }
    do { return (try a.merged(into: base), a, base) } catch {
        throw failure("\(model) + \(adapter): \(error)", code: Exit.dataError)
    }
}

/// `mgpt lora merge`: writes base + (α/r)·B·A as a plain FP32 model folder (quantize it afterwards).
struct LoRAMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge a LoRA adapter into its FP32 base and write a plain model folder.")

    @Option(help: "FP32 base model folder.") var model: String
    @Option(help: "LoRA adapter folder (adapter_config.json, adapter_model.safetensors).") var adapter: String
    @Option(help: "Model folder to write.") var out: String

    func run() throws {
        let (merged, a, base) = try mergedWeights(model: model, adapter: adapter)
        let dir = URL(fileURLWithPath: out)
        do {
            try ModelFolder.save(merged, to: dir, metadata: ["lora_merged_from": adapter, "base_model": model])
            let tok = URL(fileURLWithPath: model).appendingPathComponent(ModelFolder.tokenizerFile)
            let dst = dir.appendingPathComponent(ModelFolder.tokenizerFile)
            if FileManager.default.fileExists(atPath: tok.path) {
                try? FileManager.default.removeItem(at: dst)
                try FileManager.default.copyItem(at: tok, to: dst)
            }
        } catch {
            throw failure("\(out): cannot write the merged model: \(error)", code: 73)  // EX_CANTCREAT
        }
        print("wrote \(out): \(model) + \(adapter) (rank \(a.config.r), alpha \(a.config.loraAlpha), \(a.config.targetModules.joined(separator: ",")))")
        print("adapter_params=\(a.parameterCount) base_params=\(base.parameterCount) fraction=\(fmt(Double(a.parameterCount) / Double(base.parameterCount), 5))")
    }
}

/// `mgpt lora info`: the adapter's parameter count and fraction for a base (or for a rank on a base).
struct LoRAInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the trainable-parameter fraction of an adapter, or of a rank, on a base model.",
        discussion: "Last line: rank=… adapter_params=… base_params=… fraction=…")

    @Option(help: "Base model folder.") var model: String
    @Option(help: "An adapter folder to measure.") var adapter: String?
    @Option(help: "A rank to measure instead.") var rank: Int?
    @Option(help: "Projections adapted with --rank, comma separated (qkv,o,gate,up,down).") var targets = "qkv,o,gate,up,down"

    func validate() throws {
        guard (adapter == nil) != (rank == nil) else { throw ValidationError("give exactly one of --adapter or --rank.") }
        if let rank, rank < 1 { throw ValidationError("--rank must be ≥ 1, found \(rank).") }
        for t in targets.split(separator: ",") where LoRATarget(name: String(t)) == nil {
            throw ValidationError("--targets: expected names from qkv,o,gate,up,down, found \"\(t)\".")
        }
    }

    func run() throws {
        if let adapter {
            let (_, a, base) = try mergedWeights(model: model, adapter: adapter)
            print("rank=\(a.config.r) adapter_params=\(a.parameterCount) base_params=\(base.parameterCount) "
                  + "fraction=\(fmt(Double(a.parameterCount) / Double(base.parameterCount), 5))")
        } else if let rank {
            let base = try loadWeights(model)
            let spec = LoRASpec(rank: rank, targets: targets.split(separator: ",").compactMap { LoRATarget(name: String($0)) })
            print("rank=\(rank) targets=\(targets) adapter_params=\(spec.parameterCount(base.config)) base_params=\(base.parameterCount) "
                  + "fraction=\(fmt(spec.trainableFraction(base.config), 5))")
        }
    }
}
