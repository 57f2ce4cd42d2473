import Testing
import Observation

@Suite struct IntentTests {
    @Test func indicesAreStableAndRoundTrip() throws {
        #expect(Intent.tokenCount == Intent.all.count)
        #expect(Intent.tokenCount <= 32)
        for (i, intent) in Intent.all.enumerated() {
            #expect(intent.index == i)
            #expect(Intent(index: i) == intent)
            #expect(try Intent(parsing: intent.text) == intent)
        }
        #expect(Intent(index: Intent.tokenCount) == nil)
        #expect(Intent(index: -1) == nil)
        // Pinned: the trained model depends on these indices.
        #expect(Intent.stop.index == 0 && Intent.done.index == 1 && Intent.backup.index == 2)
        #expect(Intent.forward(level: 1).text == "FORWARD(0.5)")
        #expect(Intent.forward(level: 1).index == 4)
        #expect(Intent.turnLeft(level: 2).text == "TURN_LEFT(1.0)")
        #expect(Intent.turnRight(level: 0).index == 10)
    }

    @Test func parsingIsTolerantButStrict() throws {
        #expect(try Intent(parsing: " FORWARD(0.50) ") == .forward(level: 1))
        #expect(try Intent(parsing: "STOP()") == .stop)
        #expect(try Intent(parsing: "TURN_RIGHT( 0.25 )") == .turnRight(level: 0))
        for bad in ["FLY(1)", "FORWARD", "FORWARD(0.6)", "FORWARD(0.5", "STOP(1)", "forward(0.5)", ""] {
            #expect(throws: IntentParseError.self) { try Intent(parsing: bad) }
        }
        do {
            _ = try Intent(parsing: "FORWARD(0.6)")
        } catch {
            #expect(error.description.contains("0.6"))
            #expect(error.description.contains("[0.25, 0.5, 0.75, 1.0]"))
        }
    }
}
