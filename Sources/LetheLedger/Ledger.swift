import CSQLite
import Foundation
import LetheCrypto

/// The forget ledger: an SQLite database of datasets, versions, ref moves and forget requests,
/// every one of which is also a leaf of an RFC 6962 Merkle log whose tree heads are
/// Ed25519-signed checkpoints.
///
/// All writes go through `write(_:)`: one IMMEDIATE SQLite transaction that inserts the rows,
/// appends their log entries (leaf = SHA-256(0x00 ‖ canonical encoding of the rows)) and signs
/// a checkpoint of the new tree head before committing. Lock conflicts with other processes are
/// retried with backoff (`busy_timeout` plus a retry loop), so callers never see a raw SQLITE_BUSY.
///
/// A `Ledger` may be shared between threads; calls are serialized by a lock.
public final class Ledger: @unchecked Sendable {
    /// The SQL connection: the embedded SQLite `Database` or a `PostgresConnection`.
    let db: any SQLConnection
    // Recursive so that reads made from inside a `write` body run on the same connection,
    // inside that transaction.
    private let lock = NSRecursiveLock()
    /// The database file, or for PostgreSQL the connection URL with its password masked.
    public let path: String
    /// The log's origin (the first line of every checkpoint).
    public let origin: String
    /// The public key recorded when the ledger was created.
    public let recordedPublicKey: Ed25519.PublicKey
    /// The signing key, when it could be loaded; writes need it.
    let signingKey: Ed25519.PrivateKey?

    /// Number of migrations this binary knows (the schema version it writes).
    public static var schemaVersion: Int { EmbeddedSchema.migrations.count }

    /// Meta key under which the signing key's path is recorded.
    static let signingKeyMeta = "signing_key"

    init(db: any SQLConnection, path: String, origin: String, publicKey: Ed25519.PublicKey, signingKey: Ed25519.PrivateKey?) {
        self.db = db; self.path = path; self.origin = origin; self.recordedPublicKey = publicKey; self.signingKey = signingKey
    }

    // MARK: - Creating and opening

    /// Creates a new ledger at `path` and a new Ed25519 signing key at `keyPath` (PEM, mode 0600),
    /// records the origin and public key, and signs the checkpoint of the empty log.
    /// Fails if either file already exists.
    public static func create(path: String, keyPath: String, origin: String) throws(LedgerError) -> Ledger {
        guard !origin.isEmpty, !origin.contains("\n") else { throw .invalid("origin must be one non-empty line") }
        let fm = FileManager.default
        if fm.fileExists(atPath: path) { throw .io(path: path, message: "a ledger already exists here") }
        if fm.fileExists(atPath: keyPath) { throw .io(path: keyPath, message: "a signing key already exists here") }
        let key: Ed25519.PrivateKey
        do {
            key = try Ed25519.PrivateKey.generate()
            try key.save(path: keyPath)
        } catch { throw .crypto(error.message) }
        do {
            let db = try Database(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
            try configure(db)
            try migrate(db)
            let recordedKeyPath = relativeKeyPath(keyPath, databasePath: path)
            let pub = key.publicKey
            try db.inTransaction(.immediate) { () throws(LedgerError) -> TransactionCompletion in
                try db.run("INSERT INTO ledger_meta(key, value) VALUES ('origin', ?1)", [.text(origin)])
                try db.run("INSERT INTO ledger_meta(key, value) VALUES ('public_key', ?1)", [.text(pub.hex)])
                try db.run("INSERT INTO ledger_meta(key, value) VALUES (?1, ?2)", [.text(signingKeyMeta), .text(recordedKeyPath)])
                try db.run("INSERT INTO ledger_meta(key, value) VALUES ('created_at', ?1)", [.text(LedgerTime.string(Date()))])
                return .commit
            }
            let ledger = Ledger(db: db, path: path, origin: origin, publicKey: pub, signingKey: key)
            _ = try ledger.checkpoint()
            return ledger
        } catch {
            // Leave nothing half-made behind, so `create` can simply be run again.
            for p in [path, path + "-wal", path + "-shm", keyPath] { try? fm.removeItem(atPath: p) }
            throw error
        }
    }

    /// Opens an existing ledger (WAL, foreign keys on, busy timeout), applying pending migrations
    /// and refusing a database written by a newer schema. The signing key is loaded from `keyPath`,
    /// or else from the path recorded at creation; without it the ledger can be read, verified and
    /// proved from, but not written.
    public static func open(path: String, keyPath: String? = nil) throws(LedgerError) -> Ledger {
        guard FileManager.default.fileExists(atPath: path) else {
            throw .notFound("no ledger at \(path) (run 'lethe init' first)")
        }
        let db = try Database(path: path, flags: SQLITE_OPEN_READWRITE)
        try configure(db)
        try migrate(db)
        let meta = try readMeta(db)
        guard let origin = meta["origin"], let pubHex = meta["public_key"], let raw = Hex.decode(pubHex),
              let pub = Ed25519.PublicKey(raw: raw)
        else { throw .tampered("ledger_meta lacks a valid origin or public_key") }
        var key: Ed25519.PrivateKey?
        let resolved = keyPath ?? meta[signingKeyMeta].map { absoluteKeyPath($0, databasePath: path) }
        if let resolved, FileManager.default.isReadableFile(atPath: resolved) {
            do { key = try Ed25519.PrivateKey.load(path: resolved) } catch { throw .crypto(error.message) }
        } else if let keyPath {
            throw .crypto("cannot read signing key \(keyPath)")
        }
        return Ledger(db: db, path: path, origin: origin, publicKey: pub, signingKey: key)
    }

    /// The public key checkpoints are verified against by default: the signing key's when it is
    /// available (the recorded copy in the database could have been replaced), else the recorded one.
    public var publicKey: Ed25519.PublicKey { signingKey?.publicKey ?? recordedPublicKey }

    static func configure(_ db: Database) throws(LedgerError) {
        sqlite3_busy_timeout(db.handle, 2000)
        try db.retryingBusy { () throws(LedgerError) in try db.execute("PRAGMA journal_mode=WAL") }
        try db.execute("PRAGMA foreign_keys=ON")
        try db.execute("PRAGMA synchronous=FULL")
        _ = lethe_sqlite3_db_config_int(db.handle, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0)
    }

    static func readMeta(_ db: any SQLConnection) throws(LedgerError) -> [String: String] {
        var meta: [String: String] = [:]
        for r in try db.rows("SELECT key, value FROM ledger_meta") {
            if let k = r[0].string, let v = r[1].string { meta[k] = v }
        }
        return meta
    }

    static func relativeKeyPath(_ keyPath: String, databasePath: String) -> String {
        let dir = URL(fileURLWithPath: databasePath).standardizedFileURL.deletingLastPathComponent().path
        let key = URL(fileURLWithPath: keyPath).standardizedFileURL.path
        if key.hasPrefix(dir + "/") { return String(key.dropFirst(dir.count + 1)) }
        return key
    }

    static func absoluteKeyPath(_ recorded: String, databasePath: String) -> String {
        if recorded.hasPrefix("/") { return recorded }
        return URL(fileURLWithPath: databasePath).deletingLastPathComponent().appendingPathComponent(recorded).path
    }

    // MARK: - Migrations

    /// Applies the embedded migrations not yet recorded in `schema_migrations`, each in its own
    /// IMMEDIATE transaction, then (re)creates the views when schema/views.sql changed.
    static func migrate(_ db: Database) throws(LedgerError) {
        let known = EmbeddedSchema.migrations
        let viewsHash = SHA256.hash(EmbeddedSchema.views).hex
        // Fast path without write locks: everything is already applied.
        if try db.scalar("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'") != nil {
            let applied = try db.rows("SELECT id FROM schema_migrations").compactMap { $0[0].string }
            if Set(applied) == Set(known.map(\.id)), applied.count == known.count,
               try db.scalar("SELECT value FROM ledger_meta WHERE key = 'views_sha256'")?.string == viewsHash {
                return
            }
        }
        try db.inTransaction(.immediate) { () throws(LedgerError) -> TransactionCompletion in
            try db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL) STRICT")
            return .commit
        }
        for (index, m) in known.enumerated() {
            try db.inTransaction(.immediate) { () throws(LedgerError) -> TransactionCompletion in
                let applied = try db.rows("SELECT id FROM schema_migrations ORDER BY id").compactMap { $0[0].string }
                let knownIDs = Set(known.map(\.id))
                if applied.contains(where: { !knownIDs.contains($0) }) {
                    throw .schemaTooNew(found: applied.count, known: known.count)
                }
                if applied.contains(m.id) { return .rollback }
                try db.execute(m.sql)
                try db.run("INSERT INTO schema_migrations(id, applied_at) VALUES (?1, ?2)", [.text(m.id), .text(LedgerTime.string(Date()))])
                try db.execute("PRAGMA user_version = \(index + 1)")
                return .commit
            }
        }
        // A database that recorded more migrations than we know is refused even when all ours are applied.
        let applied = try db.rows("SELECT id FROM schema_migrations").compactMap { $0[0].string }
        if applied.count > known.count || Set(applied) != Set(known.map(\.id)) {
            throw .schemaTooNew(found: applied.count, known: known.count)
        }
        let current = try db.scalar("SELECT value FROM ledger_meta WHERE key = 'views_sha256'")?.string
        if current != viewsHash {
            try db.inTransaction(.immediate) { () throws(LedgerError) -> TransactionCompletion in
                let again = try db.scalar("SELECT value FROM ledger_meta WHERE key = 'views_sha256'")?.string
                if again == viewsHash { return .rollback }
                try db.execute(EmbeddedSchema.views)
                try db.run("INSERT OR REPLACE INTO ledger_meta(key, value) VALUES ('views_sha256', ?1)", [.text(viewsHash)])
                return .commit
            }
        }
    }

    // MARK: - Writing

    /// Runs `body` in one IMMEDIATE transaction: every record it writes and its log entries
    /// commit together with a signed checkpoint of the new tree head, or nothing does (a throw
    /// rolls everything back). On a lock conflict the whole body is re-run after a backoff,
    /// so it must not have side effects outside the ledger. Reads of this ledger from inside
    /// `body` see the transaction's own rows; a nested `write` is refused.
    public func write<T>(_ body: (LedgerWriter) throws(LedgerError) -> T) throws(LedgerError) -> T {
        guard let key = signingKey else {
            throw .crypto("the signing key is not available; the ledger can only be read (expected it at the path recorded in ledger_meta)")
        }
        lock.lock(); defer { lock.unlock() }
        guard !db.isInTransaction else {
            throw .invalid("Ledger.write cannot be nested; record everything through the LedgerWriter of the outer write")
        }
        var result: T?
        try db.writeTransaction { () throws(LedgerError) -> TransactionCompletion in
            let writer = try LedgerWriter(db: db)
            let value = try body(writer)
            if writer.appended > 0 {
                try writer.saveFrontier()
                _ = try Ledger.insertCheckpoint(db: db, origin: origin, key: key, size: writer.frontier.size, root: writer.frontier.root)
            }
            result = value
            return .commit
        }
        guard let result else { throw .invalid("transaction produced no result") }
        return result
    }

    /// Records a dataset (one entry `dataset.recorded`).
    @discardableResult
    public func recordDataset(_ d: DatasetRecord) throws(LedgerError) -> Int { try write { w throws(LedgerError) in try w.recordDataset(d) } }
    /// Records a version and its tensors (one entry `version.recorded`).
    @discardableResult
    public func recordVersion(_ v: VersionRecord) throws(LedgerError) -> Int { try write { w throws(LedgerError) in try w.recordVersion(v) } }
    /// Moves a ref (one entry `ref.moved`).
    @discardableResult
    public func moveRef(_ m: RefMove) throws(LedgerError) -> Int { try write { w throws(LedgerError) in try w.moveRef(m) } }
    /// Records a received forget request (one entry `request.received`).
    @discardableResult
    public func receiveRequest(_ r: ForgetRequest) throws(LedgerError) -> Int { try write { w throws(LedgerError) in try w.receiveRequest(r) } }
    /// Records a request's outcome (one entry `request.applied|rejected|failed`).
    @discardableResult
    public func recordOutcome(_ o: RequestOutcome) throws(LedgerError) -> Int { try write { w throws(LedgerError) in try w.recordOutcome(o) } }
    /// Records a rollback (one entry `rollback`).
    @discardableResult
    public func recordRollback(_ r: RollbackRecord) throws(LedgerError) -> Int { try write { w throws(LedgerError) in try w.recordRollback(r) } }
    /// Records a garbage-collected object (one entry `gc.deletion`).
    @discardableResult
    public func recordGCDeletion(_ g: GCDeletion) throws(LedgerError) -> Int { try write { w throws(LedgerError) in try w.recordGCDeletion(g) } }
    /// Records a compliance exception (one entry `compliance.exception`).
    @discardableResult
    public func recordComplianceException(_ e: ComplianceException) throws(LedgerError) -> Int {
        try write { w throws(LedgerError) in try w.recordComplianceException(e) }
    }

    // MARK: - Checkpoints

    /// Signs and stores a checkpoint of the current tree head (also done automatically at the end
    /// of every writing transaction).
    public func checkpoint() throws(LedgerError) -> Checkpoint {
        guard let key = signingKey else { throw .crypto("the signing key is not available; cannot sign a checkpoint") }
        lock.lock(); defer { lock.unlock() }
        var cp: Checkpoint?
        try db.writeTransaction { () throws(LedgerError) -> TransactionCompletion in
            let w = try LedgerWriter(db: db)
            cp = try Ledger.insertCheckpoint(db: db, origin: origin, key: key, size: w.frontier.size, root: w.frontier.root)
            return .commit
        }
        guard let cp else { throw .invalid("no checkpoint produced") }
        return cp
    }

    static func insertCheckpoint(db: any SQLConnection, origin: String, key: Ed25519.PrivateKey, size: Int, root: Digest) throws(LedgerError) -> Checkpoint {
        let body = Checkpoint.body(origin: origin, treeSize: size, root: root)
        let sig: [UInt8]
        do { sig = try key.sign(Array(body.utf8)) } catch { throw .crypto(error.message) }
        let now = LedgerTime.string(Date())
        let pub = key.publicKey.hex
        // The id SQLite's rowid allocation gives (largest + 1), made explicit so PostgreSQL numbers alike.
        let id = try db.scalar("SELECT coalesce(max(id), 0) + 1 FROM log_checkpoints")?.int64 ?? 1
        try db.run("""
            INSERT INTO log_checkpoints(id, origin, tree_size, root_hash, body, signature, public_key, created_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
            """, [.integer(id), .text(origin), .integer(Int64(size)), .blob(root.bytes), .text(body), .blob(sig), .text(pub), .text(now)])
        return Checkpoint(id: Int(id), origin: origin, treeSize: size, root: root, body: body,
                          signature: sig, publicKeyHex: pub, createdAt: now)
    }

    /// Every stored checkpoint, oldest first.
    public func checkpoints() throws(LedgerError) -> [Checkpoint] {
        lock.lock(); defer { lock.unlock() }
        return try db.rows("SELECT id, origin, tree_size, root_hash, body, signature, public_key, created_at FROM log_checkpoints ORDER BY id")
            .map { r throws(LedgerError) in try Checkpoint(row: r) }
    }

    /// The most recent checkpoint, if any.
    public func latestCheckpoint() throws(LedgerError) -> Checkpoint? {
        lock.lock(); defer { lock.unlock() }
        guard let r = try db.rows("""
            SELECT id, origin, tree_size, root_hash, body, signature, public_key, created_at
              FROM log_checkpoints ORDER BY id DESC LIMIT 1
            """).first else { return nil }
        return try Checkpoint(row: r)
    }

    /// The latest checkpoint of exactly `treeSize` leaves, if one was signed.
    func checkpoint(atSize treeSize: Int) throws(LedgerError) -> Checkpoint? {
        guard let r = try db.rows("""
            SELECT id, origin, tree_size, root_hash, body, signature, public_key, created_at
              FROM log_checkpoints WHERE tree_size = ?1 ORDER BY id DESC LIMIT 1
            """, [.integer(Int64(treeSize))]).first else { return nil }
        return try Checkpoint(row: r)
    }

    // MARK: - Reading the log

    /// Number of entries in the log.
    public func treeSize() throws(LedgerError) -> Int {
        lock.lock(); defer { lock.unlock() }
        return try db.scalar("SELECT coalesce(max(seq) + 1, 0) FROM log_entries")?.int ?? 0
    }

    /// One log entry's header.
    public func entry(_ seq: Int) throws(LedgerError) -> LogEntry {
        lock.lock(); defer { lock.unlock() }
        guard let r = try db.rows("SELECT seq, kind, subject, created_at, leaf_hash FROM log_entries WHERE seq = ?1",
                                  [.integer(Int64(seq))]).first else { throw .notFound("log entry \(seq)") }
        return try LogEntry(row: r)
    }

    /// The log entries about `subject` (a request id, version id, ref name...), oldest first.
    public func entries(subject: String) throws(LedgerError) -> [LogEntry] {
        lock.lock(); defer { lock.unlock() }
        return try db.rows("SELECT seq, kind, subject, created_at, leaf_hash FROM log_entries WHERE subject = ?1 ORDER BY seq",
                           [.text(subject)]).map { r throws(LedgerError) in try LogEntry(row: r) }
    }

    /// The canonical bytes of entry `seq`, re-derived from the rows now in the database.
    public func entryBytes(_ seq: Int) throws(LedgerError) -> [UInt8] {
        lock.lock(); defer { lock.unlock() }
        return try LedgerWriter.encodeEntry(db: db, seq: Int64(seq))
    }

    // MARK: - Generic reads

    /// Runs a read statement on the ledger's connection and returns rows as column → value
    /// dictionaries. For the engine's own reads; user queries go through `LedgerQuery`.
    public func select(_ sql: String, _ params: [SQLValue] = []) throws(LedgerError) -> [[String: SQLValue]] {
        lock.lock(); defer { lock.unlock() }
        let (names, rows) = try db.readOnlyQuery(sql, params)
        return rows.map { r in
            var row: [String: SQLValue] = [:]
            for (i, n) in names.enumerated() { row[n] = r[i] }
            return row
        }
    }

    /// The version a ref points to now, or nil for an unknown ref.
    public func refTarget(_ ref: String) throws(LedgerError) -> String? {
        lock.lock(); defer { lock.unlock() }
        return try db.scalar("SELECT new_version FROM ledger_ref_moves WHERE ref = ?1 ORDER BY id DESC LIMIT 1", [.text(ref)])?.string
    }

    /// Every move of a ref, oldest first.
    public func refHistory(_ ref: String) throws(LedgerError) -> [RefMove] {
        lock.lock(); defer { lock.unlock() }
        return try db.rows("SELECT ref, old_version, new_version, reason, moved_at FROM ledger_ref_moves WHERE ref = ?1 ORDER BY id",
                           [.text(ref)]).map { r in
            RefMove(ref: r[0].string ?? "", oldVersion: r[1].string, newVersion: r[2].string ?? "", reason: r[3].string ?? "",
                    movedAt: r[4].string.flatMap(LedgerTime.date) ?? Date(timeIntervalSince1970: 0))
        }
    }

    /// A recorded version with its parents and tensors, or nil.
    public func version(_ id: String) throws(LedgerError) -> VersionRecord? {
        lock.lock(); defer { lock.unlock() }
        guard let r = try db.rows("""
            SELECT id, created_at, author, message, spec_digest, dataset_digest, bytes_stored, bytes_logical
              FROM ledger_versions WHERE id = ?1
            """, [.text(id)]).first else { return nil }
        let parents = try db.rows("SELECT parent_id FROM ledger_version_parents WHERE version_id = ?1 ORDER BY position", [.text(id)])
            .compactMap { $0[0].string }
        let tensors = try db.rows("""
            SELECT name, dtype, shape, bytes_logical, bytes_stored, codec, chunk_count
              FROM ledger_version_tensors WHERE version_id = ?1 ORDER BY name
            """, [.text(id)]).map { t in
            TensorRecord(name: t[0].string ?? "", dtype: t[1].string ?? "", shape: Ledger.intArray(t[2].string),
                         bytesLogical: t[3].int64 ?? 0, bytesStored: t[4].int64 ?? 0, codec: t[5].string ?? "", chunkCount: t[6].int ?? 0)
        }
        return VersionRecord(id: id, parents: parents, createdAt: r[1].string.flatMap(LedgerTime.date) ?? Date(timeIntervalSince1970: 0),
                             author: r[2].string ?? "", message: r[3].string ?? "", specDigest: r[4].string,
                             datasetDigest: r[5].string, bytesStored: r[6].int64 ?? 0, bytesLogical: r[7].int64 ?? 0, tensors: tensors)
    }

    /// A recorded forget request with its samples, or nil.
    public func request(_ id: String) throws(LedgerError) -> ForgetRequest? {
        lock.lock(); defer { lock.unlock() }
        guard let r = try db.rows("""
            SELECT id, requester, legal_ground, received_at, deadline, dataset_digest, ref FROM ledger_requests WHERE id = ?1
            """, [.text(id)]).first else { return nil }
        let samples = try db.rows("""
            SELECT dataset_digest, sample_id, sample_hash FROM ledger_request_samples WHERE request_id = ?1 ORDER BY position
            """, [.text(id)]).compactMap { s -> ForgottenSample? in
            guard let d = s[0].string, let sid = s[1].string, let h = s[2].string.flatMap(Digest.init(hex:)) else { return nil }
            return ForgottenSample(datasetDigest: d, sampleID: sid, sampleHash: h)
        }
        let received = r[3].string.flatMap(LedgerTime.date) ?? Date(timeIntervalSince1970: 0)
        return ForgetRequest(id: id, requester: r[1].string ?? "", legalGround: r[2].string ?? "", receivedAt: received,
                             deadline: r[4].string.flatMap(LedgerTime.date), datasetDigest: r[5].string ?? "", ref: r[6].string,
                             samples: samples)
    }

    /// A request's status: `.received` until an outcome is recorded.
    public func status(ofRequest id: String) throws(LedgerError) -> RequestStatus? {
        lock.lock(); defer { lock.unlock() }
        guard try db.scalar("SELECT 1 FROM ledger_requests WHERE id = ?1", [.text(id)]) != nil else { return nil }
        let s = try db.scalar("SELECT status FROM ledger_request_outcomes WHERE request_id = ?1", [.text(id)])?.string
        return s.flatMap(RequestStatus.init(rawValue:)) ?? .received
    }

    /// A request's recorded outcome with its layers, metrics and timings, or nil while pending.
    public func outcome(ofRequest id: String) throws(LedgerError) -> RequestOutcome? {
        lock.lock(); defer { lock.unlock() }
        guard let r = try db.rows("""
            SELECT status, decided_at, version_before, version_after, method, hyperparameters, seeds, thread_count, reason
              FROM ledger_request_outcomes WHERE request_id = ?1
            """, [.text(id)]).first else { return nil }
        let layers = try db.rows("SELECT layer, d, k, gamma, rho FROM ledger_layer_stats WHERE request_id = ?1 ORDER BY position",
                                 [.text(id)]).map { LayerStat(layer: $0[0].string ?? "", d: $0[1].int ?? 0, k: $0[2].int ?? 0,
                                                              gamma: $0[3].double, rho: $0[4].double) }
        let metrics = try db.rows("SELECT name, before, after FROM ledger_request_metrics WHERE request_id = ?1 ORDER BY name",
                                  [.text(id)]).map { MetricValue(name: $0[0].string ?? "", before: $0[1].double, after: $0[2].double) }
        let timings = try db.rows("SELECT phase, seconds FROM ledger_phase_timings WHERE request_id = ?1 ORDER BY position",
                                  [.text(id)]).map { PhaseTiming(phase: $0[0].string ?? "", seconds: $0[1].double ?? 0) }
        return RequestOutcome(requestID: id, status: r[0].string.flatMap(RequestStatus.init(rawValue:)) ?? .failed,
                              decidedAt: r[1].string.flatMap(LedgerTime.date) ?? Date(timeIntervalSince1970: 0),
                              versionBefore: r[2].string, versionAfter: r[3].string, method: r[4].string,
                              hyperparameters: r[5].string ?? "{}", seeds: r[6].string ?? "{}", threadCount: r[7].int,
                              reason: r[8].string, layers: layers, metrics: metrics, timings: timings)
    }

    /// `version` and all its ancestors through every parent.
    public func ancestry(of version: String) throws(LedgerError) -> Set<String> {
        lock.lock(); defer { lock.unlock() }
        return Set(try db.rows("""
            WITH RECURSIVE anc(id) AS (
                SELECT \(versionParameter) UNION SELECT p.parent_id FROM ledger_version_parents p JOIN anc ON p.version_id = anc.id)
            SELECT id FROM anc
            """, [.text(version)]).compactMap { $0[0].string })
    }

    /// The requests applied in the history of `version` (their resulting version is `version`
    /// or one of its ancestors), in log order.
    public func appliedRequests(inHistoryOf version: String) throws(LedgerError) -> [String] {
        lock.lock(); defer { lock.unlock() }
        return try db.rows("""
            WITH RECURSIVE anc(id) AS (
                SELECT \(versionParameter) UNION SELECT p.parent_id FROM ledger_version_parents p JOIN anc ON p.version_id = anc.id)
            SELECT o.request_id FROM ledger_request_outcomes o
             WHERE o.status = 'applied' AND o.version_after IN (SELECT id FROM anc)
             ORDER BY o.entry_seq
            """, [.text(version)]).compactMap { $0[0].string }
    }

    /// Requests applied in the history of `head` but not in that of `version`, in log order:
    /// the ones whose samples would resurface if a ref at `head` were moved back to `version`
    /// (compliance-aware rollback refuses unless they are re-applied or the move is forced).
    public func requestsLost(rollingBackFrom head: String, to version: String) throws(LedgerError) -> [String] {
        let kept = Set(try appliedRequests(inHistoryOf: version))
        return try appliedRequests(inHistoryOf: head).filter { !kept.contains($0) }
    }

    /// Sample ids of `dataset` forgotten by requests applied in the history of `version`
    /// (to refuse forgetting them twice).
    public func forgottenSampleIDs(inHistoryOf version: String, dataset: String) throws(LedgerError) -> Set<String> {
        lock.lock(); defer { lock.unlock() }
        return Set(try db.rows("""
            WITH RECURSIVE anc(id) AS (
                SELECT \(versionParameter) UNION SELECT p.parent_id FROM ledger_version_parents p JOIN anc ON p.version_id = anc.id)
            SELECT s.sample_id FROM ledger_request_samples s
              JOIN ledger_request_outcomes o ON o.request_id = s.request_id
             WHERE o.status = 'applied' AND o.version_after IN (SELECT id FROM anc) AND s.dataset_digest = ?2
            """, [.text(version), .text(dataset)]).compactMap { $0[0].string })
    }

    /// `?1` as the anchor of the ancestry CTEs: on PostgreSQL with the byte-order collation of
    /// the id columns (a recursive CTE's column must have one collation).
    private var versionParameter: String { db.dialect == .postgres ? "?1 COLLATE \"C\"" : "?1" }

    static func intArray(_ json: String?) -> [Int] {
        guard let json else { return [] }
        return json.trimmingCharacters(in: CharacterSet(charactersIn: "[] ")).split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Runs `body` with the lock held inside one read transaction, so every statement it runs
    /// sees the same snapshot even while other processes append (for proofs and verify).
    func locked<T>(_ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        lock.lock(); defer { lock.unlock() }
        // Already inside a write transaction (called from a `write` body): same snapshot.
        if db.isInTransaction { return try body() }
        var result: T?
        try db.readTransaction { () throws(LedgerError) -> TransactionCompletion in
            result = try body()
            return .commit
        }
        guard let result else { throw .invalid("read transaction produced no result") }
        return result
    }
}

/// One log entry's header row.
public struct LogEntry: Sendable, Equatable {
    /// Leaf index (0-based).
    public let seq: Int
    /// Event kind (`request.received`, `ref.moved`...).
    public let kind: String
    /// What it is about (request id, version id, ref name...).
    public let subject: String
    /// When it was appended.
    public let createdAt: String
    /// The recorded leaf hash.
    public let leafHash: Digest

    init(row r: [SQLValue]) throws(LedgerError) {
        guard let seq = r[0].int, let kind = r[1].string, let subject = r[2].string, let at = r[3].string,
              let h = r[4].bytes, h.count == 32 else { throw .tampered("malformed log entry row") }
        self.seq = seq; self.kind = kind; self.subject = subject; self.createdAt = at; self.leafHash = Digest(bytes: h)
    }

    /// "entry 17 (request.applied R3)".
    public var label: String { "entry \(seq) (\(kind) \(subject))" }
}
