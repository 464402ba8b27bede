import Foundation
import LetheLedger
import LetheStore

extension Repository {
    /// Garbage collection that keeps the history auditable: every version the ledger records
    /// (so `replay --recompute` and the audit keep working after a rollback) is a root besides the
    /// refs, and every object removed is recorded as a `gc.deletion` ledger event.
    ///
    /// The deletions are recorded after they happen, in one transaction: a crash in between
    /// leaves deleted objects without a record, and those objects were unreachable from every
    /// ref and every recorded version by construction.
    public func gc(extraRoots: [ObjectID] = [], grace: Double, dryRun: Bool) throws(EngineError) -> GCReport {
        let recorded = try lift {
            try ledger.select("SELECT id FROM ledger_versions").compactMap { $0["id"]?.string.flatMap(ObjectID.init(hex:)) }
        }
        let roots = recorded.filter { store.objects.backend.has($0) } + extraRoots
        // Kinds and sizes are only readable before the objects go.
        let planned = try lift { try store.gc(extraRoots: roots, grace: grace, dryRun: true) }
        var details: [ObjectID: (kind: String, bytes: Int)] = [:]
        for id in planned.swept {
            let kind = (try? store.objects.header(id).kind).map { "\($0)" } ?? "unknown"
            details[id] = (kind, store.objects.backend.stat(id)?.size ?? 0)
        }
        if dryRun { return planned }
        let report = try lift { try store.gc(extraRoots: roots, grace: grace, dryRun: false) }
        guard !report.swept.isEmpty else { return report }
        try lift {
            try ledger.write { w throws(LedgerError) in
                for id in report.swept {
                    let d = details[id] ?? ("unknown", 0)
                    try w.recordGCDeletion(GCDeletion(object: id.hex, kind: d.kind, bytes: Int64(d.bytes),
                                                      reason: "unreachable from refs and recorded versions, older than \(Int(grace)) s"))
                }
            }
        }
        return report
    }
}
