import Foundation
import Testing
@testable import Runtime

@Suite struct SchemaTests {
    @Test("docs/schemas holds the same schemas the daemon embeds in its recordings", arguments: ["intent", "telemetry", "status", "obs"])
    func docsMatchEmbedded(name: String) throws {
        let file = packageRoot.appendingPathComponent("docs/schemas/\(name).schema.json")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? NSDictionary
        let embedded = try JSONSerialization.jsonObject(with: Data(try #require(Schemas.all[name]).utf8)) as? NSDictionary
        #expect(doc != nil && doc == embedded, "regenerate docs/schemas/\(name).schema.json from Sources/Runtime/Schemas.swift")
    }
}
