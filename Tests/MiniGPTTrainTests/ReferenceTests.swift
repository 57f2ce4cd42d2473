import Foundation
import Testing
import MiniGPT
@testable import MiniGPTTrain

/// Path of `Tests/reference/minigpt_ref_backward.py` from this file's location.
func referenceScript() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("reference/minigpt_ref_backward.py")
}

/// Runs python3 with `args`; returns (exit status, stdout + stderr).
func runPython(_ args: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3"] + args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite("Gradients against the independent numpy reference")
struct ReferenceTests {
    @Test(arguments: [Float(0), Float(0.1)])
    func gradientsMatchNumpy(smoothing: Float) throws {
        let (status, out) = try runPython(["-c", "import numpy"])
        try #require(status == 0, "python3 with numpy is required for this test (pip install numpy): \(out)")
        let c = tinyConfig()
        let weights = tinyWeights(c)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mgpt-ref-\(getpid())-\(Int(smoothing * 10))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try c.save(to: dir.appendingPathComponent("config.json"))
        try weights.writer().write(to: dir.appendingPathComponent("model.safetensors"))
        let B = 3, T = 7
        let (ids, targets) = tinyBatch(B: B, T: T, V: c.vocabSize, seed: 21)
        let batch: [String: Any] = [
            "ids": (0..<B).map { b in ids[(b * T)..<((b + 1) * T)].map(Int.init) },
            "targets": (0..<B).map { b in targets[(b * T)..<((b + 1) * T)].map(Int.init) },
            "smoothing": Double(smoothing),
        ]
        let batchURL = dir.appendingPathComponent("batch.json")
        try JSONSerialization.data(withJSONObject: batch).write(to: batchURL)
        let gradsURL = dir.appendingPathComponent("grads.safetensors")
        let (rc, log) = try runPython([referenceScript().path, "grad", "--model", dir.path,
                                       "--batch", batchURL.path, "--out", gradsURL.path])
        try #require(rc == 0, "reference failed: \(log)")

        let model = try TrainableModel(weights: weights, batch: B, seqLen: T)
        let loss = model.forwardBackward(ids: ids, targets: targets, smoothing: smoothing)
        let ref = try SafeTensorsFile(url: gradsURL)
        let refLoss = try #require(Float(ref.metadata["loss"] ?? ""))
        #expect(abs(loss - refLoss) <= 1e-4 * max(1, abs(refLoss)), "loss \(loss) vs numpy \(refLoss)")

        let g = model.layout.unpack(model.gradients.pointer)
        var tensors: [(String, [Float])] = [(TensorName.embed, g.embed), (TensorName.finalNorm, g.finalNorm)]
        for (i, l) in g.layers.enumerated() {
            tensors += [(TensorName.attnNorm(i), l.attnNorm), (TensorName.qkv(i), l.qkv), (TensorName.o(i), l.o),
                        (TensorName.ffnNorm(i), l.ffnNorm), (TensorName.gate(i), l.gate), (TensorName.up(i), l.up),
                        (TensorName.down(i), l.down)]
        }
        var worst = 0.0
        for (name, ours) in tensors {
            let theirs = try ref.floats(name)
            var maxDiff: Float = 0, maxRef: Float = 0
            for i in ours.indices { maxDiff = max(maxDiff, abs(ours[i] - theirs[i])); maxRef = max(maxRef, abs(theirs[i])) }
            let rel = Double(maxDiff / max(maxRef, 1e-3))
            worst = max(worst, rel)
            #expect(rel <= 1e-4, "\(name): max |Δ| \(maxDiff), max |ref| \(maxRef)")
            #expect(maxRef > 0, "\(name): reference gradient is all zero")
        }
        print("numpy reference (ε=\(smoothing)): loss \(loss) vs \(refLoss); worst max|Δ|/max|ref| = \(worst)")
    }
}
