import Foundation
import LetheLedger
import LetheNN
import LetheStore
import LetheUnlearning

/// Which samples a forget request names.
public enum ForgetSelection: Sendable, Equatable {
    /// Training-set sample ids.
    case samples([Int])
    /// Every training sample of a class (whole-class forgetting).
    case wholeClass(Int)
}

/// A forget request as the caller states it.
public struct ForgetOptions: Sendable {
    /// The ref whose version is forgotten from (it moves to the new version).
    public var ref: String
    /// What to forget.
    public var selection: ForgetSelection
    /// Request id (default `R<n>`).
    public var requestID: String?
    /// Who asked (a label, never personal data).
    public var requester: String
    /// Legal ground.
    public var legalGround: String
    /// Deadline (default: received + 30 days).
    public var deadline: Date?
    /// How to run PGU and measure it.
    public var recipe: UnlearningRecipe
    /// A reference version (e.g. retrained without the samples) to measure JS divergence against.
    public var reference: String?
    /// Sample forgetting: judge the request as part of the chain of sample requests that led to the
    /// ref's version (`PGUConfiguration.chainHeldOutAccuracy`, read from the ledger) — the chain's
    /// held-out accuracy may fall at most the collapse margin in all. False: on its own.
    public var chained = true

    /// Options with GDPR Art. 17 defaults.
    public init(ref: String, selection: ForgetSelection, requestID: String? = nil, requester: String = "unspecified",
                legalGround: String = "GDPR Art. 17(1)", deadline: Date? = nil, recipe: UnlearningRecipe) {
        self.ref = ref; self.selection = selection; self.requestID = requestID; self.requester = requester
        self.legalGround = legalGround; self.deadline = deadline; self.recipe = recipe
    }
}

/// What a forget request did.
public struct ForgetReport: Sendable {
    /// How it ended.
    public enum Status: Sendable, Equatable {
        /// Forgotten; the ref moved to `versionAfter`.
        case applied
        /// The engine failed or a ρ exceeded the tolerance; recorded as failed, ref unchanged.
        case failed(String)
        /// Every named sample was already forgotten in the ref's history; nothing recorded or changed.
        case alreadyForgotten
    }
    /// How it ended.
    public var status: Status
    /// The recorded request (nil when nothing was recorded).
    public var requestID: String?
    /// The ref forgotten from.
    public var ref: String
    /// The version the request started from.
    public var versionBefore: String
    /// The version it produced (applied only).
    public var versionAfter: String?
    /// Samples named.
    public var sampleCount: Int
    /// Merkle root of the samples' ids and hashes (the ledger's commitment).
    public var merkleRoot: String?
    /// γ of the committed trial.
    public var gamma: Double?
    /// Threads used (recorded; replay uses the same).
    public var threads: Int
    /// Per-layer d, k, γ, ρ.
    public var layers: [LayerReport]
    /// Every γ trial.
    public var trials: [TrialRecord]
    /// Metrics before and after.
    public var metrics: [MetricValue]
    /// Phase timings (and one row per γ trial).
    public var timings: [PhaseTiming]
    /// Sample ids already forgotten (for `.alreadyForgotten`).
    public var alreadyForgotten: [String]
}

extension Repository {
    /// The ref's current version; the store and the ledger must agree on it.
    func head(_ ref: String) throws(EngineError) -> ObjectID {
        guard let id = try lift({ try store.refs.get(ref) }) else { throw .invalid("ref \(ref) does not exist") }
        let mirrored = try lift { try ledger.refTarget(ref) }
        guard mirrored == id.hex else {
            throw .inconsistent("ref \(ref) is \(id.short) in the store but \(mirrored.map { String($0.prefix(12)) } ?? "absent") in the ledger")
        }
        return id
    }

    /// Training-set positions of `selection`, with clear errors for unknown or repeated ids.
    func positions(_ selection: ForgetSelection, in train: Dataset) throws(EngineError) -> [Int] {
        switch selection {
        case .samples(let ids):
            guard !ids.isEmpty else { throw .invalid("the request names no samples") }
            var seen = Set<Int>(), dup: [Int] = []
            for i in ids where !seen.insert(i).inserted { dup.append(i) }
            guard dup.isEmpty else { throw .invalid("sample id \(dup.prefix(5).map(String.init).joined(separator: ", ")) named more than once") }
            var index: [Int: Int] = [:]
            for (p, id) in train.ids.enumerated() { index[id] = p }
            let unknown = ids.filter { index[$0] == nil }
            guard unknown.isEmpty else {
                throw .invalid("\(unknown.count) unknown sample id\(unknown.count == 1 ? "" : "s") (not in the training set of \(train.count)): \(unknown.prefix(5).map(String.init).joined(separator: ", "))\(unknown.count > 5 ? ", …" : "")")
            }
            return ids.compactMap { index[$0] }
        case .wholeClass(let c):
            guard c >= 0 && c < train.classCount else { throw .invalid("class \(c) outside 0..<\(train.classCount)") }
            return train.labels.indices.filter { Int(train.labels[$0]) == c }
        }
    }

    /// The committed-samples record of positions: ids, per-sample SHA-256, in order.
    func forgottenSamples(_ positions: [Int], data: LoadedData) -> [ForgottenSample] {
        positions.map { ForgottenSample(datasetDigest: data.digest, sampleID: String(data.splits.train.ids[$0]),
                                        sampleHash: data.splits.train.sampleHashes[$0]) }
    }

    /// Applies a forget request to the ref's version (see the type's notes for the write order):
    /// checks the dataset, the ids and the bases; records the request and runs PGU; commits the new
    /// version, outcome and ref move in one ledger transaction — or records the request as failed
    /// and leaves the ref where it was when the run failed or any ρ_l exceeds the tolerance.
    public func forget(_ options: ForgetOptions, data: LoadedData, progress: ((String) -> Void)? = nil) throws(EngineError) -> ForgetReport {
        var recipe = options.recipe
        if case .wholeClass(let c) = options.selection { recipe.configuration.mode = .wholeClass(c) }
        try lift { try recipe.configuration.validate() }
        guard recipe.threads > 0 else { throw .invalid("thread count must be positive") }
        let lock = try EngineLock(directory: location.directory.path)
        defer { withExtendedLifetime(lock) {} }
        let parent = try head(options.ref)
        // The requests applied in the parent's history, read once: forgotten classes and the chain's start.
        let history = try appliedOutcomes(inHistoryOf: parent)
        let gone = Repository.forgottenClasses(in: history)
        if case .wholeClass(let c) = options.selection {
            recipe.excludedClasses = gone.filter { $0 != c }
        } else {
            recipe.excludedClasses = gone
        }
        try checkDataset(parent, data)
        // Training-distribution samples no model trained on are the better target for the stopping rule.
        if recipe.heldOut == nil && data.splits.validation != nil { recipe.heldOut = .validation }
        if options.chained, case .samples = recipe.configuration.mode {
            recipe.configuration.chainHeldOutAccuracy = chainStart(parent: parent, recipe: recipe, history: history)
        }
        var positions = try positions(options.selection, in: data.splits.train)
        let done = try lift { try ledger.forgottenSampleIDs(inHistoryOf: parent.hex, dataset: data.digest) }
        if case .wholeClass = options.selection {
            // The class's samples already forgotten stay forgotten; the request covers the rest.
            let rest = positions.filter { !done.contains(String(data.splits.train.ids[$0])) }
            if !rest.isEmpty { positions = rest }
        }
        let samples = forgottenSamples(positions, data: data)
        let again = samples.map(\.sampleID).filter { done.contains($0) }
        let report = ForgetReport(status: .alreadyForgotten, requestID: nil, ref: options.ref, versionBefore: parent.hex, versionAfter: nil,
                                  sampleCount: samples.count, merkleRoot: nil, gamma: nil, threads: recipe.threads, layers: [],
                                  trials: [], metrics: [], timings: [], alreadyForgotten: again)
        if again.count == samples.count { return report }
        guard again.isEmpty else {
            throw .invalid("\(again.count) of the \(samples.count) samples were already forgotten in the history of \(options.ref) (e.g. \(again.prefix(5).joined(separator: ", "))); name only the others")
        }
        let model = try loadModel(parent, data: data)
        _ = try cachedBases(parent, model: model)   // a clear error before anything is recorded
        var id = options.requestID ?? ""
        if options.requestID == nil { id = try nextRequestID() }
        if try lift({ try ledger.request(id) }) != nil { throw .invalid("request \(id) already exists") }
        var request = ForgetRequest(id: id, requester: options.requester, legalGround: options.legalGround, deadline: options.deadline,
                                    datasetDigest: data.digest, ref: options.ref, samples: samples)
        let reference = try options.reference.map { (r) throws(EngineError) -> ObjectID in try resolve(r) }
        let c = try compute(parent: parent, data: data, positions: positions, recipe: recipe, reference: reference, progress: progress)
        var attempts = 0
        while true {
            do {
                return try commitComputation(c, request: request, parent: parent, ref: options.ref, recipe: recipe, data: data,
                                             message: "forget \(request.id) (\(samples.count) samples)", moveReason: "forget \(request.id)")
            } catch {
                // Another process sharing the ledger recorded a different request under the same
                // automatic id between our choice and our commit (nothing of ours was recorded):
                // take the next free id and commit the same result again.
                attempts += 1
                guard options.requestID == nil, attempts < 10, let other = try lift({ try ledger.request(request.id) }),
                      !Repository.sameRequest(other, request) else { throw error }
                request.id = try nextRequestID()
            }
        }
    }

    /// Whether a recorded request is `request` itself (as recorded: times to the millisecond).
    static func sameRequest(_ recorded: ForgetRequest, _ request: ForgetRequest) -> Bool {
        recorded.requester == request.requester && recorded.samplesRoot == request.samplesRoot
            && LedgerTime.string(recorded.receivedAt) == LedgerTime.string(request.receivedAt) && recorded.ref == request.ref
    }

    /// Writes the result of a computation: on success the new version, then the request, its
    /// applied outcome and the ref move in one ledger transaction; on failure the request and
    /// its failed outcome only.
    func commitComputation(_ c: Computation, request: ForgetRequest, parent: ObjectID, ref: String, recipe: UnlearningRecipe,
                           data: LoadedData, message: String, moveReason: String) throws(EngineError) -> ForgetReport {
        let layers = c.result.layers.map { LayerStat(layer: $0.layer, d: $0.dimension, k: $0.k, gamma: $0.gamma, rho: $0.rho) }
        var outcome = RequestOutcome(requestID: request.id, status: .applied, versionBefore: parent.hex, method: "pgu",
                                     hyperparameters: recipe.hyperparametersJSON(), seeds: recipe.seedsJSON, threadCount: recipe.threads,
                                     layers: layers, metrics: c.metrics, timings: c.timings)
        var report = ForgetReport(status: .applied, requestID: request.id, ref: ref, versionBefore: parent.hex, versionAfter: nil,
                                  sampleCount: request.samples.count, merkleRoot: request.samplesRoot.hex, gamma: c.result.gamma,
                                  threads: recipe.threads, layers: c.result.layers, trials: c.result.trials, metrics: c.metrics,
                                  timings: c.timings, alreadyForgotten: [])
        if c.applied {
            // 1. Store objects (invisible until the ref moves).
            let meta = VersionMetadata(author: Repository.author, message: message, datasetDigest: data.digest)
            let written = try lift { try store.writeVersion(parent: parent, changed: c.changed, bases: c.bases, metadata: meta) }
            outcome.versionAfter = written.version.hex
            // 2 + 3. One ledger transaction, then the store's ref.
            try commit(ref: ref, from: parent, to: written.version, reason: moveReason) { w throws(LedgerError) in
                try self.recordDatasetIfNew(data.record, in: w)
                try w.receiveRequest(request)
                try self.recordChain(written.version, in: w)
                try w.recordOutcome(outcome)
            }
            report.versionAfter = written.version.hex
        } else {
            let reason: String
            switch c.result.status {
            case .failed(let why): reason = why
            case .applied: reason = String(format: "max orthogonality residual %.3g exceeds tolerance %.3g", c.maxRho, c.tolerance)
            }
            outcome.status = .failed
            outcome.reason = reason
            try lift {
                try ledger.write { w throws(LedgerError) in
                    try self.recordDatasetIfNew(data.record, in: w)
                    try self.recordChain(parent, in: w)
                    try w.receiveRequest(request)
                    try w.recordOutcome(outcome)
                }
            }
            report.status = .failed(reason)
        }
        return report
    }

    /// The held-out accuracy where the chain of sample requests that produced `parent` started: the
    /// recorded `val_accuracy` before the oldest request of the unbroken run of applied sample
    /// requests, each producing the next one's starting version, that held out the same samples as
    /// `recipe` (source, split seed and fraction, excluded classes); versions that only changed the
    /// bases (`lethe bases`) do not break the chain. Nil when `parent` was not produced by such a
    /// request (a trained or imported version, or one after a class request).
    func chainStart(parent: ObjectID, recipe: UnlearningRecipe, history: [(outcome: RequestOutcome, recipe: UnlearningRecipe?)]) -> Double? {
        var producedBy: [String: (outcome: RequestOutcome, recipe: UnlearningRecipe?)] = [:]
        for h in history { if let after = h.outcome.versionAfter { producedBy[after] = h } }
        var version = parent
        var start: Double?
        while true {
            if let (o, r) = producedBy.removeValue(forKey: version.hex) {
                guard let before = o.versionBefore.flatMap(ObjectID.init(hex:)), let r,
                      r.configuration.mode == .samples, r.holdsOutSameSamples(as: recipe),
                      let accuracy = o.metrics.first(where: { $0.name == "val_accuracy" })?.before else { break }
                start = accuracy
                version = before
                continue
            }
            // A version with its parent's weights (new bases, e.g. `lethe bases` after requests): the chain goes on through it.
            guard let v = try? store.version(version), v.parents.count == 1, let p = try? store.version(v.parents[0]),
                  p.tensors == v.tensors, p.spec == v.spec else { break }
            version = v.parents[0]
        }
        return start
    }

    /// The outcomes of the requests applied in the history of `version`, in log order, each with its
    /// decoded recipe (nil when its hyperparameters are not an engine recipe).
    func appliedOutcomes(inHistoryOf version: ObjectID) throws(EngineError) -> [(outcome: RequestOutcome, recipe: UnlearningRecipe?)] {
        var out: [(outcome: RequestOutcome, recipe: UnlearningRecipe?)] = []
        for id in try lift({ try ledger.appliedRequests(inHistoryOf: version.hex) }) {
            guard let o = try lift({ try ledger.outcome(ofRequest: id) }) else { continue }
            out.append((o, try? UnlearningRecipe.decode(o.hyperparameters)))
        }
        return out
    }

    /// Classes forgotten whole by the requests of `history` (`appliedOutcomes`), ascending.
    static func forgottenClasses(in history: [(outcome: RequestOutcome, recipe: UnlearningRecipe?)]) -> [Int] {
        var out = Set<Int>()
        for case let (_, recipe?) in history {
            if case .wholeClass(let c) = recipe.configuration.mode { out.insert(c) }
        }
        return out.sorted()
    }

    /// The next free `R<n>` request id.
    func nextRequestID() throws(EngineError) -> String {
        let n = try lift { try ledger.select("SELECT COUNT(*) AS n FROM ledger_requests").first?["n"]?.int ?? 0 }
        var i = n + 1
        while try lift({ try ledger.request("R\(i)") }) != nil { i += 1 }
        return "R\(i)"
    }
}
