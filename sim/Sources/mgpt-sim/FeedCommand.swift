import ArgumentParser
import Foundation
import Observation
import RobotSim
import Wire

/// Options shared by `feed` and `run`: the obs publisher and the pace.
struct FeedOptions: ParsableArguments {
    @Option(help: "Physics ticks per wall-clock second (50 = real time; more runs faster than real time). Each tick advances 1/50 s.")
    var rate: Double = 50

    @Option(help: "Publish the frame of every K-th tick (5 = the corpus's 10 Hz decision rate).")
    var publishEvery: Int = 1

    @Option(help: "Endpoint the obs PUB socket binds (tcp://127.0.0.1:*, ipc:///tmp/… also work).")
    var endpoint: String = "tcp://127.0.0.1:5555"

    @Option(help: "Stop after this many seconds of wall-clock time (default: at the end of the episode).")
    var seconds: Double?

    func validate() throws {
        if !(rate > 0 && rate <= 10_000) { throw ValidationError("--rate: expected 0 < rate ≤ 10000, found \(rate)") }
        if let s = seconds, !(s > 0) { throw ValidationError("--seconds: expected > 0, found \(s)") }
        if publishEvery < 1 { throw ValidationError("--publish-every: expected ≥ 1, found \(publishEvery)") }
    }

    /// A PUB socket bound to `endpoint` with the recommended high-water mark (docs/protocol.md).
    func makePublisher(_ ctx: ZMQContext) throws -> ZMQSocket {
        let pub = try ZMQSocket(context: ctx, type: .pub)
        try pub.setSendHWM(16)
        try pub.bind(endpoint)
        return pub
    }
}

/// Prints a line to stdout immediately (tests and pipes read it while we run).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Encodes a frame and publishes it as `[obs, JSON]`.
func publish(_ frame: ObservationFrame, on pub: ZMQSocket) throws {
    let json = try frame.jsonData()
    try pub.send([Array("obs".utf8), Array(json)])
}

extension MGPTSim {
    /// Publishes observation frames on ZeroMQ at a fixed rate (open loop).
    struct Feed: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish observation frames as [obs, JSON] on a ZeroMQ PUB socket at a fixed rate.")

        @OptionGroup var source: ScenarioOptions
        @OptionGroup var feed: FeedOptions

        @Option(help: "Who drives the robot while feeding: expert or idle.")
        var driver: String = "expert"

        func validate() throws {
            if driver != "expert" && driver != "idle" { throw ValidationError("--driver: expected expert or idle, found '\(driver)'") }
        }

        func run() throws {
            let scenario = try source.load()
            let ctx = try ZMQContext()
            let pub = try feed.makePublisher(ctx)
            installStopHandlers()
            say("feed: scenario=\(scenario.name) endpoint=\(try pub.lastEndpoint) rate=\(feed.rate) publish_every=\(feed.publishEvery)")

            var world = World(scenario: scenario)
            var expert = ExpertPolicy(world: world)
            var intent = Intent.stop
            var clock = RateClock(hz: feed.rate)
            let limit = feed.seconds.map { Int(($0 * feed.rate).rounded()) }
            var frames = 0, ticks = 0, episodes = 1
            while stopRequested == 0 {
                if let limit, ticks >= limit { break }
                let frame = world.sense()
                if ticks % feed.publishEvery == 0 {
                    try publish(frame, on: pub)
                    frames += 1
                }
                ticks += 1
                if world.tick % scenario.decisionEvery == 0 {
                    intent = driver == "expert" ? expert.decide(world) : .stop
                }
                let over = intent == .done || world.tick + 1 >= scenario.maxTicks
                if over {
                    say("episode=\(episodes) goal_reached=\(intent == .done && world.atGoal) collisions=\(world.collisions) ticks=\(world.tick + 1)")
                    if limit == nil { break }
                    world = World(scenario: scenario)  // next episode: seq restarts at 0
                    expert = ExpertPolicy(world: world)
                    intent = .stop
                    episodes += 1
                } else {
                    world.step(intent)
                }
                clock.waitNext()
            }
            say("frames=\(frames) ticks=\(ticks) episodes=\(episodes) skipped_deadlines=\(clock.skipped) max_late_us=\(clock.maxLateNs / 1000)")
        }
    }
}
