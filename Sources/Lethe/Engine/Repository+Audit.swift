import Foundation
import LetheLedger
import LetheStore

extension Repository {
    /// Builds the audit report from the ledger: the log's state (verified, checkpoint signature),
    /// per request its timeline, deadline, metrics, per-layer k/d/γ/ρ, D_f entropy histogram, an
    /// inclusion proof of its latest entry against the latest checkpoint, and every later ref move
    /// that reintroduced its samples; plus the store's timeline.
    ///
    /// - Parameter request: one request id, or nil for all of them.
    public func audit(request: String? = nil) throws(EngineError) -> AuditReport {
        let verify = try lift { try ledger.verify() }
        let cp = try lift { try ledger.latestCheckpoint() }
        let log = LogStatus(treeSize: cp?.treeSize ?? 0, rootHash: cp?.root.hex ?? "",
                            checkpointSignatureValid: cp.map { $0.isValid(under: ledger.publicKey) } ?? false,
                            verified: verify.isValid,
                            problem: verify.failures.first.map { f in f.entry.map { "entry \($0): \(f.message)" } ?? f.message })
        var ids = try lift { try ledger.select("SELECT id FROM ledger_requests ORDER BY entry_seq").compactMap { $0["id"]?.string } }
        if let request {
            guard ids.contains(request) else { throw .invalid("no forget request \(request)") }
            ids = [request]
        }
        var audits: [RequestAudit] = []
        for id in ids { audits.append(try requestAudit(id)) }
        return AuditReport(generatedAt: LedgerTime.string(Date()), store: location.directory.path, log: log,
                           requests: audits, timeline: try timeline())
    }

    private func requestAudit(_ id: String) throws(EngineError) -> RequestAudit {
        guard let r = try lift({ try ledger.request(id) }) else { throw .invalid("no forget request \(id)") }
        let o = try lift { try ledger.outcome(ofRequest: id) }
        let status = try lift { try ledger.status(ofRequest: id) } ?? .received
        let root = try lift {
            try ledger.select("SELECT samples_root FROM ledger_requests WHERE id = ?1", [.text(id)]).first?["samples_root"]?.string
        } ?? ""
        let applied = status == .applied ? o?.decidedAt : nil
        var metrics: [MetricRow] = []
        var hb: [Int] = [], ha: [Int] = []
        var high = 0.0
        for m in o?.metrics ?? [] {
            if m.name == "forget_entropy_hist_high" { high = m.before ?? 0; continue }
            if m.name.hasPrefix("forget_entropy_hist_") { hb.append(Int(m.before ?? 0)); ha.append(Int(m.after ?? 0)); continue }
            metrics.append(MetricRow(name: m.name, before: m.before.flatMap { $0.isFinite ? $0 : nil },
                                      after: m.after.flatMap { $0.isFinite ? $0 : nil }))
        }
        let order = ["forget_accuracy", "retain_accuracy", "val_accuracy", "test_accuracy", "mia_entropy", "mia_entropy_no_signal", "mia_loss_auc"]
        metrics.sort { (order.firstIndex(of: $0.name) ?? 99, $0.name) < (order.firstIndex(of: $1.name) ?? 99, $1.name) }
        var histogram: Histogram?
        if !hb.isEmpty, high > 0 {
            let edges = (0...hb.count).map { high * Double($0) / Double(hb.count) }
            histogram = Histogram(edges: edges, series: ["before": hb, "after": ha])
        }
        // The request's latest entry (its outcome, else its receipt), proven against the latest checkpoint.
        var proof: InclusionProofRecord?
        // A log that no longer verifies has no valid proof: the request is reported without one.
        if let p = (try? ledger.inclusionProofs(request: id))?.last {
            let matchesCheckpoint = p.checkpoint.map { $0.root == p.root && $0.isValid(under: ledger.publicKey) } ?? false
            proof = InclusionProofRecord(leafIndex: p.leafIndex, treeSize: p.treeSize, leafHash: p.leafHash.hex, path: p.path.map(\.hex),
                                         rootHash: p.root.hex, verified: p.verify() && matchesCheckpoint)
        }
        return RequestAudit(
            id: id, requester: r.requester, legalGround: r.legalGround, status: status.rawValue,
            receivedAt: LedgerTime.string(r.receivedAt), deadline: LedgerTime.string(r.deadline),
            appliedAt: applied.map(LedgerTime.string), deadlineMet: applied.map { $0 <= r.deadline },
            method: o?.method ?? "—", sampleCount: r.samples.count, merkleRoot: root,
            versionBefore: o?.versionBefore ?? "", versionAfter: o?.versionAfter, metrics: metrics,
            layers: (o?.layers ?? []).map { LayerRow(layer: $0.layer, d: $0.d, k: $0.k, gamma: $0.gamma ?? 0, rho: $0.rho ?? 0) },
            entropyHistogram: histogram, inclusionProof: proof,
            reintroductions: status == .applied ? try reintroductions(of: r) : [],
            phases: o.map { $0.timings.map { PhaseRow(phase: $0.phase, seconds: $0.seconds) } })
    }

    /// Later ref moves that left a ref on a version whose history no longer forgets every sample of
    /// `request`, although the version it moved from did (a rollback, a forced move, a manual `ref set`).
    func reintroductions(of request: ForgetRequest) throws(EngineError) -> [String] {
        guard let seq = try lift({
            try ledger.select("SELECT entry_seq FROM ledger_request_outcomes WHERE request_id = ?1", [.text(request.id)]).first?["entry_seq"]?.int
        }) else { return [] }
        let moves = try lift {
            try ledger.select("SELECT ref, old_version, new_version, reason, moved_at FROM ledger_ref_moves WHERE entry_seq > ?1 ORDER BY entry_seq",
                              [.integer(Int64(seq))])
        }
        let wanted = Set(request.samples.map(\.sampleID))
        var cache: [String: Bool] = [:]
        func forgets(_ v: String) throws(EngineError) -> Bool {
            if let c = cache[v] { return c }
            let ids = try lift { try ledger.forgottenSampleIDs(inHistoryOf: v, dataset: request.datasetDigest) }
            let ok = wanted.isSubset(of: ids)
            cache[v] = ok
            return ok
        }
        var out: [String] = []
        for m in moves {
            guard let old = m["old_version"]?.string, let new = m["new_version"]?.string else { continue }
            if try forgets(old), try !forgets(new) {
                out.append("ref \(m["ref"]?.string ?? "?") moved to \(new.prefix(12)) at \(m["moved_at"]?.string ?? "?") (\(m["reason"]?.string ?? ""))")
            }
        }
        return out
    }

    /// Versions, requests, ref moves, rollbacks and exceptions in time order.
    func timeline() throws(EngineError) -> [TimelineEvent] {
        var events: [(Int, TimelineEvent)] = []
        func add(_ sql: String, _ make: ([String: SQLValue]) -> TimelineEvent) throws(EngineError) {
            for row in try lift({ try ledger.select(sql) }) { events.append((row["entry_seq"]?.int ?? 0, make(row))) }
        }
        try add("SELECT id, created_at, message, entry_seq FROM ledger_versions") {
            TimelineEvent(time: $0["created_at"]?.string ?? "", kind: "version", label: String(($0["id"]?.string ?? "").prefix(8)),
                          detail: $0["message"]?.string ?? "")
        }
        try add("SELECT id, received_at, sample_count, entry_seq FROM ledger_requests") {
            TimelineEvent(time: $0["received_at"]?.string ?? "", kind: "request", label: $0["id"]?.string ?? "",
                          detail: "received (\($0["sample_count"]?.int ?? 0) samples)")
        }
        try add("SELECT request_id, status, decided_at, entry_seq FROM ledger_request_outcomes") {
            TimelineEvent(time: $0["decided_at"]?.string ?? "", kind: "request", label: $0["request_id"]?.string ?? "",
                          detail: $0["status"]?.string ?? "")
        }
        try add("SELECT ref, new_version, reason, moved_at, entry_seq FROM ledger_ref_moves") {
            TimelineEvent(time: $0["moved_at"]?.string ?? "", kind: "ref", label: $0["ref"]?.string ?? "",
                          detail: "→ \(($0["new_version"]?.string ?? "").prefix(8)): \($0["reason"]?.string ?? "")")
        }
        try add("SELECT ref, to_version, mode, performed_at, entry_seq FROM ledger_rollbacks") {
            TimelineEvent(time: $0["performed_at"]?.string ?? "", kind: "rollback", label: $0["ref"]?.string ?? "",
                          detail: "\($0["mode"]?.string ?? "") to \(($0["to_version"]?.string ?? "").prefix(8))")
        }
        try add("SELECT kind, reason, created_at, entry_seq FROM ledger_compliance_exceptions") {
            TimelineEvent(time: $0["created_at"]?.string ?? "", kind: "exception", label: $0["kind"]?.string ?? "",
                          detail: $0["reason"]?.string ?? "")
        }
        return events.sorted { $0.0 < $1.0 }.map(\.1)
    }
}
