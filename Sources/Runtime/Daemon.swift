import Foundation
import MiniGPT
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Exit codes of `mgptd` (sysexits.h), documented in README and docs/config.md.
public enum DaemonExit {
    /// Clean shutdown (SIGTERM / SIGINT / --seconds / --ticks reached).
    public static let ok: Int32 = 0
    /// Bad model data (config.json, safetensors, tokenizer.json): EX_DATAERR.
    public static let dataError: Int32 = 65
    /// Model folder missing: EX_NOINPUT.
    public static let noInput: Int32 = 66
    /// A socket could not bind/connect (address in use, bad endpoint): EX_UNAVAILABLE.
    public static let unavailable: Int32 = 69
    /// Cannot create the recording: EX_CANTCREAT.
    public static let cantCreate: Int32 = 73
    /// robot.json is invalid: EX_CONFIG.
    public static let config: Int32 = 78
}

/// An error that ends the daemon with a specific exit code and a one-line message.
public struct DaemonError: Error, CustomStringConvertible {
    /// Process exit code.
    public var code: Int32
    /// What went wrong, naming the file / key / endpoint.
    public var message: String
    public var description: String { message }
}

/// Everything `mgptd` builds before the first tick: model, core, sockets, recorder, loop.
public final class Daemon {
    /// Validated configuration.
    public let config: RobotConfig
    /// The running loop.
    public let loop: DecisionLoop
    /// The recording, when enabled.
    public let recorder: Recorder?
    private let context: ZMQContext
    private let sub: ZMQSocket
    private let pub: ZMQSocket

    /// Loads the model and opens sockets and the recording; throws `DaemonError`.
    public init(config: RobotConfig, log: (String) -> Void) throws {
        self.config = config
        let (transformer, tokenizer) = try Self.loadModel(config.modelPath)
        log("model \(config.modelPath) (\(config.modelID)): d=\(transformer.config.hiddenSize) layers=\(transformer.config.numHiddenLayers) vocab=\(transformer.config.vocabSize) context=\(transformer.config.maxPositionEmbeddings)")
        let core = try DecisionCore(config: config, model: transformer, tokenizer: tokenizer, startedAt: monotonicNanos())
        if !core.controller.instructionAccepted {
            log("warning: context.instruction \"\(config.instruction)\" matches none of controller.instructions' templates: every decision publishes the fallback \(config.thresholds.fallback) with reason unknown_instruction")
        }
        do {
            context = try ZMQContext()
            // libzmq's I/O thread carries every frame in and every intent out: with a real-time
            // loop it runs SCHED_FIFO one below the loop (as the publisher thread does).
            if config.realtimePriority > 0 { try context.setIOThreadRealtime(priority: Int32(max(1, config.realtimePriority - 1))) }
            sub = try ZMQSocket(context: context, type: .sub)
            try sub.setReceiveHWM(Int32(config.receiveHWM))
            try sub.setLinger(ms: 0)
            try sub.subscribe(config.topicObs)
            try sub.connect(config.sensorEndpoint)
            pub = try ZMQSocket(context: context, type: .pub)
            try pub.setSendHWM(Int32(config.sendHWM))
            try pub.setLinger(ms: 200)  // lets the final status leave on shutdown
            try pub.bind(config.publishEndpoint)
        } catch {
            throw DaemonError(code: DaemonExit.unavailable, message: "sockets: \(error) (io.sensor_endpoint=\(config.sensorEndpoint), io.publish_endpoint=\(config.publishEndpoint))")
        }
        if config.recordEnabled {
            do {
                try FileManager.default.createDirectory(atPath: config.recordDir, withIntermediateDirectories: true)
                let stamp = Self.timestamp()
                let path = (config.recordDir as NSString).appendingPathComponent("mgptd-\(stamp)-\(getpid()).mcap")
                recorder = try Recorder(path: path, maxPayload: config.maxMessageBytes, schemas: Schemas.forRecording,
                                        metadata: [Replay.configMetadata(config)])
            } catch {
                throw DaemonError(code: DaemonExit.cantCreate, message: "record.dir \(config.recordDir): cannot create the recording: \(error)")
            }
        } else {
            recorder = nil
        }
        loop = DecisionLoop(config: config, core: core, sub: sub, pub: pub, recorder: recorder)
    }

    /// Loads a model folder with its tokenizer, mapping errors to exit codes.
    public static func loadModel(_ path: String) throws -> (Transformer, Tokenizer) {
        let dir = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent(ModelFolder.configFile).path) else {
            throw DaemonError(code: DaemonExit.noInput, message: "model.path \(path): not a model folder (no config.json)")
        }
        do {
            let weights = try ModelFolder.load(dir)
            let tokenizer = try Tokenizer(contentsOf: dir.appendingPathComponent(ModelFolder.tokenizerFile))
            guard tokenizer.vocabSize == weights.config.vocabSize else {
                throw DaemonError(code: DaemonExit.dataError, message: "model.path \(path): tokenizer.json has \(tokenizer.vocabSize) tokens, config.json vocab_size \(weights.config.vocabSize)")
            }
            return (Transformer(weights: weights), tokenizer)
        } catch let e as DaemonError {
            throw e
        } catch {
            throw DaemonError(code: DaemonExit.dataError, message: "model.path \(path): \(error)")
        }
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: Date())
    }

    /// Starts the loop and the recorder.
    public func start() {
        recorder?.start()
        loop.start()
    }

    /// Stops after the current tick, publishes the final status, flushes the recording.
    public func stop() {
        loop.requestStop()
        loop.join()
        recorder?.finish()
        sub.close()
        pub.close()
    }
}
