import Foundation
import Testing
import Observation

@Suite struct FrameCodingTests {
    @Test func jsonRoundTripAndShape() throws {
        let f = makeFrame(detections: [Detection(colour: "red", kind: "box", bearing: 0.25, distance: 1.5)], v: 0.3)
        let data = try f.jsonData()
        #expect(try ObservationFrame.decode(json: data) == f)
        let obj = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(obj.keys) == ["v", "seq", "t", "ranges", "range_max", "detections", "odom", "bump", "battery", "route"])
        #expect(obj["v"] as? Int == 2)
        #expect(obj["route"] is NSNull)   // no route: an explicit null, never a missing key
        var routed = f
        routed.route = Route(bearing: -0.25, distance: 1.5)
        #expect(try ObservationFrame.decode(json: try routed.jsonData()) == routed)
    }

    @Test func wrongVersionIsRejected() throws {
        let text = String(decoding: try makeFrame().jsonData(), as: UTF8.self)
        for old in ["1", "3"] {
            let bad = text.replacingOccurrences(of: "\"v\":2", with: "\"v\":" + old)
            do {
                _ = try ObservationFrame.decode(json: Data(bad.utf8))
                Issue.record("version \(old) was accepted")
            } catch {
                #expect(error.description.contains("expected version 2, found \(old)"))
            }
        }
        let noRoute = text.replacingOccurrences(of: ",\"route\":null", with: "")
        #expect(noRoute != text)
        #expect(throws: FrameDecodingError.self) { try ObservationFrame.decode(json: Data(noRoute.utf8)) }
    }

    @Test func errorsNameTheKeyPath() throws {
        var text = String(decoding: try makeFrame(detections: [Detection(colour: "red", kind: "box", bearing: 0.25, distance: 1.5)]).jsonData(), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"bearing\":0.25", with: "\"bearing\":\"left\"")
        do {
            _ = try ObservationFrame.decode(json: Data(text.utf8))
            Issue.record("a string bearing was accepted")
        } catch {
            #expect(error.description.contains("detections[0].bearing"), "\(error)")
        }
        do {
            _ = try ObservationFrame.decode(json: Data("{\"v\":2,\"seq\":0}".utf8))
            Issue.record("a frame without t was accepted")
        } catch {
            #expect(error.description.contains("t: required key is missing"), "\(error)")
        }
    }
}
