import CSQLite
import Foundation
import LetheCrypto
@testable import LetheLedger

/// A temporary directory with a fresh ledger and key, removed on deinit.
final class TestStore {
    let dir: URL
    let dbPath: String
    let keyPath: String
    let ledger: Ledger
    static let dataset = String(repeating: "d", count: 64)
    static let t0 = Date(timeIntervalSince1970: 1_780_000_000)

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        dbPath = dir.appendingPathComponent("ledger.sqlite").path
        keyPath = dir.appendingPathComponent("signing-key.pem").path
        ledger = try Ledger.create(path: dbPath, keyPath: keyPath, origin: "lethe.test/ledger")
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    static func sample(_ i: Int) -> ForgottenSample {
        ForgottenSample(datasetDigest: dataset, sampleID: String(i), sampleHash: SHA256.hash("sample \(i)"))
    }

    /// dataset, v0 (prod), R1 received+applied → v1 (prod moves), R2 received. Returns nothing;
    /// entries: 0 dataset, 1 v0, 2 ref prod, 3 R1 received, 4 v1, 5 R1 applied, 6 ref prod, 7 R2 received.
    func populate() throws {
        try ledger.recordDataset(DatasetRecord(digest: Self.dataset, name: "digits", sampleCount: 1797, source: "sklearn digits", recordedAt: Self.t0))
        try ledger.write { w throws(LedgerError) in
            try w.recordVersion(VersionRecord(id: "v0", createdAt: Self.t0, author: "alice", message: "train", specDigest: "spec1",
                                              datasetDigest: Self.dataset, bytesStored: 1000, bytesLogical: 4000,
                                              tensors: [TensorRecord(name: "fc.weight", dtype: "F32", shape: [10, 64], bytesLogical: 2560,
                                                                     bytesStored: 600, codec: "zstd", chunkCount: 1),
                                                        TensorRecord(name: "fc.bias", dtype: "F32", shape: [10], bytesLogical: 40,
                                                                     bytesStored: 40, codec: "raw", chunkCount: 1)]))
            try w.moveRef(RefMove(ref: "prod", oldVersion: nil, newVersion: "v0", reason: "train", movedAt: Self.t0))
        }
        try ledger.receiveRequest(ForgetRequest(id: "R1", requester: "user-17", legalGround: "GDPR Art. 17(1)(b)",
                                                receivedAt: Self.t0.addingTimeInterval(60), datasetDigest: Self.dataset, ref: "prod",
                                                samples: [Self.sample(123), Self.sample(7)]))
        try ledger.write { w throws(LedgerError) in
            try w.recordVersion(VersionRecord(id: "v1", parents: ["v0"], createdAt: Self.t0.addingTimeInterval(120), author: "lethe",
                                              message: "forget R1", specDigest: "spec1", datasetDigest: Self.dataset,
                                              bytesStored: 300, bytesLogical: 4000))
            try w.recordOutcome(RequestOutcome(requestID: "R1", status: .applied, decidedAt: Self.t0.addingTimeInterval(120),
                                               versionBefore: "v0", versionAfter: "v1", method: "pgu",
                                               hyperparameters: #"{"lr":0.01,"epochs":5}"#, seeds: #"{"sgd":42}"#, threadCount: 1,
                                               layers: [LayerStat(layer: "fc", d: 64, k: 12, gamma: 0.99, rho: 3e-7)],
                                               metrics: [MetricValue(name: "forget_acc", before: 1.0, after: 0.1),
                                                         MetricValue(name: "test_acc", before: 0.97, after: 0.96)],
                                               timings: [PhaseTiming(phase: "gram", seconds: 0.5), PhaseTiming(phase: "sgd", seconds: 1.25)]))
            try w.moveRef(RefMove(ref: "prod", oldVersion: "v0", newVersion: "v1", reason: "forget R1",
                                  movedAt: Self.t0.addingTimeInterval(120)))
        }
        try ledger.receiveRequest(ForgetRequest(id: "R2", requester: "user-18", legalGround: "GDPR Art. 17(1)(a)",
                                                receivedAt: Self.t0.addingTimeInterval(180), datasetDigest: Self.dataset,
                                                samples: [Self.sample(5)]))
    }

    /// Runs raw SQL on the database file the way an attacker would (sqlite3, foreign keys off).
    func tamper(_ sql: String) throws {
        let db = try Database(path: dbPath, flags: SQLITE_OPEN_READWRITE)
        try db.execute(sql)
    }

    /// SHA-256 of the database file and its WAL.
    func fileHash() -> String {
        let h = SHA256()
        for p in [dbPath, dbPath + "-wal"] { if let d = FileManager.default.contents(atPath: p) { h.update([UInt8](d)) } }
        return h.finalize().hex
    }
}
