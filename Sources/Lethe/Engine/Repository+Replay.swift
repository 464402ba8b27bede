import Foundation
import LetheLedger
import LetheStore
import LetheTensor
import LetheUnlearning

/// One version checked by a rebuild.
public struct RebuiltVersion: Sendable {
    /// The version.
    public var id: String
    /// Tensors and bases read (every chunk decoded through its delta chain and hash-checked).
    public var tensors: Int
    /// Chunks read.
    public var chunks: Int
    /// Deepest delta chain met.
    public var maxDeltaDepth: Int
    /// Logical bytes read.
    public var bytes: Int
    /// What failed (empty when every hash matched).
    public var problems: [String]
}

/// One request re-run by `replay --recompute`.
public struct RecomputedRequest: Sendable {
    /// The request (as applied; re-applied copies are their own requests).
    public var requestID: String
    /// Its recorded parent version.
    public var parent: String
    /// Its recorded result.
    public var recorded: String
    /// The supplied samples hash to the recorded Merkle root.
    public var samplesMatch: Bool
    /// Every tensor and basis of the recomputed result equals the recorded version, bit for bit.
    public var identical: Bool
    /// Tensors or bases that differ.
    public var differing: [String]
    /// Thread count used (the recorded one).
    public var threads: Int
    /// OpenBLAS kernel set of the re-run (`BLASKernel.current`).
    public var kernel: String
    /// The kernel recorded with the request (nil: recorded before kernels were).
    public var recordedKernel: String?
    /// Seconds the re-run took.
    public var seconds: Double
}

extension Repository {
    /// Rebuilds `id` and every ancestor (root first) from the stored objects: each version object,
    /// each tensor chunk through its XOR-delta chain, each basis; every object's hash is checked
    /// against its id on the way.
    public func rebuild(_ id: ObjectID) throws(EngineError) -> [RebuiltVersion] {
        let chain = try lift { try store.log(from: id) }.reversed()
        var out: [RebuiltVersion] = []
        for (vid, v) in chain {
            var r = RebuiltVersion(id: vid.hex, tensors: 0, chunks: 0, maxDeltaDepth: 0, bytes: 0, problems: [])
            let all = v.tensors + v.bases.flatMap { [$0.u, $0.sigma] }
            for t in all {
                do {
                    let n = try store.read(t)
                    r.tensors += 1; r.chunks += t.chunks.count; r.bytes += n.data.count
                    for c in t.chunks { r.maxDeltaDepth = max(r.maxDeltaDepth, try store.objects.header(c).depth) }
                } catch {
                    r.problems.append("\(t.name): \(error)")
                }
            }
            if let recorded = try lift({ try ledger.version(vid.hex) }) {
                for t in v.tensors {
                    guard let rt = recorded.tensors.first(where: { $0.name == t.name }) else {
                        r.problems.append("\(t.name): not in the ledger's record of the version"); continue
                    }
                    if rt.shape != t.shape || rt.dtype != t.dtype.rawValue {
                        r.problems.append("\(t.name): ledger records \(rt.dtype)\(rt.shape), store has \(t.dtype.rawValue)\(t.shape)")
                    }
                }
                if recorded.parents != v.parents.map(\.hex) { r.problems.append("parents differ from the ledger's record") }
            } else {
                r.problems.append("version is not recorded in the ledger")
            }
            out.append(r)
        }
        return out
    }

    /// Re-runs every request applied in the history of `id` from its recorded parent with its
    /// recorded hyperparameters, seeds and thread count, after checking the supplied dataset's
    /// samples against the request's Merkle root, and compares the result with the recorded version.
    public func recompute(_ id: ObjectID, data: LoadedData, progress: ((String) -> Void)? = nil) throws(EngineError) -> [RecomputedRequest] {
        let requests = try lift { try ledger.appliedRequests(inHistoryOf: id.hex) }
        var out: [RecomputedRequest] = []
        for rid in requests {
            let t0 = Date()
            let (request, outcome) = try recordedRequest(rid)
            guard let before = outcome.versionBefore.flatMap(ObjectID.init(hex:)), let after = outcome.versionAfter.flatMap(ObjectID.init(hex:)) else {
                throw .invalid("request \(rid) records no parent or result version")
            }
            let recipe = try UnlearningRecipe.decode(outcome.hyperparameters)
            guard recipe.threads == (outcome.threadCount ?? recipe.threads) else { throw .invalid("request \(rid): thread counts disagree") }
            let positions = try committedPositions(request, data: data)
            progress?("\(rid): re-running from \(before.short) with \(recipe.threads) thread(s)")
            let c = try compute(parent: before, data: data, positions: positions, recipe: recipe, progress: nil)
            var differing: [String] = []
            if !c.applied { differing.append("the re-run did not commit (\(c.result.status))") }
            let stored = try lift { try store.version(after) }
            let state = Dictionary(c.stateDict.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for t in stored.tensors {
                let bytes = try lift { try store.read(t).data }
                if state[t.name]?.data != bytes { differing.append(t.name) }
            }
            if Set(state.keys) != Set(stored.tensors.map(\.name)) { differing.append("tensor names") }
            for b in c.bases {
                guard let sb = stored.bases.first(where: { $0.layer == b.layer }) else { differing.append("\(b.layer) basis missing"); continue }
                let u = try lift { try store.read(sb.u).data }, s = try lift { try store.read(sb.sigma).data }
                if u != b.u.data || sb.u.shape != b.u.shape { differing.append(b.u.name) }
                if s != b.sigma.data { differing.append(b.sigma.name) }
                if sb.k != b.k { differing.append("\(b.layer).k") }
            }
            out.append(RecomputedRequest(requestID: rid, parent: before.hex, recorded: after.hex, samplesMatch: true,
                                         identical: differing.isEmpty, differing: differing, threads: recipe.threads,
                                         kernel: BLASKernel.current, recordedKernel: recipe.blasKernel,
                                         seconds: Date().timeIntervalSince(t0)))
        }
        return out
    }

    /// A request and its outcome as recorded.
    func recordedRequest(_ id: String) throws(EngineError) -> (ForgetRequest, RequestOutcome) {
        guard let r = try lift({ try ledger.request(id) }) else { throw .invalid("no forget request \(id)") }
        guard let o = try lift({ try ledger.outcome(ofRequest: id) }) else { throw .invalid("request \(id) has no outcome") }
        return (r, o)
    }

    /// Positions of a recorded request's samples in the supplied dataset, after checking the
    /// dataset digest and that the supplied samples hash to the recorded Merkle root.
    func committedPositions(_ request: ForgetRequest, data: LoadedData) throws(EngineError) -> [Int] {
        guard request.datasetDigest == data.digest else {
            throw .invalid("request \(request.id) was made against dataset \(request.datasetDigest.prefix(16))…; \(data.source) has digest \(data.digest.prefix(16))…")
        }
        let ids = request.samples.compactMap { Int($0.sampleID) }
        guard ids.count == request.samples.count else { throw .invalid("request \(request.id) names non-integer sample ids") }
        let positions = try positions(.samples(ids), in: data.splits.train)
        let supplied = forgottenSamples(positions, data: data)
        let recordedRoot = try lift {
            try ledger.select("SELECT samples_root FROM ledger_requests WHERE id = ?1", [.text(request.id)]).first?["samples_root"]?.string
        }
        let root = ForgottenSample.merkleRoot(supplied).hex
        guard root == recordedRoot else {
            throw .invalid("the supplied samples of request \(request.id) hash to Merkle root \(root.prefix(16))…, the ledger committed to \((recordedRoot ?? "none").prefix(16))…")
        }
        return positions
    }
}
