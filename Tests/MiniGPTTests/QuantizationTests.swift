import Foundation
import Testing
@testable import MiniGPT

// INT8 weights (phases 5/6): the quantizer's error bound, I8 model folders, and the quantized
// engine against the numpy oracle (which dequantizes I8 + scale itself, in float64).

@Suite struct QuantizationTests {
    @Test("per-row symmetric quantization: |w − q·s| ≤ s/2, |q| ≤ 127, the row maximum maps to ±127")
    func roundTripBound() {
        var rng = RNG(seed: 1)
        let (rows, cols) = (24, 70)
        var w = gaussians(rows * cols, &rng, scale: 0.05)
        w[3 * cols + 9] = 4            // an outlier row
        for c in 0..<cols { w[5 * cols + c] = 0 }  // an all-zero row
        let q = QuantizedMatrix(quantizing: w, rows: rows, cols: cols)
        #expect(q.scales[5] == 0 && q.values[(5 * cols)..<(6 * cols)].allSatisfy { $0 == 0 })
        #expect(q.scales[3] == 4 / 127 && q.values[3 * cols + 9] == 127)
        var worst = 0.0
        for r in 0..<rows {
            let s = Double(q.scales[r])
            if s > 0 { #expect(q.values[(r * cols)..<((r + 1) * cols)].map { abs(Int($0)) }.max() == 127, "row \(r)") }
            for c in 0..<cols {
                let v = q.values[r * cols + c]
                #expect(v >= -127 && v <= 127)
                let err = abs(Double(w[r * cols + c]) - Double(v) * s)
                #expect(err <= s / 2 * (1 + 1e-12), "(\(r), \(c)): error \(err) > s/2 = \(s / 2)")
                if s > 0 { worst = max(worst, err / s) }
            }
        }
        #expect(worst > 0.4, "a random matrix should come close to the s/2 bound, worst \(worst)·s")
        let dq = q.dequantized()
        #expect(dq[3 * cols + 9] == 4)
    }

    @Test("quantized folders save I8 + .scale, load back equal, and run bit-identically", arguments: [true, false])
    func saveLoad(fused: Bool) throws {
        var config = ModelConfig(vocabSize: 97, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
                                 numKeyValueHeads: 2, intermediateSize: 80, maxPositionEmbeddings: 64)
        config.fusedQKV = fused
        let w = oracleWeights(config, seed: 4).quantized(attention: true, ffn: true)
        #expect(w.config.weightDType == WeightDTypes(attention: .int8, ffn: .int8))
        let dir = try TestTempDir("minigpt-int8")
        try ModelFolder.save(w, to: dir.url)
        let file = try SafeTensorsFile(url: dir.file(ModelFolder.weightsFile))
        let qkvName = fused ? TensorName.qkv(0) : TensorName.k(0)
        #expect(file.tensors[qkvName]?.dtype == .i8)
        #expect(file.tensors[qkvName + ".scale"]?.dtype == .f32)
        #expect(file.tensors[TensorName.down(1) + ".scale"]?.shape == [32])
        #expect(file.tensors[TensorName.embed]?.dtype == .f32)
        let back = try ModelFolder.load(dir.url)
        #expect(back == w)
        #expect(back.quantized.count == 2 * 5)
        let ids = oraclePrompt(length: 9, vocab: 97, seed: 2)
        // (A session owns its logits buffer: keep each alive while copying out of it.)
        let sa = Session(model: Transformer(weights: w)), sb = Session(model: Transformer(weights: back))
        let a = withExtendedLifetime(sa) { Array(sa.prefill(ids)) }
        let b = withExtendedLifetime(sb) { Array(sb.prefill(ids)) }
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        let json = try String(contentsOf: dir.file(ModelFolder.configFile), encoding: .utf8)
        #expect(json.contains("\"weight_dtype\""))
    }

    @Test("attention-only quantization leaves the FFN in FP32")
    func attentionOnly() throws {
        let config = ModelConfig(vocabSize: 64, hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2,
                                 numKeyValueHeads: 1, intermediateSize: 48, maxPositionEmbeddings: 32)
        let w = oracleWeights(config, seed: 5).quantized(attention: true, ffn: false)
        let dir = try TestTempDir("minigpt-int8")
        try ModelFolder.save(w, to: dir.url)
        let file = try SafeTensorsFile(url: dir.file(ModelFolder.weightsFile))
        #expect(file.tensors[TensorName.o(0)]?.dtype == .i8 && file.tensors[TensorName.gate(0)]?.dtype == .f32)
        let m = Transformer(weights: try ModelFolder.load(dir.url))
        #expect(m.layers[0].qkv.i8 != nil && m.layers[0].gateUp.i8 == nil && m.layers[0].down.i8 == nil)
        #expect(m.weightBytes < Transformer(weights: oracleWeights(config, seed: 5)).weightBytes)
    }

    @Test("a stale INT8 copy (master changed by training) is re-quantized, not used")
    func staleCopyIgnored() {
        let config = ModelConfig(vocabSize: 64, hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2,
                                 numKeyValueHeads: 1, intermediateSize: 48, maxPositionEmbeddings: 32)
        var w = oracleWeights(config, seed: 6).quantized(attention: true, ffn: true)
        #expect(w.currentQuantized(TensorName.o(0), master: w.layers[0].o) != nil)
        w.layers[0].o[0] += 0.5
        #expect(w.currentQuantized(TensorName.o(0), master: w.layers[0].o) == nil)
        let fresh = QuantizedMatrix(quantizing: w.layers[0].o, rows: 32, cols: 32)
        let m = Transformer(weights: w)
        #expect(m.layers[0].o.scales![0] == fresh.scales[0])
    }

    @Test("bad INT8 input is an error naming the tensor or key")
    func badInput() throws {
        let dir = try TestTempDir("minigpt-int8")
        var wr = SafeTensorsWriter()
        wr.add("w", shape: [2, 3], int8s: [1, 2, 3, 4, 5, 6])
        try wr.write(to: dir.file("a.safetensors"))
        let f = try SafeTensorsFile(url: dir.file("a.safetensors"))
        #expect(throws: SafeTensorsError.self) { _ = try f.matrix("w", rows: 2, cols: 3) }
        do { _ = try f.matrix("w", rows: 2, cols: 3) } catch { #expect("\(error)".contains("w.scale"), "\(error)") }
        var wr2 = SafeTensorsWriter()
        wr2.add("w", shape: [1, 2], int8s: [-128, 1])
        wr2.add("w.scale", shape: [1], floats: [0.1])
        try wr2.write(to: dir.file("b.safetensors"))
        do { _ = try SafeTensorsFile(url: dir.file("b.safetensors")).matrix("w", rows: 1, cols: 2); Issue.record("−128 accepted") }
        catch { #expect("\(error)".contains("-128") || "\(error)".contains("−128"), "\(error)") }

        func decode(_ json: String) -> String {
            do { _ = try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)); return "" } catch { return "\(error)" }
        }
        let base = #""vocab_size": 8, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 8"#
        #expect(decode("{\(base), \"weight_dtype\": {\"attention\": \"int8\"}}") == "")
        #expect(decode("{\(base), \"weight_dtype\": {\"atention\": \"int8\"}}").contains("weight_dtype.atention"))
        #expect(decode("{\(base), \"weight_dtype\": {\"ffn\": \"int4\"}}").contains("weight_dtype.ffn"))
    }

    @Test("the INT8 engine tracks the oracle on the same I8 folder (tolerance: activation rounding)")
    func matchesOracle() throws {
        if let m = OracleTests.numpyMissing { Issue.record(Comment(rawValue: m)); return }
        let config = ModelConfig()
        let w = oracleWeights(config, seed: 12).quantized(attention: true, ffn: true)
        let dir = try TestTempDir("minigpt-int8")
        try ModelFolder.save(w, to: dir.url)
        let ids = oraclePrompt(length: 24, vocab: config.vocabSize, seed: 13)
        let oracle = try oracleLogits(model: dir.url, prompts: [ids])[0]
        let weights = try ModelFolder.load(dir.url)
        // 1. The FP32 engine on the dequantized weights equals the oracle: the I8 → float path is exact.
        var fp = weights
        fp.config.weightDType = nil
        let fpSession = Session(model: Transformer(weights: fp))
        // 2. The INT8 engine differs only by the per-call activation rounding (|x − xq·s_x| ≤ s_x/2).
        let q8 = Session(model: Transformer(weights: weights))
        var maxFP = 0.0, maxQ = 0.0, sumQ = 0.0, agree = 0
        for (t, id) in ids.enumerated() {
            let a = fpSession.step(id), b = q8.step(id)
            for v in 0..<config.vocabSize {
                track(&maxFP, Double(a[v]), oracle[t][v])
                track(&maxQ, Double(b[v]), oracle[t][v])
                sumQ += abs(Double(b[v]) - oracle[t][v])
            }
            let best = oracle[t].indices.max { oracle[t][$0] < oracle[t][$1] }!
            if b.indices.max(by: { b[$0] < b[$1] })! == best { agree += 1 }
        }
        let row = oracle.last!, mean = row.reduce(0, +) / Double(row.count)
        let std = (row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(row.count)).squareRoot()
        let meanQ = sumQ / Double(ids.count * config.vocabSize)
        print("int8 vs oracle: fp32-dequantized max |Δ| \(maxFP); int8 max |Δ| \(maxQ), mean |Δ| \(meanQ), logit std \(std), argmax agreement \(agree)/\(ids.count)")
        #expect(maxFP <= 1e-4)
        // Tolerance. The weights are exact (check 1), so the gap is the dynamic activation rounding
        // alone: per element ≤ s_x/2 with s_x = max|x|/127, i.e. RMS noise s_x/√12 ≈ 1 % of the
        // vector's RMS for a max/RMS ratio of ~4 (d = 128). That noise enters 21 products per token
        // and is amplified by this test's deliberately peaked attention (scores of std ≈ 2), so we
        // expect a few % of the logit scale; measured: mean 3 %, max 17.5 % of the logit std with
        // every argmax kept (seed 12). We allow mean 5 %, max 25 %, and at most one argmax flip.
        #expect(meanQ <= 0.05 * std, "mean |Δ| \(meanQ) vs logit std \(std)")
        #expect(maxQ <= 0.25 * std, "max |Δ| \(maxQ) vs logit std \(std)")
        #expect(maxQ > 1e-4, "INT8 activations should not be exact (is the INT8 path running?)")
        #expect(agree >= ids.count - 1, "argmax agreement \(agree)/\(ids.count)")
    }
}
