import Foundation
import XCTest
import LetheCrypto
import LetheLedger

/// Tampering (issue 9, item 4) through the command line: rows edited, deleted, inserted or
/// reordered directly in SQLite make `lethe verify` exit 1 naming the first bad entry (text and
/// JSON); a checkpoint signed by another key is rejected, also when that key is passed with
/// --public-key. The library-level cases are in Tests/LetheLedgerTests/TamperTests.swift.
///
/// Entries of `LedgerCLIStore`: 0 dataset, 1 v0, 2 ref prod, 3 R1 received, 4 v1, 5 R1 applied,
/// 6 ref prod, 7 R2 received.
final class ReliabilityTamperTests: XCTestCase {
    func testVerifyNamesTheFirstBadEntryForEveryKindOfTampering() throws {
        let cases: [(name: String, sql: String, first: Int, fragment: String)] = [
            ("edit a sample id", "UPDATE ledger_request_samples SET sample_id = '124' WHERE request_id = 'R1' AND position = 0",
             3, "entry 3 (request.received R1): its rows do not hash to the recorded leaf"),
            ("edit a layer's rho", "UPDATE ledger_layer_stats SET rho = 1e-9", 5, "entry 5 (request.applied R1)"),
            ("edit a ref move", "UPDATE ledger_ref_moves SET new_version = 'v9' WHERE id = 2", 6, "entry 6 (ref.moved prod)"),
            ("edit an entry's time", "UPDATE log_entries SET created_at = '2020-01-01T00:00:00.000Z' WHERE seq = 1", 1, "entry 1 (version.recorded v0)"),
            ("delete a sample", "DELETE FROM ledger_request_samples WHERE request_id = 'R1' AND position = 1", 3, "entry 3 (request.received R1)"),
            ("delete a whole entry", """
                DELETE FROM ledger_request_outcomes; DELETE FROM ledger_layer_stats; DELETE FROM ledger_request_metrics;
                DELETE FROM ledger_phase_timings; UPDATE ledger_requests SET status = 'received' WHERE id = 'R1';
                DELETE FROM log_entries WHERE seq = 5
                """, 5, "entry 5 is missing from the log"),
            ("delete the last entry", "DELETE FROM ledger_request_samples WHERE request_id = 'R2'; DELETE FROM ledger_requests WHERE id = 'R2'; DELETE FROM log_entries WHERE seq = 7",
             7, "covers 8 entries but the log has only 7"),
            ("insert a sample", """
                INSERT INTO ledger_request_samples(request_id, position, dataset_digest, sample_id, sample_hash, entry_seq)
                VALUES ('R1', 2, '\(LedgerCLIStore.dataset)', '999', '\(String(repeating: "0", count: 64))', 3)
                """, 3, "entry 3 (request.received R1)"),
            ("append an unsigned entry", """
                INSERT INTO log_entries(seq, kind, subject, created_at, leaf_hash) VALUES (8, 'gc.deletion', 'x', '2030-01-01T00:00:00.000Z', zeroblob(32));
                INSERT INTO ledger_gc_deletions(object, kind, bytes, reason, deleted_at, entry_seq) VALUES ('x', 'tensor', 1, 'r', '2030-01-01T00:00:00.000Z', 8)
                """, 8, "entries 8..<9 are not covered by any signed checkpoint"),
            ("reorder two entries", """
                UPDATE log_entries SET seq = 1000 WHERE seq = 3; UPDATE log_entries SET seq = 3 WHERE seq = 7;
                UPDATE log_entries SET seq = 7 WHERE seq = 1000;
                UPDATE ledger_requests SET entry_seq = CASE entry_seq WHEN 3 THEN 7 ELSE 3 END;
                UPDATE ledger_request_samples SET entry_seq = CASE entry_seq WHEN 3 THEN 7 ELSE 3 END
                """, 3, "entry 3 (request.received R2)"),
            ("reorder samples within a request", """
                UPDATE ledger_request_samples SET position = 9 WHERE request_id = 'R1' AND position = 0;
                UPDATE ledger_request_samples SET position = 0 WHERE request_id = 'R1' AND position = 1;
                UPDATE ledger_request_samples SET position = 1 WHERE request_id = 'R1' AND position = 9
                """, 3, "entry 3 (request.received R1)"),
        ]
        for c in cases {
            let s = try LedgerCLIStore()
            XCTAssertEqual(try s.run(["verify"]).status, 0, c.name)
            s.sql(c.sql)
            let r = try s.run(["verify"])
            XCTAssertEqual(r.status, 1, c.name)
            XCTAssertTrue(r.err.hasPrefix("Error: ledger verification failed: first bad entry \(c.first): "), "\(c.name): \(r.err)")
            XCTAssertTrue(r.err.contains(c.fragment), "\(c.name): \(r.err)")
            let j = try s.run(["verify", "--json"])
            XCTAssertEqual(j.status, 1, c.name)
            let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(j.out.utf8)) as? [String: Any], c.name)
            XCTAssertEqual(doc["ok"] as? Bool, false, c.name)
            XCTAssertEqual(doc["first_bad_entry"] as? Int, c.first, c.name)
        }
        print("reliability-tamper: \(cases.count) tampering cases through 'lethe verify', each naming its first bad entry")
    }

    func testCheckpointSignedByAnotherKeyIsRejected() throws {
        let s = try LedgerCLIStore()
        let ledger = try Ledger.open(path: s.dbPath)
        let other = try Ed25519.PrivateKey.generate()
        let root = try ledger.root(atSize: 8)
        let body = Checkpoint.body(origin: "lethe.test/cli", treeSize: 8, root: root)
        let sig = try other.sign(Array(body.utf8))
        s.sql("""
            INSERT INTO log_checkpoints(origin, tree_size, root_hash, body, signature, public_key, created_at)
            VALUES ('lethe.test/cli', 8, x'\(root.hex)', '\(body)', x'\(Hex.encode(sig))', '\(other.publicKey.hex)', '2030-01-01T00:00:00.000Z')
            """)
        let r = try s.run(["verify"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.hasPrefix("Error: ledger verification failed: "), r.err)
        XCTAssertTrue(r.err.contains("is not signed by the store's key \(ledger.publicKey.hex)"), r.err)
        // Trusting the other key instead rejects every genuine checkpoint.
        let pem = s.root.appendingPathComponent("other.pub.pem")
        try other.publicKey.pem().write(to: pem, atomically: true, encoding: .utf8)
        let r2 = try s.run(["verify", "--public-key", pem.path])
        XCTAssertEqual(r2.status, 1)
        XCTAssertTrue(r2.err.contains("is not signed by the store's key \(other.publicKey.hex)"), r2.err)
        // A saved checkpoint signed by another key is rejected as well.
        let note = s.root.appendingPathComponent("saved.note")
        let genuine = try s.run(["checkpoint"])
        XCTAssertEqual(genuine.status, 0, genuine.err)
        try genuine.out.write(to: note, atomically: true, encoding: .utf8)
        let r3 = try s.run(["verify", "--checkpoint", note.path, "--public-key", pem.path])
        XCTAssertEqual(r3.status, 1)
    }
}
