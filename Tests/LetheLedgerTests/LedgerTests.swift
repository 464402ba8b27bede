import Foundation
import XCTest
import LetheCrypto
@testable import LetheLedger

final class LedgerTests: XCTestCase {
    func testCreateSignsEmptyCheckpointAndReopens() throws {
        let t = try TestStore()
        XCTAssertEqual(try t.ledger.treeSize(), 0)
        let cps = try t.ledger.checkpoints()
        XCTAssertEqual(cps.count, 1)
        XCTAssertEqual(cps[0].treeSize, 0)
        XCTAssertEqual(cps[0].root, Merkle.emptyRoot)
        XCTAssertEqual(cps[0].body, "lethe.test/ledger\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
        XCTAssertTrue(cps[0].isValid(under: t.ledger.publicKey))
        let again = try Ledger.open(path: t.dbPath)
        XCTAssertEqual(again.origin, "lethe.test/ledger")
        XCTAssertEqual(again.publicKey, t.ledger.publicKey)
        XCTAssertThrowsError(try Ledger.create(path: t.dbPath, keyPath: t.keyPath + "2", origin: "x"))
        XCTAssertThrowsError(try Ledger.open(path: t.dir.appendingPathComponent("nope.sqlite").path)) { e in
            XCTAssertEqual((e as? LedgerError).map { "\($0)" }, "not found: no ledger at \(t.dir.path)/nope.sqlite (run 'lethe init' first)")
        }
    }

    func testRecordsReadBackAndEveryEventIsALeaf() throws {
        let t = try TestStore()
        try t.populate()
        let l = t.ledger
        XCTAssertEqual(try l.treeSize(), 8)
        XCTAssertEqual(try l.entries(subject: "R1").map(\.kind), ["request.received", "request.applied"])
        XCTAssertEqual(try l.entries(subject: "prod").map(\.seq), [2, 6])
        XCTAssertEqual(try l.refTarget("prod"), "v1")
        XCTAssertEqual(try l.refHistory("prod").map(\.newVersion), ["v0", "v1"])
        XCTAssertEqual(try l.status(ofRequest: "R1"), .applied)
        XCTAssertEqual(try l.status(ofRequest: "R2"), .received)
        XCTAssertNil(try l.status(ofRequest: "R9"))
        let r1 = try XCTUnwrap(try l.request("R1"))
        XCTAssertEqual(r1.samples, [TestStore.sample(123), TestStore.sample(7)])
        XCTAssertEqual(r1.deadline, TestStore.t0.addingTimeInterval(60 + 30 * 86_400))
        XCTAssertEqual(r1.samplesRoot, ForgottenSample.merkleRoot([TestStore.sample(123), TestStore.sample(7)]))
        let o = try XCTUnwrap(try l.outcome(ofRequest: "R1"))
        XCTAssertEqual(o.layers, [LayerStat(layer: "fc", d: 64, k: 12, gamma: 0.99, rho: 3e-7)])
        XCTAssertEqual(o.metrics.map(\.name), ["forget_acc", "test_acc"])
        XCTAssertEqual(o.timings.map(\.seconds), [0.5, 1.25])
        XCTAssertEqual(o.threadCount, 1)
        let v0 = try XCTUnwrap(try l.version("v0"))
        XCTAssertEqual(v0.tensors.map(\.name), ["fc.bias", "fc.weight"])
        XCTAssertEqual(v0.tensors[1].shape, [10, 64])
        XCTAssertEqual(try l.version("v1")?.parents, ["v0"])
        // One checkpoint per writing transaction (+ the empty one at create).
        let cps = try l.checkpoints()
        XCTAssertEqual(cps.map(\.treeSize), [0, 1, 3, 4, 7, 8])
        let report = try l.verify()
        XCTAssertTrue(report.isValid, "\(report.failures)")
        XCTAssertEqual(report.entries, 8)
        XCTAssertEqual(report.root, try l.root(atSize: 8))
        XCTAssertEqual(cps.last?.root, report.root)
    }

    func testInvalidRecordsAreRefusedAndChangeNothing() throws {
        let t = try TestStore()
        try t.populate()
        let before = try t.ledger.treeSize()
        func refused(_ expected: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body()) { e in XCTAssertEqual("\(e)", expected) }
        }
        refused("invalid ledger record: request R1 is already recorded") {
            try t.ledger.receiveRequest(ForgetRequest(id: "R1", requester: "x", legalGround: "y", datasetDigest: TestStore.dataset,
                                                      samples: [TestStore.sample(1)]))
        }
        refused("invalid ledger record: request R3 names sample 1 twice") {
            try t.ledger.receiveRequest(ForgetRequest(id: "R3", requester: "x", legalGround: "y", datasetDigest: TestStore.dataset,
                                                      samples: [TestStore.sample(1), TestStore.sample(1)]))
        }
        refused("invalid ledger record: dataset nope of request R3 is not recorded") {
            try t.ledger.receiveRequest(ForgetRequest(id: "R3", requester: "x", legalGround: "y", datasetDigest: "nope",
                                                      samples: [TestStore.sample(1)]))
        }
        refused("invalid ledger record: request R1 is already applied") {
            try t.ledger.recordOutcome(RequestOutcome(requestID: "R1", status: .failed, reason: "again"))
        }
        refused("invalid ledger record: hyperparameters is not valid JSON: {lr: 1}") {
            try t.ledger.recordOutcome(RequestOutcome(requestID: "R2", status: .failed, hyperparameters: "{lr: 1}"))
        }
        refused("invalid ledger record: ref prod points to v1, not v0; it was moved concurrently") {
            try t.ledger.moveRef(RefMove(ref: "prod", oldVersion: "v0", newVersion: "v0", reason: "x"))
        }
        refused("invalid ledger record: a forced rollback needs a reason") {
            try t.ledger.recordRollback(RollbackRecord(ref: "prod", fromVersion: "v1", toVersion: "v0", mode: .force))
        }
        // A transaction that fails half-way leaves nothing behind.
        XCTAssertThrowsError(try t.ledger.write { w throws(LedgerError) in
            try w.recordGCDeletion(GCDeletion(object: "abc", kind: "tensor", bytes: 10, reason: "unreachable"))
            try w.recordVersion(VersionRecord(id: "v2", parents: ["missing"], author: "a", message: "m", bytesStored: 0, bytesLogical: 0))
        })
        XCTAssertEqual(try t.ledger.treeSize(), before)
        XCTAssertEqual(try t.ledger.select("SELECT count(*) AS n FROM ledger_gc_deletions").first?["n"], .integer(0))
        XCTAssertTrue(try t.ledger.verify().isValid)
    }

    func testRemainingEventKindsAreLoggedAndVerify() throws {
        let t = try TestStore()
        try t.populate()
        try t.ledger.write { w throws(LedgerError) in
            try w.recordRollback(RollbackRecord(ref: "prod", fromVersion: "v1", toVersion: "v0", mode: .force, reason: "incident 12"))
            try w.recordComplianceException(ComplianceException(kind: "forced-rollback", reason: "incident 12", author: "bob", requestIDs: ["R1"]))
            try w.moveRef(RefMove(ref: "prod", oldVersion: "v1", newVersion: "v0", reason: "rollback --force"))
        }
        try t.ledger.recordGCDeletion(GCDeletion(object: "obj1", kind: "tensor", bytes: 99, reason: "unreachable"))
        try t.ledger.recordOutcome(RequestOutcome(requestID: "R2", status: .rejected, reason: "sample 5 not in dataset"))
        XCTAssertEqual(try t.ledger.treeSize(), 13)
        XCTAssertEqual(try t.ledger.entry(8).kind, "rollback")
        XCTAssertEqual(try t.ledger.entry(9).kind, "compliance.exception")
        XCTAssertEqual(try t.ledger.entry(11).kind, "gc.deletion")
        XCTAssertEqual(try t.ledger.entry(12).kind, "request.rejected")
        XCTAssertEqual(try t.ledger.select("SELECT request_ids FROM compliance_exceptions").first?["request_ids"], .text(#"["R1"]"#))
        XCTAssertTrue(try t.ledger.verify().isValid)
    }

    func testProofsVerifyAgainstCheckpoints() throws {
        let t = try TestStore()
        try t.populate()
        for seq in 0..<8 {
            let p = try t.ledger.inclusionProof(entry: seq)
            XCTAssertEqual(p.treeSize, 8)
            XCTAssertTrue(p.verify(), "entry \(seq)")
            XCTAssertEqual(p.checkpoint?.treeSize, 8)
            XCTAssertTrue(p.checkpoint?.isValid(under: t.ledger.publicKey) ?? false)
            XCTAssertTrue(p.entryBytes.starts(with: Array("lethe-entry-v1\n".utf8)))
        }
        let ps = try t.ledger.inclusionProofs(request: "R1")
        XCTAssertEqual(ps.map(\.leafIndex), [3, 5])
        let old = try t.ledger.inclusionProof(entry: 2, treeSize: 3)
        XCTAssertTrue(old.verify())
        XCTAssertEqual(old.root, try t.ledger.checkpoints().first { $0.treeSize == 3 }?.root)
        for m in 1...8 {
            let c = try t.ledger.consistencyProof(oldSize: m, newSize: 8)
            XCTAssertTrue(c.verify(), "m=\(m)")
        }
        let c = try t.ledger.consistencyProof(oldSize: 3)
        XCTAssertEqual(c.oldCheckpoint?.treeSize, 3)
        XCTAssertEqual(c.newCheckpoint?.treeSize, 8)
        XCTAssertThrowsError(try t.ledger.consistencyProof(oldSize: 0))
        XCTAssertThrowsError(try t.ledger.inclusionProof(entry: 8))
        let text = try t.ledger.inclusionProof(entry: 3).text(key: t.ledger.publicKey)
        XCTAssertTrue(text.hasPrefix("lethe inclusion proof v1\norigin: lethe.test/ledger\nentry: 3 request.received R1\ntree-size: 8\n"))
        XCTAssertEqual(text.components(separatedBy: "\npath: ").count - 1, 3)
        XCTAssertTrue(text.contains("\ncheckpoint:\nlethe.test/ledger\n8\n"))
    }

    func testSchemaNewerThanBinaryIsRefused() throws {
        let t = try TestStore()
        try t.tamper("INSERT INTO schema_migrations(id, applied_at) VALUES ('9999_future', '2030-01-01T00:00:00.000Z')")
        XCTAssertThrowsError(try Ledger.open(path: t.dbPath)) { e in
            XCTAssertEqual(e as? LedgerError, .schemaTooNew(found: 2, known: 1))
        }
    }

    func testWritesNeedTheSigningKey() throws {
        let t = try TestStore()
        try FileManager.default.removeItem(atPath: t.keyPath)
        let ro = try Ledger.open(path: t.dbPath)
        XCTAssertThrowsError(try ro.recordDataset(DatasetRecord(digest: "x", sampleCount: 1, source: "s"))) { e in
            guard case .crypto = e as? LedgerError else { return XCTFail("\(e)") }
        }
        XCTAssertTrue(try ro.verify().isValid)
    }

    /// Four connections (as four processes would have) append at once; every request lands exactly
    /// once, the log verifies, and nobody sees SQLITE_BUSY.
    func testConcurrentWritersAllSucceed() throws {
        let t = try TestStore()
        try t.populate()
        let path = t.dbPath
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            do {
                let l = try Ledger.open(path: path)
                for i in 0..<15 {
                    try l.receiveRequest(ForgetRequest(id: "W\(worker)-\(i)", requester: "w", legalGround: "g",
                                                       datasetDigest: TestStore.dataset, samples: [TestStore.sample(i)]))
                    _ = try l.select("SELECT count(*) FROM forget_requests")
                }
            } catch { errors.append("\(error)") }
        }
        XCTAssertEqual(errors.items, [])
        XCTAssertEqual(try t.ledger.select("SELECT count(*) AS n FROM forget_requests WHERE id LIKE 'W%'").first?["n"], .integer(60))
        XCTAssertEqual(try t.ledger.treeSize(), 68)
        XCTAssertTrue(try t.ledger.verify().isValid)
    }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _items: [String] = []
    func append(_ s: String) { lock.lock(); _items.append(s); lock.unlock() }
    var items: [String] { lock.lock(); defer { lock.unlock() }; return _items }
}

final class LedgerConcurrencyTests: XCTestCase {
    /// Verify and proofs read one snapshot: while another connection keeps appending, every
    /// verification of the reading connection succeeds.
    func testVerifyDuringConcurrentAppendsSeesOneSnapshot() throws {
        let t = try TestStore()
        try t.populate()
        let path = t.dbPath
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            do {
                let l = try Ledger.open(path: path)
                for i in 0..<20 {
                    if worker == 0 {
                        try l.write { w throws(LedgerError) in
                            try w.receiveRequest(ForgetRequest(id: "C\(i)", requester: "c", legalGround: "g",
                                                               datasetDigest: TestStore.dataset, samples: [TestStore.sample(i)]))
                            try w.recordOutcome(RequestOutcome(requestID: "C\(i)", status: .rejected, reason: "test"))
                        }
                    } else {
                        let r = try l.verify()
                        if !r.isValid { errors.append("verify: \(r.failures)") }
                        let n = try l.treeSize()
                        if n > 1, !(try l.inclusionProof(entry: n - 1).verify()) { errors.append("proof of \(n - 1)") }
                    }
                }
            } catch { errors.append("\(error)") }
        }
        XCTAssertEqual(errors.items, [])
        XCTAssertEqual(try t.ledger.treeSize(), 48)
    }

    func testReadsInsideAWriteSeeItsRowsAndNestedWritesAreRefused() throws {
        let t = try TestStore()
        try t.populate()
        try t.ledger.write { w throws(LedgerError) in
            try w.recordVersion(VersionRecord(id: "v9", parents: ["v1"], author: "a", message: "m", bytesStored: 0, bytesLogical: 0))
            try w.moveRef(RefMove(ref: "prod", oldVersion: "v1", newVersion: "v9", reason: "r"))
            XCTAssertEqual(try t.ledger.refTarget("prod"), "v9")
            XCTAssertEqual(try t.ledger.version("v9")?.parents, ["v1"])
            XCTAssertThrowsError(try t.ledger.recordGCDeletion(GCDeletion(object: "o", kind: "k", bytes: 1, reason: "r")))
        }
        XCTAssertEqual(try t.ledger.treeSize(), 10)
        XCTAssertTrue(try t.ledger.verify().isValid)
    }
}

final class LedgerCreateTests: XCTestCase {
    func testFailedCreateLeavesNothingBehind() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-create-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("signing-key.pem").path
        // The database's directory does not exist: SQLite cannot create it.
        let db = dir.appendingPathComponent("missing/ledger.sqlite").path
        XCTAssertThrowsError(try Ledger.create(path: db, keyPath: key, origin: "o"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: key))
        XCTAssertThrowsError(try Ledger.create(path: dir.appendingPathComponent("l.sqlite").path, keyPath: key, origin: "two\nlines")) { e in
            XCTAssertEqual(e as? LedgerError, .invalid("origin must be one non-empty line"))
        }
    }
}

final class LedgerHistoryTests: XCTestCase {
    func testHistoryQueriesForForgetAndRollback() throws {
        let t = try TestStore()
        try t.populate()   // R1 applied v0 -> v1; R2 received
        try t.ledger.write { w throws(LedgerError) in
            try w.recordVersion(VersionRecord(id: "v2", parents: ["v1"], author: "lethe", message: "forget R2", bytesStored: 1, bytesLogical: 1))
            try w.recordOutcome(RequestOutcome(requestID: "R2", status: .applied, versionBefore: "v1", versionAfter: "v2"))
        }
        XCTAssertEqual(try t.ledger.ancestry(of: "v2"), ["v0", "v1", "v2"])
        XCTAssertEqual(try t.ledger.appliedRequests(inHistoryOf: "v2"), ["R1", "R2"])
        XCTAssertEqual(try t.ledger.appliedRequests(inHistoryOf: "v0"), [])
        XCTAssertEqual(try t.ledger.requestsLost(rollingBackFrom: "v2", to: "v0"), ["R1", "R2"])
        XCTAssertEqual(try t.ledger.requestsLost(rollingBackFrom: "v2", to: "v1"), ["R2"])
        XCTAssertEqual(try t.ledger.forgottenSampleIDs(inHistoryOf: "v2", dataset: TestStore.dataset), ["123", "7", "5"])
        XCTAssertEqual(try t.ledger.forgottenSampleIDs(inHistoryOf: "v1", dataset: TestStore.dataset), ["123", "7"])
    }
}
