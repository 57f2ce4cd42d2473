import Foundation
import Testing
@testable import MiniGPT

// The safetensors reader/writer: round trips per dtype, every malformed-file error (each must name
// the file and the tensor or byte offset, never crash), shape checks at load, and a cross-check
// against the reference implementation (the `safetensors` pip package) in both directions.

/// Sample tensors, one per dtype, with awkward values: signed zero, subnormals, extremes.
private enum Sample {
    /// (2, 3) F32.
    static let f32: [Float] = [0, -0.0, 1.5, -3.25e-38, Float.leastNonzeroMagnitude, 3.4e38]
    /// (4) F16 (values beyond F16 precision are rounded by the writer: compare to `Float(Float16(x))`).
    static let f16: [Float] = [0.1, -65504, 5.96e-8, 1]
    /// (2, 2, 64) I8, every value once.
    static let i8: [Int8] = (0..<256).map { Int8(truncatingIfNeeded: $0 - 128) }
    /// A name that needs JSON escaping.
    static let oddName = "odd \"name\"\\ é\n"

    static func writer() -> SafeTensorsWriter {
        var w = SafeTensorsWriter()
        w.metadata = ["format": "pt", "note": "quote \" and é"]
        w.add("a.f32", shape: [2, 3], floats: f32)
        w.add("b.f16", shape: [4], floats: f16, as: .f16)
        w.add("c.i8", shape: [2, 2, 64], int8s: i8)
        w.add(oddName, shape: [1], floats: [42])
        return w
    }
}

/// Bytes of a safetensors file with a hand-written header (no padding) followed by `data`.
private func rawFile(header: String, data: [UInt8] = []) -> [UInt8] {
    let h = Array(header.utf8)
    var out = [UInt8]()
    withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
    return out + h + data
}

/// Writes `bytes` as `name` in `dir`, opens it, and returns the error it must throw (recording an
/// issue when it opens). Every error must name the file.
private func openError(_ bytes: [UInt8], in dir: TestTempDir, name: String = "bad.safetensors",
                       sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let url = dir.file(name)
    try Data(bytes).write(to: url)
    do {
        _ = try SafeTensorsFile(url: url)
        Issue.record("\(name) (\(bytes.count) bytes) opened but should have been rejected", sourceLocation: sourceLocation)
        return ""
    } catch let e as SafeTensorsError {
        #expect(e.path == url.path, sourceLocation: sourceLocation)
        #expect(e.description.contains(url.path), "message does not name the file: \(e)", sourceLocation: sourceLocation)
        return e.description
    }
}

@Suite("SafeTensors")
struct SafeTensorsTests {
    @Test("writer → reader round trip: F32, F16, I8, metadata, escaped names")
    func roundTrip() throws {
        let dir = try TestTempDir()
        let url = dir.file("m.safetensors")
        try Sample.writer().write(to: url)
        let f = try SafeTensorsFile(url: url)
        #expect(f.tensors.count == 4)
        #expect(f.metadata == ["format": "pt", "note": "quote \" and é"])

        let a = try f.info("a.f32")
        #expect(a.dtype == .f32 && a.shape == [2, 3] && a.count == 6 && a.offsets.count == 24)
        #expect(try f.floats("a.f32", shape: [2, 3]).map(\.bitPattern) == Sample.f32.map(\.bitPattern))

        let b = try f.info("b.f16")
        #expect(b.dtype == .f16 && b.shape == [4] && b.offsets.count == 8)
        #expect(try f.floats("b.f16").map(\.bitPattern) == Sample.f16.map { Float(Float16($0)).bitPattern })

        let c = try f.info("c.i8")
        #expect(c.dtype == .i8 && c.shape == [2, 2, 64] && c.offsets.count == 256)
        #expect(try f.int8s("c.i8", shape: [2, 2, 64]) == Sample.i8)

        #expect(try f.floats(Sample.oddName) == [42])

        // Offsets tile the buffer in insertion order, and the data buffer starts 8-byte aligned.
        #expect(a.offsets == 0..<24 && b.offsets == 24..<32 && c.offsets == 32..<288)
        let bytes = [UInt8](try Data(contentsOf: url))
        let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + n) % 8 == 0)
        #expect(bytes.count == 8 + n + 288 + 4)
    }

    @Test("the writer is deterministic")
    func deterministic() {
        #expect(Sample.writer().serialized() == Sample.writer().serialized())
    }

    @Test("empty header opens with no tensors")
    func emptyFile() throws {
        let dir = try TestTempDir()
        let url = dir.file("empty.safetensors")
        try Data(rawFile(header: "{}")).write(to: url)
        let f = try SafeTensorsFile(url: url)
        #expect(f.tensors.isEmpty && f.metadata.isEmpty)
    }

    @Test("truncated files are rejected at every cut point, naming the file and where")
    func truncated() throws {
        let dir = try TestTempDir()
        let bytes = Sample.writer().serialized()
        let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let cuts: [(Int, String)] = [
            (0, "8-byte"), (3, "8-byte"), (7, "8-byte"),                          // inside the length
            (8, "header claims"), (8 + n / 2, "header claims"), (8 + n - 1, "header claims"),  // inside the header
            (8 + n, "tensor \""), (8 + n + 5, "tensor \""), (bytes.count - 1, "tensor \""),  // inside the data
        ]
        for (cut, marker) in cuts {
            let m = try openError(Array(bytes[0..<cut]), in: dir, name: "cut\(cut).safetensors")
            #expect(m.contains("truncated"), "cut at \(cut): \(m)")
            #expect(m.contains(marker), "cut at \(cut): expected \(marker) in \(m)")
        }
        // Cut inside the last tensor: the message names it and the byte where it ends.
        let last = try openError(Array(bytes[0..<(bytes.count - 1)]), in: dir)
        #expect(last.contains("tensor \"\(Sample.oddName)\""), "\(last)")
        #expect(last.contains("ends at byte \(bytes.count)") && last.contains("has \(bytes.count - 1) bytes"), "\(last)")
    }

    @Test("absurd header length is refused before reading it")
    func absurdHeaderLength() throws {
        let dir = try TestTempDir()
        for n: UInt64 in [UInt64.max, 1 << 40, 100_000_001] {
            var bytes = [UInt8]()
            withUnsafeBytes(of: n.littleEndian) { bytes.append(contentsOf: $0) }
            bytes += Array("{}".utf8)
            let m = try openError(bytes, in: dir)
            #expect(m.contains("header length \(n)") && m.contains("byte 0") && m.contains("100 MB"), "\(m)")
        }
        // Under the cap but longer than the file: truncation, with both numbers.
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt64(99_999_999).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += Array("{}".utf8)
        let m = try openError(bytes, in: dir)
        #expect(m.contains("99999999") && m.contains("only 2"), "\(m)")
    }

    @Test("invalid or non-object JSON header")
    func invalidJSON() throws {
        let dir = try TestTempDir()
        let m1 = try openError(rawFile(header: "{\"a\": "), in: dir)
        #expect(m1.contains("not valid JSON") && m1.contains("bytes 8..<14"), "\(m1)")
        let m2 = try openError(rawFile(header: "\u{FF}garbage"), in: dir)
        #expect(m2.contains("not valid JSON"), "\(m2)")
        let m3 = try openError(rawFile(header: "[1, 2, 3]"), in: dir)
        #expect(m3.contains("not a JSON object"), "\(m3)")
        let m4 = try openError(rawFile(header: "{\"w\": 3}"), in: dir)
        #expect(m4.contains("\"w\"") && m4.contains("not an object"), "\(m4)")
        let m5 = try openError(rawFile(header: "{\"__metadata__\": {\"k\": 1}}"), in: dir)
        #expect(m5.contains("__metadata__"), "\(m5)")
    }

    @Test("bad entries: unknown dtype, bad shape, bad or inconsistent data_offsets")
    func badEntries() throws {
        let dir = try TestTempDir()
        let cases: [(String, [UInt8], [String])] = [
            (#"{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#, [0, 0, 0, 0], ["\"w\"", "BF16", "F32"]),
            (#"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, Array(repeating: 0, count: 8), ["\"w\"", "missing dtype"]),
            (#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}"#, Array(repeating: 0, count: 8), ["\"w\"", "shape"]),
            (#"{"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, Array(repeating: 0, count: 8), ["\"w\"", "shape"]),
            (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, Array(repeating: 0, count: 8), ["\"w\"", "data_offsets"]),
            (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, Array(repeating: 0, count: 8), ["\"w\"", "data_offsets"]),
            (#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, Array(repeating: 0, count: 8),
             ["\"w\"", "[3]", "needs 12 bytes", "give 8"]),
            (#"{"w":{"dtype":"I8","shape":[2,2],"data_offsets":[0,8]}}"#, Array(repeating: 0, count: 8),
             ["\"w\"", "needs 4 bytes", "give 8"]),
        ]
        for (i, (header, data, needles)) in cases.enumerated() {
            let m = try openError(rawFile(header: header, data: data), in: dir, name: "entry\(i).safetensors")
            for s in needles { #expect(m.contains(s), "case \(i) \(header): expected \(s) in \(m)") }
        }
    }

    @Test("a shape whose element count overflows Int is an error, not a crash")
    func shapeOverflow() throws {
        let dir = try TestTempDir()
        let m = try openError(rawFile(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}"#,
                                      data: [0, 0, 0, 0]), in: dir)
        #expect(m.contains("\"w\"") && m.contains("shape"), "\(m)")
        let m2 = try openError(rawFile(header: #"{"w":{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,4]}}"#,
                                       data: [0, 0, 0, 0]), in: dir)
        #expect(m2.contains("\"w\""), "\(m2)")
    }

    @Test("overlapping tensors, holes and trailing bytes")
    func layout() throws {
        let dir = try TestTempDir()
        let overlap = try openError(rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                            data: Array(repeating: 0, count: 12)), in: dir)
        #expect(overlap.contains("\"b\"") && overlap.contains("overlaps") && overlap.contains("data byte 4"), "\(overlap)")
        let hole = try openError(rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#,
                                         data: Array(repeating: 0, count: 20)), in: dir)
        #expect(hole.contains("hole") && hole.contains("8..<12") && hole.contains("\"b\""), "\(hole)")
        let leading = try openError(rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                            data: Array(repeating: 0, count: 12)), in: dir)
        #expect(leading.contains("hole") && leading.contains("0..<4"), "\(leading)")
        let trailing = try openError(rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                                             data: Array(repeating: 0, count: 12)), in: dir)
        #expect(trailing.contains("12 bytes") && trailing.contains("cover 8"), "\(trailing)")
        let duplicate = try openError(rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                                              data: Array(repeating: 0, count: 8)), in: dir)
        #expect(duplicate.contains("overlaps") && duplicate.contains("data byte 0"), "\(duplicate)")
    }

    @Test("missing tensor, wrong shape, wrong dtype at lookup")
    func lookupErrors() throws {
        let dir = try TestTempDir()
        let url = dir.file("m.safetensors")
        try Sample.writer().write(to: url)
        let f = try SafeTensorsFile(url: url)
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch let e as SafeTensorsError { return e.description } catch { return "\(error)" }
        }
        let missing = message { _ = try f.info("nope.weight") }
        #expect(missing.contains(url.path) && missing.contains("missing tensor \"nope.weight\""), "\(missing)")
        let shape = message { _ = try f.info("a.f32", shape: [3, 2]) }
        #expect(shape.contains(url.path) && shape.contains("\"a.f32\"") && shape.contains("expected shape [3, 2], found [2, 3]"), "\(shape)")
        let shape2 = message { _ = try f.floats("b.f16", shape: [2, 2]) }
        #expect(shape2.contains("\"b.f16\"") && shape2.contains("[2, 2]"), "\(shape2)")
        let dtype = message { _ = try f.floats("c.i8") }
        #expect(dtype.contains(url.path) && dtype.contains("\"c.i8\"") && dtype.contains("found I8"), "\(dtype)")
        let dtype2 = message { _ = try f.int8s("a.f32") }
        #expect(dtype2.contains("\"a.f32\"") && dtype2.contains("expected dtype I8, found F32"), "\(dtype2)")
    }

    @Test("ModelWeights(config:file:) checks every name and shape against the config")
    func modelWeightsShapeChecks() throws {
        let dir = try TestTempDir()
        let config = ModelConfig(vocabSize: 40, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4,
                                 numKeyValueHeads: 2, intermediateSize: 24, maxPositionEmbeddings: 32)
        let weights = ModelWeights(random: config, seed: 7)
        let url = dir.file("model.safetensors")
        try weights.writer().write(to: url)
        let file = try SafeTensorsFile(url: url)
        #expect(try ModelWeights(config: config, file: file) == weights)

        func message(_ c: ModelConfig) -> String {
            do { _ = try ModelWeights(config: c, file: file); return "" } catch { return "\(error)" }
        }
        var wrongVocab = config; wrongVocab.vocabSize = 41
        let m1 = message(wrongVocab)
        #expect(m1.contains(url.path) && m1.contains("\"model.embed_tokens.weight\"") && m1.contains("expected shape [41, 16], found [40, 16]"), "\(m1)")
        var wrongFFN = config; wrongFFN.intermediateSize = 32
        let m2 = message(wrongFFN)
        #expect(m2.contains("model.layers.0.mlp.gate_proj.weight") && m2.contains("[32, 16]"), "\(m2)")
        var wrongKV = config; wrongKV.numKeyValueHeads = 4
        let m3 = message(wrongKV)
        #expect(m3.contains("model.layers.0.self_attn.qkv_proj.weight") && m3.contains("expected shape [48, 16], found [32, 16]"), "\(m3)")
        var unfused = config; unfused.fusedQKV = false
        let m4 = message(unfused)
        #expect(m4.contains("missing tensor \"model.layers.0.self_attn.q_proj.weight\""), "\(m4)")
        var untied = config; untied.tieWordEmbeddings = false
        let m5 = message(untied)
        #expect(m5.contains("missing tensor \"lm_head.weight\""), "\(m5)")
        var deeper = config; deeper.numHiddenLayers = 3
        let m6 = message(deeper)
        #expect(m6.contains("missing tensor \"model.layers.2."), "\(m6)")
    }

    @Test("fused / unfused / untied weights survive a model-folder round trip")
    func folderRoundTrip() throws {
        let base = ModelConfig(vocabSize: 40, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4,
                               numKeyValueHeads: 2, intermediateSize: 24, maxPositionEmbeddings: 32)
        var unfused = base; unfused.fusedQKV = false
        var untied = base; untied.tieWordEmbeddings = false
        for (i, c) in [base, unfused, untied].enumerated() {
            let dir = try TestTempDir()
            let w = ModelWeights(random: c, seed: UInt64(i))
            try ModelFolder.save(w, to: dir.url)
            let f = try SafeTensorsFile(url: dir.file(ModelFolder.weightsFile))
            #expect((f.tensors["model.layers.0.self_attn.qkv_proj.weight"] != nil) == c.fusedQKV)
            #expect((f.tensors["model.layers.1.self_attn.v_proj.weight"] != nil) == !c.fusedQKV)
            #expect((f.tensors["lm_head.weight"] != nil) == !c.tieWordEmbeddings)
            #expect(try ModelFolder.load(dir.url) == w)
        }
    }

    // MARK: Cross-check with the reference implementation (pip package `safetensors`)

    static let pythonMissing = missingPythonModules(["numpy", "safetensors.numpy"], pip: ["numpy", "safetensors"])

    @Test("our file read by safetensors.numpy.load_file has the same values")
    func pythonReadsOurs() throws {
        if let missing = Self.pythonMissing { Issue.record(Comment(rawValue: missing)); return }
        let dir = try TestTempDir()
        let url = dir.file("ours.safetensors")
        try Sample.writer().write(to: url)
        let code = """
        import json, sys
        from safetensors import safe_open
        from safetensors.numpy import load_file
        t = load_file(sys.argv[1])
        with safe_open(sys.argv[1], framework="np") as f:
            meta = f.metadata()
        out = {"metadata": meta, "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape),
               "values": [float(x) for x in v.reshape(-1)]} for k, v in t.items()}}
        print(json.dumps(out))
        """
        let r = try runPythonSnippet(code, [url.path])
        try #require(r.succeeded, "python failed: \(r.stderr)")
        struct Entry: Decodable { var dtype: String; var shape: [Int]; var values: [Double] }
        struct Dump: Decodable { var metadata: [String: String]; var tensors: [String: Entry] }
        let dump = try decodeJSON(Dump.self, from: r.stdout)
        #expect(dump.metadata == ["format": "pt", "note": "quote \" and é"])
        #expect(Set(dump.tensors.keys) == ["a.f32", "b.f16", "c.i8", Sample.oddName])
        let a = try #require(dump.tensors["a.f32"]), b = try #require(dump.tensors["b.f16"]), c = try #require(dump.tensors["c.i8"])
        #expect(a.dtype == "float32" && a.shape == [2, 3])
        #expect(a.values.map { Float($0).bitPattern } == Sample.f32.map(\.bitPattern))
        #expect(b.dtype == "float16" && b.shape == [4])
        #expect(b.values.map { Float($0).bitPattern } == Sample.f16.map { Float(Float16($0)).bitPattern })
        #expect(c.dtype == "int8" && c.shape == [2, 2, 64])
        #expect(c.values == Sample.i8.map { Double($0) })
        #expect(dump.tensors[Sample.oddName]?.values == [42])
    }

    @Test("a file written by safetensors.numpy.save_file reads back with the same values")
    func weReadPythons() throws {
        if let missing = Self.pythonMissing { Issue.record(Comment(rawValue: missing)); return }
        let dir = try TestTempDir()
        let url = dir.file("theirs.safetensors")
        let code = """
        import json, sys
        import numpy as np
        from safetensors.numpy import save_file
        t = {
            "model.embed_tokens.weight": (np.arange(15, dtype=np.float32) * 0.37 - 2.0).reshape(5, 3),
            "half": (np.arange(7, dtype=np.float32) / 3.0).astype(np.float16),
            "q.weight": (np.arange(12) * 23 - 128).clip(-128, 127).astype(np.int8).reshape(3, 4),
            "q.weight.scale": np.array([0.5, 0.25, 0.125], dtype=np.float32),
            "scalar": np.array(3.5, dtype=np.float32),
        }
        save_file(t, sys.argv[1], metadata={"producer": "python"})
        print(json.dumps({k: [float(x) for x in v.reshape(-1)] for k, v in t.items()}))
        """
        let r = try runPythonSnippet(code, [url.path])
        try #require(r.succeeded, "python failed: \(r.stderr)")
        let expected = try decodeJSON([String: [Double]].self, from: r.stdout)
        let f = try SafeTensorsFile(url: url)
        #expect(f.metadata == ["producer": "python"])
        #expect(try f.info("model.embed_tokens.weight").shape == [5, 3])
        #expect(try f.floats("model.embed_tokens.weight", shape: [5, 3]) == expected["model.embed_tokens.weight"]?.map { Float($0) })
        #expect(try f.info("half").dtype == .f16)
        #expect(try f.floats("half", shape: [7]) == expected["half"]?.map { Float($0) })
        #expect(try f.int8s("q.weight", shape: [3, 4]).map { Double($0) } == expected["q.weight"])
        #expect(try f.floats("q.weight.scale", shape: [3]) == [0.5, 0.25, 0.125])
        #expect(try f.info("scalar").shape == [] && f.floats("scalar") == [3.5])
    }
}
