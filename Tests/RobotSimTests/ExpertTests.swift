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

    /// `alternatives` probes copies: the expert's own decisions are unchanged by it, a zero nudge
    /// is the plain decision, and a drive through a cluttered room has some threshold calls (more
    /// than one verb within the probes) but far from only those.
    @Test func alternativesFindThresholdCallsWithoutChangingTheExpert() throws {
        let scenario = try shipped("cluttered")
        var world = World(scenario: scenario)
        var expert = ExpertPolicy(world: world)
        var intent = Intent.stop
        var decisions = 0, calls = 0
        var probed: [Intent] = []
        for _ in 0..<1500 {
            _ = world.sense()
            if world.tick % scenario.decisionEvery == 0 {
                let alternatives = expert.alternatives(world)
                var copy = expert
                let plain = copy.decide(world, nudge: .none)
                intent = expert.decide(world)
                probed.append(intent)
                #expect(plain == intent)
                #expect(!alternatives.isEmpty)
                decisions += 1
                if alternatives.count > 1 { calls += 1 }
                if intent == .done { break }
            }
            world.step(intent)
        }
        #expect(world.atGoal)
        #expect(calls > 0 && calls * 2 < decisions, "\(calls) threshold calls in \(decisions) decisions")
        // The same drive without the probes decides the same, decision for decision.
        var w2 = World(scenario: scenario)
        var e2 = ExpertPolicy(world: w2)
        var plainRun: [Intent] = []
        intent = .stop
        for _ in 0..<1500 {
            _ = w2.sense()
            if w2.tick % scenario.decisionEvery == 0 {
                intent = e2.decide(w2)
                plainRun.append(intent)
                if intent == .done { break }
            }
            w2.step(intent)
        }
        #expect(plainRun == probed)
    }
}
