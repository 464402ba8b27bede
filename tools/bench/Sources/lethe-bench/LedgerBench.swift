// Ledger benchmark: a ledger with N forget requests (default 100,000).
// Usage: lethe-bench ledger [--requests N] [--batch B] [--postgres URL]
// With --postgres the same workload also runs on a PostgreSQL ledger in that (empty) database,
// and both are printed side by side.
import Foundation
import LetheCrypto
import LetheLedger

/// Median of `repeats` timed runs of `body`, in seconds.
private func medianTime(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    var times: [Double] = []
    for _ in 0..<repeats {
        let t0 = now()
        try body()
        times.append(now() - t0)
    }
    times.sort()
    return times[times.count / 2]
}

private func ms(_ s: Double) -> String { String(format: "%.2f ms", s * 1000) }

/// What one backend measured.
private struct LedgerBenchResult {
    var entries = 0, checkpoints = 0, pending = 0, overdueRows = 0, sizeMiB = 0
    var singleMedian = 0.0, singleP95 = 0.0, bulkRate = 0.0, bulk = 0.0, verify = 0.0, proof = 0.0, overdue = 0.0
}

func ledgerBench(requests: Int, batch: Int, postgres: String? = nil) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-ledger-bench-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let dbPath = dir.appendingPathComponent("ledger.sqlite").path
    let keyPath = dir.appendingPathComponent("signing-key.pem").path
    let ledger = try Ledger.create(path: dbPath, keyPath: keyPath, origin: "lethe.bench/ledger")
    let overdueSQLite = """
        SELECT id, requester, received_at, deadline FROM forget_requests
         WHERE status = 'received' AND deadline < strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ORDER BY deadline
        """
    let start = Date()
    var a = try ledgerWorkload(ledger, query: try LedgerQuery(path: dbPath), overdueSQL: overdueSQLite, requests: requests, batch: batch, now: start)
    a.sizeMiB = ((try? FileManager.default.attributesOfItem(atPath: dbPath)[.size] as? Int) ?? 0) / 1_048_576
    guard let postgres else {
        print("ledger: \(requests) forget requests (4 samples each, 99% applied with 3 layers, 2 metrics, 2 timings), "
              + "\(a.entries) log entries, \(a.checkpoints) checkpoints, \(a.sizeMiB) MiB database (+WAL)")
        print("| operation | time |")
        print("|---|---:|")
        print("| append 1 request + outcome, own transaction (fsync + signed checkpoint), median of \(min(500, requests)) | \(ms(a.singleMedian)) |")
        print("| append, same, p95 | \(ms(a.singleP95)) |")
        print("| bulk append, \(batch) requests per transaction | \(String(format: "%.1f", a.bulkRate)) requests/s (\(String(format: "%.1f", a.bulk)) s total) |")
        print("| verify (recompute \(a.entries) leaves from rows, \(a.checkpoints) checkpoints) | \(String(format: "%.2f", a.verify)) s |")
        print("| inclusion proof at tree size \(a.entries), median of 10 | \(ms(a.proof)) |")
        print("| overdue-requests query (\(a.overdueRows) rows of \(a.pending) pending), median of 5 | \(ms(a.overdue)) |")
        return
    }
    let pg = try Ledger.create(postgres: postgres, keyPath: keyPath, origin: "lethe.bench/ledger")
    let overduePostgres = """
        SELECT id, requester, received_at, deadline FROM forget_requests
         WHERE status = 'received' AND deadline < to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') ORDER BY deadline
        """
    let b = try ledgerWorkload(pg, query: try LedgerQuery(postgres: postgres), overdueSQL: overduePostgres, requests: requests, batch: batch, now: start)
    let same = try a.entries == b.entries && ledger.root(atSize: a.entries) == pg.root(atSize: b.entries)
    print("ledger, SQLite vs PostgreSQL: \(requests) forget requests (4 samples each, 99% applied with 3 layers, 2 metrics, 2 timings), "
          + "\(a.entries) log entries, \(a.checkpoints) checkpoints each; same workload, one after the other; "
          + "tree heads \(same ? "equal" : "DIFFER")")
    print("| operation | SQLite | PostgreSQL |")
    print("|---|---:|---:|")
    print("| append 1 request + outcome, own transaction (commit + signed checkpoint), median of \(min(500, requests)) | \(ms(a.singleMedian)) | \(ms(b.singleMedian)) |")
    print("| append, same, p95 | \(ms(a.singleP95)) | \(ms(b.singleP95)) |")
    print("| bulk append, \(batch) requests per transaction | \(String(format: "%.0f", a.bulkRate)) requests/s | \(String(format: "%.0f", b.bulkRate)) requests/s |")
    print("| verify (recompute \(a.entries) leaves from rows, \(a.checkpoints) checkpoints) | \(String(format: "%.2f", a.verify)) s | \(String(format: "%.2f", b.verify)) s |")
    print("| inclusion proof at tree size \(a.entries), median of 10 | \(ms(a.proof)) | \(ms(b.proof)) |")
    print("| overdue-requests query (\(a.overdueRows) / \(b.overdueRows) rows), median of 5 | \(ms(a.overdue)) | \(ms(b.overdue)) |")
}

/// The benchmark workload on one ledger: identical records (seeded) on every backend.
private func ledgerWorkload(_ ledger: Ledger, query q: LedgerQuery, overdueSQL: String, requests: Int, batch: Int,
                            now nowDate: Date) throws -> LedgerBenchResult {
    var result = LedgerBenchResult()
    let dataset = String(repeating: "d", count: 64)
    try ledger.recordDataset(DatasetRecord(digest: dataset, sampleCount: 1_000_000, source: "bench", recordedAt: nowDate))
    let versions = 100
    try ledger.write { w throws(LedgerError) in
        for v in 0..<versions {
            try w.recordVersion(VersionRecord(id: "v\(v)", parents: v == 0 ? [] : ["v\(v - 1)"], createdAt: nowDate, author: "bench", message: "v\(v)",
                                              datasetDigest: dataset, bytesStored: 1000, bytesLogical: 4000))
        }
    }
    var rng = UInt64(0x9E3779B97F4A7C15)
    func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }

    var pending = 0
    func request(_ i: Int) -> (ForgetRequest, RequestOutcome?) {
        let received = nowDate.addingTimeInterval(-Double(next() % (400 * 86_400)))
        let samples = (0..<4).map { k in
            ForgottenSample(datasetDigest: dataset, sampleID: String(i * 4 + k), sampleHash: SHA256.hash("sample \(i * 4 + k)"))
        }
        let r = ForgetRequest(id: "R\(i)", requester: "user-\(i % 977)", legalGround: "GDPR Art. 17(1)(b)", receivedAt: received,
                              datasetDigest: dataset, samples: samples)
        if next() % 100 == 0 { pending += 1; return (r, nil) }   // 1% never decided
        let v = Int(next() % UInt64(versions - 1))
        let o = RequestOutcome(requestID: r.id, status: .applied, decidedAt: received.addingTimeInterval(3600),
                               versionBefore: "v\(v)", versionAfter: "v\(v + 1)", method: "pgu",
                               hyperparameters: #"{"lr":0.01,"epochs":5,"gamma":0.99}"#, seeds: #"{"sgd":\#(i)}"#, threadCount: 2,
                               layers: (0..<3).map { LayerStat(layer: "layer\($0)", d: 256, k: 40 + $0, gamma: 0.99, rho: 1e-7) },
                               metrics: [MetricValue(name: "forget_acc", before: 1, after: 0.1), MetricValue(name: "test_acc", before: 0.97, after: 0.96)],
                               timings: [PhaseTiming(phase: "gram", seconds: 0.2), PhaseTiming(phase: "sgd", seconds: 1.1)])
        return (r, o)
    }

    // Single-request transactions (each fsyncs and signs a checkpoint).
    let single = min(500, requests)
    var singleTimes: [Double] = []
    for i in 0..<single {
        let (r, o) = request(i)
        let t0 = now()
        try ledger.write { w throws(LedgerError) in
            try w.receiveRequest(r)
            if let o { try w.recordOutcome(o) }
        }
        singleTimes.append(now() - t0)
    }
    singleTimes.sort()

    // Bulk: the rest in transactions of `batch` requests.
    let t0 = now()
    var i = single
    while i < requests {
        let end = min(requests, i + batch)
        try ledger.write { w throws(LedgerError) in
            for j in i..<end {
                let (r, o) = request(j)
                try w.receiveRequest(r)
                if let o { try w.recordOutcome(o) }
            }
        }
        i = end
    }
    let bulk = now() - t0
    let entries = try ledger.treeSize()
    let cps = try ledger.checkpoints().count

    var report: VerifyReport?
    let verifyTime = try medianTime(1) { report = try ledger.verify() }
    guard let report, report.isValid else { throw LedgerError.tampered("benchmark ledger does not verify: \(report?.failures.first?.message ?? "?")") }

    var proofTimes: [Double] = []
    for _ in 0..<10 {
        let seq = Int(next() % UInt64(entries))
        let t = now()
        let p = try ledger.inclusionProof(entry: seq)
        proofTimes.append(now() - t)
        guard p.verify() else { throw LedgerError.tampered("inclusion proof of entry \(seq) does not verify") }
    }
    proofTimes.sort()

    var overdueRows = 0
    _ = try q.run(overdueSQL, limit: nil)
    let overdueTime = try medianTime(5) { overdueRows = try q.run(overdueSQL, limit: nil).rows.count }

    result.entries = entries; result.checkpoints = cps; result.pending = pending; result.overdueRows = overdueRows
    result.singleMedian = singleTimes[single / 2]; result.singleP95 = singleTimes[single * 95 / 100]
    result.bulk = bulk; result.bulkRate = Double(requests - single) / bulk
    result.verify = verifyTime; result.proof = proofTimes[5]; result.overdue = overdueTime
    return result
}
