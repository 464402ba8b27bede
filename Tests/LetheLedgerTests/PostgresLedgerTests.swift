import CSQLite
import Foundation
import XCTest
import LetheCrypto
@testable import LetheLedger

/// The ledger on a real PostgreSQL server (LETHE_PG_TEST_URL): the main ledger cases, and the
/// same history giving the same verify answer, tree heads, proofs and signatures as SQLite.
final class PostgresLedgerTests: XCTestCase {
    private var dirs: [URL] = []
    override func tearDown() { for d in dirs { try? FileManager.default.removeItem(at: d) } }

    private func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pgledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        dirs.append(d)
        return d
    }

    /// Checkpoints without their signing time (the one thing two runs of a history may differ in).
    private func heads(_ l: Ledger) throws -> [String] {
        try l.checkpoints().map { "\($0.id) \($0.origin) \($0.treeSize) \($0.root.hex) \(Hex.encode($0.signature)) \($0.publicKeyHex) \($0.body)" }
    }

    func testSameHistoryGivesTheSameLogProofsAndVerifyOnBothBackends() throws {
        let pg = try PostgresTestDatabase()
        let dir = try tempDir()
        let key = dir.appendingPathComponent("signing-key.pem").path
        let lite = try Ledger.create(path: dir.appendingPathComponent("ledger.sqlite").path, keyPath: key, origin: SharedHistory.origin)
        let post = try Ledger.create(postgres: pg.url, keyPath: key, origin: SharedHistory.origin)
        try SharedHistory.write(lite)
        try SharedHistory.write(post)

        XCTAssertEqual(try post.treeSize(), 14)
        XCTAssertEqual(try lite.treeSize(), 14)
        let a = try lite.verify(), b = try post.verify()
        XCTAssertTrue(a.isValid, "\(a.failures)")
        XCTAssertEqual(a, b)
        XCTAssertEqual(b.checkpoints, 10)
        // Ed25519 is deterministic: same key, same tree heads, same signatures.
        XCTAssertEqual(try heads(lite), try heads(post))
        for size in 0...14 { XCTAssertEqual(try lite.root(atSize: size), try post.root(atSize: size), "root at \(size)") }
        for seq in 0..<14 {
            XCTAssertEqual(try lite.entryBytes(seq), try post.entryBytes(seq), "entry \(seq)")
            let p = try lite.inclusionProof(entry: seq), q = try post.inclusionProof(entry: seq)
            XCTAssertTrue(q.verify())
            XCTAssertEqual(p.path, q.path); XCTAssertEqual(p.root, q.root); XCTAssertEqual(p.treeSize, q.treeSize)
            XCTAssertEqual(p.leafHash, q.leafHash); XCTAssertEqual(p.entry, q.entry)
            XCTAssertEqual(p.checkpoint?.signature, q.checkpoint?.signature)
        }
        for old in 1...14 { XCTAssertEqual(try lite.consistencyProof(oldSize: old).path, try post.consistencyProof(oldSize: old).path) }
        // Reads agree too, including NaN (stored as NULL by both) and infinities.
        XCTAssertEqual(try lite.outcome(ofRequest: "R1")?.metrics.map { "\($0)" }, try post.outcome(ofRequest: "R1")?.metrics.map { "\($0)" })
        XCTAssertEqual(try post.outcome(ofRequest: "R1")?.layers[1].rho, .infinity)
        XCTAssertEqual(try post.version("v0")?.tensors.map(\.name), ["B.bias", "_x", "a.bias", "features.10.weight", "features.2.weight", "Ω"])
        XCTAssertEqual(try post.refHistory("prod").map(\.newVersion), ["v0", "v1", "v0"])
        XCTAssertEqual(try post.status(ofRequest: "R2"), .failed)
        XCTAssertEqual(try post.requestsLost(rollingBackFrom: "v1", to: "v0"), ["R1"])
        XCTAssertEqual(try post.forgottenSampleIDs(inHistoryOf: "v1", dataset: SharedHistory.dataset), ["s-123", "s-7", "s-1000"])

        // Reopened from another connection with the key: same answer, and it can append.
        let again = try Ledger.open(postgres: pg.url, keyPath: key)
        XCTAssertEqual(try again.verify(), b)
        try again.moveRef(RefMove(ref: "prod", oldVersion: "v0", newVersion: "v1", reason: "again", movedAt: SharedHistory.t0))
        XCTAssertEqual(try post.treeSize(), 15)
        XCTAssertTrue(try post.verify().isValid)
    }

    func testCopyFromSQLiteKeepsIdsProofsAndCheckpoints() throws {
        let pg = try PostgresTestDatabase()
        let dir = try tempDir()
        let key = dir.appendingPathComponent("signing-key.pem").path
        let dbPath = dir.appendingPathComponent("ledger.sqlite").path
        let lite = try Ledger.create(path: dbPath, keyPath: key, origin: SharedHistory.origin)
        try SharedHistory.write(lite)
        let note = try XCTUnwrap(try lite.latestCheckpoint()).note(key: lite.publicKey)
        let proofs = try (0..<14).map { try lite.inclusionProof(entry: $0).text(key: lite.publicKey) }

        let report = try Ledger.copy(sqlite: dbPath, toPostgres: pg.url, keyPath: key)
        XCTAssertTrue(report.copy.isValid)
        XCTAssertEqual(report.copy, report.source)
        XCTAssertEqual(report.rows.first { $0.table == "log_entries" }?.count, 14)
        XCTAssertEqual(report.rows.first { $0.table == "log_checkpoints" }?.count, 10)
        XCTAssertEqual(report.rows.first { $0.table == "ledger_version_tensors" }?.count, 6)

        let post = try Ledger.open(postgres: pg.url, keyPath: key)
        XCTAssertEqual(try post.checkpoints(), try lite.checkpoints())   // ids, signatures and times
        XCTAssertEqual(try (0..<14).map { try post.inclusionProof(entry: $0).text(key: post.publicKey) }, proofs)
        XCTAssertNil(try post.checkSavedCheckpoint(note: note))
        // The copy goes on: new entries extend the same log.
        try post.moveRef(RefMove(ref: "prod", oldVersion: "v0", newVersion: "v1", reason: "after the copy"))
        XCTAssertTrue(try post.verify().isValid)
        XCTAssertTrue(try post.consistencyProof(oldSize: 14).verify())
        XCTAssertEqual(try post.root(atSize: 14), try lite.root(atSize: 14))

        // Into a database that already holds a ledger: refused, nothing changes.
        XCTAssertThrowsError(try Ledger.copy(sqlite: dbPath, toPostgres: pg.url, keyPath: key)) { e in
            XCTAssertTrue("\(e)".hasSuffix("the target database already holds a ledger; a copy needs an empty one"), "\(e)")
        }
        XCTAssertEqual(try post.treeSize(), 15)
        // A source that does not verify is not copied.
        let other = try PostgresTestDatabase()
        let db = try Database(path: dbPath, flags: SQLITE_OPEN_READWRITE)
        try db.execute("UPDATE ledger_datasets SET sample_count = 1")
        XCTAssertThrowsError(try Ledger.copy(sqlite: dbPath, toPostgres: other.url, keyPath: key)) { e in
            XCTAssertTrue("\(e)".hasPrefix("ledger verification failed: the source ledger does not verify (entry 0 (dataset.recorded"), "\(e)")
        }
        XCTAssertThrowsError(try Ledger.open(postgres: other.url, keyPath: key))
    }

    func testInvalidRecordsAreRefusedAndChangeNothing() throws {
        let pg = try PostgresTestDatabase()
        let dir = try tempDir()
        let l = try Ledger.create(postgres: pg.url, keyPath: dir.appendingPathComponent("k.pem").path, origin: "o")
        try SharedHistory.write(l)
        let before = try heads(l)
        XCTAssertThrowsError(try l.receiveRequest(ForgetRequest(id: "R1", requester: "x", legalGround: "y", datasetDigest: SharedHistory.dataset,
                                                                samples: [SharedHistory.sample(1)]))) { e in
            XCTAssertEqual("\(e)", "invalid ledger record: request R1 is already recorded")
        }
        XCTAssertThrowsError(try l.moveRef(RefMove(ref: "prod", oldVersion: "v1", newVersion: "v0", reason: "stale"))) { e in
            XCTAssertEqual("\(e)", "invalid ledger record: ref prod points to v0, not v1; it was moved concurrently")
        }
        // A failure halfway through a transaction rolls back the rows written before it.
        XCTAssertThrowsError(try l.write { w throws(LedgerError) in
            try w.recordVersion(VersionRecord(id: "v9", author: "x", message: "y", bytesStored: 0, bytesLogical: 0))
            try w.recordOutcome(RequestOutcome(requestID: "R1", status: .failed, hyperparameters: "{not json"))
        })
        XCTAssertNil(try l.version("v9"))
        XCTAssertEqual(try heads(l), before)
        XCTAssertThrowsError(try l.recordOutcome(RequestOutcome(requestID: "R9", status: .failed, hyperparameters: "{bad"))) { e in
            XCTAssertEqual("\(e)", "invalid ledger record: request R9 is not recorded")
        }
        XCTAssertThrowsError(try Ledger.create(postgres: pg.url, keyPath: dir.appendingPathComponent("k2.pem").path, origin: "o")) { e in
            XCTAssertTrue("\(e)".contains("a ledger already exists in this database"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("k2.pem").path))
    }

    func testTamperingIsFoundAtTheFirstBadEntry() throws {
        let pg = try PostgresTestDatabase()
        let dir = try tempDir()
        let key = dir.appendingPathComponent("k.pem").path
        let l = try Ledger.create(postgres: pg.url, keyPath: key, origin: "o")
        try SharedHistory.write(l)
        XCTAssertTrue(try l.verify().isValid)

        // An edited sample id of R1 (entry 3).
        try pg.tamper("UPDATE ledger_request_samples SET sample_id = 's-999' WHERE request_id = 'R1' AND position = 1")
        var r = try l.verify()
        XCTAssertEqual(r.firstBadEntry, 3)
        XCTAssertEqual(r.failures.first?.message, "entry 3 (request.received R1): its rows do not hash to the recorded leaf (a row was edited, inserted, deleted or moved)")
        try pg.tamper("UPDATE ledger_request_samples SET sample_id = 's-7' WHERE request_id = 'R1' AND position = 1")
        XCTAssertTrue(try l.verify().isValid)

        // A metric changed on the applied outcome (entry 5), its leaf hash forged to match the rows:
        // the signed roots no longer match, and the first entry no checkpoint vouches for is 4
        // (entries 4-6 were one transaction; the last good checkpoint covers 4 entries).
        try pg.tamper("UPDATE ledger_request_metrics SET after = 0.5 WHERE request_id = 'R1' AND name = 'forget_acc'")
        let forged = Merkle.leafHash(try l.entryBytes(5))
        try pg.tamper("UPDATE log_entries SET leaf_hash = '\\x\(forged.hex)'::bytea WHERE seq = 5")
        r = try l.verify()
        XCTAssertEqual(r.firstBadEntry, 4, "\(r.failures)")
        XCTAssertEqual(r.failures.first?.message, "checkpoint #5 (tree size 7): the recomputed root differs from the signed one; the first entry it does not vouch for is entry 4 (version.recorded v1)")
        XCTAssertFalse(r.isValid)

        // A deleted trailing entry (with its rows) is caught by the signed checkpoints.
        let other = try PostgresTestDatabase()
        let m = try Ledger.create(postgres: other.url, keyPath: key, origin: "o")
        try SharedHistory.write(m)
        try other.tamper("DELETE FROM ledger_ref_moves WHERE entry_seq = 13; DELETE FROM log_entries WHERE seq = 13")
        r = try m.verify()
        XCTAssertEqual(r.firstBadEntry, 13, "\(r.failures)")
        XCTAssertTrue(r.failures.contains { $0.message.contains("covers 14 entries but the log has only 13") }, "\(r.failures)")

        // A checkpoint signed by another key.
        try other.tamper("UPDATE log_checkpoints SET signature = '\\x\(String(repeating: "00", count: 64))'::bytea WHERE tree_size = 1")
        r = try m.verify()
        XCTAssertTrue(r.failures.contains { $0.message == "checkpoint #2 (tree size 1) is not signed by the store's key \(m.publicKey.hex)" }, "\(r.failures)")
    }

    func testQueriesAreReadOnlyWithATimeLimit() throws {
        let pg = try PostgresTestDatabase()
        let dir = try tempDir()
        let l = try Ledger.create(postgres: pg.url, keyPath: dir.appendingPathComponent("k.pem").path, origin: "o")
        try SharedHistory.write(l)
        let q = try LedgerQuery(postgres: pg.url)
        var r = try q.run("SELECT id, status, sample_count, deadline_met FROM forget_requests ORDER BY id")
        XCTAssertEqual(r.columns, ["id", "status", "sample_count", "deadline_met"])
        XCTAssertEqual(r.rows, [[.text("R1"), .text("applied"), .integer(3), .integer(1)], [.text("R2"), .text("failed"), .integer(1), .integer(1)]])
        r = try q.run("SELECT request, layer, k_over_d, rho FROM layer_stats WHERE request = :req ORDER BY position", parameters: ["req": "R1"])
        XCTAssertEqual(r.rows, [[.text("R1"), .text("fc"), .real(12.0 / 64.0), .real(3.0000000000000004e-7)],
                                [.text("R1"), .text("conv"), .real(0), .real(.infinity)]])
        r = try q.run("SELECT id, parents FROM versions ORDER BY id")
        XCTAssertEqual(r.rows, [[.text("v0"), .text("[]")], [.text("v1"), .text(#"["v0"]"#)]])
        r = try q.run("SELECT name, version FROM refs ORDER BY name")
        XCTAssertEqual(r.rows, [[.text("prod"), .text("v0")], [.text("staging"), .text("v1")]])
        r = try q.run("SELECT seq::text || ':' || kind AS e FROM ledger_entries ORDER BY seq", limit: 3)
        XCTAssertEqual(r.rows.count, 3); XCTAssertTrue(r.truncated)
        XCTAssertEqual(r.rows[2], [.text("2:ref.moved")])
        let leaf = try XCTUnwrap(try q.run("SELECT leaf_hash FROM ledger_entries WHERE seq = 0").rows.first?.first?.string)
        XCTAssertEqual(leaf, try l.entry(0).leafHash.hex)

        let before = try heads(l)
        for (sql, expected) in [
            ("INSERT INTO ledger_meta(key, value) VALUES ('x', 'y')", "query refused: only SELECT, WITH, VALUES or TABLE statements are allowed (not INSERT)"),
            ("DELETE FROM log_entries", "query refused: only SELECT, WITH, VALUES or TABLE statements are allowed (not DELETE)"),
            ("SELECT 1; DROP TABLE log_entries", "query refused: one statement at a time: remove everything after the first ';'"),
            ("SELECT set_config('x.y', '1', false)", "query refused: the function set_config() is not allowed"),
            ("SELECT pg_read_file('/etc/passwd')", "query refused: the function pg_read_file() is not allowed"),
            ("COMMIT", "query refused: only SELECT, WITH, VALUES or TABLE statements are allowed (not COMMIT)"),
        ] {
            XCTAssertThrowsError(try q.run(sql)) { e in XCTAssertEqual("\(e)", expected, sql) }
        }
        // A write the keyword check lets through fails in the server's read-only transaction.
        XCTAssertThrowsError(try q.run("SELECT * FROM ledger_meta FOR UPDATE")) { e in
            XCTAssertTrue("\(e)".hasPrefix("query refused: writes are not allowed (cannot execute SELECT FOR UPDATE in a read-only transaction)"), "\(e)")
        }
        XCTAssertThrowsError(try q.run("SELECT pg_sleep(3)", timeLimit: 0.2)) { e in
            XCTAssertEqual("\(e)", "query interrupted after its time limit of 0.2 s (SQL: SELECT pg_sleep(3))")
        }
        XCTAssertThrowsError(try q.run("SELECT :a")) { e in XCTAssertEqual("\(e)", "invalid ledger record: the query uses :a but no --param a=... was given") }
        XCTAssertEqual(try q.run("SELECT 'x::y' AS s, 2::int AS n").rows, [[.text("x::y"), .integer(2)]])
        // The connection is still usable after every refusal, and nothing changed.
        XCTAssertEqual(try q.run("SELECT count(*) FROM log_entries").rows, [[.integer(14)]])
        XCTAssertEqual(try heads(l), before)
        XCTAssertTrue(try l.verify().isValid)
    }

    func testFourConnectionsAppendingConcurrentlyNeverForkTheLog() throws {
        let pg = try PostgresTestDatabase()
        let dir = try tempDir()
        let key = dir.appendingPathComponent("k.pem").path
        let l = try Ledger.create(postgres: pg.url, keyPath: key, origin: "o")
        try l.recordDataset(DatasetRecord(digest: "ds", sampleCount: 10, source: "test"))
        let workers = 4, each = 15
        let errors = LockedErrors()
        let url = pg.url
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            do {
                let mine = try Ledger.open(postgres: url, keyPath: key)
                for i in 0..<each {
                    try mine.receiveRequest(ForgetRequest(id: "W\(w)-\(i)", requester: "w\(w)", legalGround: "test", datasetDigest: "ds",
                                                          samples: [ForgottenSample(datasetDigest: "ds", sampleID: "\(i)", sampleHash: SHA256.hash("\(w) \(i)"))]))
                }
            } catch { errors.add("\(error)") }
        }
        XCTAssertEqual(errors.all, [])
        XCTAssertEqual(try l.treeSize(), 1 + workers * each)
        let subjects = try l.select("SELECT subject FROM log_entries WHERE kind = 'request.received'").compactMap { $0["subject"]?.string }
        XCTAssertEqual(subjects.count, workers * each)
        XCTAssertEqual(Set(subjects).count, workers * each)
        let r = try l.verify()
        XCTAssertTrue(r.isValid, "\(r.failures)")
        XCTAssertEqual(r.checkpoints, 2 + workers * each)
    }

    func testAWriteSurvivesALostConnection() throws {
        let pg = try PostgresTestDatabase()
        let dir = try tempDir()
        let l = try Ledger.create(postgres: pg.url, keyPath: dir.appendingPathComponent("k.pem").path, origin: "o")
        let pid = try XCTUnwrap(try l.select("SELECT pg_backend_pid() AS pid").first?["pid"]?.int)
        // The server ends the ledger's session (as a restart or failover would).
        try pg.tamper("SELECT pg_terminate_backend(\(pid))")
        try l.recordDataset(DatasetRecord(digest: "after-reconnect", sampleCount: 1, source: "s"))
        let newPID = try XCTUnwrap(try l.select("SELECT pg_backend_pid() AS pid").first?["pid"]?.int)
        XCTAssertNotEqual(newPID, pid)
        XCTAssertEqual(try l.treeSize(), 1)
        XCTAssertTrue(try l.verify().isValid)
        // A writer holding the lock makes the others wait, not fail.
        let blocker = SendableConnection(try PostgresConnection(url: pg.url))
        try blocker.connection.execute("BEGIN; SELECT pg_advisory_xact_lock(\(PostgresConnection.writerLockKey))")
        let started = Date()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { try? blocker.connection.execute("COMMIT") }
        try l.recordDataset(DatasetRecord(digest: "after-wait", sampleCount: 1, source: "s"))
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.45)
        XCTAssertEqual(try l.treeSize(), 2)
        // Outside a transaction the read that finds the session gone fails with one line; the next reconnects.
        let pid2 = try XCTUnwrap(try l.select("SELECT pg_backend_pid() AS pid").first?["pid"]?.int)
        try pg.tamper("SELECT pg_terminate_backend(\(pid2))")
        XCTAssertThrowsError(try l.treeSize()) { e in
            XCTAssertTrue("\(e)".hasPrefix("PostgreSQL error SQLSTATE 08006: connection lost: "), "\(e)")
            XCTAssertFalse("\(e)".contains("\n"))
        }
        XCTAssertEqual(try l.treeSize(), 2)
        XCTAssertTrue(try l.verify().isValid)
    }

    func testConnectionAndKeyErrorsAreOneClearLine() throws {
        _ = try PostgresTestDatabase.serverURL()
        XCTAssertThrowsError(try Ledger.open(postgres: "postgresql://lethe:secret@127.0.0.1:1/x", keyPath: nil)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.hasPrefix("PostgreSQL error SQLSTATE 08001: cannot connect to postgresql://lethe:***@127.0.0.1:1/x"), s)
            XCTAssertFalse(s.contains("secret")); XCTAssertFalse(s.contains("\n"))
        }
        let pg = try PostgresTestDatabase()
        let dir = try tempDir()
        XCTAssertThrowsError(try Ledger.open(postgres: pg.url, keyPath: nil)) { e in
            XCTAssertTrue("\(e)".hasPrefix("not found: no ledger in postgresql://lethe:***@"), "\(e)")
        }
        _ = try Ledger.create(postgres: pg.url, keyPath: dir.appendingPathComponent("a.pem").path, origin: "o")
        let other = try Ed25519.PrivateKey.generate()
        try other.save(path: dir.appendingPathComponent("b.pem").path)
        XCTAssertThrowsError(try Ledger.open(postgres: pg.url, keyPath: dir.appendingPathComponent("b.pem").path)) { e in
            XCTAssertTrue("\(e)".contains("is not the key of the ledger"), "\(e)")
        }
        let readOnly = try Ledger.open(postgres: pg.url, keyPath: nil)
        XCTAssertTrue(try readOnly.verify().isValid)
        XCTAssertThrowsError(try readOnly.recordDataset(DatasetRecord(digest: "x", sampleCount: 1, source: "s")))
        XCTAssertThrowsError(try pg.tamper("SELECT * FROM no_such_table")) { e in
            XCTAssertEqual("\(e)", #"PostgreSQL error SQLSTATE 42P01: relation "no_such_table" does not exist (SQL: SELECT * FROM no_such_table)"#)
        }
    }
}

/// A connection handed to one other thread (used by one thread at a time).
final class SendableConnection: @unchecked Sendable {
    let connection: PostgresConnection
    init(_ c: PostgresConnection) { connection = c }
}

/// Errors collected from concurrent workers.
final class LockedErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [String] = []
    func add(_ e: String) { lock.lock(); errors.append(e); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return errors }
}
