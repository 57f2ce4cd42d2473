import Foundation
import Testing
@testable import MiniGPT

// config.json: Hugging Face key names, round trips, and precise errors for unknown keys, missing
// keys, wrong types and impossible shapes.

/// The default config as a JSON object, to edit key by key.
private func defaultJSON() throws -> [String: Any] {
    let data = try JSONEncoder().encode(ModelConfig())
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// Decodes `object` and returns the `ModelConfigError` it must throw (or records an issue).
private func decodeError(_ object: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) throws -> ModelConfigError? {
    let data = try JSONSerialization.data(withJSONObject: object)
    do {
        let c = try JSONDecoder().decode(ModelConfig.self, from: data)
        Issue.record("decoded \(c) but expected an error", sourceLocation: sourceLocation)
        return nil
    } catch let e as ModelConfigError {
        return e
    }
}

@Suite("ModelConfig")
struct ModelConfigTests {
    @Test("JSON round trip uses the Hugging Face key names")
    func roundTrip() throws {
        let object = try defaultJSON()
        let expectedKeys: Set<String> = [
            "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "intermediate_size", "max_position_embeddings", "rope_theta", "rms_norm_eps",
            "tie_word_embeddings", "fused_qkv", "ffn_rank", "early_exit_layers", "model_type",
        ]
        #expect(Set(object.keys) == expectedKeys)
        #expect(object["hidden_size"] as? Int == 128 && object["num_key_value_heads"] as? Int == 2)
        #expect(object["model_type"] as? String == "minigpt")

        let custom = ModelConfig(vocabSize: 300, hiddenSize: 96, numHiddenLayers: 3, numAttentionHeads: 6,
                                 numKeyValueHeads: 3, intermediateSize: 200, maxPositionEmbeddings: 77,
                                 ropeTheta: 500_000, rmsNormEps: 1e-6, tieWordEmbeddings: false, fusedQKV: false,
                                 ffnRank: 16, earlyExitLayers: [1, 2])
        for c in [ModelConfig(), custom] {
            let back = try JSONDecoder().decode(ModelConfig.self, from: JSONEncoder().encode(c))
            #expect(back == c)
        }
        // Through a file, as a model folder stores it.
        let dir = try TestTempDir()
        let url = dir.file("config.json")
        try custom.save(to: url)
        #expect(try ModelConfig.load(from: url) == custom)
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text.contains("\"num_key_value_heads\" : 3") && text.contains("\"tie_word_embeddings\" : false"), "\(text)")
    }

    @Test("a Hugging Face Llama-style config.json loads, defaults applied, tooling keys ignored")
    func huggingFaceStyle() throws {
        let json = """
        {"architectures": ["LlamaForCausalLM"], "hidden_act": "silu", "torch_dtype": "float32",
         "vocab_size": 512, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 160, "max_position_embeddings": 128, "bos_token_id": 1, "eos_token_id": 2}
        """
        let c = try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8))
        #expect(c.hiddenSize == 64 && c.numHiddenLayers == 2 && c.intermediateSize == 160)
        #expect(c.numKeyValueHeads == 4, "num_key_value_heads defaults to num_attention_heads (MHA)")
        #expect(c.ropeTheta == 10000 && c.rmsNormEps == 1e-5 && c.tieWordEmbeddings && c.fusedQKV)
        #expect(c.ffnRank == 0 && c.earlyExitLayers.isEmpty && c.modelType == "minigpt")
        #expect(c.headDim == 16 && c.kvDim == 64 && c.qkvDim == 192 && c.groupSize == 1)
    }

    @Test("derived shapes of the default config")
    func derived() {
        let c = ModelConfig()
        #expect(c.headDim == 32 && c.qDim == 128 && c.kvDim == 64 && c.qkvDim == 256 && c.groupSize == 2)
    }

    @Test("unknown keys are rejected and named", arguments: ["num_layers", "hidden_dim", "Vocab_Size"])
    func unknownKey(_ key: String) throws {
        var o = try defaultJSON()
        o[key] = 4
        let e = try decodeError(o)
        #expect(e == .unknownKey(key))
        #expect(e?.description.contains("\"\(key)\"") == true)
    }

    @Test("missing required keys are named", arguments: [
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
        "max_position_embeddings",
    ])
    func missingKey(_ key: String) throws {
        var o = try defaultJSON()
        o.removeValue(forKey: key)
        let e = try decodeError(o)
        #expect(e == .missingKey(key))
        #expect(e?.description.contains("missing required key \"\(key)\"") == true)
    }

    /// One impossible value: the key set to `json`, the key the error must name, text it must contain.
    struct Impossible: Sendable, CustomTestStringConvertible {
        var key: String, json: String, named: String, needle: String
        var testDescription: String { "\(key)=\(json)" }
    }

    static let impossible: [Impossible] = [
        Impossible(key: "num_attention_heads", json: #"3"#, named: "num_attention_heads", needle: "divisor of hidden_size (128)"),
        Impossible(key: "num_attention_heads", json: #"5"#, named: "num_attention_heads", needle: "found 5"),
        Impossible(key: "num_key_value_heads", json: #"3"#, named: "num_key_value_heads", needle: "divisor of num_attention_heads (4)"),
        Impossible(key: "num_key_value_heads", json: #"8"#, named: "num_key_value_heads", needle: "found 8"),
        Impossible(key: "hidden_size", json: #"12"#, named: "num_attention_heads", needle: "head_dim 3"),
        Impossible(key: "vocab_size", json: #"-1"#, named: "vocab_size", needle: "found -1"),
        Impossible(key: "hidden_size", json: #"0"#, named: "hidden_size", needle: "found 0"),
        Impossible(key: "num_hidden_layers", json: #"-2"#, named: "num_hidden_layers", needle: "found -2"),
        Impossible(key: "num_attention_heads", json: #"0"#, named: "num_attention_heads", needle: "found 0"),
        Impossible(key: "num_key_value_heads", json: #"-1"#, named: "num_key_value_heads", needle: "found -1"),
        Impossible(key: "intermediate_size", json: #"-5"#, named: "intermediate_size", needle: "found -5"),
        Impossible(key: "max_position_embeddings", json: #"0"#, named: "max_position_embeddings", needle: "found 0"),
        Impossible(key: "rope_theta", json: #"1"#, named: "rope_theta", needle: "> 1"),
        Impossible(key: "rms_norm_eps", json: #"0"#, named: "rms_norm_eps", needle: "> 0"),
        Impossible(key: "rms_norm_eps", json: #"-1e-5"#, named: "rms_norm_eps", needle: "> 0"),
        Impossible(key: "ffn_rank", json: #"-1"#, named: "ffn_rank", needle: "found -1"),
        Impossible(key: "ffn_rank", json: #"129"#, named: "ffn_rank", needle: "found 129"),
        Impossible(key: "early_exit_layers", json: #"[0]"#, named: "early_exit_layers", needle: "found 0"),
        Impossible(key: "early_exit_layers", json: #"[4]"#, named: "early_exit_layers", needle: "found 4"),
        Impossible(key: "model_type", json: #""llama""#, named: "model_type", needle: "\"llama\""),
    ]

    @Test("impossible shapes and values are rejected, naming the key, expected and found",
          arguments: ModelConfigTests.impossible)
    func impossibleShape(_ c: Impossible) throws {
        var o = try defaultJSON()
        o[c.key] = try JSONSerialization.jsonObject(with: Data(c.json.utf8), options: .fragmentsAllowed)
        let e = try #require(try decodeError(o))
        guard case .invalid(let k, let expected, let found) = e else {
            Issue.record("\(c.testDescription): expected .invalid, got \(e)"); return
        }
        #expect(k == c.named, "\(c.testDescription): \(e)")
        #expect(!expected.isEmpty && !found.isEmpty)
        #expect(e.description.contains("\"\(c.named)\"") && e.description.contains(c.needle), "\(c.testDescription): \(e)")
    }

    @Test("validate() catches impossible shapes built in code, too")
    func validateInCode() {
        var c = ModelConfig()
        c.numKeyValueHeads = 3
        #expect(throws: ModelConfigError.invalid(key: "num_key_value_heads", expected: "a divisor of num_attention_heads (4)", found: "3")) {
            try c.validate()
        }
        #expect(throws: Never.self) { try ModelConfig().validate() }
    }

    @Test("file errors name the file and the key")
    func fileErrors() throws {
        let dir = try TestTempDir()
        func loadError(_ text: String) throws -> String {
            let url = dir.file("config.json")
            try Data(text.utf8).write(to: url)
            do { _ = try ModelConfig.load(from: url); return "" } catch {
                let m = "\(error)"
                #expect(m.contains(url.path), "no file in \(m)")
                return m
            }
        }
        let wrongType = try loadError(#"{"vocab_size": 512, "hidden_size": "128", "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 320, "max_position_embeddings": 256}"#)
        #expect(wrongType.contains("hidden_size"), "\(wrongType)")
        let fraction = try loadError(#"{"vocab_size": 512.5, "hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 320, "max_position_embeddings": 256}"#)
        // swift-corelibs-foundation reports a fractional number for an Int field as "not valid
        // JSON" without the key; ModelConfig reads integers as numbers itself to name it.
        #expect(fraction.contains("vocab_size") && fraction.contains("512.5"), "\(fraction)")
        let nullValue = try loadError(#"{"vocab_size": 512, "hidden_size": 128, "num_hidden_layers": null, "num_attention_heads": 4, "intermediate_size": 320, "max_position_embeddings": 256}"#)
        #expect(nullValue.contains("num_hidden_layers"), "\(nullValue)")
        let unknown = try loadError(#"{"vocab_size": 512, "hidden_size": 128, "n_layer": 4}"#)
        #expect(unknown.contains("unknown key \"n_layer\""), "\(unknown)")
        let notJSON = try loadError("{vocab_size: 512")
        #expect(!notJSON.isEmpty)
        let notObject = try loadError("[1, 2]")
        #expect(!notObject.isEmpty)

        let missingFile = dir.file("absent.json")
        do { _ = try ModelConfig.load(from: missingFile); Issue.record("loaded a missing file") } catch {
            #expect("\(error)".contains(missingFile.path) && "\(error)".contains("cannot read"), "\(error)")
        }
    }

    @Test("multiply-adds per token count the projections, attention and head")
    func macs() {
        let c = ModelConfig()
        // d=128, F=320, qkv 256 rows, 4 layers, V=512: per layer 128·256 + 128·128 + 3·128·320 = 172032,
        // attention 2·4·32·(pos+1); head 512·128 = 65536.
        #expect(c.macsPerToken(position: 0) == 4 * (172_032 + 256) + 65_536)
        #expect(c.macsPerToken(position: 9) - c.macsPerToken(position: 8) == 4 * 256)
    }
}
