import Foundation
import XCTest
import LetheNN
@testable import LetheLedger

/// The engine's story with its ledger in PostgreSQL (LETHE_PG_TEST_URL): train, bases, two forget
/// requests, a refused rollback, a --reapply rollback, replay bit for bit, audit, verify, and an
/// edited row named by verify.
final class PostgresEngineStoryTests: XCTestCase {
    func testForgetReplayRollbackAuditOnAPostgresLedger() throws {
        guard let server = ProcessInfo.processInfo.environment["LETHE_PG_TEST_URL"], !server.isEmpty else {
            throw XCTSkip("LETHE_PG_TEST_URL is not set: no PostgreSQL test server (tools/test starts one with tools/scaleout/start-postgres)")
        }
        let name = "lethe_story_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
        try PostgresConnection(url: server).execute("CREATE DATABASE \(name)")
        defer { try? PostgresConnection(url: server).execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        let slash = try XCTUnwrap(server.range(of: "/", options: .backwards))
        let url = server.replacingCharacters(in: slash.upperBound..<(server[slash.upperBound...].firstIndex(of: "?") ?? server.endIndex), with: name)

        let s = try EngineStore()
        func str(_ d: JSONDoc?) -> String? { if case .string(let v)? = d { return v }; return nil }
        func arr(_ d: JSONDoc?) -> [JSONDoc] { if case .array(let a)? = d { return a }; return [] }
        func bool(_ d: JSONDoc?) -> Bool? { if case .bool(let b)? = d { return b }; return nil }

        try s.expect(0, ["init", "--origin", "lethe.test/pg-engine", "--ledger", url])
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dbPath))
        try s.expect(0, ["train", "--arch", "mlp", "--data", "digits", "--epochs", "8", "--batch-size", "32", "--seed", "1", "--ref", "prod"])
        let bases = try XCTUnwrap(str(JSONDoc.parse(try s.expect(0, ["bases", "--ref", "prod", "--data", "digits", "--json"]).out)?["version"]))
        let ids = EngineStoryTests.trainIDs
        XCTAssertEqual(ids.count, 1438)
        for args in [["--samples", try s.idFile("r1.txt", Array(ids[0..<40])), "--requester", "subject-1", "--max-epochs", "30"],
                     ["--class", "3", "--requester", "subject-2", "--max-epochs", "30"]] {
            let f = JSONDoc.parse(try s.expect(0, ["forget", "--ref", "prod", "--data", "digits"] + EngineStoryTests.fast + args + ["--json"]).out)
            XCTAssertEqual(str(f?["status"]), "applied")
        }
        let refused = try s.run(["rollback", "prod", String(bases.prefix(12))])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.err.hasPrefix("Error: refused: rolling prod back to \(bases.prefix(12)) would resurface samples forgotten by R1, R2"), refused.err)
        let rb = JSONDoc.parse(try s.expect(0, ["rollback", "prod", bases, "--reapply", "--data", "digits", "--json"]).out)
        XCTAssertEqual(arr(rb?["reapplied"]).compactMap { str($0["request"]) }, ["R1.reapply1", "R2.reapply1"])
        let head = try XCTUnwrap(str(rb?["result"]))
        let replay = JSONDoc.parse(try s.expect(0, ["replay", "--recompute", head, "--data", "digits", "--json"]).out)
        XCTAssertEqual(bool(replay?["identical"]), true)
        let audit = JSONDoc.parse(try s.expect(0, ["audit", "--format", "json"]).out)
        XCTAssertEqual(bool(audit?["log"]?["verified"]), true)
        XCTAssertEqual(arr(audit?["requests"]).compactMap { str($0["id"]) }, ["R1", "R2", "R1.reapply1", "R2.reapply1"])
        for r in arr(audit?["requests"]) { XCTAssertEqual(bool(r["inclusionProof"]?["verified"]), true) }
        let statuses = try s.expect(0, ["query", "--csv", "SELECT id, status, sample_count FROM forget_requests ORDER BY id"]).out
        // R2 names the class-3 training samples R1 had not already forgotten.
        let class3 = Set(ids).subtracting(EngineStoryTests.notThree).subtracting(ids[0..<40]).count
        XCTAssertEqual(statuses, "id,status,sample_count\r\nR1,applied,40\r\nR1.reapply1,applied,40\r\nR2,applied,\(class3)\r\nR2.reapply1,applied,\(class3)\r\n")
        XCTAssertTrue(try s.expect(0, ["verify"]).out.hasPrefix("ledger ok: "))

        // An edited row in PostgreSQL is named by verify.
        try PostgresConnection(url: url).execute("UPDATE ledger_request_samples SET sample_id = '0' WHERE request_id = 'R1' AND position = 3")
        let bad = try s.run(["verify"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.err.hasPrefix("Error: ledger verification failed: first bad entry "), bad.err)
        XCTAssertTrue(bad.err.contains("(request.received R1)"), bad.err)
    }
}
