import Foundation
import XCTest
import LetheTensor
@testable import LetheStore

/// A local backend whose deletes stop working after `limit` of them (a gc killed midway).
final class StoppingBackend: ObjectBackend, @unchecked Sendable {
    let inner: LocalBackend
    let limit: Int
    private var deletes = 0
    init(root: String, limit: Int) { inner = LocalBackend(root: root); self.limit = limit }
    func put(_ id: ObjectID, _ bytes: [UInt8]) throws(StoreError) -> Bool { try inner.put(id, bytes) }
    func get(_ id: ObjectID) throws(StoreError) -> [UInt8] { try inner.get(id) }
    func getPrefix(_ id: ObjectID, count: Int) throws(StoreError) -> [UInt8] { try inner.getPrefix(id, count: count) }
    func has(_ id: ObjectID) -> Bool { inner.has(id) }
    func stat(_ id: ObjectID) -> ObjectStat? { inner.stat(id) }
    func list() throws(StoreError) -> [ObjectID] { try inner.list() }
    func delete(_ id: ObjectID) throws(StoreError) {
        guard deletes < limit else { throw .io("stopped after \(limit) deletes") }
        deletes += 1
        try inner.delete(id)
    }
    func removeAbandonedWrites(olderThan cutoff: Double) throws(StoreError) -> (count: Int, bytes: Int) {
        try inner.removeAbandonedWrites(olderThan: cutoff)
    }
    func flush() throws(StoreError) { try inner.flush() }
    func discardPending() { inner.discardPending() }
}

/// gc stopped after any number of deletions leaves a store fsck finds clean: unreachable version
/// objects go first (children before parents), so no version present ever lacks a parent or an
/// object. With deletions in id order, a stopped gc left unreachable versions whose chunks were
/// gone, and fsck failed (found by the SIGKILL harness, ReliabilityCrashTests).
final class GCInterruptionTests: XCTestCase {
    func testGCStoppedAfterAnyDeletionLeavesAConsistentStore() throws {
        let meta = { (m: String) in VersionMetadata(author: "test", time: 1_700_000_000, message: m) }
        var limit = 0
        var total = Int.max
        while limit <= total {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-gcstop-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: root) }
            let dir = root.appendingPathComponent(".lethe").path
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let s = try Store.initialize(at: dir)
            s.chunkBytes = 8192
            let keep = NamedTensor(name: "k", dtype: .f32, shape: [3000], data: normalFloatBytes(3000, seed: 1))
            _ = try s.writeVersion(parent: nil, changed: [keep], metadata: meta("kept"), ref: ("main", "test"))
            // An unreachable chain of three versions, children stored as deltas on their parents.
            var w = normalFloatBytes(6000, seed: 2)
            var parent: ObjectID?
            for k in 0..<3 {
                if k > 0 { for i in stride(from: 0, to: w.count, by: 64) { w[i] ^= 0x11 } }
                parent = try s.writeVersion(parent: parent, changed: [NamedTensor(name: "w", dtype: .f32, shape: [6000], data: w),
                                                                      NamedTensor(name: "b\(k)", dtype: .f32, shape: [16], data: normalFloatBytes(16, seed: UInt64(10 + k)))],
                                            metadata: meta("u\(k)")).version
            }
            let stopping = try Store(directory: dir, backend: StoppingBackend(root: dir + "/objects", limit: limit))
            if total == Int.max {
                total = try stopping.gc(grace: 0, dryRun: true).swept.count
                XCTAssertGreaterThan(total, 10)
            }
            do { _ = try stopping.gc(grace: 0, dryRun: false) } catch {
                XCTAssertLessThan(limit, total, "\(error)")
            }
            let report = try Store(directory: dir).fsck()
            XCTAssertTrue(report.isClean, "stopped after \(limit) of \(total) deletions: missing \(report.missing.map(\.id.short)), affected \(report.affectedVersions.map(\.short))")
            let again = try Store(directory: dir)
            _ = try again.gc(grace: 0, dryRun: false)
            XCTAssertTrue(try again.fsck().isClean)
            XCTAssertEqual(try again.tensors(of: try XCTUnwrap(again.refs.get("main"))), [keep])
            limit += 1
        }
    }
}
