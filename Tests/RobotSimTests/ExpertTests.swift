import Testing
import Observation
@testable import RobotSim

@Suite struct ExpertTests {
    @Test func expertSolvesGeneratedScenarios() {
        var success = 0, collisions = 0
        let n = 24
        for i in 0..<n {
            let seed = CorpusWriter.trainingSeed(1, i)
            let s = ScenarioGenerator.generate(seed: seed, family: ScenarioGenerator.family(forSeed: seed, among: ScenarioGenerator.Family.training))
            let r = Episode.runExpert(s, record: false).result
            if r.goalReached { success += 1 }
            collisions += r.collisions
        }
        #expect(Double(success) / Double(n) >= 0.9, "success \(success)/\(n)")
        #expect(collisions == 0)
    }

    @Test func expertSolvesTheShippedScenarios() throws {
        for name in ["simple_room", "cluttered", "faults_dropout", "faults_contradict", "unseen_colour"] {
            let r = Episode.runExpert(try shipped(name), record: false).result
            #expect(r.goalReached, "\(name)")
            #expect(r.collisions == 0, "\(name)")
            #expect(r.ticks < 1500, "\(name)")
        }
        let faulty = Episode.runExpert(try shipped("faults_dropout"), record: false).result
        #expect(faulty.faultTicks > 0)
    }
}
