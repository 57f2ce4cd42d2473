import ArgumentParser
import Foundation
import MiniGPT

/// `mgpt quantize`: post-training INT8 quantization of a model folder (phases 5/6), with a quality
/// check of the result against its FP32 source on one teacher-forced token sequence.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize a model's attention and/or FFN weights to INT8 (per-row symmetric scales).")

    @Option(help: "FP32 model folder to read.") var model: String
    @Option(help: "Model folder to write (I8 tensors with F32 .scale siblings; config weight_dtype).") var out: String
    @Flag(help: "Quantize the attention projections (QKV, O).") var attention = false
    @Flag(help: "Quantize the FFN projections (gate, up, down).") var ffn = false
    @Option(help: "Instead of INT8: round the chosen groups to a 2-7 bit per-row grid and store them as FP32 (a simulation for quality studies; the engine has no kernels below 8 bits).") var fakeBits: Int?
    @Option(help: "Tokens of the teacher-forced quality check (0 = skip).") var checkTokens = 256
    @Option(help: "Seed of the quality check's token sequence.") var seed: UInt64 = 1
    @Option(help: "A text file whose first tokens (model's tokenizer.json) replace the random check sequence.") var checkText: String?

    func validate() throws {
        guard checkTokens >= 0 else { throw ValidationError("--check-tokens must be >= 0") }
        if let fakeBits, !(2...7).contains(fakeBits) { throw ValidationError("--fake-bits must be in 2...7 (8 bits is the real INT8 path: omit the option)") }
    }

    func run() throws {
        let source = try loadWeights(model)
        if ffn && source.config.ffnRank > 0 {
            throw failure("\(model): the FFN is low-rank (ffn_rank \(source.config.ffnRank)); INT8 factors are not supported, quantize --attention only", code: Exit.dataError)
        }
        let both = !attention && !ffn  // neither flag: both groups (the FFN only when dense)
        let q = fakeBits.map { source.fakeQuantized(bits: $0, attention: attention || both, ffn: ffn || both) }
            ?? source.quantized(attention: attention || both, ffn: ffn || both)
        let dir = URL(fileURLWithPath: out)
        do {
            var meta = ["quantized_from": model]
            if let fakeBits { meta["fake_quantized_bits"] = "\(fakeBits)" }
            try ModelFolder.save(q, to: dir, metadata: meta)
            // The tokenizer, and the training record (its train_seq_len is the window `mgpt eval`
            // scores with; it says how the FP32 source was trained, e.g. with QAT).
            for name in [ModelFolder.tokenizerFile, "training.json"] {
                let src = URL(fileURLWithPath: model).appendingPathComponent(name)
                let dst = dir.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: src.path) {
                    try? FileManager.default.removeItem(at: dst)
                    try FileManager.default.copyItem(at: src, to: dst)
                }
            }
        } catch {
            throw failure("\(out): cannot write the quantized model: \(error)", code: 73)  // EX_CANTCREAT
        }
        let dt = q.config.weightDType ?? WeightDTypes()
        let before = Transformer(weights: source), after = Transformer(weights: q)
        if let fakeBits { print("(simulated \(fakeBits)-bit grid, stored FP32: attention \(attention || both), ffn \((ffn || both) && source.config.ffnRank == 0))") }
        print("wrote \(out): attention \(dt.attention.rawValue), ffn \(dt.ffn.rawValue); decode reads \(after.weightBytes) weight bytes per token (FP32: \(before.weightBytes))")
        guard checkTokens > 0 else { return }

        // Quality: both models see the same random tokens (teacher forcing); compare every position.
        let c = source.config
        let T = min(checkTokens, c.maxPositionEmbeddings)
        var ids: [Int]
        var what = "random tokens (seed \(seed))"
        if let checkText {
            let tok = try loadTokenizer(URL(fileURLWithPath: model).appendingPathComponent(ModelFolder.tokenizerFile).path)
            guard let text = try? String(contentsOfFile: checkText, encoding: .utf8) else {
                throw failure("\(checkText): cannot read the check text as UTF-8", code: Exit.noInput)
            }
            ids = Array(tok.encode(String(text.prefix(8 * T))).prefix(T))
            guard ids.count > 1 else { throw failure("\(checkText): fewer than 2 tokens", code: Exit.dataError) }
            what = "\(checkText)"
        } else {
            var rng = RNG(seed: seed)
            ids = (0..<T).map { _ in Int(rng.next() % UInt64(c.vocabSize)) }
        }
        let a = Session(model: before), b = Session(model: after)
        var maxErr: Float = 0, sumErr = 0.0, sumSq = 0.0, agree = 0
        for id in ids {
            let la = a.step(id), lb = b.step(id)
            var ia = 0, ib = 0
            let mean = la.reduce(0, +) / Float(c.vocabSize)
            for v in 0..<c.vocabSize {
                let e = abs(la[v] - lb[v])
                maxErr = max(maxErr, e)
                sumErr += Double(e)
                sumSq += Double((la[v] - mean) * (la[v] - mean))
                if la[v] > la[ia] { ia = v }
                if lb[v] > lb[ib] { ib = v }
            }
            if ia == ib { agree += 1 }
        }
        let n = Double(ids.count * c.vocabSize)
        let std = (sumSq / n).squareRoot()
        print("quality vs FP32 over \(ids.count) teacher-forced tokens of \(what): max |Δlogit| \(fmt(Double(maxErr), 4)), "
              + "mean |Δlogit| \(fmt(sumErr / n, 5)), FP32 logit std \(fmt(std, 4)), next-token agreement \(agree)/\(ids.count)")
        print("max_logit_err=\(fmt(Double(maxErr), 5)) mean_logit_err=\(fmt(sumErr / n, 6)) logit_std=\(fmt(std, 4)) "
              + "next_token_agreement=\(fmt(Double(agree) / Double(ids.count), 4)) weight_bytes=\(after.weightBytes) fp32_weight_bytes=\(before.weightBytes)")
    }
}
