import Foundation
import XCTest
@testable import LetheLedger

/// `lethe` on a store whose ledger is in PostgreSQL (LETHE_PG_TEST_URL, started by tools/test):
/// init --ledger, four processes importing and reconciling concurrently, verify, read-only query,
/// a second host joining with the shared key.
final class PostgresCLITests: XCTestCase {
    private var cleanup: [() -> Void] = []
    override func tearDown() { for c in cleanup.reversed() { c() } }

    /// A fresh database on the test server; dropped after the test.
    private func database() throws -> String {
        guard let server = ProcessInfo.processInfo.environment["LETHE_PG_TEST_URL"], !server.isEmpty else {
            throw XCTSkip("LETHE_PG_TEST_URL is not set: no PostgreSQL test server (tools/test starts one with tools/scaleout/start-postgres)")
        }
        let name = "lethe_cli_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try PostgresConnection(url: server).execute("CREATE DATABASE \(name)")
        cleanup.append { try? PostgresConnection(url: server).execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        guard let slash = server.range(of: "/", options: .backwards) else { return server }
        let end = server[slash.upperBound...].firstIndex(of: "?") ?? server.endIndex
        return server.replacingCharacters(in: slash.upperBound..<end, with: name)
    }

    private func directory() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-pgcli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        cleanup.append { try? FileManager.default.removeItem(at: d) }
        return d
    }

    /// A safetensors file with one F32 tensor "w" of `values`.
    static func weights(_ values: [Float], at url: URL) throws {
        let bytes = safetensorsBytes([("w", values)])
        try Data(bytes).write(to: url)
    }

    func testMigrateStoreMovesTheLedgerAndEarlierCheckpointsStillVerify() throws {
        let url = try database()
        let dir = try directory()
        func lethe(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try runLethe(["--store", dir.path] + args) }
        XCTAssertEqual(try runLethe(["init", dir.path, "--origin", "lethe.test/migrate"]).status, 0)
        for i in 0..<3 {
            let file = dir.appendingPathComponent("m\(i).safetensors")
            try Self.weights([Float(i), 2, 3], at: file)
            XCTAssertEqual(try lethe(["import", file.path, "--ref", "prod"]).status, 0)
        }
        XCTAssertEqual(try lethe(["gc", "--dry-run"]).status, 0)
        let saved = dir.appendingPathComponent("saved-checkpoint.txt")
        try Data(try lethe(["checkpoint"]).out.utf8).write(to: saved)
        let before = try lethe(["verify", "--json"])
        XCTAssertEqual(before.status, 0, before.err)

        let moved = try lethe(["migrate-store", "--ledger", url, "--json"])
        XCTAssertEqual(moved.status, 0, moved.err)
        let validator = LedgerSchemaValidator(directory: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schema"))
        let doc = try XCTUnwrap(JSONDoc.parse(moved.out), moved.out)
        XCTAssertEqual(try validator.validate(doc, against: "migrate-store.schema.json"), [])
        // gc's reconcile adopted the store's moves: 3 versions (a chain) and one ref move to the last.
        XCTAssertEqual(doc["entries"], .integer(4))
        XCTAssertEqual(doc["rows"]?["log_entries"], .integer(4))
        XCTAssertEqual(try remoteJSON(dir), ["ledger": url])

        // The same verify answer from PostgreSQL, and the checkpoint saved before still holds.
        let after = try lethe(["verify", "--json", "--checkpoint", saved.path])
        XCTAssertEqual(after.status, 0, after.out + after.err)
        XCTAssertEqual(JSONDoc.parse(after.out)?["root"], JSONDoc.parse(before.out)?["root"])
        // New writes go to PostgreSQL.
        let file = dir.appendingPathComponent("m9.safetensors")
        try Self.weights([9, 9, 9], at: file)
        XCTAssertEqual(try lethe(["import", file.path, "--ref", "prod"]).status, 0)
        XCTAssertEqual(try lethe(["gc", "--dry-run"]).status, 0)
        let count = try lethe(["query", "--csv", "SELECT count(*) AS n FROM ledger_entries"])
        XCTAssertEqual(csvRows(count.out).last, "6")
        // Migrating again is refused.
        let again = try lethe(["migrate-store", "--ledger", url])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.err.hasPrefix("Error: the ledger of \(dir.path)/.lethe is already in postgresql://lethe:***@"), again.err)
    }

    func testFourProcessesForgetConcurrentlyAndEveryRequestIsRecordedOnce() throws {
        let url = try database()
        let dir = try directory()
        let store = dir.path
        func lethe(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try runLethe(["--store", store] + args) }
        XCTAssertEqual(try runLethe(["init", store, "--ledger", url]).status, 0)
        XCTAssertEqual(try lethe(["train", "--arch", "mlp", "--data", "digits", "--epochs", "3", "--batch-size", "32", "--seed", "1",
                                  "--ref", "prod"]).status, 0)
        XCTAssertEqual(try lethe(["bases", "--ref", "prod", "--data", "digits"]).status, 0)
        for w in 0..<4 { XCTAssertEqual(try lethe(["ref", "set", "p\(w)", "prod", "--reason", "fork"]).status, 0) }
        let ids = try lethe(["dataset", "--data", "digits", "--ids"]).out.split(separator: "\n").prefix(120).map(String.init)
        XCTAssertEqual(ids.count, 120)
        for w in 0..<4 {
            try (ids[(w * 30)..<(w * 30 + 30)].joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("f\(w).txt"), atomically: true, encoding: .utf8)
        }
        // Each process picks the next automatic request id before its PGU run; whoever commits
        // second finds it taken and records its request under the next free one.
        let errors = LockedErrors()
        DispatchQueue.concurrentPerform(iterations: 4) { w in
            do {
                let r = try runLethe(["--store", store, "forget", "--ref", "p\(w)", "--data", "digits", "--samples",
                                      dir.appendingPathComponent("f\(w).txt").path, "--max-epochs", "30", "--collapse-margin", "0.03",
                                      "--requester", "host-\(w)", "--json"])
                if r.status != 0 || !r.out.contains(#""status": "applied""#) { errors.add("forget \(w): \(r.status) \(r.err) \(r.out.prefix(300))") }
            } catch { errors.add("forget \(w): \(error)") }
        }
        XCTAssertEqual(errors.all, [])
        let requests = try lethe(["query", "--csv", "SELECT id, requester, status, sample_count, ref FROM forget_requests ORDER BY id"])
        XCTAssertEqual(requests.status, 0, requests.err)
        let rows = csvRows(requests.out).dropFirst()
        XCTAssertEqual(rows.map { String($0.split(separator: ",")[0]) }, ["R1", "R2", "R3", "R4"], requests.out)
        XCTAssertEqual(Set(rows.map { String($0.split(separator: ",")[1]) }), ["host-0", "host-1", "host-2", "host-3"])
        XCTAssertTrue(rows.allSatisfy { $0.contains(",applied,30,p") }, requests.out)
        let received = try lethe(["query", "--csv", "SELECT count(*) AS n FROM ledger_entries WHERE kind = 'request.received'"])
        XCTAssertEqual(csvRows(received.out).last, "4")
        let verified = try lethe(["verify"])
        XCTAssertEqual(verified.status, 0, verified.out + verified.err)
    }

    func testFourProcessesShareOneLedgerAndTheLogNeverForks() throws {
        let url = try database()
        let dir = try directory()
        let store = dir.path
        func lethe(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try runLethe(["--store", store] + args) }

        let initialized = try runLethe(["init", dir.path, "--ledger", url, "--origin", "lethe.test/pg-cli", "--json"])
        XCTAssertEqual(initialized.status, 0, initialized.err)
        XCTAssertTrue(initialized.out.contains(#""ledger": "postgresql://lethe:***@"#), initialized.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent(".lethe/ledger.sqlite").path))
        XCTAssertEqual(try remoteJSON(dir), ["ledger": url])
        let mode = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(".lethe/remote.json").path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)

        // 4 processes at a time: each imports 4 versions onto its own ref and opens the engine
        // after each (`gc --dry-run`), which records the store's new versions and ref moves in
        // the shared ledger, racing the other processes.
        let workers = 4, each = 4
        let errors = LockedErrors()
        let base = dir
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for i in 0..<each {
                let file = base.appendingPathComponent("w\(w)-\(i).safetensors")
                do {
                    try Self.weights([Float(w), Float(i), 0.5, -1], at: file)
                    for args in [["import", file.path, "--ref", "p\(w)"], ["gc", "--dry-run"]] {
                        let r = try runLethe(["--store", store] + args)
                        if r.status != 0 { errors.add("worker \(w) \(args[0]): \(r.err)") }
                    }
                } catch { errors.add("worker \(w): \(error)") }
            }
        }
        XCTAssertEqual(errors.all, [])
        XCTAssertEqual(try lethe(["gc", "--dry-run"]).status, 0)

        // Every imported version is recorded exactly once, every ref ends where the store's is.
        let counts = try lethe(["query", "--csv", "SELECT subject, count(*) AS n FROM ledger_entries WHERE kind = 'version.recorded' GROUP BY subject ORDER BY subject"])
        XCTAssertEqual(counts.status, 0, counts.err)
        let lines = csvRows(counts.out).dropFirst()
        XCTAssertEqual(lines.count, workers * each)
        XCTAssertTrue(lines.allSatisfy { $0.hasSuffix(",1") }, counts.out)
        for w in 0..<workers {
            let store = try lethe(["show", "p\(w)", "--json"])
            let ledger = try lethe(["query", "--csv", "SELECT version FROM refs WHERE name = :r", "--param", "r=p\(w)"])
            XCTAssertEqual(ledger.status, 0, ledger.err)
            let id = csvRows(ledger.out).last ?? ""
            XCTAssertEqual(id.count, 64, ledger.out)
            XCTAssertTrue(store.out.contains(id), "ref p\(w): the ledger says \(id)")
        }
        let verified = try lethe(["verify"])
        XCTAssertEqual(verified.status, 0, verified.out + verified.err)
        let entries = try lethe(["query", "--csv", "SELECT count(*) AS n, max(seq) + 1 AS next FROM ledger_entries"])
        let row = csvRows(entries.out).last.map { $0.split(separator: ",") } ?? []
        XCTAssertEqual(row.count, 2)
        XCTAssertEqual(row.first, row.last, "log entries are contiguous")

        // Queries are read-only.
        let write = try lethe(["query", "DELETE FROM log_entries"])
        XCTAssertEqual(write.status, 1)
        XCTAssertEqual(write.err, "Error: query refused: only SELECT, WITH, VALUES or TABLE statements are allowed (not DELETE)\n")

        // A second host: joining needs the shared key, and leaves nothing behind when refused.
        let host2 = try directory()
        let refused = try runLethe(["init", host2.path, "--ledger", url])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.err.hasPrefix("Error: postgresql://lethe:***@"), refused.err)
        XCTAssertTrue(refused.err.contains("a ledger already exists in this database (join it with its signing key"), refused.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: host2.appendingPathComponent(".lethe").path))
        let joined = try runLethe(["init", host2.path, "--ledger", url, "--signing-key", dir.appendingPathComponent(".lethe/signing-key.pem").path])
        XCTAssertEqual(joined.status, 0, joined.err)
        let again = try runLethe(["--store", host2.path, "verify", "--json"])
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertTrue(again.out.contains(#""ok": true"#), again.out)
    }
}

/// The keys and values of a store's .lethe/remote.json.
private func remoteJSON(_ dir: URL) throws -> [String: String] {
    let data = try Data(contentsOf: dir.appendingPathComponent(".lethe/remote.json"))
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: String])
}

/// The lines of RFC 4180 CSV output (CRLF-terminated).
private func csvRows(_ text: String) -> [String] { text.components(separatedBy: "\r\n").filter { !$0.isEmpty } }

/// Errors collected from concurrent workers.
final class LockedErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [String] = []
    func add(_ e: String) { lock.lock(); errors.append(e); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return errors }
}
