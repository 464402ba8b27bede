import Foundation
import XCTest
import LetheCrypto
@testable import LetheLedger

/// A fresh database on the test server named by `LETHE_PG_TEST_URL` (tools/scaleout/start-postgres;
/// tools/test sets it), dropped on deinit. Tests needing it skip, saying why, when the variable is absent.
final class PostgresTestDatabase {
    let url: String
    let name: String
    private let adminURL: String

    /// The server URL, or an XCTSkip naming the variable.
    static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["LETHE_PG_TEST_URL"], !url.isEmpty else {
            throw XCTSkip("LETHE_PG_TEST_URL is not set: no PostgreSQL test server (tools/test starts one with tools/scaleout/start-postgres)")
        }
        return url
    }

    init() throws {
        adminURL = try Self.serverURL()
        name = "lethe_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        let admin = try PostgresConnection(url: adminURL)
        try admin.execute("CREATE DATABASE \(name)")
        url = Self.replacingDatabase(in: adminURL, with: name)
    }

    deinit {
        if let admin = try? PostgresConnection(url: adminURL) { try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
    }

    /// `postgresql://u:p@h:port/db?x` with `db` replaced.
    static func replacingDatabase(in url: String, with db: String) -> String {
        guard let scheme = url.range(of: "://"), let slash = url[scheme.upperBound...].firstIndex(of: "/") else { return url + "/" + db }
        let end = url[slash...].firstIndex(of: "?") ?? url.endIndex
        return url.replacingCharacters(in: url.index(after: slash)..<end, with: db)
    }

    /// Raw SQL the way an attacker with database access would run it.
    func tamper(_ sql: String) throws {
        let c = try PostgresConnection(url: url)
        try c.execute(sql)
    }
}

/// One history written identically to any ledger: every record kind, values whose byte order
/// and locale order differ ("B" < "a", "features.10" < "features.2"), non-ASCII text, NaN and
/// infinities, and several writes per transaction. Entries: 0 dataset, 1 v0, 2 ref prod,
/// 3 R1 received, 4 v1, 5 R1 applied, 6 ref prod, 7 R2 received, 8 R2 failed, 9 rollback,
/// 10 ref prod, 11 compliance exception, 12 gc deletion, 13 ref staging.
enum SharedHistory {
    static let dataset = String(repeating: "d", count: 64)
    static let t0 = Date(timeIntervalSince1970: 1_780_000_000)
    static let origin = "lethe.test/shared"

    static func sample(_ i: Int) -> ForgottenSample {
        ForgottenSample(datasetDigest: dataset, sampleID: "s-\(i)", sampleHash: SHA256.hash("sample \(i)"))
    }

    static func write(_ l: Ledger) throws {
        try l.recordDataset(DatasetRecord(digest: dataset, name: "digits ✓ Zürich", sampleCount: 1797, source: "sklearn", recordedAt: t0))
        let tensors = ["features.2.weight", "features.10.weight", "B.bias", "a.bias", "_x", "Ω"].enumerated().map { i, n in
            TensorRecord(name: n, dtype: "F32", shape: [i + 1, 3], bytesLogical: Int64(12 * (i + 1)), bytesStored: Int64(7 * (i + 1)),
                         codec: i % 2 == 0 ? "zstd" : "raw", chunkCount: 1)
        }
        try l.write { w throws(LedgerError) in
            try w.recordVersion(VersionRecord(id: "v0", createdAt: t0, author: "alice", message: "train\nline 2", specDigest: "spec1",
                                              datasetDigest: dataset, bytesStored: 1000, bytesLogical: 4000, tensors: tensors))
            try w.moveRef(RefMove(ref: "prod", oldVersion: nil, newVersion: "v0", reason: "train", movedAt: t0))
        }
        try l.receiveRequest(ForgetRequest(id: "R1", requester: "user-17", legalGround: "GDPR Art. 17(1)(b)",
                                           receivedAt: t0.addingTimeInterval(60), datasetDigest: dataset, ref: "prod",
                                           samples: [sample(123), sample(7), sample(1000)]))
        try l.write { w throws(LedgerError) in
            try w.recordVersion(VersionRecord(id: "v1", parents: ["v0"], createdAt: t0.addingTimeInterval(120), author: "lethe",
                                              message: "forget R1", specDigest: "spec1", datasetDigest: dataset,
                                              bytesStored: 300, bytesLogical: 4000))
            try w.recordOutcome(RequestOutcome(requestID: "R1", status: .applied, decidedAt: t0.addingTimeInterval(120),
                                               versionBefore: "v0", versionAfter: "v1", method: "pgu",
                                               hyperparameters: #"{"lr":0.01,"epochs":5}"#, seeds: #"{"sgd":42}"#, threadCount: 2,
                                               layers: [LayerStat(layer: "fc", d: 64, k: 12, gamma: 0.99, rho: 3.0000000000000004e-7),
                                                        LayerStat(layer: "conv", d: 27, k: 0, gamma: nil, rho: .infinity)],
                                               metrics: [MetricValue(name: "forget_acc", before: 1.0, after: 0.1),
                                                         MetricValue(name: "nan_metric", before: .nan, after: -.infinity),
                                                         MetricValue(name: "Test_acc", before: 0.97, after: nil)],
                                               timings: [PhaseTiming(phase: "gram", seconds: 0.5), PhaseTiming(phase: "sgd", seconds: 1e-9)]))
            try w.moveRef(RefMove(ref: "prod", oldVersion: "v0", newVersion: "v1", reason: "forget R1", movedAt: t0.addingTimeInterval(120)))
        }
        try l.receiveRequest(ForgetRequest(id: "R2", requester: "user-18", legalGround: "GDPR Art. 17(1)(a)",
                                           receivedAt: t0.addingTimeInterval(180), datasetDigest: dataset, samples: [sample(5)]))
        try l.recordOutcome(RequestOutcome(requestID: "R2", status: .failed, decidedAt: t0.addingTimeInterval(200), reason: "max rho 2e-3"))
        try l.write { w throws(LedgerError) in
            try w.recordRollback(RollbackRecord(ref: "prod", fromVersion: "v1", toVersion: "v0", mode: .force, reason: "legal hold",
                                                performedAt: t0.addingTimeInterval(300)))
            try w.moveRef(RefMove(ref: "prod", oldVersion: "v1", newVersion: "v0", reason: "rollback", movedAt: t0.addingTimeInterval(300)))
            try w.recordComplianceException(ComplianceException(kind: "forced-rollback", reason: "legal hold", author: "bob",
                                                                requestIDs: ["R1"], createdAt: t0.addingTimeInterval(300)))
        }
        try l.recordGCDeletion(GCDeletion(object: String(repeating: "ab", count: 32), kind: "chunk", bytes: 4096, reason: "unreferenced",
                                          deletedAt: t0.addingTimeInterval(400)))
        try l.moveRef(RefMove(ref: "staging", oldVersion: nil, newVersion: "v1", reason: "stage", movedAt: t0.addingTimeInterval(500)))
    }
}
