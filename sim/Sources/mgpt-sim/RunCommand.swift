import ArgumentParser
import Foundation
import Observation
import RobotSim
import Wire

/// The `intent` payload fields the simulator reads (docs/sim.md): the text form and the seq of
/// the frame it answers; other fields are ignored.
struct IntentMessage: Decodable {
    /// Payload schema version (1); absent is accepted.
    var v: Int?
    /// Text form, e.g. `FORWARD(0.5)`.
    var intent: String
    /// Sequence number (of the observation frame the intent answers).
    var seq: UInt64?
    /// The fallback replaced the model's proposal.
    var gated: Bool?
    /// This tick ran the model on a new frame (a decision, not a repeat).
    var fresh: Bool?
}

extension MGPTSim {
    /// Closed loop: publishes frames and drives the robot with the daemon's intents.
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Closed loop with the daemon: publish obs, apply its intents; last line goal_reached=… collisions=… ticks=… stale_ticks=… final_distance=… seconds=… decisions=… gated_rate=… (decisions = intents with fresh=true).")

        @OptionGroup var source: ScenarioOptions
        @OptionGroup var feed: FeedOptions

        @Option(help: "Endpoint of the daemon's PUB socket to SUBscribe to (topic intent).")
        var intentEndpoint: String = "tcp://127.0.0.1:5556"

        @Option(help: "A tick is stale when the newest intent arrived more than this many ticks ago, or none yet (default: publish-every + 4).")
        var staleTicks: Int?

        @Option(help: "Brake (STOP) when the newest intent is older than this many ticks: the low-level watchdog.")
        var holdTicks: Int = 25

        func validate() throws {
            if let t = staleTicks, t < 0 { throw ValidationError("--stale-ticks: expected ≥ 0, found \(t)") }
            if holdTicks < 1 { throw ValidationError("--hold-ticks: expected ≥ 1, found \(holdTicks)") }
        }

        func run() throws {
            let scenario = try source.load()
            let ctx = try ZMQContext()
            let pub = try feed.makePublisher(ctx)
            let sub = try ZMQSocket(context: ctx, type: .sub)
            try sub.setReceiveHWM(16)
            try sub.subscribe("intent")
            try sub.connect(intentEndpoint)
            installStopHandlers()
            say("run: scenario=\(scenario.name) obs=\(try pub.lastEndpoint) intent=\(intentEndpoint) rate=\(feed.rate) publish_every=\(feed.publishEvery)")

            let staleAfter = staleTicks ?? feed.publishEvery + 4
            var world = World(scenario: scenario)
            var intent = Intent.stop
            var lastArrival = -1           // tick of the newest intent
            var stale = 0, received = 0, bad = 0, lagSum = 0, lagCount = 0, decisions = 0, gatedDecisions = 0
            var done = false
            var clock = RateClock(hz: feed.rate)
            let limit = feed.seconds.map { Int(($0 * feed.rate).rounded()) } ?? scenario.maxTicks
            let decoder = JSONDecoder()
            while stopRequested == 0 && world.tick < min(limit, scenario.maxTicks) {
                let frame = world.sense()
                if world.tick % feed.publishEvery == 0 { try publish(frame, on: pub) }
                // Drain every intent that arrived; the newest wins.
                while let parts = try sub.receive(timeoutMs: 0) {
                    guard parts.count == 2, parts[0] == Array("intent".utf8),
                          let msg = try? decoder.decode(IntentMessage.self, from: Data(parts[1])),
                          msg.v == nil || msg.v == 1,
                          let parsed = try? Intent(parsing: msg.intent) else { bad += 1; continue }
                    intent = parsed
                    received += 1
                    if msg.fresh == true {
                        decisions += 1
                        if msg.gated == true { gatedDecisions += 1 }
                    }
                    lastArrival = world.tick
                    if let s = msg.seq, s <= UInt64(world.tick) { lagSum += world.tick - Int(s); lagCount += 1 }
                }
                if lastArrival < 0 || world.tick - lastArrival > staleAfter { stale += 1 }
                if intent == .done { done = true; break }
                let applied = lastArrival >= 0 && world.tick - lastArrival <= holdTicks ? intent : .stop
                world.step(applied)
                clock.waitNext()
            }
            let meanLag = lagCount > 0 ? Double(lagSum) / Double(lagCount) : 0
            say("intents=\(received) bad_intents=\(bad) mean_lag_ticks=\(fmt(meanLag, 2)) fault_ticks=\(world.faultTicks) skipped_deadlines=\(clock.skipped) said_done=\(done)")
            say("goal_reached=\(done && world.atGoal) collisions=\(world.collisions) ticks=\(world.tick) stale_ticks=\(stale) final_distance=\(fmt(world.distanceToTarget, 2)) seconds=\(fmt(world.time, 2)) decisions=\(decisions) gated_rate=\(fmt(Double(gatedDecisions) / Double(max(decisions, 1)), 4))")
        }
    }
}
