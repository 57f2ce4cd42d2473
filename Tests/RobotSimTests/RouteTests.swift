import Foundation
import Testing
import Observation
@testable import RobotSim

/// The simulator's navigation stack: the route hint every v2 frame carries.
@Suite struct RouteTests {
    /// Along an expert episode: every frame has a route, its distance shrinks to exactly 0 at
    /// the stopping point (and only there), and the carrot's bearing agrees with where the robot
    /// then goes (it turns towards it).
    @Test func routeLeadsToTheStoppingPoint() throws {
        let scenario = try shipped("simple_room")
        var world = World(scenario: scenario)
        var expert = ExpertPolicy(world: world)
        var intent = Intent.stop
        var first: Float?, sawArrived = false, turnsTowards = 0, turns = 0
        while world.tick < scenario.maxTicks {
            let frame = world.sense()
            let route = try #require(frame.route, "no route at tick \(world.tick)")
            #expect(route == world.route)   // no faults: the frame carries the planner's hint as is
            if first == nil { first = route.distance }
            #expect((route.distance == 0) == (world.distanceToTarget <= RoutePlanner.stopDistance), "tick \(world.tick)")
            #expect(route.distance >= 0 && route.distance <= first! + 0.01)
            if route.distance == 0 { sawArrived = true }
            if world.tick % scenario.decisionEvery == 0 {
                intent = expert.decide(world)
                if intent.kind == .turnLeft { turns += 1; if route.bearing > 0 { turnsTowards += 1 } }
                if intent.kind == .turnRight { turns += 1; if route.bearing < 0 { turnsTowards += 1 } }
                if intent == .done { break }
            }
            world.step(intent)
        }
        #expect(intent == .done && world.atGoal && sawArrived)
        #expect(turns > 0 && turnsTowards == turns, "\(turnsTowards)/\(turns) turns towards the carrot")
        #expect(first! > 1, "the start is more than a metre from the stopping point")
    }

    /// Route faults: dropout gives `null` (the JSON key stays), freeze repeats the first value,
    /// noise moves the bearing only. The planner itself (`World.route`) is never faulted.
    @Test func routeFaults() throws {
        var s = try shipped("simple_room")
        s.faults = [FaultSpec(kind: .dropout, sensor: .route, from: 10, to: 20),
                    FaultSpec(kind: .freeze, sensor: .route, from: 30, to: 60),
                    FaultSpec(kind: .noise, sensor: .route, from: 70, to: 80, sigma: 0.5)]
        #expect(s.validationProblem() == nil)
        var world = World(scenario: s)
        var frozen: Route?
        for tick in 0..<90 {
            let frame = world.sense()
            let truth = try #require(world.route)
            switch tick {
            case 10..<20:
                #expect(frame.route == nil)
                let json = String(decoding: try frame.jsonData(), as: UTF8.self)
                #expect(json.contains("\"route\":null"))
            case 30..<60:
                if frozen == nil { frozen = frame.route }
                #expect(frame.route == frozen)
            case 70..<80:
                #expect(frame.route?.distance == truth.distance)
            default:
                #expect(frame.route == truth)
            }
            world.step(tick < 50 ? .turnLeft(level: 1) : .forward(level: 1))
        }
        #expect(world.faultTicks == 10 + 30 + 10)
    }

    /// Without a path (the target walled in), the frame says `null` and the expert falls back to
    /// turning towards the target it knows.
    @Test func noPathMeansNullRoute() throws {
        var s = try shipped("simple_room")
        let t = s.objects.first { $0.id == s.task.target }!
        s.walls.append(contentsOf: [RectSpec(x: t.x - 0.6, y: t.y - 0.6, w: 1.2, h: 0.1),
                                   RectSpec(x: t.x - 0.6, y: t.y + 0.5, w: 1.2, h: 0.1),
                                   RectSpec(x: t.x - 0.6, y: t.y - 0.5, w: 0.1, h: 1.0),
                                   RectSpec(x: t.x + 0.5, y: t.y - 0.5, w: 0.1, h: 1.0)])
        var world = World(scenario: s)
        let frame = world.sense()
        #expect(frame.route == nil && world.route == nil && world.planFailures == 1)
        var expert = ExpertPolicy(world: world)
        _ = expert.decide(world)
        #expect(expert.planFailures == 1)
    }
}
