import Foundation
import Testing
import Observation

@Suite struct FrameCodingTests {
    @Test func jsonRoundTripAndShape() throws {
        let f = makeFrame(detections: [Detection(colour: "red", kind: "box", bearing: 0.25, distance: 1.5)], v: 0.3)
        let data = try f.jsonData()
        #expect(try ObservationFrame.decode(json: data) == f)
        let obj = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(obj.keys) == ["v", "seq", "t", "ranges", "range_max", "detections", "odom", "bump", "battery"])
        #expect(obj["v"] as? Int == 1)
    }

    @Test func wrongVersionIsRejected() throws {
        var text = String(decoding: try makeFrame().jsonData(), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"v\":1", with: "\"v\":2")
        do {
            _ = try ObservationFrame.decode(json: Data(text.utf8))
            Issue.record("version 2 was accepted")
        } catch {
            #expect(error.description.contains("expected version 1, found 2"))
        }
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
            _ = try ObservationFrame.decode(json: Data("{\"v\":1,\"seq\":0}".utf8))
            Issue.record("a frame without t was accepted")
        } catch {
            #expect(error.description.contains("t: required key is missing"), "\(error)")
        }
    }
}
