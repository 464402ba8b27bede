import Foundation
import XCTest
import LetheLedger
import LetheTensor
import LetheUnlearning
@testable import Lethe

/// The engine's write ordering: a crash between the ledger commit and the store's ref move is
/// completed on open; a ref moved outside the engine is adopted into the ledger.
final class RepositoryTests: RepositoryTestCase {

    func tensor(_ values: [Float]) -> NamedTensor {
        NamedTensor(name: "w", dtype: .f32, shape: [values.count], data: values.withUnsafeBytes { Array($0) })
    }

    func testCrashAfterLedgerCommitIsRolledForwardOnOpen() throws {
        let repo = try Repository.initialize(in: dir, origin: "lethe.test/repo")
        let v0 = try repo.store.writeVersion(parent: nil, changed: [tensor([1, 2, 3])], metadata: VersionMetadata(author: "t", message: "v0")).version
        try repo.commit(ref: "prod", from: nil, to: v0, reason: "v0") { _ throws(LedgerError) in }
        // Steps 1 and 2 of a second operation, then a "crash" before the store's ref moves.
        let v1 = try repo.store.writeVersion(parent: v0, changed: [tensor([1, 2, 4])], metadata: VersionMetadata(author: "t", message: "v1")).version
        try repo.ledger.write { w throws(LedgerError) in
            try repo.recordChain(v1, in: w)
            try w.moveRef(LetheLedger.RefMove(ref: "prod", oldVersion: v0.hex, newVersion: v1.hex, reason: "v1"))
        }
        XCTAssertEqual(try repo.store.refs.get("prod"), v0)
        XCTAssertThrowsError(try repo.head("prod")) { error in
            XCTAssertTrue("\(error)".contains("store and ledger disagree: ref prod is \(v0.short) in the store"), "\(error)")
        }
        let reopened = try Repository.open(StoreLocation(directory: dir))
        XCTAssertEqual(reopened.repairs, ["ref prod: rolled forward to \(v1.short) (the ledger had committed the move)"])
        XCTAssertEqual(try reopened.store.refs.get("prod"), v1)
        XCTAssertEqual(try reopened.head("prod"), v1)
        XCTAssertEqual(try Repository.open(StoreLocation(directory: dir)).repairs, [], "a second open finds nothing to repair")
    }

    func testCrashBeforeLedgerCommitLeavesOnlyUnreferencedObjects() throws {
        let repo = try Repository.initialize(in: dir, origin: "lethe.test/repo")
        let v0 = try repo.store.writeVersion(parent: nil, changed: [tensor([1, 2, 3])], metadata: VersionMetadata(author: "t", message: "v0")).version
        try repo.commit(ref: "prod", from: nil, to: v0, reason: "v0") { _ throws(LedgerError) in }
        let size = try repo.ledger.treeSize()
        // Step 1 only: the new version exists as objects, nothing points at it.
        _ = try repo.store.writeVersion(parent: v0, changed: [tensor([9, 9, 9])], metadata: VersionMetadata(author: "t", message: "orphan"))
        let reopened = try Repository.open(StoreLocation(directory: dir))
        XCTAssertEqual(reopened.repairs, [])
        XCTAssertEqual(try reopened.head("prod"), v0)
        XCTAssertEqual(try reopened.ledger.treeSize(), size)
    }

    func testRefMovedOutsideTheEngineIsAdoptedIntoTheLedger() throws {
        let repo = try Repository.initialize(in: dir, origin: "lethe.test/repo")
        let v0 = try repo.store.writeVersion(parent: nil, changed: [tensor([1])], metadata: VersionMetadata(author: "t", message: "v0")).version
        try repo.commit(ref: "prod", from: nil, to: v0, reason: "v0") { _ throws(LedgerError) in }
        // `lethe import` / `lethe ref set` move store refs without the ledger.
        let v1 = try repo.store.writeVersion(parent: v0, changed: [tensor([2])], metadata: VersionMetadata(author: "t", message: "imported"),
                                             ref: (name: "prod", reason: "import x.safetensors")).version
        let reopened = try Repository.open(StoreLocation(directory: dir))
        XCTAssertEqual(reopened.repairs, ["ref prod: mirrored store move to \(v1.short) into the ledger"])
        XCTAssertEqual(try reopened.ledger.refTarget("prod"), v1.hex)
        XCTAssertEqual(try reopened.ledger.version(v1.hex)?.parents, [v0.hex])
        XCTAssertEqual(try reopened.ledger.refHistory("prod").last?.reason, "adopted store ref move: import x.safetensors")
        XCTAssertTrue(try reopened.ledger.verify().isValid)
    }

    func testOpenWithoutLedgerIsAClearError() throws {
        _ = try StoreLocation.initializeStore(in: dir)
        XCTAssertThrowsError(try Repository.open(StoreLocation(directory: dir))) { error in
            XCTAssertTrue("\(error)".contains("has no ledger (ledger.sqlite)"), "\(error)")
        }
    }
}

extension RepositoryTests {
    func testGCKeepsRecordedVersionsAndRecordsDeletions() throws {
        let repo = try Repository.initialize(in: dir, origin: "lethe.test/repo")
        let v0 = try repo.store.writeVersion(parent: nil, changed: [tensor([1, 2, 3])], metadata: VersionMetadata(author: "t", message: "v0")).version
        try repo.commit(ref: "prod", from: nil, to: v0, reason: "v0") { _ throws(LedgerError) in }
        let v1 = try repo.store.writeVersion(parent: v0, changed: [tensor([5, 6, 7])], metadata: VersionMetadata(author: "t", message: "v1")).version
        try repo.commit(ref: "prod", from: v0, to: v1, reason: "v1") { _ throws(LedgerError) in }
        // A rollback leaves v1 unreferenced by any ref, but the ledger records it.
        try repo.commit(ref: "prod", from: v1, to: v0, reason: "back") { _ throws(LedgerError) in }
        let orphan = try repo.store.writeVersion(parent: v0, changed: [tensor([8, 8, 8])], metadata: VersionMetadata(author: "t", message: "orphan")).version
        let size = try repo.ledger.treeSize()
        let dry = try repo.gc(grace: 0, dryRun: true)
        XCTAssertTrue(dry.swept.contains(orphan))
        XCTAssertEqual(try repo.ledger.treeSize(), size, "a dry run records nothing")
        let report = try repo.gc(grace: 0, dryRun: false)
        XCTAssertEqual(Set(report.swept), Set(dry.swept))
        XCTAssertFalse(report.swept.contains(v1))
        XCTAssertNoThrow(try repo.store.tensors(of: v1), "the recorded version survives gc")
        XCTAssertThrowsError(try repo.store.version(orphan))
        XCTAssertEqual(try repo.ledger.treeSize(), size + report.swept.count)
        let kinds = try repo.ledger.select("SELECT kind FROM ledger_gc_deletions").compactMap { $0["kind"]?.string }
        XCTAssertEqual(kinds.count, report.swept.count)
        XCTAssertTrue(kinds.contains("version"), "\(kinds)")
        XCTAssertTrue(try repo.ledger.verify().isValid)
    }
}

extension RepositoryTests {
    func testRecipeRecordedByAnOlderBuildDecodesWithTodaysDefaultsForNewFields() throws {
        var recipe = UnlearningRecipe(configuration: PGUConfiguration(), splitSeed: 7, threads: 2)
        recipe.configuration.maxEpochs = 17
        let full = recipe.hyperparametersJSON()
        XCTAssertEqual(try UnlearningRecipe.decode(full), recipe)
        // Drop a configuration key, as a recipe written before that hyperparameter existed.
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(full.utf8)) as? [String: Any])
        var config = try XCTUnwrap(object["configuration"] as? [String: Any])
        config.removeValue(forKey: "patience")
        XCTAssertEqual(config["confirmMetOnWholeHeldOut"] as? Bool, true, "today's recipes record the whole-set check")
        config.removeValue(forKey: "confirmMetOnWholeHeldOut")
        object["configuration"] = config
        let old = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        let decoded = try UnlearningRecipe.decode(old)
        XCTAssertEqual(decoded.configuration.maxEpochs, 17)
        XCTAssertEqual(decoded.configuration.patience, PGUConfiguration().patience)
        // An optional hyperparameter missing from the record keeps its old meaning (no whole-set
        // check), though a required one was missing too.
        XCTAssertNil(decoded.configuration.confirmMetOnWholeHeldOut)
        XCTAssertEqual(decoded.splitSeed, 7)
        XCTAssertThrowsError(try UnlearningRecipe.decode("[1]"))
    }
}
