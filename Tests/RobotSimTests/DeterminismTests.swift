import Foundation
import Testing
import Observation
@testable import RobotSim

@Suite struct DeterminismTests {
    @Test func sameSeedGivesIdenticalFrames() throws {
        for family in [ScenarioGenerator.Family.cluttered, .twoRooms] {
            let a = expertFrames(ScenarioGenerator.generate(seed: 42, family: family), ticks: 400)
            let b = expertFrames(ScenarioGenerator.generate(seed: 42, family: family), ticks: 400)
            #expect(try a.map { try $0.jsonData() } == b.map { try $0.jsonData() })
            let c = expertFrames(ScenarioGenerator.generate(seed: 43, family: family), ticks: 400)
            #expect(try a.map { try $0.jsonData() } != c.map { try $0.jsonData() })
        }
        let faulty = try shipped("faults_dropout")
        #expect(expertFrames(faulty, ticks: 600) == expertFrames(faulty, ticks: 600))
    }

    @Test func sameSeedGivesIdenticalCorpusBytes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("robotsim-det-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try CorpusWriter.write(prefix: dir.appendingPathComponent("a").path, episodes: 4, heldOut: 1, seed: 5)
        let b = try CorpusWriter.write(prefix: dir.appendingPathComponent("b").path, episodes: 4, heldOut: 1, seed: 5)
        let c = try CorpusWriter.write(prefix: dir.appendingPathComponent("c").path, episodes: 2, heldOut: 0, seed: 6)
        #expect(a == b)
        var total = 0
        for split in CorpusWriter.Split.allCases {
            let da = try Data(contentsOf: dir.appendingPathComponent("a.\(split.rawValue).jsonl"))
            let db = try Data(contentsOf: dir.appendingPathComponent("b.\(split.rawValue).jsonl"))
            #expect(da == db, "split \(split.rawValue) differs")
            total += da.count
        }
        let ta = try Data(contentsOf: dir.appendingPathComponent("a.train.jsonl"))
        let tc = try Data(contentsOf: dir.appendingPathComponent("c.train.jsonl"))
        #expect(ta != tc)
        #expect(total > 0 && c.written.values.reduce(0, +) > 0)
        #expect(a.written.values.reduce(0, +) + a.skipped == 5)
        #expect((a.written[.heldout] ?? 0) + a.skipped >= 1)
    }

    @Test func corpusLinesFollowTheDocumentedFormat() throws {
        let s = ScenarioGenerator.generate(seed: 11, family: .openRoom)
        let ep = Episode.runExpert(s)
        let line = CorpusWriter.line(ep)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(obj["seed"] as? UInt64 == 11 || (obj["seed"] as? NSNumber)?.uint64Value == 11)
        #expect(obj["family"] as? String == "open_room")
        #expect(obj["instruction"] as? String == ep.instruction)
        let ticks = try #require(obj["ticks"] as? [[String: Any]])
        #expect(ticks.count == ep.decisions.count && ticks.count <= 300)
        for t in ticks {
            let obs = try #require(t["obs"] as? [Int])
            #expect(obs.count <= ObservationEncoder.maxTokensPerFrame)
            #expect(obs.allSatisfy { (0..<ObservationEncoder.tokenCount).contains($0) })
            #expect((0..<Intent.tokenCount).contains(try #require(t["intent"] as? Int)))
        }
        #expect(ticks.last?["intent"] as? Int == Intent.done.index)
        #expect(line.hasPrefix("{\"seed\":11,\"family\":\"open_room\",\"instruction\":"))
    }

    @Test func splitsSeparateSeedsAndFamilies() {
        var val = 0
        for i in 0..<400 {
            let s = CorpusWriter.trainingSeed(1, i)
            if CorpusWriter.isValidation(s) { val += 1 }
            #expect(ScenarioGenerator.Family.training.contains(ScenarioGenerator.family(forSeed: s, among: ScenarioGenerator.Family.training)))
        }
        #expect(val > 20 && val < 60)  // ~10 %
        #expect(Set(ScenarioGenerator.Family.training).isDisjoint(with: ScenarioGenerator.Family.heldOut))
    }
}
