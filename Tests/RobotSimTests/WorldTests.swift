import Foundation
import Testing
import Observation
@testable import RobotSim

@Suite struct WorldTests {
    /// An empty 4 × 3 room with the robot facing the east wall.
    func emptyRoom(x: Double = 1, faults: [FaultSpec] = []) -> Scenario {
        Scenario(name: "empty", family: "custom", seed: 9, width: 4, height: 3, walls: [], obstacles: [], movers: [],
                 objects: [ObjectSpec(id: "t", colour: "red", kind: "box", x: 3.5, y: 2.6, radius: 0.15)],
                 robot: RobotSpec(x: x, y: 1.0, theta: 0), task: TaskSpec(target: "t"), faults: faults)
    }

    @Test func drivingIntoAWallCollidesOnceAndDoesNotPenetrate() {
        var w = World(scenario: emptyRoom())
        for _ in 0..<400 { _ = w.sense(); w.step(.forward(level: 3)) }
        #expect(w.collisions == 1)
        #expect(w.contact)
        #expect(w.position.x <= 4 - RobotParams.radius + 1e-9)
        #expect(w.position.x > 4 - RobotParams.radius - 0.02)
        #expect(w.sense().bump)
    }

    @Test func controllerReachesSetPointsUnderAccelerationLimits() {
        var w = World(scenario: emptyRoom(x: 0.5))
        w.step(.forward(level: 3))
        #expect(abs(w.speed - RobotParams.maxAccel * RobotParams.dt) < 1e-12)
        for _ in 0..<30 { w.step(.forward(level: 3)) }
        #expect(w.speed == RobotParams.maxSpeed)
        for _ in 0..<40 { w.step(.stop) }
        #expect(w.speed == 0)
        let p = w.position
        for _ in 0..<50 { w.step(.turnLeft(level: 2)) }
        #expect(w.position == p)  // turning in place
        #expect(abs(w.turnRate - RobotParams.maxTurnRate) < 1e-12)
    }

    @Test func scannerSeesTheWalls() {
        var w = World(scenario: emptyRoom())
        let f = w.sense()
        #expect(f.ranges.count == 16)
        #expect(abs(f.ranges[0] - 3.0) < 0.05)   // ahead: east wall at x = 4
        #expect(abs(f.ranges[8] - 1.0) < 0.05)   // behind: west wall at x = 0
        #expect(abs(f.ranges[4] - 2.0) < 0.05)   // left: north wall at y = 3
        #expect(abs(f.ranges[12] - 1.0) < 0.05)  // right: south wall at y = 0
        #expect(f.detections.count == 1 && f.detections[0].colour == "red" && f.detections[0].bearing > 0)
    }

    /// A `when_within` fault waits for the robot to close in on something, then lasts to − from ticks.
    @Test func hazardFaultBeginsWhenTheClearanceAheadFallsBelowItsTrigger() {
        // Facing the east wall 3 m away (x = 1): a scanner dropout armed from tick 5, triggered at 1.0 m.
        let fault = FaultSpec(kind: .dropout, sensor: .scanner, from: 5, to: 35, whenWithin: 1.0)
        var w = World(scenario: emptyRoom(faults: [fault]))
        var began: Int?
        var clearanceAtStart = 0.0
        var faultTicks: [Int] = []
        for _ in 0..<600 {
            let clearance = w.frontClearance()
            let f = w.sense()
            if f.ranges.isEmpty {
                if began == nil { began = w.tick; clearanceAtStart = clearance }
                faultTicks.append(w.tick)
                #expect(w.activeFaults == [0])
            } else {
                #expect(w.activeFaults.isEmpty)
            }
            w.step(w.tick < 200 ? .forward(level: 3) : .stop)
        }
        #expect(began != nil)
        #expect(clearanceAtStart < 1.0 && clearanceAtStart > 0.9)   // the first tick under the trigger
        #expect(faultTicks == Array(began!..<(began! + 30)))          // once, for to − from ticks
        #expect(w.faultTicks == 30)
    }

    /// Stamps: every sensor fresh (= t) while healthy; a frozen one keeps the stamp of the reading
    /// it repeats, a dropped one the stamp of its last message; noise leaves stamps fresh.
    @Test func stampsFallBehindForStalledSensorsOnly() {
        let faults = [FaultSpec(kind: .freeze, sensor: .scanner, from: 10, to: 20),
                      FaultSpec(kind: .dropout, sensor: .camera, from: 30, to: 40),
                      FaultSpec(kind: .noise, sensor: .odometry, from: 50, to: 60, sigma: 0.5)]
        var w = World(scenario: emptyRoom(x: 0.5, faults: faults))
        var frames: [ObservationFrame] = []
        for _ in 0..<70 { frames.append(w.sense()); w.step(.forward(level: 1)) }
        for f in frames {
            let tick = Int(f.seq), s = f.stamps!
            #expect(s.scanner == ((10..<20).contains(tick) ? frames[10].t : f.t), "tick \(tick)")
            #expect(s.camera == ((30..<40).contains(tick) ? frames[29].t : f.t), "tick \(tick)")
            #expect(s.odom == f.t, "tick \(tick)")
        }
    }

    @Test func faultsChangeFramesButAreNotFlagged() throws {
        let faults = [FaultSpec(kind: .dropout, sensor: .scanner, from: 10, to: 20),
                      FaultSpec(kind: .freeze, sensor: .odometry, from: 30, to: 60),
                      FaultSpec(kind: .recolour, from: 70, to: 80, colour: "orange"),
                      FaultSpec(kind: .contradict, from: 90, to: 95),
                      FaultSpec(kind: .noise, sensor: .scanner, from: 100, to: 110, sigma: 1.0)]
        var w = World(scenario: emptyRoom(x: 0.5, faults: faults))
        var frames: [ObservationFrame] = []
        for _ in 0..<120 { frames.append(w.sense()); w.step(.forward(level: 0)) }
        #expect(w.faultTicks == 10 + 30 + 10 + 5 + 10)
        #expect(frames[9].ranges.count == 16 && frames[10].ranges.isEmpty && frames[19].ranges.isEmpty && frames[20].ranges.count == 16)
        var tokens = [Int]()
        ObservationEncoder().encode(frames[15], into: &tokens)
        #expect(tokens.first == ObservationEncoder.scanMissing)
        #expect(frames[30].odom == frames[59].odom && frames[60].odom != frames[59].odom)
        #expect(frames[75].detections.first?.colour == "orange" && frames[80].detections.first?.colour == "red")
        #expect(frames[92].bump && frames[92].ranges.allSatisfy { $0 == 6 })
        #expect(frames[92].detections.first!.bearing < 0 && frames[96].detections.first!.bearing > 0)
        let jump = zip(frames[100].ranges, frames[99].ranges).map { abs($0 - $1) }.max()!
        #expect(jump > 0.3)
        // Frames carry no fault flag: the keys are the schema's (with the optional stamps), nothing more.
        let obj = try #require(try JSONSerialization.jsonObject(with: frames[15].jsonData()) as? [String: Any])
        #expect(obj.count == 11 && obj["stamps"] != nil)
    }

    @Test func moversShuttleAndBackOffFromTheRobot() {
        var s = emptyRoom(x: 1)
        s.movers = [MoverSpec(x: 3, y: 1, to: Vec2(1.6, 1), radius: 0.2, speed: 0.5)]
        var w = World(scenario: s)
        var minGap = Double.infinity
        for _ in 0..<500 {
            _ = w.sense(); w.step(.stop)
            minGap = min(minGap, (w.movers[0].position - w.position).length - 0.4)
        }
        #expect(minGap >= 0)
        #expect(w.collisions == 0)
    }
}
