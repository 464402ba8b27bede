import Foundation
import LetheLedger
import LetheStore
import LetheTensor

/// A store and its ledger opened together: the engine every state-changing command goes through.
///
/// ## Write ordering (crash safety)
///
/// Every operation that changes state follows the same three steps:
///
/// 1. **Store objects.** Chunks, bases, the spec blob and the version object are written
///    (content-addressed, temp file + fsync + rename). Nothing points at them yet: a crash
///    here leaves unreferenced objects, which `gc` removes after its grace period.
/// 2. **One ledger transaction** holding every row of the operation (dataset, versions,
///    request, outcome, rollback, exception) *and* the ledger's mirror of the ref move, each
///    a leaf of the Merkle log, plus a signed checkpoint. This is the commit point: SQLite
///    makes it all or nothing.
/// 3. **The store's ref** moves (compare-and-swap against the old target).
///
/// A crash between 2 and 3 leaves the ledger one ref move ahead of the store. `open`
/// reconciles: when the ledger's last move of a ref starts where the store's ref points and
/// its target exists, the store's ref is rolled forward (the operation completes). A store
/// ref moved outside the engine (`lethe import`, `lethe ref set`) is adopted: its versions
/// are recorded and the move is mirrored into the ledger, so the audit sees it. Anything
/// else (a ref target missing from the store) is reported as `EngineError.inconsistent`.
public final class Repository {
    /// Where the store lives.
    public let location: StoreLocation
    /// The content-addressed store.
    public let store: Store
    /// The tamper-evident ledger.
    public let ledger: Ledger
    /// What `open` repaired (human-readable lines; empty when store and ledger agreed).
    public private(set) var repairs: [String] = []

    private init(location: StoreLocation, store: Store, ledger: Ledger) {
        self.location = location; self.store = store; self.ledger = ledger
    }

    /// Creates `.lethe` in `parent`: the object store, then the ledger with a new Ed25519
    /// signing key (the ledger signs the checkpoint of its empty log).
    ///
    /// - Parameters:
    ///   - origin: the log's origin line (default: `lethe/<hostname>/<directory>`).
    ///   - remote: where objects and refs (`objects`, `s3://...`) and the ledger (`ledger`, a
    ///     `postgresql://` URL) live when not in `.lethe` (recorded in `.lethe/remote.json`). An
    ///     empty database gets a new ledger; a database that already holds one is joined, which
    ///     needs `signingKey`.
    ///   - signingKey: a PEM file copied to `.lethe/signing-key.pem` and used instead of a new
    ///     key: every host writing to a shared PostgreSQL ledger signs with the same key.
    public static func initialize(in parent: URL, origin: String? = nil, remote: RemoteConfig = RemoteConfig(),
                                  signingKey: String? = nil) throws(EngineError) -> Repository {
        let location = StoreLocation(directory: parent)
        let ledgerURL = remote.ledger
        if let ledgerURL, !Ledger.isPostgresURL(ledgerURL) {
            throw .invalid("--ledger must be a postgresql:// URL, not \(ledgerURL)")
        }
        if let signingKey, !FileManager.default.isReadableFile(atPath: signingKey) {
            throw .invalid("cannot read the signing key \(signingKey)")
        }
        // Writes remote.json (objects and ledger) before the store's config when not all local.
        let store = try lift { try StoreLocation.initializeStore(in: parent, remote: remote) }
        let name = origin ?? "lethe/\(ProcessInfo.processInfo.hostName)\(parent.standardizedFileURL.path)"
        do {
            if let signingKey {
                try FileManager.default.copyItem(atPath: signingKey, toPath: location.signingKeyPath)
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: location.signingKeyPath)
            }
            let ledger: Ledger
            if let ledgerURL {
                ledger = try Ledger.createOrJoin(postgres: ledgerURL, keyPath: location.signingKeyPath, origin: name,
                                                 join: signingKey != nil)
            } else {
                ledger = try Ledger.create(path: location.ledgerPath, keyPath: location.signingKeyPath, origin: name)
            }
            return Repository(location: location, store: store, ledger: ledger)
        } catch {
            // Leave nothing behind, so init can simply be run again.
            if ledgerURL != nil || signingKey != nil { try? FileManager.default.removeItem(at: location.directory) }
            throw EngineError.from(error)
        }
    }

    /// Opens the store and ledger at `location` and reconciles their refs (see the type's notes).
    public static func open(_ location: StoreLocation, reconcile: Bool = true) throws(EngineError) -> Repository {
        let store = try lift { try location.openStore() }
        let key = FileManager.default.fileExists(atPath: location.signingKeyPath) ? location.signingKeyPath : nil
        let ledger: Ledger
        if let url = try lift({ try RemoteConfig.load(location).ledger }) {
            ledger = try lift { try Ledger.open(postgres: url, keyPath: key) }
        } else {
            guard FileManager.default.fileExists(atPath: location.ledgerPath) else {
                throw .invalid("\(location.directory.path) has no ledger (ledger.sqlite); it was created without one — re-create it with 'lethe init'")
            }
            ledger = try lift { try Ledger.open(path: location.ledgerPath, keyPath: key) }
        }
        let repo = Repository(location: location, store: store, ledger: ledger)
        if reconcile { repo.repairs = try repo.reconcile() }
        return repo
    }

    /// The ref names known to the store or the ledger.
    public func refNames() throws(EngineError) -> [String] {
        let storeRefs = try lift { try store.refs.list().map(\.name) }
        let ledgerRefs = try lift { try ledger.select("SELECT DISTINCT ref FROM ledger_ref_moves").compactMap { $0["ref"]?.string } }
        return Array(Set(storeRefs).union(ledgerRefs)).sorted()
    }

    /// Brings the store's refs and the ledger's mirror into agreement; returns what it did.
    @discardableResult
    public func reconcile() throws(EngineError) -> [String] {
        var done: [String] = []
        for name in try refNames() {
            let s = try lift { try store.refs.get(name) }
            let l = try lift { try ledger.refTarget(name) }
            if s?.hex == l { continue }
            if let l, let lid = ObjectID(hex: l) {
                let last = try lift { try ledger.refHistory(name).last }
                if last?.oldVersion == s?.hex, (try? store.version(lid)) != nil {
                    do {
                        _ = try store.refs.set(name, to: lid, reason: "reconcile: complete \(last?.reason ?? "ref move") recorded in the ledger", expected: .some(s))
                    } catch {
                        // Another process (sharing the store and ledger) completed the same move first.
                        guard (try? store.refs.get(name)) == lid else { throw EngineError.from(error) }
                    }
                    done.append("ref \(name): rolled forward to \(lid.short) (the ledger had committed the move)")
                    continue
                }
            }
            guard let s else {
                throw .inconsistent("ref \(name) points to \(l ?? "nothing") in the ledger but does not exist in the store")
            }
            // Moved outside the engine: adopt it.
            let reason = (try? store.refs.history(name).last?.reason) ?? nil
            let adopted = try lift {
                try ledger.write { w throws(LedgerError) -> Bool in
                    // Under the ledger's write lock: another process sharing the store and ledger
                    // may have adopted this move (or an earlier one) since `l` was read.
                    let now = try self.ledger.refTarget(name)
                    if now == s.hex { return false }
                    try self.recordChain(s, in: w)
                    try w.moveRef(LetheLedger.RefMove(ref: name, oldVersion: now, newVersion: s.hex,
                                                      reason: "adopted store ref move: \(reason ?? "unknown")"))
                    return true
                }
            }
            if !adopted { continue }
            done.append("ref \(name): mirrored store move to \(s.short) into the ledger")
        }
        return done
    }

    // MARK: commit protocol

    /// Steps 2 and 3 of the write ordering: one ledger transaction with `rows` and the ref's
    /// mirrored move, then the store's ref (compare-and-swap against `old`).
    func commit(ref: String, from old: ObjectID?, to new: ObjectID, reason: String,
                rows: (LedgerWriter) throws(LedgerError) -> Void) throws(EngineError) {
        let current = try lift { try store.refs.get(ref) }
        guard current == old else {
            throw .inconsistent("ref \(ref) moved concurrently (now \(current?.short ?? "absent"), expected \(old?.short ?? "absent"))")
        }
        try lift {
            try ledger.write { w throws(LedgerError) in
                try rows(w)
                try self.recordChain(new, in: w)
                try w.moveRef(LetheLedger.RefMove(ref: ref, oldVersion: old?.hex, newVersion: new.hex, reason: reason))
            }
        }
        do {
            _ = try store.refs.set(ref, to: new, reason: reason, expected: .some(old))
        } catch {
            // A process that opened the store after our ledger commit rolled the ref forward already.
            guard (try? store.refs.get(ref)) == new else { throw EngineError.from(error) }
        }
    }

    /// Records `id` and every unrecorded ancestor in the ledger, oldest first (inside a write).
    func recordChain(_ id: ObjectID, in w: LedgerWriter) throws(LedgerError) {
        var pending: [(ObjectID, Version)] = []
        var cursor: [ObjectID] = [id]
        var seen = Set<ObjectID>()
        while let c = cursor.popLast() {
            guard seen.insert(c).inserted else { continue }
            if try ledger.version(c.hex) != nil { continue }
            let v: Version
            do { v = try store.version(c) } catch { throw .invalid("version \(c.hex) cannot be read from the store: \(error)") }
            pending.append((c, v))
            cursor.append(contentsOf: v.parents)
        }
        // Parents before children: reverse discovery order is a valid topological order for chains;
        // sort by depth to be safe with merges.
        var depth: [ObjectID: Int] = [:]
        func depthOf(_ id: ObjectID) -> Int {
            if let d = depth[id] { return d }
            guard let v = pending.first(where: { $0.0 == id })?.1 else { return 0 }
            let d = 1 + (v.parents.map(depthOf).max() ?? 0)
            depth[id] = d
            return d
        }
        for (id, v) in pending.sorted(by: { depthOf($0.0) < depthOf($1.0) }) {
            if let ds = v.metadata.datasetDigest, try !datasetRecorded(ds, w) {
                try w.recordDataset(DatasetRecord(digest: ds, name: nil, sampleCount: 0, source: "unknown (named by version \(id.short))"))
            }
            try w.recordVersion(versionRecord(id, v))
        }
    }

    private func datasetRecorded(_ digest: String, _ w: LedgerWriter) throws(LedgerError) -> Bool {
        try !ledger.select("SELECT 1 FROM ledger_datasets WHERE digest = ?1", [.text(digest)]).isEmpty
    }

    /// Records a dataset unless it already is (inside a write).
    func recordDatasetIfNew(_ d: DatasetRecord, in w: LedgerWriter) throws(LedgerError) {
        if try !datasetRecorded(d.digest, w) { try w.recordDataset(d) }
    }

    /// The ledger row of a stored version: tensors with dtype, shape, stored bytes and first codec.
    func versionRecord(_ id: ObjectID, _ v: Version) -> VersionRecord {
        var stored: Int64 = 0, logical: Int64 = 0
        var tensors: [TensorRecord] = []
        for t in v.tensors {
            var bytes: Int64 = 0
            var codec = "none"
            for (i, c) in t.chunks.enumerated() {
                if let h = try? store.objects.header(c) {
                    bytes += Int64(h.bodyLength + ObjectHeader.fixedSize)
                    if i == 0 { codec = "\(h.codec)" }
                }
            }
            stored += bytes; logical += Int64(t.byteCount)
            tensors.append(TensorRecord(name: t.name, dtype: t.dtype.rawValue, shape: t.shape, bytesLogical: Int64(t.byteCount),
                                        bytesStored: bytes, codec: codec, chunkCount: t.chunks.count))
        }
        let specDigest = v.spec?.hex
        return VersionRecord(id: id.hex, parents: v.parents.map(\.hex), createdAt: Date(timeIntervalSince1970: Double(v.metadata.time)),
                             author: v.metadata.author, message: v.metadata.message, specDigest: specDigest,
                             datasetDigest: v.metadata.datasetDigest, bytesStored: stored, bytesLogical: logical, tensors: tensors)
    }

    /// Resolves a revision (ref, id or prefix) to a version id.
    public func resolve(_ revision: String) throws(EngineError) -> ObjectID {
        try lift { try store.resolve(revision) }
    }

    /// The author recorded on new versions (`$USER`, else `lethe`).
    static var author: String { ProcessInfo.processInfo.environment["USER"] ?? "lethe" }
}
