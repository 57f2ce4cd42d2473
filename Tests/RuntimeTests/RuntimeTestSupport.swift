import Foundation
import MiniGPT
import Observation
import Wire
@testable import Runtime

/// A fresh temporary folder, removed when the value dies.
final class TempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("mgpt-rt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// The package root (tests run with cwd = root, but resolve from this file to be safe).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Writes a small random model with a real tokenizer (observation + intent blocks) into `dir`.
/// Weights are scaled so the model's intent distribution is far from uniform.
func makeModelFolder(_ dir: URL, seed: UInt64 = 5, earlyExitLayers: [Int] = []) throws {
    let text = """
    go to the red box. find the blue door and stop. go to the green ball then stop. drive to the yellow
    cone, avoid the walls, and wait there. turn around slowly when something blocks the way ahead.
    """
    let tok = try Tokenizer.train(corpus: Array(repeating: Array(text.utf8), count: 4), vocabSize: 380)
    var config = ModelConfig(vocabSize: tok.vocabSize, hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4,
                             numKeyValueHeads: 2, intermediateSize: 160, maxPositionEmbeddings: 128)
    config.vocabSize = tok.vocabSize
    config.earlyExitLayers = earlyExitLayers
    var w = ModelWeights(random: config, seed: seed)
    w.embed = w.embed.map { $0 * 30 }
    try ModelFolder.save(w, to: dir)
    try tok.save(to: dir.appendingPathComponent(ModelFolder.tokenizerFile))
}

/// A robot.json for tests, with overrides merged over sane defaults.
func writeConfig(_ dir: TempDir, model: String, extra: [String: Any] = [:], name: String = "robot.json") throws -> String {
    var root: [String: Any] = [
        "model": ["path": model],
        "loop": ["rate_hz": 100, "budget_us": 9000],
        "io": ["sensor_endpoint": "ipc://\(dir.path("obs.ipc"))", "publish_endpoint": "ipc://\(dir.path("out.ipc"))"],
        "context": ["instruction": "go to the red box", "window_ticks": 4],
        "record": ["dir": dir.path("rec")],
    ]
    for (k, v) in extra {
        if var section = root[k] as? [String: Any], let add = v as? [String: Any] {
            for (kk, vv) in add { section[kk] = vv }
            root[k] = section
        } else {
            root[k] = v
        }
    }
    let path = dir.path(name)
    try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
    return path
}

/// A plausible frame, varied by `i`.
func sampleFrame(_ i: Int) -> ObservationFrame {
    let ranges = (0..<ObservationFrame.beamCount).map { b in Float(0.3 + Double((b * 7 + i * 3) % 40) / 10) }
    let dets = i % 3 == 0 ? [] : [Detection(colour: i % 2 == 0 ? "red" : "blue", kind: "box",
                                              bearing: Float(i % 5) * 0.1 - 0.2, distance: 1 + Float(i % 4))]
    return ObservationFrame(seq: UInt64(i), t: Double(i) * 0.02, ranges: ranges, rangeMax: 5, detections: dets,
                            odom: Odometry(x: Float(i) * 0.01, y: 0, theta: 0, v: 0.2, w: 0), bump: false, battery: 0.9)
}

func frameBytes(_ i: Int) throws -> [UInt8] { Array(try sampleFrame(i).jsonData()) }

/// The daemon's loop tick on real in-process sockets, recording to `path`, driven tick by tick
/// (no thread, no clock): what record → replay tests run. Keeps the sockets alive while it lives.
final class LoopHarness {
    let ctx: ZMQContext
    let feeder: ZMQSocket, sub: ZMQSocket, pub: ZMQSocket
    let recorder: Recorder
    let loop: DecisionLoop

    /// `sendHWM` raises the daemon PUB's high-water mark (tests that read every message back).
    init(config: RobotConfig, core: DecisionCore, recording path: String, sendHWM: Int32? = nil) throws {
        ctx = try ZMQContext()
        feeder = try ZMQSocket(context: ctx, type: .pub)
        try feeder.bind(config.sensorEndpoint)
        sub = try ZMQSocket(context: ctx, type: .sub)
        try sub.subscribe("obs")
        try sub.connect(config.sensorEndpoint)
        pub = try ZMQSocket(context: ctx, type: .pub)
        if let sendHWM { try pub.setSendHWM(sendHWM) }
        try pub.bind(config.publishEndpoint)
        recorder = try Recorder(path: path, maxPayload: config.maxMessageBytes, schemas: Schemas.forRecording)
        recorder.start()
        loop = DecisionLoop(config: config, core: core, sub: sub, pub: pub, recorder: recorder)
    }

    /// Publishes one `obs` message.
    func feed(_ payload: [UInt8]) throws { _ = try feeder.send([Array("obs".utf8), payload]) }
}
