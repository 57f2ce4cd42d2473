import Foundation

// tokenizer.json in the Hugging Face `tokenizers` format (huggingface/tokenizers,
// `tokenizers/src/tokenizer/serialization.rs` and `models/bpe/serialization.rs`): a BPE model whose
// `vocab` maps the GPT-2 byte-level spelling of each token to its id and whose `merges` are "left right"
// strings in rank order, the ByteLevel pre-tokenizer and decoder, and the specials as `added_tokens`
// right after the model vocabulary. The writer is deterministic (fixed key order, vocab in id order),
// so the same merges always give the same file bytes.

extension Tokenizer {
    /// Reads a tokenizer.json written by `save(to:)` (or any HF file with the same id layout).
    ///
    /// Throws `TokenizerError` naming the file and the JSON path / byte offset of the first problem:
    /// invalid JSON, a missing key, a pre-tokenizer other than ByteLevel(add_prefix_space=false,
    /// use_regex=true), a vocab that breaks the id layout, a merge whose result is not the next id,
    /// or specials out of order.
    public convenience init(contentsOf url: URL) throws {
        let file = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError(file: file, message: "cannot read: \(error.localizedDescription)")
        }
        let root = try JSONReader.parse([UInt8](data), file: file)
        let parsed = try TokenizerFileReader(file: file).read(root)
        self.init(merges: parsed.merges, observationTokens: parsed.observation, intentTokens: parsed.intent)
    }

    /// Writes tokenizer.json (HF format, deterministic bytes) atomically.
    public func save(to url: URL) throws {
        do { try Data(jsonText().utf8).write(to: url, options: .atomic) } catch {
            throw TokenizerError(file: url.path, message: "cannot write: \(error.localizedDescription)")
        }
    }

    /// The tokenizer.json text.
    func jsonText() -> String {
        let byteLevel = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#
        var s = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [\n"
        let names = Self.specialNames(observation: observationTokenCount, intent: intentTokenCount)
        for (k, name) in names.enumerated() {
            s += "    {\"id\": \(bosID + k), \"content\": "
            appendJSONString(name, to: &s)
            s += ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
            s += k + 1 < names.count ? ",\n" : "\n"
        }
        s += "  ],\n  \"normalizer\": null,\n"
        s += "  \"pre_tokenizer\": \(byteLevel),\n"
        s += "  \"post_processor\": \(byteLevel),\n"
        s += "  \"decoder\": \(byteLevel),\n"
        s += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
        s += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
        s += "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
        s += "    \"vocab\": {\n"
        let modelSize = 256 + merges.count
        for id in 0..<modelSize {
            s += "      "
            appendJSONString(ByteLevel.encode(pieces[id]), to: &s)
            s += ": \(id)"
            s += id + 1 < modelSize ? ",\n" : "\n"
        }
        s += "    },\n    \"merges\": [\n"
        for (r, m) in merges.enumerated() {
            s += "      "
            appendJSONString(ByteLevel.encode(pieces[Int(m.left)]) + " " + ByteLevel.encode(pieces[Int(m.right)]), to: &s)
            s += r + 1 < merges.count ? ",\n" : "\n"
        }
        s += "    ]\n  }\n}\n"
        return s
    }
}

/// Validates a parsed tokenizer.json against MiniGPT's id layout.
struct TokenizerFileReader {
    let file: String

    /// "path (byte N): message".
    func fail(_ path: String, _ node: JSONNode?, _ message: String) -> TokenizerError {
        let at = node.map { " (byte \($0.offset))" } ?? ""
        return TokenizerError(file: file, message: "\(path)\(at): \(message)")
    }

    func object(_ node: JSONNode?, _ path: String, parent: JSONNode) throws -> JSONNode {
        guard let node else { throw fail(path, parent, "missing key: expected an object") }
        guard case .object = node.value else { throw fail(path, node, "expected an object, found \(node.kind)") }
        return node
    }

    func string(_ node: JSONNode, _ path: String) throws -> String {
        guard case .string(let s) = node.value else { throw fail(path, node, "expected a string, found \(node.kind)") }
        return s
    }

    func int(_ node: JSONNode, _ path: String) throws -> Int {
        guard case .number(let x) = node.value, x == x.rounded(), abs(x) < 1e15 else {
            throw fail(path, node, "expected an integer, found \(node.kind)")
        }
        return Int(x)
    }

    /// Checks an optional key holds `expected` (absent = the HF default `defaultValue`).
    func expectBool(_ parent: JSONNode, _ key: String, _ path: String, _ expected: Bool, default defaultValue: Bool) throws {
        guard let node = parent[key] else {
            if defaultValue != expected { throw fail(path + "." + key, parent, "missing: MiniGPT needs \(expected), HF's default is \(defaultValue)") }
            return
        }
        guard case .bool(let b) = node.value, b == expected else {
            throw fail(path + "." + key, node, "expected \(expected), found \(node.kind)")
        }
    }

    func read(_ root: JSONNode) throws -> (merges: [(left: Int32, right: Int32)], observation: Int, intent: Int) {
        guard case .object = root.value else { throw fail("top level", root, "expected an object, found \(root.kind)") }

        // Normalizer: none (a normalizer would change the bytes before the split).
        if let n = root["normalizer"] {
            guard case .null = n.value else { throw fail("normalizer", n, "expected null, found \(n.kind)") }
        }
        // Pre-tokenizer: exactly the split PreTokenizer implements.
        let pre = try object(root["pre_tokenizer"], "pre_tokenizer", parent: root)
        let preType = try string(pre["type"] ?? JSONNode(value: .null, offset: pre.offset), "pre_tokenizer.type")
        guard preType == "ByteLevel" else { throw fail("pre_tokenizer.type", pre["type"], "expected \"ByteLevel\", found \"\(preType)\"") }
        try expectBool(pre, "add_prefix_space", "pre_tokenizer", false, default: true)
        try expectBool(pre, "use_regex", "pre_tokenizer", true, default: true)

        // Model.
        let model = try object(root["model"], "model", parent: root)
        if let t = model["type"] {
            let type = try string(t, "model.type")
            guard type == "BPE" else { throw fail("model.type", t, "expected \"BPE\", found \"\(type)\"") }
        }
        for key in ["byte_fallback", "ignore_merges", "fuse_unk"] { try expectBool(model, key, "model", false, default: false) }

        // Vocab: a dense id range whose first 256 ids are the bytes in order.
        let vocabNode = try object(model["vocab"], "model.vocab", parent: model)
        guard case .object(let entries) = vocabNode.value else { throw fail("model.vocab", vocabNode, "expected an object") }
        var tokens = [String?](repeating: nil, count: entries.count)
        var idOf: [String: Int] = [:]
        for (key, v) in entries {
            let path = "model.vocab[\"\(key)\"]"
            let id = try int(v, path)
            guard id >= 0, id < entries.count else {
                throw fail(path, v, "expected an id in 0..<\(entries.count) (the vocab has \(entries.count) entries, ids must be dense), found \(id)")
            }
            if let other = tokens[id] { throw fail(path, v, "id \(id) is also used by \"\(other)\"") }
            guard idOf[key] == nil else { throw fail(path, v, "token appears twice") }
            guard ByteLevel.decode(key) != nil else {
                throw fail(path, v, "not a byte-level token: a code point outside GPT-2's 256-symbol byte alphabet")
            }
            tokens[id] = key
            idOf[key] = id
        }
        guard entries.count >= 256 else {
            throw fail("model.vocab", vocabNode, "expected at least the 256 byte tokens, found \(entries.count) entries")
        }
        for b in 0..<256 where tokens[b] != String(ByteLevel.scalar[b]) {
            throw fail("model.vocab", vocabNode, "id \(b) must be byte 0x\(String(b, radix: 16)) spelled \"\(ByteLevel.scalar[b])\", found \"\(tokens[b] ?? "")\"")
        }

        // Merges: merge r joins two earlier ids into id 256 + r.
        let mergeCount = entries.count - 256
        guard let mergesNode = model["merges"] else { throw fail("model.merges", model, "missing key: expected an array") }
        guard case .array(let items) = mergesNode.value else {
            throw fail("model.merges", mergesNode, "expected an array, found \(mergesNode.kind)")
        }
        guard items.count == mergeCount else {
            throw fail("model.merges", mergesNode, "expected \(mergeCount) merges (one per vocab entry above 255), found \(items.count)")
        }
        var merges: [(left: Int32, right: Int32)] = []
        merges.reserveCapacity(mergeCount)
        for (r, item) in items.enumerated() {
            let path = "model.merges[\(r)]"
            let parts: [String]
            switch item.value {
            case .string(let s): parts = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            case .array(let a): parts = try a.map { try string($0, path) }
            default: throw fail(path, item, "expected \"left right\" or [left, right], found \(item.kind)")
            }
            guard parts.count == 2 else { throw fail(path, item, "expected two tokens, found \(parts.count)") }
            guard let l = idOf[parts[0]] else { throw fail(path, item, "left token \"\(parts[0])\" is not in model.vocab") }
            guard let rt = idOf[parts[1]] else { throw fail(path, item, "right token \"\(parts[1])\" is not in model.vocab") }
            let result = parts[0] + parts[1]
            guard tokens[256 + r] == result else {
                throw fail(path, item, "expected its result \"\(result)\" to have id \(256 + r) (merge r makes id 256 + r), found \(idOf[result].map { "id \($0)" } ?? "no such token")")
            }
            guard l < 256 + r, rt < 256 + r else { throw fail(path, item, "uses a token made by a later merge") }
            merges.append((Int32(l), Int32(rt)))
        }

        // Specials: <|bos|>, <|eos|>, <|pad|>, <|obs_k|>..., <|intent_k|>... from id 256 + M on.
        guard let addedNode = root["added_tokens"] else { throw fail("added_tokens", root, "missing key: expected an array") }
        guard case .array(let added) = addedNode.value else { throw fail("added_tokens", addedNode, "expected an array, found \(addedNode.kind)") }
        var names: [String] = []
        for (k, t) in added.enumerated() {
            let path = "added_tokens[\(k)]"
            guard case .object = t.value else { throw fail(path, t, "expected an object, found \(t.kind)") }
            guard let c = t["content"] else { throw fail(path + ".content", t, "missing key") }
            guard let i = t["id"] else { throw fail(path + ".id", t, "missing key") }
            let name = try string(c, path + ".content")
            let id = try int(i, path + ".id")
            guard id == entries.count + k else { throw fail(path + ".id", i, "expected \(entries.count + k) (specials follow the model vocab in order), found \(id)") }
            try expectBool(t, "special", path, true, default: false)
            names.append(name)
        }
        let obs = names.filter { $0.hasPrefix("<|obs_") }.count
        let intent = names.filter { $0.hasPrefix("<|intent_") }.count
        let expected = Tokenizer.specialNames(observation: obs, intent: intent)
        for (k, name) in expected.enumerated() {
            guard k < names.count, names[k] == name else {
                let found = k < names.count ? "\"\(names[k])\"" : "end of the array"
                throw fail("added_tokens[\(k)].content", k < added.count ? added[k] : addedNode, "expected \"\(name)\", found \(found)")
            }
        }
        guard names.count == expected.count else {
            throw fail("added_tokens[\(expected.count)]", added[expected.count], "expected no more specials after \"\(expected.last!)\", found \"\(names[expected.count])\"")
        }
        return (merges, obs, intent)
    }
}
