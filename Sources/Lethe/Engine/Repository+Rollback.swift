import Foundation
import LetheLedger
import LetheStore
import LetheUnlearning

/// How a rollback treats requests applied after the target version.
public enum RollbackStrategy: Sendable, Equatable {
    /// Refuse when the target predates applied requests (the default).
    case refuse
    /// Re-apply those requests on top of the target (their samples supplied again), giving a new version.
    case reapply
    /// Move anyway, recording a compliance exception with this reason.
    case force(reason: String)
}

/// What a rollback did.
public struct RollbackReport: Sendable {
    /// The ref.
    public var ref: String
    /// Where it pointed.
    public var from: String
    /// The version asked for.
    public var target: String
    /// Where it points now (the target, or the re-applied result).
    public var result: String
    /// `plain`, `reapply` or `force`.
    public var mode: RollbackMode
    /// Requests applied after the target (their samples would have resurfaced).
    public var lostRequests: [String]
    /// Re-applied requests: original id, new request id, the version it produced.
    public var reapplied: [(original: String, request: String, version: String)]
}

extension Repository {
    /// Moves `ref` back to `revision`, compliance-aware: when requests were applied after the
    /// target, refuses (naming them), re-applies them (`.reapply`, needs `data`) or records a
    /// compliance exception (`.force`). Every rollback is one ledger transaction with the move.
    public func rollback(ref: String, to revision: String, strategy: RollbackStrategy, data: LoadedData? = nil,
                         progress: ((String) -> Void)? = nil) throws(EngineError) -> RollbackReport {
        let current = try head(ref)
        let target = try resolve(revision)
        let ancestry = try lift { try ledger.ancestry(of: current.hex) }
        guard ancestry.contains(target.hex) else {
            throw .invalid("\(target.short) is not an ancestor of \(ref) (\(current.short)); rollback moves a ref back along its history")
        }
        guard target != current else { throw .invalid("\(ref) already points to \(target.short)") }
        let lost = try lift { try ledger.requestsLost(rollingBackFrom: current.hex, to: target.hex) }
        var report = RollbackReport(ref: ref, from: current.hex, target: target.hex, result: target.hex, mode: .plain,
                                    lostRequests: lost, reapplied: [])
        if lost.isEmpty {
            try commit(ref: ref, from: current, to: target, reason: "rollback to \(target.short)") { w throws(LedgerError) in
                try w.recordRollback(RollbackRecord(ref: ref, fromVersion: current.hex, toVersion: target.hex, mode: .plain))
            }
            return report
        }
        switch strategy {
        case .refuse:
            throw .refused("rolling \(ref) back to \(target.short) would resurface samples forgotten by \(lost.joined(separator: ", ")) (applied after it); use --reapply to forget them again on top of \(target.short), or --force --reason TEXT to record a compliance exception")
        case .force(let reason):
            guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw .invalid("a forced rollback needs --reason TEXT") }
            report.mode = .force
            try commit(ref: ref, from: current, to: target, reason: "forced rollback to \(target.short)") { w throws(LedgerError) in
                try w.recordComplianceException(ComplianceException(kind: "rollback.force", reason: reason, author: Repository.author,
                                                                    requestIDs: lost))
                try w.recordRollback(RollbackRecord(ref: ref, fromVersion: current.hex, toVersion: target.hex, mode: .force, reason: reason))
            }
            return report
        case .reapply:
            guard let data else { throw .invalid("--reapply needs --data DATASET to supply the forgotten samples again") }
            report.mode = .reapply
            // Compute every re-application first (store objects only), then commit them all at once.
            var parent = target
            var pending: [(ForgetRequest, RequestOutcome, ObjectID)] = []
            for rid in lost {
                let (original, outcome) = try recordedRequest(rid)
                let recipe = try UnlearningRecipe.decode(outcome.hyperparameters)
                let positions = try committedPositions(original, data: data)
                try checkDataset(parent, data)
                progress?("re-applying \(rid) (\(positions.count) samples) on \(parent.short)")
                let c = try compute(parent: parent, data: data, positions: positions, recipe: recipe, progress: progress)
                guard c.applied else {
                    throw .refused("re-applying \(rid) on \(parent.short) did not commit (\(c.result.status), max rho \(c.maxRho)); nothing was changed")
                }
                let newID = try reapplyID(for: rid, taken: pending.map(\.0.id))
                let meta = VersionMetadata(author: Repository.author, message: "forget \(newID) (re-applies \(rid) after rollback of \(ref) to \(target.short))",
                                           datasetDigest: data.digest)
                let written = try lift { try store.writeVersion(parent: parent, changed: c.changed, bases: c.bases, metadata: meta) }
                let request = ForgetRequest(id: newID, requester: original.requester,
                                            legalGround: "\(original.legalGround) (re-applies \(rid))",
                                            deadline: original.deadline > Date() ? original.deadline : nil,
                                            datasetDigest: data.digest, ref: ref, samples: original.samples)
                let o = RequestOutcome(requestID: newID, status: .applied, versionBefore: parent.hex, versionAfter: written.version.hex,
                                       method: "pgu", hyperparameters: recipe.hyperparametersJSON(), seeds: recipe.seedsJSON,
                                       threadCount: recipe.threads,
                                       layers: c.result.layers.map { LayerStat(layer: $0.layer, d: $0.dimension, k: $0.k, gamma: $0.gamma, rho: $0.rho) },
                                       metrics: c.metrics, timings: c.timings)
                pending.append((request, o, written.version))
                report.reapplied.append((rid, newID, written.version.hex))
                parent = written.version
            }
            let result = parent
            report.result = result.hex
            let note = "re-applied " + zip(lost, pending.map(\.0.id)).map { "\($0) as \($1)" }.joined(separator: ", ")
            try commit(ref: ref, from: current, to: result, reason: "rollback to \(target.short) with \(note)") { w throws(LedgerError) in
                for (request, outcome, version) in pending {
                    try w.receiveRequest(request)
                    try self.recordChain(version, in: w)
                    try w.recordOutcome(outcome)
                }
                try w.recordRollback(RollbackRecord(ref: ref, fromVersion: current.hex, toVersion: target.hex, mode: .reapply,
                                                    reason: note, resultVersion: result.hex))
            }
            return report
        }
    }

    /// `<id>.reapply<n>`: the first free name.
    private func reapplyID(for id: String, taken: [String]) throws(EngineError) -> String {
        var n = 1
        while true {
            let candidate = "\(id).reapply\(n)"
            if !taken.contains(candidate), try lift({ try ledger.request(candidate) }) == nil { return candidate }
            n += 1
        }
    }
}
