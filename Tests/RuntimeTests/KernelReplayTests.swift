import Foundation
import MiniGPT
import Testing

/// A recording names the kernel path mgptd ran, and `mgpt replay` runs the same one (the float
/// parts of a step round differently on other paths): a session recorded on `portable` replays
/// bit for bit on a machine whose fastest path is another, by re-executing with MINIGPT_KERNELS.
@Suite(.serialized) struct KernelReplayTests {
    @Test func replayFollowsTheRecordedKernelPath() throws {
        let mgpt = try DaemonFaultTests.binary("mgpt")
        try KernelPath.configure()
        let here = KernelPath.selected
        let s = try DaemonFaultTests.Setup()
        let (rec, log) = try s.recordSession(scenario: "sim/scenarios/cluttered.json", seconds: 3, env: ["MINIGPT_KERNELS=portable"])
        #expect(log.contains("kernels portable"), "\(log)")

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
