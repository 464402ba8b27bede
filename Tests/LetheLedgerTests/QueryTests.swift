import Foundation
import XCTest
import LetheCrypto
@testable import LetheLedger

final class QueryTests: XCTestCase {
    /// The README examples, exactly as documented in schema/views.sql.
    static let everContainedSample = """
        SELECT v.id FROM versions v
         WHERE EXISTS (SELECT 1 FROM version_ancestry a JOIN versions o ON o.id = a.ancestor
                        WHERE a.version = v.id AND o.dataset_digest = :dataset)
           AND NOT EXISTS (SELECT 1 FROM version_ancestry a
                             JOIN forget_requests r ON r.version_after = a.ancestor AND r.status = 'applied'
                             JOIN forgotten_samples s ON s.request = r.id
                            WHERE a.version = v.id AND s.dataset_digest = :dataset AND s.sample_id = :sample)
         ORDER BY v.created_at
        """
    static let overdue = """
        SELECT id, requester, received_at, deadline FROM forget_requests
         WHERE status = 'received' AND deadline < strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         ORDER BY deadline
        """
    static let rhoAbove = "SELECT request, max(rho) AS max_rho FROM layer_stats GROUP BY request HAVING max(rho) > :tol ORDER BY request"
    static let storageByCodec = """
        SELECT codec, count(*) AS tensors, sum(bytes_logical) AS logical, sum(bytes_stored) AS stored
          FROM tensors GROUP BY codec ORDER BY codec
        """
    static let prodHistory = "SELECT move, moved_at, old_version, new_version, reason FROM ref_history WHERE ref = 'prod' ORDER BY move"

    func testReadmeExamplesReturnTheExpectedRows() throws {
        let t = try TestStore()
        try t.populate()
        // A request received long ago and never decided, plus one with a large residual.
        try t.ledger.receiveRequest(ForgetRequest(id: "R-old", requester: "u", legalGround: "g", receivedAt: Date(timeIntervalSince1970: 1_600_000_000),
                                                  datasetDigest: TestStore.dataset, samples: [TestStore.sample(1)]))
        try t.ledger.write { w throws(LedgerError) in
            try w.recordVersion(VersionRecord(id: "v2", parents: ["v1"], author: "lethe", message: "forget R2", datasetDigest: TestStore.dataset,
                                              bytesStored: 10, bytesLogical: 4000))
            try w.recordOutcome(RequestOutcome(requestID: "R2", status: .applied, versionBefore: "v1", versionAfter: "v2", method: "pgu",
                                               layers: [LayerStat(layer: "fc", d: 64, k: 10, gamma: 0.99, rho: 2e-5),
                                                        LayerStat(layer: "out", d: 10, k: 3, gamma: 0.99, rho: 1e-9)]))
            try w.moveRef(RefMove(ref: "prod", oldVersion: "v1", newVersion: "v2", reason: "forget R2"))
        }
        let q = try LedgerQuery(path: t.dbPath)
        let ever = try q.run(Self.everContainedSample, parameters: ["dataset": TestStore.dataset, "sample": "123"])
        XCTAssertEqual(ever.rows, [[.text("v0")]])
        let ever5 = try q.run(Self.everContainedSample, parameters: ["dataset": TestStore.dataset, "sample": "5"])
        XCTAssertEqual(ever5.rows, [[.text("v0")], [.text("v1")]])

        let overdue = try q.run(Self.overdue)
        XCTAssertEqual(overdue.columns, ["id", "requester", "received_at", "deadline"])
        XCTAssertEqual(overdue.rows.map { $0[0] }, [.text("R-old")])
        XCTAssertEqual(overdue.rows.first?[3], .text("2020-10-13T12:26:40.000Z"))

        XCTAssertEqual(try q.run(Self.rhoAbove, parameters: ["tol": "1e-5"]).rows, [[.text("R2"), .real(2e-5)]])
        XCTAssertEqual(try q.run(Self.storageByCodec).rows, [[.text("raw"), .integer(1), .integer(40), .integer(40)],
                                                             [.text("zstd"), .integer(1), .integer(2560), .integer(600)]])
        let hist = try q.run(Self.prodHistory)
        XCTAssertEqual(hist.rows.map { $0[3] }, [.text("v0"), .text("v1"), .text("v2")])
        XCTAssertEqual(hist.rows.map { $0[4] }, [.text("train"), .text("forget R1"), .text("forget R2")])
    }

    func testViewsExposeDocumentedColumns() throws {
        let t = try TestStore()
        try t.populate()
        let q = try LedgerQuery(path: t.dbPath)
        let r = try q.run("SELECT id, status, applied_at, deadline_met, version_before, version_after, method, sample_count, merkle_root FROM forget_requests ORDER BY id")
        XCTAssertEqual(r.rows[0][0...1], [.text("R1"), .text("applied")])
        XCTAssertEqual(r.rows[0][3], .integer(1))
        XCTAssertEqual(r.rows[0][7], .integer(2))
        XCTAssertEqual(r.rows[0][8], .text(ForgottenSample.merkleRoot([TestStore.sample(123), TestStore.sample(7)]).hex))
        XCTAssertEqual(r.rows[1][0...3], [.text("R2"), .text("received"), .null, .null])
        XCTAssertEqual(try q.run("SELECT name, version FROM refs").rows, [[.text("prod"), .text("v1")]])
        XCTAssertEqual(try q.run("SELECT parent, parents FROM versions WHERE id = 'v1'").rows, [[.text("v0"), .text(#"["v0"]"#)]])
        XCTAssertEqual(try q.run("SELECT count(*) FROM ledger_entries").rows, [[.integer(8)]])
        XCTAssertEqual(try q.run("SELECT tree_size FROM checkpoints ORDER BY id DESC LIMIT 1").rows, [[.integer(8)]])
        XCTAssertEqual(try q.run("SELECT metric, before, after FROM request_metrics WHERE request = 'R1' ORDER BY metric").rows[0],
                       [.text("forget_acc"), .real(1), .real(0.1)])
        XCTAssertEqual(try q.run("SELECT sample_id FROM forgotten_samples WHERE request = 'R1' ORDER BY position").rows,
                       [[.text("123")], [.text("7")]])
        XCTAssertEqual(try q.run("SELECT layer, d, k, gamma, rho FROM layer_stats").rows,
                       [[.text("fc"), .integer(64), .integer(12), .real(0.99), .real(3e-7)]])
        XCTAssertEqual(try q.run("SELECT shape FROM tensors WHERE name = 'fc.weight'").rows, [[.text("[10,64]")]])
        XCTAssertEqual(try q.run("SELECT digest, sample_count FROM datasets").rows, [[.text(TestStore.dataset), .integer(1797)]])
    }

    /// Every forbidden statement form is refused with a clear error and the file unchanged.
    func testForbiddenFormsAreRefusedAndTheDatabaseIsUnchanged() throws {
        let t = try TestStore()
        try t.populate()
        let before = t.fileHash()
        let q = try LedgerQuery(path: t.dbPath)
        let forbidden: [(String, String)] = [
            ("INSERT INTO ledger_gc_deletions(object, kind, bytes, reason, deleted_at, entry_seq) VALUES ('x','t',1,'r','now',0)",
             "query refused: writes are not allowed (INSERT into ledger_gc_deletions)"),
            ("UPDATE ledger_requests SET requester = 'x'", "query refused: writes are not allowed (UPDATE of ledger_requests)"),
            ("DELETE FROM log_entries", "query refused: writes are not allowed (DELETE from log_entries)"),
            ("REPLACE INTO ledger_meta(key, value) VALUES ('origin', 'evil')", "query refused: writes are not allowed (INSERT into ledger_meta)"),
            ("DROP TABLE log_entries", "query refused: schema changes are not allowed"),
            ("DROP VIEW versions", "query refused: schema changes are not allowed"),
            ("CREATE TABLE t(x)", "query refused: schema changes are not allowed"),
            ("CREATE TEMP TABLE t(x)", "query refused: schema changes are not allowed"),
            ("CREATE TEMP VIEW v AS SELECT 1", "query refused: schema changes are not allowed"),
            ("CREATE INDEX i ON log_entries(kind)", "query refused: schema changes are not allowed"),
            ("CREATE TRIGGER tr AFTER INSERT ON log_entries BEGIN SELECT 1; END", "query refused: schema changes are not allowed"),
            ("ALTER TABLE log_entries ADD COLUMN x", "query refused: schema changes are not allowed"),
            ("ATTACH DATABASE '/tmp/evil.db' AS evil", "query refused: ATTACH is not allowed"),
            ("DETACH DATABASE main", "query refused: DETACH is not allowed"),
            ("PRAGMA journal_mode = DELETE", "query refused: PRAGMA journal_mode is not allowed (only introspection PRAGMAs are)"),
            ("PRAGMA user_version = 99", "query refused: PRAGMA user_version may not be set"),
            ("PRAGMA writable_schema = ON", "query refused: PRAGMA writable_schema is not allowed (only introspection PRAGMAs are)"),
            ("PRAGMA foreign_keys = OFF", "query refused: PRAGMA foreign_keys is not allowed (only introspection PRAGMAs are)"),
            ("SELECT load_extension('/tmp/evil.so')", "query refused: the function load_extension() is not allowed"),
            ("VACUUM", "query refused: the statement would write to the database"),
            ("VACUUM INTO '/tmp/lethe-query-copy.db'", "query refused: the statement would write to the database"),
            ("REINDEX", "query refused: schema changes are not allowed"),
            ("ANALYZE", "query refused: schema changes are not allowed"),
            ("BEGIN", "query refused: transaction control is not allowed"),
            ("SAVEPOINT s", "query refused: transaction control is not allowed"),
            ("SELECT 1; DELETE FROM log_entries", "query refused: one statement at a time: remove everything after the first ';'"),
            ("WITH x AS (SELECT 1) DELETE FROM log_entries", "query refused: writes are not allowed (DELETE from log_entries)"),
        ]
        for (sql, message) in forbidden {
            XCTAssertThrowsError(try q.run(sql), sql) { e in XCTAssertEqual("\(e)", message, sql) }
        }
        XCTAssertEqual(t.fileHash(), before)
        XCTAssertTrue(try Ledger.open(path: t.dbPath).verify().isValid)
        // The connection still answers reads afterwards, and introspection PRAGMAs work.
        XCTAssertEqual(try q.run("SELECT count(*) FROM forget_requests").rows, [[.integer(2)]])
        XCTAssertEqual(try q.run("PRAGMA table_info(log_entries)").rows.count, 5)
        XCTAssertEqual(try q.run("PRAGMA user_version").rows, [[.integer(1)]])
    }

    func testParametersAreBoundNeverSpliced() throws {
        let t = try TestStore()
        try t.populate()
        let q = try LedgerQuery(path: t.dbPath)
        let evil = "R1'; DROP TABLE log_entries; --"
        XCTAssertEqual(try q.run("SELECT id FROM forget_requests WHERE id = :id", parameters: ["id": evil]).rows, [])
        XCTAssertEqual(try q.run("SELECT id FROM forget_requests WHERE id = @id", parameters: ["id": "R1"]).rows, [[.text("R1")]])
        XCTAssertEqual(try q.run("SELECT sample_id FROM forgotten_samples WHERE sample_id = $s", parameters: ["s": "123"]).rows, [[.text("123")]])
        XCTAssertEqual(LedgerQuery.parameterValue("007"), .text("007"))
        XCTAssertEqual(LedgerQuery.parameterValue("-3"), .integer(-3))
        XCTAssertEqual(LedgerQuery.parameterValue("1e-5"), .real(1e-5))
        XCTAssertEqual(LedgerQuery.parameterValue("prod"), .text("prod"))
        XCTAssertThrowsError(try q.run("SELECT :a")) { e in
            XCTAssertEqual("\(e)", "invalid ledger record: the query uses :a but no --param a=... was given")
        }
        XCTAssertThrowsError(try q.run("SELECT 1", parameters: ["b": "1"])) { e in
            XCTAssertEqual("\(e)", "invalid ledger record: --param b is not used by the query")
        }
        XCTAssertThrowsError(try q.run("SELECT ?"))
    }

    func testRowLimitAndTimeLimit() throws {
        let t = try TestStore()
        let q = try LedgerQuery(path: t.dbPath)
        let series = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25000) SELECT i FROM n"
        let limited = try q.run(series)
        XCTAssertEqual(limited.rows.count, 10_000)
        XCTAssertTrue(limited.truncated)
        let all = try q.run(series, limit: nil)
        XCTAssertEqual(all.rows.count, 25_000)
        XCTAssertFalse(all.truncated)
        XCTAssertEqual(try q.run(series, limit: 3).rows, [[.integer(1)], [.integer(2)], [.integer(3)]])
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
        XCTAssertThrowsError(try q.run(endless, timeLimit: 0)) { e in
            guard case .queryTimeout = e as? LedgerError else { return XCTFail("\(e)") }
        }
    }

    func testOutputFormats() {
        let r = QueryResult(columns: ["id", "n", "x", "note"],
                            rows: [[.text("R1"), .integer(12), .real(0.5), .text("a, \"b\"\nc")],
                                   [.text("R10"), .integer(3), .null, .blob([0xab, 0x01])]],
                            truncated: false)
        XCTAssertEqual(QueryOutput.table(r), """
            id   n   x     note
            ---  --  ----  ---------
            R1   12   0.5  a, "b"\\nc
            R10   3  NULL  ab01
            (2 rows)

            """)
        XCTAssertEqual(QueryOutput.json(r), """
            [
              {"id": "R1", "n": 12, "x": 0.5, "note": "a, \\"b\\"\\nc"},
              {"id": "R10", "n": 3, "x": null, "note": "ab01"}
            ]

            """)
        XCTAssertEqual(QueryOutput.csv(r), "id,n,x,note\r\nR1,12,0.5,\"a, \"\"b\"\"\nc\"\r\nR10,3,,ab01\r\n")
    }
}
