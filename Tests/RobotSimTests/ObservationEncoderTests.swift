import Foundation
import Testing
import CAllocCounter
import Observation
@testable import RobotSim

@Suite struct ObservationEncoderTests {
    let enc = ObservationEncoder()

    @Test func tokenLayoutFitsTheReservedBlock() {
        // The last reserved observation token (63) is the engine's frame-end marker.
        #expect(ObservationEncoder.tokenCount <= 63)
        #expect(ObservationEncoder.maxTokensPerFrame <= 15)
        var names = Set<String>()
        for k in 0..<ObservationEncoder.tokenCount {
            let name = ObservationEncoder.tokenName(k)
            #expect(name != nil, "token \(k) has no name")
            names.insert(name ?? "")
        }
        #expect(names.count == ObservationEncoder.tokenCount)
        #expect(ObservationEncoder.tokenName(ObservationEncoder.tokenCount) == nil)
    }

    @Test func bucketsOfAHandMadeFrame() {
        var ranges = [Float](repeating: 6, count: 16)
        ranges[0] = 0.3   // F blocked
        ranges[2] = 0.5   // FL near
        ranges[3] = 1.0   // L mid
        ranges[13] = 0.69 // R near
        let dets = [Detection(colour: "orange", kind: "ball", bearing: -0.7, distance: 3.0),
                    Detection(colour: "red", kind: "box", bearing: 0.1, distance: 0.5),
                    Detection(colour: "blue", kind: "box", bearing: 0.3, distance: 4.0)]
        var out = [Int]()
        var frame = makeFrame(ranges: ranges, detections: dets, v: 0.5, bump: true, battery: 0.1)
        frame.route = Route(bearing: 0.4, distance: 0.5)
        let n = enc.encode(frame, into: &out)
        let names = out.map { ObservationEncoder.tokenName($0)! }
        #expect(n == out.count)
        // Nearest two detections only (red close ahead, then orange → colour_other far right).
        #expect(names == ["L_mid", "FL_near", "F_blocked", "FR_far", "R_near", "fast", "route_left", "route_close",
                          "red", "ahead_close", "colour_other", "far_right_far", "bump", "battery_low"])
        #expect(n == ObservationEncoder.maxTokensPerFrame - 1)  // not turning: no turning token
    }

    @Test func routeSectorsDistanceAndAbsence() {
        var out = [Int]()
        var f = makeFrame(v: 0)
        let cases: [(Float, String)] = [(0, "route_ahead"), (0.149, "route_ahead"), (-0.149, "route_ahead"),
                                        (0.15, "route_slight_left"), (-0.2, "route_slight_right"),
                                        (0.35, "route_left"), (-0.49, "route_right"), (0.5, "route_sharp_left"),
                                        (-0.99, "route_sharp_right"), (1.0, "route_back_left"), (-3.14, "route_back_right"),
                                        (.nan, "route_ahead")]
        for (bearing, name) in cases {
            f.route = Route(bearing: bearing, distance: 3)
            enc.encode(f, into: &out)
            let names = out.map { ObservationEncoder.tokenName($0)! }
            #expect(names.filter { $0.hasPrefix("route_") } == [name], "bearing \(bearing)")
        }
        for (distance, name) in [(Float(0), "route_arrived"), (0.001, "route_close"), (0.79, "route_close"), (0.8, nil)] {
            f.route = Route(bearing: 0, distance: distance)
            enc.encode(f, into: &out)
            let names = out.map { ObservationEncoder.tokenName($0)! }.filter { $0.hasPrefix("route_") }
            #expect(names == ["route_ahead"] + (name.map { [$0] } ?? []), "distance \(distance)")
        }
        f.route = nil
        enc.encode(f, into: &out)
        #expect(!out.map { ObservationEncoder.tokenName($0)! }.contains { $0.hasPrefix("route_") })
    }

    @Test func turningIsObserved() {
        var out = [Int]()
        var f = makeFrame(v: 0)
        f.odom.w = 0.5
        enc.encode(f, into: &out)
        #expect(out.map { ObservationEncoder.tokenName($0)! }.contains("turning_left"))
        f.odom.w = -0.5
        enc.encode(f, into: &out)
        #expect(out.map { ObservationEncoder.tokenName($0)! }.contains("turning_right"))
        f.odom.w = 0.05
        enc.encode(f, into: &out)
        #expect(!out.map { ObservationEncoder.tokenName($0)! }.contains { $0.hasPrefix("turning") })
    }

    @Test func missingScanAndNoDetections() {
        var out = [Int]()
        enc.encode(makeFrame(ranges: [], v: -0.1, battery: 0.01), into: &out)
        #expect(out.map { ObservationEncoder.tokenName($0)! } == ["scan_missing", "reverse", "no_detection", "battery_critical"])
    }

    @Test func everySimulatedFrameIsBounded() throws {
        var out = [Int]()
        var scenarios = try ["simple_room", "faults_dropout", "faults_contradict", "unseen_colour"].map(shipped)
        scenarios.append(ScenarioGenerator.generate(seed: 3, family: .cluttered))
        for s in scenarios {
            for f in expertFrames(s, ticks: 600) {
                let n = enc.encode(f, into: &out)
                #expect(n >= 3 && n <= ObservationEncoder.maxTokensPerFrame)
                #expect(out.allSatisfy { (0..<ObservationEncoder.tokenCount).contains($0) })
            }
        }
    }

    @Test func unsafeBufferVariantMatches() throws {
        let frames = expertFrames(try shipped("cluttered"), ticks: 200)
        var arr = [Int]()
        let buf = UnsafeMutableBufferPointer<Int>.allocate(capacity: ObservationEncoder.maxTokensPerFrame)
        defer { buf.deallocate() }
        for f in frames {
            let n = enc.encode(f, into: buf)
            enc.encode(f, into: &arr)
            #expect(Array(buf[0..<n]) == arr)
        }
    }

    @Test func encodeAllocatesNothingWithAPreallocatedBuffer() throws {
        #expect(mgac_supported() == 1, "allocation counting is unsupported in this build (needs Linux + glibc)")
        let frames = expertFrames(try shipped("cluttered"), ticks: 300)
            + expertFrames(try shipped("faults_dropout"), ticks: 300)
        var out = [Int]()
        out.reserveCapacity(ObservationEncoder.maxTokensPerFrame)
        let buf = UnsafeMutableBufferPointer<Int>.allocate(capacity: ObservationEncoder.maxTokensPerFrame)
        defer { buf.deallocate() }
        var sink = 0
        var counts: [Int64] = [0, 0]
        mgac_enable(1)
        // Two passes over every frame; the first also warms up (first calls instantiate runtime
        // metadata and lazy statics: a handful of one-off allocations in unoptimised builds).
        // Index loops: `for f in frames` itself allocates in unoptimised builds (large elements).
        for pass in 0..<2 {
            let before = mgac_thread_mallocs()
            for i in frames.indices {
                sink &+= enc.encode(frames[i], into: &out)
                sink &+= enc.encode(frames[i], into: buf)
            }
            counts[pass] = mgac_thread_mallocs() - before
        }
        mgac_enable(0)
        let allocations = counts[1]
        #expect(sink > 0)
        #expect(allocations == 0, "encode allocated \(allocations) times for \(2 * frames.count) calls (first pass: \(counts[0]))")
    }

    @Test func encodeKeepsTheCallersBuffer() throws {
        let frames = expertFrames(try shipped("cluttered"), ticks: 300)
        var out = [Int]()
        out.reserveCapacity(ObservationEncoder.maxTokensPerFrame)
        let base = out.withUnsafeBufferPointer { $0.baseAddress }
        for f in frames {
            enc.encode(f, into: &out)
            #expect(out.withUnsafeBufferPointer { $0.baseAddress } == base, "encode reallocated the output buffer")
        }
    }
}
