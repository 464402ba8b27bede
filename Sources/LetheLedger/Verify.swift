import Foundation
import LetheCrypto

/// One problem `verify` found.
public struct VerifyFailure: Sendable, Equatable, CustomStringConvertible {
    /// The first log entry concerned, when the problem is located in the log.
    public let entry: Int?
    /// What is wrong.
    public let message: String

    /// A failure.
    public init(entry: Int?, message: String) { self.entry = entry; self.message = message }
    /// The message.
    public var description: String { message }
}

/// The result of `Ledger.verify`.
public struct VerifyReport: Sendable, Equatable {
    /// Entries in the log.
    public let entries: Int
    /// Checkpoints checked.
    public let checkpoints: Int
    /// Recomputed root of the whole log.
    public let root: Digest
    /// Hex of the public key signatures were checked against.
    public let publicKeyHex: String
    /// Problems, the one at the lowest entry first; empty when the ledger verifies.
    public let failures: [VerifyFailure]

    /// A report.
    public init(entries: Int, checkpoints: Int, root: Digest, publicKeyHex: String, failures: [VerifyFailure]) {
        self.entries = entries; self.checkpoints = checkpoints; self.root = root; self.publicKeyHex = publicKeyHex
        self.failures = failures
    }

    /// True when nothing is wrong.
    public var isValid: Bool { failures.isEmpty }
    /// The first bad entry, if any failure is located in the log.
    public var firstBadEntry: Int? { failures.compactMap(\.entry).min() }
}

extension Ledger {
    /// Recomputes the whole log from the table rows and checks it against the recorded leaf
    /// hashes, the stored frontier and every signed checkpoint.
    ///
    /// Detects: a record row edited, inserted or deleted (its entry's recomputed leaf differs);
    /// entries deleted, inserted or reordered (sequence gaps, seq is part of each encoding, and
    /// the recomputed roots differ from the signed ones); rows that name no entry; checkpoints
    /// whose signature does not verify under `trustedKey` (default: the store's key), whose text
    /// was altered, or whose root differs from the recomputed tree at their size; entries not
    /// covered by any checkpoint.
    ///
    /// - Complexity: O(rows + entries + checkpoints · log n); one pass over each table.
    public func verify(trustedKey: Ed25519.PublicKey? = nil) throws(LedgerError) -> VerifyReport {
        let key = trustedKey ?? publicKey
        return try locked { () throws(LedgerError) -> VerifyReport in
            var failures: [VerifyFailure] = []
            func fail(_ entry: Int?, _ message: String) { failures.append(VerifyFailure(entry: entry, message: message)) }

            // Checkpoints by size.
            let cps = try db.rows("SELECT id, origin, tree_size, root_hash, body, signature, public_key, created_at FROM log_checkpoints ORDER BY id")
                .map { r throws(LedgerError) in try Checkpoint(row: r) }
            var bySize: [Int: [Checkpoint]] = [:]
            for cp in cps { bySize[cp.treeSize, default: []].append(cp) }
            let checkedSizes = bySize.keys.sorted()

            // One cursor per logged table, in (entry_seq, pk) order.
            var cursors: [Cursor] = []
            for t in EntryEncoding.tables { cursors.append(try Cursor(db: db, table: t)) }

            let entries = try db.cursor("SELECT seq, kind, subject, created_at, leaf_hash FROM log_entries ORDER BY seq")
            var frontier = Merkle.Frontier()
            var rootsAtCheckedSizes: [Int: Digest] = [0: Merkle.emptyRoot]
            var expected = 0
            var labels: [Int: String] = [:]
            var wantedSizes = Set(checkedSizes)
            var leafMismatches: [Int] = []
            var expectedNodes: [NodeKey: Digest] = [:]
            while let r = try entries.next() {
                guard let seq = r[0].int, let kind = r[1].string, let subject = r[2].string, let at = r[3].string else {
                    fail(expected, "entry \(expected): malformed log_entries row"); break
                }
                let label = "entry \(seq) (\(kind) \(subject))"
                if seq != expected {
                    fail(expected, "entry \(expected) is missing from the log (the next entry is \(seq)): entries were deleted or renumbered")
                    break
                }
                var tables: [(table: String, rows: [[SQLValue]])] = []
                for c in cursors {
                    let (rows, orphans) = try c.take(seq: Int64(seq))
                    if orphans > 0 {
                        fail(seq, "\(c.table.name) has \(orphans) row(s) naming an entry before \(label) that does not cover them")
                    }
                    tables.append((c.table.name, rows))
                }
                let bytes = EntryEncoding.encode(seq: Int64(seq), kind: kind, subject: subject, createdAt: at, rows: tables)
                let leaf = Merkle.leafHash(bytes)
                if r[4].bytes != leaf.bytes {
                    leafMismatches.append(seq)
                    fail(seq, "\(label): its rows do not hash to the recorded leaf (a row was edited, inserted, deleted or moved)")
                }
                frontier.append(leaf) { h, i, hash in expectedNodes[NodeKey(height: h, index: i)] = hash }
                if labels.count < 1_000_000 { labels[seq] = label }
                if wantedSizes.contains(frontier.size) {
                    rootsAtCheckedSizes[frontier.size] = frontier.root
                    wantedSizes.remove(frontier.size)
                }
                expected += 1
            }
            let n = expected
            for c in cursors {
                let extra = try c.remaining()
                if extra > 0 { fail(n, "\(c.table.name) has \(extra) row(s) naming entries that are not in the log") }
            }

            // Stored frontier.
            let stored = try db.rows("SELECT height, hash FROM log_frontier ORDER BY height DESC").compactMap { r -> (height: Int, hash: Digest)? in
                guard let h = r[0].int, let b = r[1].bytes, b.count == 32 else { return nil }
                return (h, Digest(bytes: b))
            }
            if failures.isEmpty, Merkle.Frontier(size: n, nodes: stored) != frontier {
                fail(nil, "the stored log frontier does not match the recomputed tree")
            }

            // Stored interior nodes (used to build proofs) must be exactly the recomputed ones.
            var badNodes = 0, seenNodes = 0
            let nodes = try db.cursor("SELECT height, idx, hash FROM log_nodes")
            while let node = try nodes.next() {
                seenNodes += 1
                let key = NodeKey(height: node[0].int ?? -1, index: node[1].int ?? -1)
                if expectedNodes[key]?.bytes != node[2].bytes { badNodes += 1 }
            }
            if badNodes > 0 || seenNodes != expectedNodes.count {
                fail(nil, "log_nodes holds \(seenNodes) tree nodes, \(badNodes) of them wrong; \(expectedNodes.count) were expected")
            }

            // The derived request status must agree with the recorded outcomes.
            let distinct = db.dialect == .sqlite ? "IS NOT" : "IS DISTINCT FROM"
            let statuses = try db.rows("""
                SELECT r.entry_seq, r.id, r.status, coalesce(o.status, 'received')
                  FROM ledger_requests r LEFT JOIN ledger_request_outcomes o ON o.request_id = r.id
                 WHERE r.status \(distinct) coalesce(o.status, 'received')
                 ORDER BY r.entry_seq
                """)
            for row in statuses {
                let seq = row[0].int ?? 0
                fail(seq, "\(labels[seq] ?? "entry \(seq)"): request \(row[1].string ?? "?") is marked '\(row[2].string ?? "?")' but its recorded outcome is '\(row[3].string ?? "?")'")
            }

            // Checkpoints.
            var lastGood = 0
            var maxSigned = -1
            for size in checkedSizes {
                for cp in bySize[size] ?? [] {
                    let where_ = "checkpoint #\(cp.id) (tree size \(cp.treeSize))"
                    if cp.publicKeyHex != key.hex || !cp.isValid(under: key) {
                        fail(nil, "\(where_) is not signed by the store's key \(key.hex)")
                        continue
                    }
                    if cp.origin != origin { fail(nil, "\(where_) names origin '\(cp.origin)', not '\(origin)'"); continue }
                    maxSigned = max(maxSigned, size)
                    guard size <= n else {
                        fail(n, "\(where_) covers \(size) entries but the log has only \(n): entries \(n)..<\(size) were deleted")
                        continue
                    }
                    if rootsAtCheckedSizes[size] != cp.root {
                        // An entry whose rows no longer match its leaf explains the mismatch exactly;
                        // otherwise (leaf hashes forged too) the first entry after the last good
                        // checkpoint is the first one not vouched for.
                        let first = leafMismatches.first { $0 >= lastGood && $0 < size } ?? lastGood
                        fail(first, "\(where_): the recomputed root differs from the signed one; the first entry it does not vouch for is \(labels[first] ?? "entry \(first)")")
                    } else {
                        lastGood = max(lastGood, size)
                    }
                }
            }
            if n > 0 && maxSigned < n {
                let first = max(maxSigned, 0)
                fail(first, "entries \(first)..<\(n) are not covered by any signed checkpoint (\(labels[first] ?? "entry \(first)") onwards)")
            }
            failures = failures.enumerated().sorted { a, b in
                (a.element.entry ?? Int.max, a.offset) < (b.element.entry ?? Int.max, b.offset)
            }.map(\.element)
            return VerifyReport(entries: n, checkpoints: cps.count, root: frontier.root, publicKeyHex: key.hex, failures: failures)
        }
    }
}

/// A perfect subtree's position.
private struct NodeKey: Hashable { let height: Int; let index: Int }

extension Ledger {
    /// Checks a checkpoint saved outside the store (a signed note from `lethe checkpoint`): it
    /// must be signed by `trustedKey` (default: the store's key) for this origin, and the current
    /// log must extend it (the recomputed root at its size equals its root). This catches what the
    /// database alone cannot: a rewrite that also dropped the checkpoints covering it.
    /// Returns nil when it holds, else the problem.
    public func checkSavedCheckpoint(note: String, trustedKey: Ed25519.PublicKey? = nil) throws(LedgerError) -> VerifyFailure? {
        let key = trustedKey ?? publicKey
        guard let (cp, keyHash) = Checkpoint.parse(note: note) else {
            return VerifyFailure(entry: nil, message: "the saved checkpoint is not a signed note written by 'lethe checkpoint'")
        }
        let label = "saved checkpoint (tree size \(cp.treeSize))"
        guard cp.origin == origin else { return VerifyFailure(entry: nil, message: "\(label) names origin '\(cp.origin)', not '\(origin)'") }
        guard keyHash == Checkpoint.keyHash(origin: origin, key: key), cp.isValid(under: key) else {
            return VerifyFailure(entry: nil, message: "\(label) is not signed by the store's key \(key.hex)")
        }
        return try locked { () throws(LedgerError) -> VerifyFailure? in
            let n = try db.scalar("SELECT coalesce(max(seq) + 1, 0) FROM log_entries")?.int ?? 0
            guard cp.treeSize <= n else {
                return VerifyFailure(entry: n, message: "\(label) covers \(cp.treeSize) entries but the log has only \(n): entries \(n)..<\(cp.treeSize) were removed")
            }
            let frontier = try recomputedRoot(size: cp.treeSize)
            guard frontier == cp.root else {
                return VerifyFailure(entry: nil, message: "\(label): the log's recomputed root at that size differs; the log was rewritten after it was signed")
            }
            return nil
        }
    }

    /// The root of the first `size` entries recomputed from the rows (not from stored hashes).
    func recomputedRoot(size: Int) throws(LedgerError) -> Digest {
        var f = Merkle.Frontier()
        for seq in 0..<size { f.append(Merkle.leafHash(try LedgerWriter.encodeEntry(db: db, seq: Int64(seq)))) }
        return f.root
    }
}

/// Streams one logged table in (entry_seq, primary key) order for `verify`.
private final class Cursor {
    let table: EntryEncoding.Table
    private let stmt: RowCursor
    private var pending: (seq: Int64, row: [SQLValue])?
    private var done = false

    init(db: any SQLConnection, table: EntryEncoding.Table) throws(LedgerError) {
        self.table = table
        stmt = try db.cursor(EntryEncoding.selectAll(table))
        try advance()
    }

    private func advance() throws(LedgerError) {
        if done { pending = nil; return }
        if let r = try stmt.next() {
            pending = (r[0].int64 ?? -1, Array(r.dropFirst()))
        } else { done = true; pending = nil }
    }

    /// The rows of entry `seq`, and how many rows with a smaller entry_seq were skipped (orphans).
    func take(seq: Int64) throws(LedgerError) -> (rows: [[SQLValue]], orphans: Int) {
        var orphans = 0, rows: [[SQLValue]] = []
        while let p = pending, p.seq < seq { orphans += 1; try advance() }
        while let p = pending, p.seq == seq { rows.append(p.row); try advance() }
        return (rows, orphans)
    }

    /// Rows left after the last entry.
    func remaining() throws(LedgerError) -> Int {
        var n = 0
        while pending != nil { n += 1; try advance() }
        return n
    }
}
