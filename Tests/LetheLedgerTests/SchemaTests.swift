import Foundation
import XCTest
@testable import LetheLedger

/// The SQL embedded in the binary must be exactly schema/ledger/*.sql and schema/views.sql
/// (regenerate with tools/gen-schema).
final class SchemaTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testEmbeddedSchemaEqualsFiles() throws {
        let dir = Self.repo.appendingPathComponent("schema/ledger")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted()
        XCTAssertEqual(files.map { String($0.dropLast(4)) }, EmbeddedSchema.migrations.map(\.id))
        for (file, m) in zip(files, EmbeddedSchema.migrations) {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            XCTAssertEqual(text, m.sql, "\(file) differs from the embedded copy; run tools/gen-schema")
        }
        let views = try String(contentsOf: Self.repo.appendingPathComponent("schema/views.sql"), encoding: .utf8)
        XCTAssertEqual(views, EmbeddedSchema.views, "schema/views.sql differs from the embedded copy; run tools/gen-schema")
    }

    func testEveryDocumentedViewExists() throws {
        let t = try TestStore()
        let names = try t.ledger.select("SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY name").compactMap { $0["name"]?.string }
        for v in ["versions", "tensors", "refs", "ref_history", "datasets", "forget_requests", "forgotten_samples",
                  "layer_stats", "request_metrics", "ledger_entries", "checkpoints"] {
            XCTAssertTrue(names.contains(v), "view \(v) missing")
        }
    }
}
