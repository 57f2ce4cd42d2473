import Foundation
import MiniGPT
import Testing

/// A recording names the kernel path mgptd ran, and `mgpt replay` runs the same one (the float
/// parts of a step round differently on other paths): a session recorded on `portable` replays
/// bit for bit on a machine whose fastest path is another, by re-executing with MINIGPT_KERNELS.
@Suite(.serialized) struct KernelReplayTests {
    @Test func replayFollowsTheRecordedKernelPath() throws {
        let (mgptd, sim, mgpt) = (try DaemonFaultTests.binary("mgptd"), try DaemonFaultTests.binary("mgpt-sim"), try DaemonFaultTests.binary("mgpt"))
        try KernelPath.configure()
        let here = KernelPath.selected
        let s = try DaemonFaultTests.Setup()
        let daemon = try Child("/usr/bin/env", ["MINIGPT_KERNELS=portable", mgptd, "--config", s.config])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        usleep(300_000)
        let feed = try Child(sim, ["feed", "--scenario", DaemonFaultTests.script("sim/scenarios/cluttered.json"),
                                   "--rate", "50", "--endpoint", s.obs, "--seconds", "3"])
        #expect(feed.wait(seconds: 30) == 0, "feed: \(feed.stderr)")
        kill(daemon.process.processIdentifier, SIGTERM)
        #expect(daemon.wait(seconds: 15) == 0, "mgptd: \(daemon.stderr)")
        #expect(daemon.stderr.contains("kernels portable"), "\(daemon.stderr)")
        let rec = try #require(s.recording, "no recording in \(s.dir.path("rec"))")

        let replay = try Child(mgpt, ["replay", rec])
        #expect(replay.wait(seconds: 120) == 0, "\(replay.stdout)\(replay.stderr)")
        #expect(replay.stdout.contains("first_diff=none"), "\(replay.stdout)")
        if here != "portable" {
            #expect(replay.stderr.contains("recorded with kernels=portable: replaying on it (MINIGPT_KERNELS=portable)"), "\(replay.stderr)")
            // Asked for another path explicitly: it is used, and the replay says what that means.
            let forced = try Child("/usr/bin/env", ["MINIGPT_KERNELS=\(here)", mgpt, "replay", rec])
            _ = forced.wait(seconds: 120)
            #expect(forced.stderr.contains("replaying with kernels=\(here) as MINIGPT_KERNELS asks"), "\(forced.stderr)")
        }
    }
}
