import Foundation
import MCAP
import MiniGPT
import Cognition

/// Result of re-running a recording offline.
public struct ReplayReport: Sendable {
    /// Ticks found in the recording.
    public var ticks: Int
    /// Ticks whose recomputed decision equals the recorded one bit for bit.
    public var identical: Int
    /// First differing tick (nil when all are identical), with a description of the difference.
    public var firstDiff: (tick: UInt64, what: String)?
    /// Frames fed.
    public var frames: Int
    /// True when the file ended mid-record (a killed daemon); replayed up to the last complete record.
    public var truncated: Bool
}

/// The sim-to-hardware harness: feeds a recording's frames, tick by tick, with their recorded
/// arrival times, through a fresh `DecisionCore`, and compares every decision with the recorded one.
public enum Replay {
    /// The fields of a decision that must reproduce exactly (timings naturally differ).
    struct Core: Equatable {
        var intentIndex: Int, confidenceBits: UInt32, gated: Bool, reason: String
        var proposalIndex: Int, probabilityBits: UInt32, entropyBits: UInt32, disagreementBits: UInt32
        var massBits: UInt32, fresh: Bool, obsSeq: Int, exitLayer: Int, anytime: Bool

        init(json: [String: Any]) throws {
            func num(_ k: String) throws -> Double {
                guard let v = json[k] as? NSNumber else { throw ReplayError("recorded intent lacks \"\(k)\"") }
                return v.doubleValue
            }
            func float(_ k: String) throws -> UInt32 {
                // Written with shortest round-trip digits (≤ 9 significant), so decimal → Double → Float
                // restores the exact bits.
                guard let v = json[k] as? NSNumber else { throw ReplayError("recorded intent lacks \"\(k)\"") }
                return Float(v.doubleValue).bitPattern
            }
            intentIndex = Int(try num("intent_index"))
            confidenceBits = try float("confidence")
            gated = (json["gated"] as? Bool) ?? false
            reason = (json["reason"] as? String) ?? ""
            proposalIndex = Int(try num("proposal_index"))
            probabilityBits = try float("proposal_probability")
            entropyBits = try float("entropy")
            disagreementBits = try float("head_disagreement")
            massBits = try float("grammar_mass")
            fresh = (json["fresh"] as? Bool) ?? false
            obsSeq = Int(try num("obs_seq"))
            // Recordings made before early exit lack these two: full depth, never anytime.
            exitLayer = (json["exit_layer"] as? NSNumber)?.intValue ?? -1
            anytime = (json["anytime"] as? Bool) ?? false
        }

        init(_ r: TickResult) {
            intentIndex = r.decision.intent.index
            confidenceBits = r.decision.confidence.bitPattern
            gated = r.decision.gated
            reason = r.decision.reason.name.description
            proposalIndex = r.ranModel ? r.proposal.index : -1
            probabilityBits = r.proposal.probability.bitPattern
            entropyBits = r.proposal.entropy.bitPattern
            disagreementBits = r.headDisagreement.bitPattern
            massBits = r.proposal.grammarMass.bitPattern
            fresh = r.ranModel
            obsSeq = Int(r.observationSeq)
            exitLayer = r.exitLayer
            anytime = r.anytime
        }
    }

    /// Replays `path` with `config` (its model folder and controller thresholds).
    public static func run(path: String, config: RobotConfig) throws -> ReplayReport {
        var report = ReplayReport(ticks: 0, identical: 0, firstDiff: nil, frames: 0, truncated: false)
        let (frames, truncated) = try walk(path: path, config: config) { seq, json, r, _ in
            let recorded = try Core(json: json)
            var replayed = Core(r)
            if recorded.exitLayer < 0 { replayed.exitLayer = -1 }  // an old recording: not compared
            report.ticks += 1
            if replayed == recorded {
                report.identical += 1
            } else if report.firstDiff == nil {
                report.firstDiff = (UInt64(seq), "recorded \(recorded) vs replayed \(replayed)")
            }
            return true
        }
        report.frames = frames
        report.truncated = truncated
        return report
    }

    /// Name of the Metadata record that carries the session's robot.json.
    public static let configMetadataName = "mgptd.config"

    /// The Metadata record mgptd writes at the start of a recording: the config file's absolute
    /// path (`file`, which anchors its relative paths), its text (`robot.json`), the resolved
    /// model folder (`model_path`) and the kernel path the daemon ran (`kernels`: the float parts
    /// of a step — attention, softmax, norms — round differently on other paths, so a bit-identical
    /// replay runs the same one). SIGHUP reloads go to `/config` instead.
    public static func configMetadata(_ c: RobotConfig) -> (name: String, values: [String: String]) {
        (configMetadataName, ["file": c.sourceFile, "robot.json": c.sourceJSON, "model_path": c.modelPath, "kernels": KernelPath.selected])
    }

    /// The pairs of a recording's `mgptd.config` record (nil: a recording from before mgptd wrote it).
    public static func recordedMetadata(path: String) throws -> [String: String]? {
        let reader: MCAPReader
        do { reader = try MCAPReader(path: path) } catch { throw ReplayError("\(error)") }
        return recordedMetadata(reader)
    }

    static func recordedMetadata(_ reader: MCAPReader) -> [String: String]? {
        reader.metadata.last(where: { $0.name == configMetadataName })?.values
    }

    /// The file a recorded config was read from (its relative paths resolve against its folder),
    /// else the recording itself.
    static func anchor(_ values: [String: String]?, recording path: String) -> String {
        values?["file"].flatMap { $0.isEmpty ? nil : $0 } ?? path
    }

    /// The config a recording of `path` carries in its `mgptd.config` pairs `values` (nil: a
    /// recording from before mgptd wrote it).
    public static func recordedConfig(_ values: [String: String]?, recording path: String) throws -> RobotConfig? {
        guard let json = values?["robot.json"] else { return nil }
        do { return try RobotConfig.parse(data: Data(json.utf8), file: anchor(values, recording: path)) } catch {
            throw ReplayError("\(path): the config recorded in its \"\(configMetadataName)\" metadata does not parse: \(error)")
        }
    }

    /// Feeds the recording through a fresh `DecisionCore` tick by tick (frames with their recorded
    /// arrival times, each tick in its recorded mode) and calls `visit(tick, recorded intent JSON,
    /// replayed result, core)` after every tick; `visit` returns false to stop. Returns the frames
    /// fed and whether the file was truncated (replayed up to its last complete record).
    public static func walk(path: String, config: RobotConfig,
                            visit: (UInt32, [String: Any], TickResult, DecisionCore) throws -> Bool) throws -> (frames: Int, truncated: Bool) {
        let reader: MCAPReader
        do { reader = try MCAPReader(path: path) } catch { throw ReplayError("\(error)") }
        let topicOf = Dictionary(uniqueKeysWithValues: reader.channels.map { ($0.key, $0.value.topic) })
        let (model, tokenizer) = try Daemon.loadModel(config.modelPath)
        let intents = reader.messages.filter { topicOf[$0.channelID] == RecordChannel.intent.topic }
        guard let first = intents.first else { throw ReplayError("\(path): no /intent messages to replay") }
        let core = try DecisionCore(config: config, model: model, tokenizer: tokenizer, startedAt: first.logTime)
        var framesByTick: [UInt32: [MCAPMessage]] = [:]
        for m in reader.messages where topicOf[m.channelID] == RecordChannel.obs.topic {
            framesByTick[m.sequence, default: []].append(m)
        }
        // SIGHUP reloads: the thresholds of the recorded config text apply from their decision on
        // (relative paths in it resolve as the recorded config's did).
        let configFile = anchor(recordedMetadata(reader), recording: path)
        var reloads: [UInt32: [MCAPMessage]] = [:]
        for m in reader.messages where topicOf[m.channelID] == RecordChannel.config.topic { reloads[m.sequence, default: []].append(m) }
        var frames = 0
        for m in intents {
            for c in reloads[m.sequence] ?? [] {
                do { core.setThresholds(try RobotConfig.parse(data: Data(c.data), file: configFile).thresholds) } catch {
                    throw ReplayError("\(path): the config reloaded before tick \(m.sequence) (/config) does not parse: \(error)")
                }
            }
            for f in framesByTick[m.sequence] ?? [] {
                f.data.withUnsafeBytes { _ = core.observe($0, truncated: false, receivedAt: f.logTime) }
                frames += 1
            }
            guard let json = (try? JSONSerialization.jsonObject(with: Data(m.data))) as? [String: Any] else {
                throw ReplayError("\(path): /intent message of tick \(m.sequence) is not JSON")
            }
            let reason = (json["reason"] as? String) ?? ""
            let mode: TickMode = reason == "overrun" ? .hold : (json["anytime"] as? Bool) == true ? .anytime : .normal
            let r = core.tick(now: m.logTime, mode: mode)
            if try !visit(m.sequence, json, r, core) { break }
        }
        return (frames, reader.truncated)
    }
}

/// A replay failure naming the file and what is wrong.
public struct ReplayError: Error, CustomStringConvertible {
    /// What is wrong.
    public var description: String
    init(_ d: String) { description = d }
}
