import Foundation

/// A model is a folder, as the ecosystem expects: `config.json`, `model.safetensors`,
/// `tokenizer.json` (optional for a bare random model) and a model card `README.md`.
public enum ModelFolder {
    /// File names inside a model folder.
    public static let configFile = "config.json"
    public static let weightsFile = "model.safetensors"
    public static let tokenizerFile = "tokenizer.json"

    /// Writes `config.json` and `model.safetensors` into `dir` (created if needed).
    public static func save(_ weights: ModelWeights, to dir: URL, metadata: [String: String] = [:]) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try weights.config.save(to: dir.appendingPathComponent(configFile))
        try weights.writer(metadata: metadata).write(to: dir.appendingPathComponent(weightsFile))
    }

    /// Reads and validates the config and weights of the folder `dir`.
    public static func load(_ dir: URL) throws -> ModelWeights {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelConfigError.file(dir.path, "not a model folder (expected a directory with \(configFile) and \(weightsFile))")
        }
        let config = try ModelConfig.load(from: dir.appendingPathComponent(configFile))
        let file = try SafeTensorsFile(url: dir.appendingPathComponent(weightsFile))
        return try ModelWeights(config: config, file: file)
    }
}
