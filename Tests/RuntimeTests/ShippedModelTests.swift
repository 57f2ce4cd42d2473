import Foundation
import MiniGPT
import Testing
@testable import Runtime

/// The shipped default: `Configs/robot.json` runs `Models/robot-phase15`, and that folder is what
/// its model card says (INT8 weights within the 1 MB target, an INT8 KV cache bounded by a window,
/// exit heads the anytime fallback can use).
@Suite struct ShippedModelTests {
    let configPath = packageRoot.appendingPathComponent("Configs/robot.json").path

    @Test("the default config runs the phase-15 folder: INT8 weights ≤ 1 MB, INT8 KV window, exit heads")
    func defaultConfigRunsThePhase15Model() throws {
        let c = try RobotConfig.load(path: configPath)
        #expect(c.modelPath == packageRoot.appendingPathComponent("Models/robot-phase15").path)
        let w = try ModelFolder.load(URL(fileURLWithPath: c.modelPath))
        #expect(w.config.weightDType?.attention == .int8 && w.config.weightDType?.ffn == .int8)
        let bytes = try FileManager.default.attributesOfItem(
            atPath: URL(fileURLWithPath: c.modelPath).appendingPathComponent(ModelFolder.weightsFile).path)[.size] as? Int
        #expect((bytes ?? .max) <= 1_000_000, "model.safetensors is \(bytes ?? -1) bytes")
        let kv = try #require(w.config.kvCache)
        #expect(kv.dtype == .int8 && kv.window != nil)
        #expect(!w.config.earlyExitLayers.isEmpty)
    }

    @Test("the daemon's context stays inside the KV window over 2 000 frames, and the cache never grows")
    func theDaemonsContextIsBoundedByTheWindow() throws {
        let config = try RobotConfig.load(path: configPath)
        let (m, tok) = try Daemon.loadModel(config.modelPath)
        let core = try DecisionCore(config: config, model: m, tokenizer: tok, startedAt: 0)
        let window = try #require(m.config.kvCache?.window)
        #expect(core.session.capacity == window)
        let bytes = core.session.kvCacheBytes
        let c = m.config
        // INT8 keys and values plus one FP32 scale each, per layer, KV head and position.
        #expect(bytes == c.numHiddenLayers * c.numKeyValueHeads * 2 * (c.headDim + 4) * window)
        var maxPosition = 0
        for i in 0..<2_000 {
            let t = UInt64(i) * 100_000_000
            try frameBytes(i).withUnsafeBytes { _ = core.observe($0, truncated: false, receivedAt: t) }
            let r = core.tick(now: t + 1_000_000)
            #expect(r.ranModel)
            maxPosition = max(maxPosition, core.session.position)
        }
        #expect(maxPosition <= window)
        #expect(core.session.kvCacheBytes == bytes)
    }
}
