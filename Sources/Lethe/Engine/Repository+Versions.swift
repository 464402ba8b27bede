import Foundation
import LetheLedger
import LetheNN
import LetheStore
import LetheUnlearning

/// What a write of a version did.
public struct VersionWrite: Sendable {
    /// The new version.
    public var version: ObjectID
    /// Its parent, if any.
    public var parent: ObjectID?
    /// Object counts and bytes.
    public var stats: Store.WriteStats
}

extension Repository {
    /// Stores a trained model as a new version on `ref` (its spec, its dataset digest) and records
    /// the dataset, the version and the ref move in the ledger.
    public func commitTrained(_ model: Model, data: LoadedData, ref: String, message: String) throws(EngineError) -> VersionWrite {
        let old = try checkTrainable(ref: ref, dataSource: data.source)
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        let spec = try lift { try e.encode(model.spec) }
        let meta = VersionMetadata(author: Repository.author, message: message, datasetDigest: data.digest)
        let written = try lift { try store.writeVersion(parent: nil, changed: model.stateDict(), spec: Array(spec), metadata: meta) }
        try commit(ref: ref, from: old, to: written.version, reason: message) { w throws(LedgerError) in
            try self.recordDatasetIfNew(data.record, in: w)
        }
        return VersionWrite(version: written.version, parent: nil, stats: written.stats)
    }

    /// Checks that a freshly trained model may be stored on `ref` (call it before training): the
    /// ref is new, or its version forgot nothing (a model trained from scratch on the full dataset
    /// would bring forgotten samples back). Returns the ref's current version.
    @discardableResult
    public func checkTrainable(ref: String, dataSource: String) throws(EngineError) -> ObjectID? {
        guard RefStore.isValidName(ref) else { throw .invalid("invalid ref name \"\(ref)\" (use letters, digits, '.', '_', '-')") }
        guard let old = try lift({ try store.refs.get(ref) }) else { return nil }
        _ = try head(ref)
        let applied = try lift { try ledger.appliedRequests(inHistoryOf: old.hex) }
        guard applied.isEmpty else {
            throw .refused("ref \(ref) holds \(old.short), which forgot the samples of \(applied.joined(separator: ", ")); a model trained on \(dataSource) would bring them back — train to a new ref")
        }
        return old
    }

    /// Positions in the training split of the samples `version` still holds: all of them except
    /// those an applied forget request in its history removed. A Gram pass over the others would
    /// write the forgotten samples back into the cached bases (and their Core Gradient Space would
    /// then shield what was forgotten from later requests).
    func retainedPositions(of version: ObjectID, data: LoadedData) throws(EngineError) -> [Int] {
        let gone = try lift { try ledger.forgottenSampleIDs(inHistoryOf: version.hex, dataset: data.digest) }
        let train = data.splits.train
        guard !gone.isEmpty else { return Array(0..<train.count) }
        return (0..<train.count).filter { !gone.contains(String(train.ids[$0])) }
    }

    /// How many training samples of `data` the ref's version still holds (those forgotten in its
    /// history left out): what `storeBases` passes over.
    public func retainedSampleCount(ref: String, data: LoadedData) throws(EngineError) -> Int {
        try retainedPositions(of: try head(ref), data: data).count
    }

    /// Computes the cached bases of the ref's version (one eval-mode pass over the training
    /// samples it still holds — every forgotten sample in its history left out — a Gram matrix and
    /// its eigendecomposition per projectable layer) and stores them as a child version with the
    /// same weights; the ref moves to it. On a version that has forgotten samples this re-bases it:
    /// the bases then describe the current weights on the retained data exactly, where the
    /// incremental ones carry the representations of the version they were first computed for.
    public func storeBases(ref: String, data: LoadedData, threads: Int, progress: ((String) -> Void)? = nil) throws(EngineError)
        -> (write: VersionWrite, bases: [LayerBasis])
    {
        let parent = try head(ref)
        try checkDataset(parent, data)
        Repository.setThreads(threads)
        let model = try loadModel(parent, data: data)
        let kept = try retainedPositions(of: parent, data: data)
        let train = data.splits.train
        let left = train.count - kept.count
        guard !kept.isEmpty else { throw .invalid("every training sample of \(data.source) was forgotten in the history of \(ref): no data for bases") }
        progress?("computing bases of \(model.unlearningLayers.count) layers over \(kept.count) training samples"
                  + (left > 0 ? " (\(left) forgotten samples left out)" : ""))
        let images = left > 0 ? train.subset(kept).images : train.images
        let bases = try lift { try PGUEngine.computeBases(model: model, images: images) }.map { $0.truncated() }
        let w = try commitBases(bases, parent: parent, ref: ref, data: data,
                                message: "bases over \(kept.count) samples of \(data.source)" + (left > 0 ? " (\(left) forgotten left out)" : ""))
        return (w, bases)
    }

    /// Stores `bases` with a child version of `parent` (same weights) and moves the ref to it.
    func commitBases(_ bases: [LayerBasis], parent: ObjectID, ref: String, data: LoadedData, message: String) throws(EngineError) -> VersionWrite {
        let inputs = bases.map { BasisInput(layer: $0.layer, u: $0.u, sigma: $0.sigma, d: $0.dimension, k: nil) }
        let meta = VersionMetadata(author: Repository.author, message: message, datasetDigest: data.digest)
        let written = try lift { try store.writeVersion(parent: parent, changed: [], bases: inputs, metadata: meta) }
        try commit(ref: ref, from: parent, to: written.version, reason: "bases") { w throws(LedgerError) in
            try self.recordDatasetIfNew(data.record, in: w)
        }
        return VersionWrite(version: written.version, parent: parent, stats: written.stats)
    }
}
