import Foundation
import XCTest
@testable import LetheLedger

/// The PostgreSQL schema must stay the SQLite schema: the same tables, views, columns (in
/// order, with the mapped types) and indexes; and the embedded copy must be the files.
final class PostgresSchemaTests: XCTestCase {
    func testEmbeddedPostgresSchemaEqualsFiles() throws {
        let dir = SchemaTests.repo.appendingPathComponent("schema/ledger-postgres")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted()
        XCTAssertEqual(files.map { String($0.dropLast(4)) }, EmbeddedPostgresSchema.migrations.map(\.id))
        // One PostgreSQL migration per SQLite one, with the same ids.
        XCTAssertEqual(EmbeddedPostgresSchema.migrations.map(\.id), EmbeddedSchema.migrations.map(\.id))
        for (file, m) in zip(files, EmbeddedPostgresSchema.migrations) {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            XCTAssertEqual(text, m.sql, "\(file) differs from the embedded copy; run tools/gen-schema")
        }
        let views = try String(contentsOf: SchemaTests.repo.appendingPathComponent("schema/views-postgres.sql"), encoding: .utf8)
        XCTAssertEqual(views, EmbeddedPostgresSchema.views, "schema/views-postgres.sql differs from the embedded copy; run tools/gen-schema")
    }

    /// "table.column type" for every column of every table and view, tables first, in column order.
    private func sqliteColumns(_ l: Ledger) throws -> (tables: [String], views: [String], indexes: [String]) {
        func list(_ type: String) throws -> [String] {
            try l.select("SELECT name FROM sqlite_schema WHERE type = ?1 AND name NOT LIKE 'sqlite_%' ORDER BY name", [.text(type)])
                .compactMap { $0["name"]?.string }
        }
        func columns(_ names: [String], typed: Bool) throws -> [String] {
            var out: [String] = []
            for t in names {
                for c in try l.select("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid", [.text(t)]) {
                    let type: String
                    switch c["type"]?.string ?? "" {
                    case "INTEGER": type = "bigint"
                    case "REAL": type = "double precision"
                    case "TEXT": type = "text"
                    case "BLOB": type = "bytea"
                    case let other: type = "?\(other)"
                    }
                    out.append("\(t).\(c["name"]?.string ?? "?")" + (typed ? " \(type)" : ""))
                }
            }
            return out
        }
        return (try columns(try list("table"), typed: true), try columns(try list("view"), typed: false), try list("index"))
    }

    private func postgresColumns(_ l: Ledger) throws -> (tables: [String], views: [String], indexes: [String]) {
        func columns(_ kind: String, typed: Bool) throws -> [String] {
            try l.select("""
                SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
                  JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
                 WHERE c.table_schema = current_schema() AND t.table_type = ?1
                 ORDER BY c.table_name COLLATE "C", c.ordinal_position
                """, [.text(kind)]).map { r in
                "\(r["table_name"]?.string ?? "?").\(r["column_name"]?.string ?? "?")" + (typed ? " \(r["data_type"]?.string ?? "?")" : "")
            }
        }
        let indexes = try l.select("""
            SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname NOT LIKE '%_pkey'
             ORDER BY indexname COLLATE "C"
            """).compactMap { $0["indexname"]?.string }
        return (try columns("BASE TABLE", typed: true), try columns("VIEW", typed: false), indexes)
    }

    func testBothBackendsHaveTheSameTablesColumnsViewsAndIndexes() throws {
        let pg = try PostgresTestDatabase()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pgschema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("k.pem").path
        let lite = try Ledger.create(path: dir.appendingPathComponent("l.sqlite").path, keyPath: key, origin: "o")
        let post = try Ledger.create(postgres: pg.url, keyPath: key, origin: "o")
        let a = try sqliteColumns(lite), b = try postgresColumns(post)
        XCTAssertEqual(a.tables, b.tables)
        XCTAssertEqual(a.views, b.views)
        XCTAssertEqual(a.indexes, b.indexes)
        XCTAssertEqual(a.tables.count, 126)
        XCTAssertTrue(a.views.contains("forget_requests.deadline_met"))
        XCTAssertFalse(a.tables.contains { $0.contains("?") }, "an SQLite column type without a PostgreSQL counterpart")
    }
}
