import LetheText
import Foundation
import LetheCrypto

/// Appends records inside one `Ledger.write` transaction. Each `record…` call inserts its rows,
/// appends one log entry covering exactly those rows and returns the entry's index.
public final class LedgerWriter {
    let db: any SQLConnection
    /// The tree's right edge; advanced by every appended entry.
    var frontier: Merkle.Frontier
    /// Entries appended in this transaction.
    var appended = 0

    init(db: any SQLConnection) throws(LedgerError) {
        self.db = db
        let size = try db.scalar("SELECT coalesce(max(seq) + 1, 0) FROM log_entries")?.int ?? 0
        let nodes = try db.rows("SELECT height, hash FROM log_frontier ORDER BY height DESC").compactMap { r -> (height: Int, hash: Digest)? in
            guard let h = r[0].int, let b = r[1].bytes, b.count == 32 else { return nil }
            return (h, Digest(bytes: b))
        }
        guard let f = Merkle.Frontier(size: size, nodes: nodes) else {
            throw .tampered("the stored log frontier does not match the \(size) log entries; run 'lethe verify'")
        }
        frontier = f
    }

    func saveFrontier() throws(LedgerError) {
        try db.run("DELETE FROM log_frontier")
        guard !frontier.nodes.isEmpty else { return }
        // One multi-row INSERT: one statement (one round trip on PostgreSQL) whatever the tree size.
        let values = (0..<frontier.nodes.count).map { "(?\(2 * $0 + 1), ?\(2 * $0 + 2))" }.joined(separator: ", ")
        var params: [SQLValue] = []
        for n in frontier.nodes { params.append(.integer(Int64(n.height))); params.append(.blob(n.hash.bytes)) }
        try db.run("INSERT INTO log_frontier(height, hash) VALUES \(values)", params)
    }

    /// Appends an entry: header row first (the records reference it), then `insert`, then the
    /// leaf hash computed from the rows as read back, so it is the same function `verify` uses.
    /// `writes` names the logged tables `insert` writes to: only those are read back, since no
    /// other row can name an entry created in this transaction (entry_seq references log_entries);
    /// a table missing from the list would give a leaf `verify` rejects at once.
    private func append(kind: String, subject: String, at time: Date, writes: Set<String>,
                        _ insert: (Int64) throws(LedgerError) -> Void) throws(LedgerError) -> Int {
        let seq = Int64(frontier.size)
        try db.run("INSERT INTO log_entries(seq, kind, subject, created_at, leaf_hash) VALUES (?1, ?2, ?3, ?4, ?5)",
                   [.integer(seq), .text(kind), .text(subject), .text(LedgerTime.string(time)), .blob(LedgerWriter.placeholderLeaf)])
        try insert(seq)
        let leaf = Merkle.leafHash(try LedgerWriter.encodeEntry(db: db, seq: seq, tables: writes))
        try db.run("UPDATE log_entries SET leaf_hash = ?1 WHERE seq = ?2", [.blob(leaf.bytes), .integer(seq)])
        var completed: [(Int, Int, Digest)] = []
        frontier.append(leaf) { completed.append(($0, $1, $2)) }
        for (height, index, hash) in completed {
            try db.run("INSERT INTO log_nodes(height, idx, hash) VALUES (?1, ?2, ?3)",
                       [.integer(Int64(height)), .integer(Int64(index)), .blob(hash.bytes)])
        }
        appended += 1
        return Int(seq)
    }

    /// The leaf hash an entry holds until its rows are written (32 zero bytes).
    static let placeholderLeaf = [UInt8](repeating: 0, count: 32)

    /// The canonical encoding of entry `seq` from the rows now in the database.
    static func encodeEntry(db: any SQLConnection, seq: Int64, tables only: Set<String>? = nil) throws(LedgerError) -> [UInt8] {
        guard let h = try db.rows("SELECT kind, subject, created_at FROM log_entries WHERE seq = ?1", [.integer(seq)]).first,
              let kind = h[0].string, let subject = h[1].string, let at = h[2].string
        else { throw .notFound("log entry \(seq)") }
        var tables: [(table: String, rows: [[SQLValue]])] = []
        for t in EntryEncoding.tables {
            if let only, !only.contains(t.name) { tables.append((t.name, [])); continue }
            tables.append((t.name, try db.rows(EntryEncoding.selectForEntry(t), [.integer(seq)])))
        }
        return EntryEncoding.encode(seq: seq, kind: kind, subject: subject, createdAt: at, rows: tables)
    }

    private func exists(_ sql: String, _ p: [SQLValue]) throws(LedgerError) -> Bool { try db.scalar(sql, p) != nil }

    private func requireNonEmpty(_ value: String, _ what: String) throws(LedgerError) {
        if value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw .invalid("\(what) must not be empty") }
    }

    private func requireJSON(_ text: String, _ what: String) throws(LedgerError) {
        if try db.scalar("SELECT json_valid(?1)", [.text(text)])?.int != 1 { throw .invalid("\(what) is not valid JSON: \(text)") }
    }

    private static func opt(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
    private static func opt(_ d: Double?) -> SQLValue {
        // SQLite stores infinities as REAL and NaN as NULL.
        guard let d else { return .null }
        return .real(d)
    }

    /// Records a dataset: entry `dataset.recorded`, subject = digest.
    @discardableResult
    public func recordDataset(_ d: DatasetRecord) throws(LedgerError) -> Int {
        try requireNonEmpty(d.digest, "dataset digest")
        guard d.sampleCount >= 0 else { throw .invalid("dataset sample count must be >= 0") }
        if try exists("SELECT 1 FROM ledger_datasets WHERE digest = ?1", [.text(d.digest)]) {
            throw .invalid("dataset \(d.digest) is already recorded")
        }
        return try append(kind: "dataset.recorded", subject: d.digest, at: d.recordedAt, writes: ["ledger_datasets"]) { seq throws(LedgerError) in
            try db.run("INSERT INTO ledger_datasets(digest, name, sample_count, source, recorded_at, entry_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                       [.text(d.digest), LedgerWriter.opt(d.name), .integer(Int64(d.sampleCount)), .text(d.source),
                        .text(LedgerTime.string(d.recordedAt)), .integer(seq)])
        }
    }

    /// Records a version with its parents and tensors: entry `version.recorded`, subject = id.
    @discardableResult
    public func recordVersion(_ v: VersionRecord) throws(LedgerError) -> Int {
        try requireNonEmpty(v.id, "version id")
        if try exists("SELECT 1 FROM ledger_versions WHERE id = ?1", [.text(v.id)]) { throw .invalid("version \(v.id) is already recorded") }
        for p in v.parents where try !exists("SELECT 1 FROM ledger_versions WHERE id = ?1", [.text(p)]) {
            throw .invalid("parent version \(p) of \(v.id) is not recorded")
        }
        if let ds = v.datasetDigest, try !exists("SELECT 1 FROM ledger_datasets WHERE digest = ?1", [.text(ds)]) {
            throw .invalid("dataset \(ds) of version \(v.id) is not recorded")
        }
        if Set(v.tensors.map(\.name)).count != v.tensors.count { throw .invalid("version \(v.id) names a tensor twice") }
        return try append(kind: "version.recorded", subject: v.id, at: v.createdAt, writes: ["ledger_versions", "ledger_version_parents", "ledger_version_tensors"]) { seq throws(LedgerError) in
            try db.run("""
                INSERT INTO ledger_versions(id, created_at, author, message, spec_digest, dataset_digest, bytes_stored, bytes_logical, entry_seq)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                """, [.text(v.id), .text(LedgerTime.string(v.createdAt)), .text(v.author), .text(v.message),
                      LedgerWriter.opt(v.specDigest), LedgerWriter.opt(v.datasetDigest), .integer(v.bytesStored),
                      .integer(v.bytesLogical), .integer(seq)])
            for (i, p) in v.parents.enumerated() {
                try db.run("INSERT INTO ledger_version_parents(version_id, position, parent_id, entry_seq) VALUES (?1, ?2, ?3, ?4)",
                           [.text(v.id), .integer(Int64(i)), .text(p), .integer(seq)])
            }
            for t in v.tensors {
                let shape = "[" + t.shape.map(String.init).joined(separator: ",") + "]"
                try db.run("""
                    INSERT INTO ledger_version_tensors(version_id, name, dtype, shape, bytes_logical, bytes_stored, codec, chunk_count, entry_seq)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                    """, [.text(v.id), .text(t.name), .text(t.dtype), .text(shape), .integer(t.bytesLogical), .integer(t.bytesStored),
                          .text(t.codec), .integer(Int64(t.chunkCount)), .integer(seq)])
            }
        }
    }

    /// Moves a ref: entry `ref.moved`, subject = ref. `oldVersion` must be where the ref points
    /// now (nil for a new ref), so two processes racing to move the same ref cannot both win.
    @discardableResult
    public func moveRef(_ m: RefMove) throws(LedgerError) -> Int {
        try requireNonEmpty(m.ref, "ref name")
        let current = try db.scalar("SELECT new_version FROM ledger_ref_moves WHERE ref = ?1 ORDER BY id DESC LIMIT 1", [.text(m.ref)])?.string
        guard current == m.oldVersion else {
            throw .invalid("ref \(m.ref) points to \(current ?? "nothing"), not \(m.oldVersion ?? "nothing"); it was moved concurrently")
        }
        if try !exists("SELECT 1 FROM ledger_versions WHERE id = ?1", [.text(m.newVersion)]) {
            throw .invalid("version \(m.newVersion) is not recorded")
        }
        return try append(kind: "ref.moved", subject: m.ref, at: m.movedAt, writes: ["ledger_ref_moves"]) { seq throws(LedgerError) in
            try db.run("""
                INSERT INTO ledger_ref_moves(id, ref, old_version, new_version, reason, moved_at, entry_seq)
                VALUES ((SELECT coalesce(max(id), 0) + 1 FROM ledger_ref_moves), ?1, ?2, ?3, ?4, ?5, ?6)
                """, [.text(m.ref), LedgerWriter.opt(m.oldVersion), .text(m.newVersion), .text(m.reason),
                      .text(LedgerTime.string(m.movedAt)), .integer(seq)])
        }
    }

    /// Records a received request with its samples and their Merkle root: entry
    /// `request.received`, subject = request id.
    @discardableResult
    public func receiveRequest(_ r: ForgetRequest) throws(LedgerError) -> Int {
        try requireNonEmpty(r.id, "request id")
        try requireNonEmpty(r.requester, "requester")
        try requireNonEmpty(r.legalGround, "legal ground")
        guard !r.samples.isEmpty else { throw .invalid("request \(r.id) names no samples") }
        if try exists("SELECT 1 FROM ledger_requests WHERE id = ?1", [.text(r.id)]) { throw .invalid("request \(r.id) is already recorded") }
        if try !exists("SELECT 1 FROM ledger_datasets WHERE digest = ?1", [.text(r.datasetDigest)]) {
            throw .invalid("dataset \(r.datasetDigest) of request \(r.id) is not recorded")
        }
        var seen = Set<String>()
        for s in r.samples {
            guard seen.insert(s.datasetDigest + "\u{0}" + s.sampleID).inserted else {
                throw .invalid("request \(r.id) names sample \(s.sampleID) twice")
            }
        }
        guard r.deadline >= r.receivedAt else { throw .invalid("request \(r.id) has a deadline before it was received") }
        return try append(kind: "request.received", subject: r.id, at: r.receivedAt, writes: ["ledger_requests", "ledger_request_samples"]) { seq throws(LedgerError) in
            try db.run("""
                INSERT INTO ledger_requests(id, requester, legal_ground, received_at, deadline, dataset_digest, ref, sample_count, samples_root, entry_seq)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                """, [.text(r.id), .text(r.requester), .text(r.legalGround), .text(LedgerTime.string(r.receivedAt)),
                      .text(LedgerTime.string(r.deadline)), .text(r.datasetDigest), LedgerWriter.opt(r.ref),
                      .integer(Int64(r.samples.count)), .text(r.samplesRoot.hex), .integer(seq)])
            for (i, s) in r.samples.enumerated() {
                try db.run("""
                    INSERT INTO ledger_request_samples(request_id, position, dataset_digest, sample_id, sample_hash, entry_seq)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                    """, [.text(r.id), .integer(Int64(i)), .text(s.datasetDigest), .text(s.sampleID), .text(s.sampleHash.hex), .integer(seq)])
            }
        }
    }

    /// Records the decision on a received request: entry `request.applied|rejected|failed`,
    /// subject = request id. A request is decided at most once.
    @discardableResult
    public func recordOutcome(_ o: RequestOutcome) throws(LedgerError) -> Int {
        guard o.status != .received else { throw .invalid("an outcome must be applied, rejected or failed") }
        if try !exists("SELECT 1 FROM ledger_requests WHERE id = ?1", [.text(o.requestID)]) {
            throw .invalid("request \(o.requestID) is not recorded")
        }
        if let s = try db.scalar("SELECT status FROM ledger_request_outcomes WHERE request_id = ?1", [.text(o.requestID)])?.string {
            throw .invalid("request \(o.requestID) is already \(s)")
        }
        if o.status == .applied && o.versionAfter == nil { throw .invalid("an applied request needs the version it produced") }
        for v in [o.versionBefore, o.versionAfter].compactMap({ $0 }) where try !exists("SELECT 1 FROM ledger_versions WHERE id = ?1", [.text(v)]) {
            throw .invalid("version \(v) of request \(o.requestID) is not recorded")
        }
        try requireJSON(o.hyperparameters, "hyperparameters")
        try requireJSON(o.seeds, "seeds")
        if Set(o.metrics.map(\.name)).count != o.metrics.count { throw .invalid("request \(o.requestID) names a metric twice") }
        return try append(kind: "request.\(o.status.rawValue)", subject: o.requestID, at: o.decidedAt, writes: ["ledger_request_outcomes", "ledger_layer_stats", "ledger_request_metrics", "ledger_phase_timings"]) { seq throws(LedgerError) in
            let id = SQLValue.text(o.requestID)
            try db.run("""
                INSERT INTO ledger_request_outcomes(request_id, status, decided_at, version_before, version_after, method,
                    hyperparameters, seeds, thread_count, reason, entry_seq)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                """, [id, .text(o.status.rawValue), .text(LedgerTime.string(o.decidedAt)), LedgerWriter.opt(o.versionBefore),
                      LedgerWriter.opt(o.versionAfter), LedgerWriter.opt(o.method), .text(o.hyperparameters), .text(o.seeds),
                      o.threadCount.map { .integer(Int64($0)) } ?? .null, LedgerWriter.opt(o.reason), .integer(seq)])
            try db.run("UPDATE ledger_requests SET status = ?1 WHERE id = ?2", [.text(o.status.rawValue), id])
            for (i, l) in o.layers.enumerated() {
                try db.run("""
                    INSERT INTO ledger_layer_stats(request_id, position, layer, d, k, gamma, rho, entry_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                    """, [id, .integer(Int64(i)), .text(l.layer), .integer(Int64(l.d)), .integer(Int64(l.k)),
                          LedgerWriter.opt(l.gamma), LedgerWriter.opt(l.rho), .integer(seq)])
            }
            for m in o.metrics {
                try db.run("INSERT INTO ledger_request_metrics(request_id, name, before, after, entry_seq) VALUES (?1, ?2, ?3, ?4, ?5)",
                           [id, .text(m.name), LedgerWriter.opt(m.before), LedgerWriter.opt(m.after), .integer(seq)])
            }
            for (i, t) in o.timings.enumerated() {
                try db.run("INSERT INTO ledger_phase_timings(request_id, position, phase, seconds, entry_seq) VALUES (?1, ?2, ?3, ?4, ?5)",
                           [id, .integer(Int64(i)), .text(t.phase), .real(t.seconds), .integer(seq)])
            }
        }
    }

    /// Records a rollback: entry `rollback`, subject = ref. (Move the ref with `moveRef` in the
    /// same transaction.) A `.force` rollback needs a reason.
    @discardableResult
    public func recordRollback(_ r: RollbackRecord) throws(LedgerError) -> Int {
        try requireNonEmpty(r.ref, "ref name")
        if r.mode == .force && (r.reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw .invalid("a forced rollback needs a reason")
        }
        for v in [r.fromVersion, r.toVersion, r.resultVersion].compactMap({ $0 })
        where try !exists("SELECT 1 FROM ledger_versions WHERE id = ?1", [.text(v)]) {
            throw .invalid("version \(v) of the rollback is not recorded")
        }
        return try append(kind: "rollback", subject: r.ref, at: r.performedAt, writes: ["ledger_rollbacks"]) { seq throws(LedgerError) in
            try db.run("""
                INSERT INTO ledger_rollbacks(id, ref, from_version, to_version, mode, reason, result_version, performed_at, entry_seq)
                VALUES ((SELECT coalesce(max(id), 0) + 1 FROM ledger_rollbacks), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                """, [.text(r.ref), LedgerWriter.opt(r.fromVersion), .text(r.toVersion), .text(r.mode.rawValue),
                      LedgerWriter.opt(r.reason), LedgerWriter.opt(r.resultVersion), .text(LedgerTime.string(r.performedAt)),
                      .integer(seq)])
        }
    }

    /// Records an object removed by gc: entry `gc.deletion`, subject = object id.
    @discardableResult
    public func recordGCDeletion(_ g: GCDeletion) throws(LedgerError) -> Int {
        try requireNonEmpty(g.object, "object id")
        return try append(kind: "gc.deletion", subject: g.object, at: g.deletedAt, writes: ["ledger_gc_deletions"]) { seq throws(LedgerError) in
            try db.run("""
                INSERT INTO ledger_gc_deletions(id, object, kind, bytes, reason, deleted_at, entry_seq)
                VALUES ((SELECT coalesce(max(id), 0) + 1 FROM ledger_gc_deletions), ?1, ?2, ?3, ?4, ?5, ?6)
                """, [.text(g.object), .text(g.kind), .integer(g.bytes), .text(g.reason), .text(LedgerTime.string(g.deletedAt)), .integer(seq)])
        }
    }

    /// Records a compliance exception: entry `compliance.exception`, subject = kind.
    @discardableResult
    public func recordComplianceException(_ e: ComplianceException) throws(LedgerError) -> Int {
        try requireNonEmpty(e.kind, "exception kind")
        try requireNonEmpty(e.reason, "exception reason")
        let ids = "[" + e.requestIDs.map { id -> String in
            var s = ""; JSONString.escape(id, into: &s); return s
        }.joined(separator: ",") + "]"
        return try append(kind: "compliance.exception", subject: e.kind, at: e.createdAt, writes: ["ledger_compliance_exceptions"]) { seq throws(LedgerError) in
            try db.run("""
                INSERT INTO ledger_compliance_exceptions(id, kind, reason, author, request_ids, created_at, entry_seq)
                VALUES ((SELECT coalesce(max(id), 0) + 1 FROM ledger_compliance_exceptions), ?1, ?2, ?3, ?4, ?5, ?6)
                """, [.text(e.kind), .text(e.reason), .text(e.author), .text(ids), .text(LedgerTime.string(e.createdAt)), .integer(seq)])
        }
    }
}

