import Foundation
import XCTest
import LetheCrypto
@testable import LetheLedger

/// Editing, deleting, inserting or reordering ledger rows directly in SQLite is detected by
/// `verify`, which names the first bad entry; a checkpoint signed by another key is rejected.
final class TamperTests: XCTestCase {
    private func tampered(_ sql: String) throws -> VerifyReport {
        let t = try TestStore()
        try t.populate()
        XCTAssertTrue(try t.ledger.verify().isValid)
        try t.tamper(sql)
        return try Ledger.open(path: t.dbPath).verify()
    }

    func testEditedRowIsNamed() throws {
        let r = try tampered("UPDATE ledger_request_samples SET sample_id = '124' WHERE request_id = 'R1' AND position = 0")
        XCTAssertFalse(r.isValid)
        XCTAssertEqual(r.firstBadEntry, 3)
        XCTAssertEqual(r.failures.first?.message,
                       "entry 3 (request.received R1): its rows do not hash to the recorded leaf (a row was edited, inserted, deleted or moved)")
    }

    func testEditedMetricAndRefMoveAreNamed() throws {
        XCTAssertEqual(try tampered("UPDATE ledger_request_metrics SET after = 0.9 WHERE name = 'forget_acc'").firstBadEntry, 5)
        XCTAssertEqual(try tampered("UPDATE ledger_ref_moves SET new_version = 'v0' WHERE id = 2").firstBadEntry, 6)
        XCTAssertEqual(try tampered("UPDATE log_entries SET created_at = '2020-01-01T00:00:00.000Z' WHERE seq = 1").firstBadEntry, 1)
    }

    func testEditWithForgedLeafHashIsCaughtByCheckpoints() throws {
        // The attacker edits a row and recomputes the leaf hash the way the ledger would; the
        // signed checkpoints still disagree.
        let t = try TestStore()
        try t.populate()
        try t.tamper("UPDATE ledger_request_samples SET sample_id = '124' WHERE request_id = 'R1' AND position = 0")
        let forged = Merkle.leafHash(try t.ledger.entryBytes(3))
        try t.tamper("UPDATE log_entries SET leaf_hash = x'\(forged.hex)' WHERE seq = 3")
        let r = try Ledger.open(path: t.dbPath).verify()
        XCTAssertFalse(r.isValid)
        XCTAssertEqual(r.firstBadEntry, 3)
        XCTAssertTrue(r.failures.contains { $0.message.contains("the recomputed root differs from the signed one; the first entry it does not vouch for is entry 3 (request.received R1)") },
                      "\(r.failures)")
    }

    func testEditedDerivedStatusIsNamed() throws {
        let r = try tampered("UPDATE ledger_requests SET status = 'received' WHERE id = 'R1'")
        XCTAssertEqual(r.firstBadEntry, 3)
        XCTAssertEqual(r.failures.map(\.message),
                       ["entry 3 (request.received R1): request R1 is marked 'received' but its recorded outcome is 'applied'"])
    }

    func testDamagedTreeNodeIsReportedAndProofsRefuse() throws {
        let t = try TestStore()
        try t.populate()
        try t.tamper("UPDATE log_nodes SET hash = zeroblob(32) WHERE height = 1 AND idx = 0")
        let l = try Ledger.open(path: t.dbPath)
        XCTAssertEqual(try l.verify().failures.map(\.message), ["log_nodes holds 7 tree nodes, 1 of them wrong; 7 were expected"])
        XCTAssertThrowsError(try l.inclusionProof(entry: 3))
    }

    func testDeletedRowsAreNamed() throws {
        XCTAssertEqual(try tampered("DELETE FROM ledger_request_samples WHERE request_id = 'R1' AND position = 1").firstBadEntry, 3)
        // Deleting a whole entry from the middle leaves a gap.
        let gap = try tampered("DELETE FROM ledger_request_outcomes; DELETE FROM ledger_layer_stats; DELETE FROM ledger_request_metrics; DELETE FROM ledger_phase_timings; UPDATE ledger_requests SET status = 'received' WHERE id = 'R1'; DELETE FROM log_entries WHERE seq = 5")
        XCTAssertEqual(gap.firstBadEntry, 5)
        XCTAssertEqual(gap.failures.first?.message,
                       "entry 5 is missing from the log (the next entry is 6): entries were deleted or renumbered")
        // Deleting the last entry (and its rows) is caught by the checkpoint that covered it.
        let tail = try tampered("DELETE FROM ledger_request_samples WHERE request_id = 'R2'; DELETE FROM ledger_requests WHERE id = 'R2'; DELETE FROM log_entries WHERE seq = 7")
        XCTAssertEqual(tail.firstBadEntry, 7)
        XCTAssertTrue(tail.failures.contains { $0.message.contains("covers 8 entries but the log has only 7") }, "\(tail.failures)")
    }

    func testInsertedRowsAreNamed() throws {
        // A sample slipped into an existing request.
        let sample = try tampered("""
            INSERT INTO ledger_request_samples(request_id, position, dataset_digest, sample_id, sample_hash, entry_seq)
            VALUES ('R1', 2, '\(TestStore.dataset)', '999', '\(String(repeating: "0", count: 64))', 3)
            """)
        XCTAssertEqual(sample.firstBadEntry, 3)
        // A metric row pointing at no entry at all.
        let orphan = try tampered("INSERT INTO ledger_request_metrics(request_id, name, before, after, entry_seq) VALUES ('R2', 'x', 1, 2, 42)")
        XCTAssertFalse(orphan.isValid)
        XCTAssertTrue(orphan.failures.contains { $0.message == "ledger_request_metrics has 1 row(s) naming entries that are not in the log" })
        // A whole new entry appended without a signed checkpoint.
        let appended = try tampered("""
            INSERT INTO log_entries(seq, kind, subject, created_at, leaf_hash) VALUES (8, 'gc.deletion', 'x', '2030-01-01T00:00:00.000Z', zeroblob(32));
            INSERT INTO ledger_gc_deletions(object, kind, bytes, reason, deleted_at, entry_seq) VALUES ('x', 'tensor', 1, 'r', '2030-01-01T00:00:00.000Z', 8);
            """)
        XCTAssertEqual(appended.firstBadEntry, 8)
        XCTAssertTrue(appended.failures.contains { $0.message.hasPrefix("entries 8..<9 are not covered by any signed checkpoint") }, "\(appended.failures)")
    }

    func testReorderedEntriesAreNamed() throws {
        // Swap entries 3 (R1 received) and 7 (R2 received) with their rows.
        let r = try tampered("""
            UPDATE log_entries SET seq = 1000 WHERE seq = 3;
            UPDATE log_entries SET seq = 3 WHERE seq = 7;
            UPDATE log_entries SET seq = 7 WHERE seq = 1000;
            UPDATE ledger_requests SET entry_seq = CASE entry_seq WHEN 3 THEN 7 ELSE 3 END;
            UPDATE ledger_request_samples SET entry_seq = CASE entry_seq WHEN 3 THEN 7 ELSE 3 END;
            """)
        XCTAssertEqual(r.firstBadEntry, 3)
        // Reordering two samples within a request changes its entry too.
        let within = try tampered("""
            UPDATE ledger_request_samples SET position = 9 WHERE request_id = 'R1' AND position = 0;
            UPDATE ledger_request_samples SET position = 0 WHERE request_id = 'R1' AND position = 1;
            UPDATE ledger_request_samples SET position = 1 WHERE request_id = 'R1' AND position = 9;
            """)
        XCTAssertEqual(within.firstBadEntry, 3)
    }

    func testCheckpointSignedByAnotherKeyIsRejected() throws {
        let t = try TestStore()
        try t.populate()
        let other = try Ed25519.PrivateKey.generate()
        let root = try t.ledger.root(atSize: 8)
        let body = Checkpoint.body(origin: "lethe.test/ledger", treeSize: 8, root: root)
        let sig = try other.sign(Array(body.utf8))
        try t.tamper("""
            INSERT INTO log_checkpoints(origin, tree_size, root_hash, body, signature, public_key, created_at)
            VALUES ('lethe.test/ledger', 8, x'\(root.hex)', '\(body)', x'\(Hex.encode(sig))', '\(other.publicKey.hex)', '2030-01-01T00:00:00.000Z')
            """)
        let r = try Ledger.open(path: t.dbPath).verify()
        XCTAssertFalse(r.isValid)
        XCTAssertTrue(r.failures.contains { $0.message.hasSuffix("is not signed by the store's key \(t.ledger.publicKey.hex)") }, "\(r.failures)")
        // Verifying against the other key (as if the attacker swapped the recorded public key) fails for all the real ones.
        XCTAssertEqual(try t.ledger.verify(trustedKey: other.publicKey).failures.count, 6)
    }

    func testAlteredCheckpointTextIsRejected() throws {
        let r = try tampered("UPDATE log_checkpoints SET tree_size = 2 WHERE tree_size = 3")
        XCTAssertFalse(r.isValid)
        XCTAssertTrue(r.failures.contains { $0.message.contains("is not signed by the store's key") })
    }
}

final class SavedCheckpointTests: XCTestCase {
    func testSavedCheckpointCatchesTruncationWithItsCheckpointsGone() throws {
        let t = try TestStore()
        try t.populate()
        let note = try t.ledger.checkpoint().note(key: t.ledger.publicKey)
        XCTAssertNil(try t.ledger.checkSavedCheckpoint(note: note))
        // Drop the last entry together with every checkpoint that covered it.
        try t.tamper("""
            DELETE FROM ledger_request_samples WHERE request_id = 'R2'; DELETE FROM ledger_requests WHERE id = 'R2';
            DELETE FROM log_entries WHERE seq = 7; DELETE FROM log_checkpoints WHERE tree_size = 8;
            """)
        let l = try Ledger.open(path: t.dbPath)
        XCTAssertEqual(try l.checkSavedCheckpoint(note: note)?.message,
                       "saved checkpoint (tree size 8) covers 8 entries but the log has only 7: entries 7..<8 were removed")
    }

    func testSavedCheckpointCatchesRewriteAndForeignKeys() throws {
        let t = try TestStore()
        try t.populate()
        let note = try t.ledger.checkpoint().note(key: t.ledger.publicKey)
        let other = try Ed25519.PrivateKey.generate().publicKey
        XCTAssertEqual(try t.ledger.checkSavedCheckpoint(note: note, trustedKey: other)?.message,
                       "saved checkpoint (tree size 8) is not signed by the store's key \(other.hex)")
        XCTAssertEqual(try t.ledger.checkSavedCheckpoint(note: "garbage")?.message,
                       "the saved checkpoint is not a signed note written by 'lethe checkpoint'")
        try t.tamper("UPDATE ledger_datasets SET sample_count = 1")
        XCTAssertEqual(try t.ledger.checkSavedCheckpoint(note: note)?.message,
                       "saved checkpoint (tree size 8): the log's recomputed root at that size differs; the log was rewritten after it was signed")
    }
}
