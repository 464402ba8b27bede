import Foundation
import LetheCrypto

/// Proof that one log entry is leaf `leafIndex` of the tree of `treeSize` leaves with root `root`
/// (RFC 6962 §2.1.1 audit path). A third party checks it with `Merkle.verifyInclusion` after
/// recomputing `leafHash = SHA-256(0x00 ‖ entryBytes)`, and checks `checkpoint` against the
/// store's public key.
public struct InclusionProof: Sendable, Equatable {
    /// The log's origin.
    public let origin: String
    /// The entry.
    public let entry: LogEntry
    /// Its canonical bytes (see `EntryEncoding`).
    public let entryBytes: [UInt8]
    /// Leaf index (= entry seq).
    public var leafIndex: Int { entry.seq }
    /// Tree size the proof is against.
    public let treeSize: Int
    /// SHA-256(0x00 ‖ entryBytes).
    public let leafHash: Digest
    /// Audit path, leaf to root.
    public let path: [Digest]
    /// Root at `treeSize`.
    public let root: Digest
    /// The signed checkpoint at `treeSize`, when one exists.
    public let checkpoint: Checkpoint?

    /// Recomputes the leaf hash from the entry bytes and checks the path against the root.
    public func verify() -> Bool {
        Merkle.leafHash(entryBytes) == leafHash
            && Merkle.verifyInclusion(leafHash: leafHash, index: leafIndex, treeSize: treeSize, proof: path, root: root)
            && (checkpoint.map { $0.root == root && $0.treeSize == treeSize } ?? true)
    }

    /// The documented text format:
    ///
    /// ```
    /// lethe inclusion proof v1
    /// origin: <origin>
    /// entry: <seq> <kind> <subject>
    /// tree-size: <n>
    /// leaf-index: <seq>
    /// leaf-hash: <hex SHA-256(0x00 ‖ entry bytes)>
    /// root: <hex>
    /// path: <hex>            (zero or more, leaf to root, RFC 6962 §2.1.1)
    /// entry-bytes: <hex>
    /// checkpoint:            (then the C2SP signed note, when a checkpoint of this size exists)
    /// ```
    public func text(key: Ed25519.PublicKey) -> String {
        var s = "lethe inclusion proof v1\norigin: \(origin)\nentry: \(entry.seq) \(entry.kind) \(entry.subject)\n"
        s += "tree-size: \(treeSize)\nleaf-index: \(leafIndex)\nleaf-hash: \(leafHash.hex)\nroot: \(root.hex)\n"
        for p in path { s += "path: \(p.hex)\n" }
        s += "entry-bytes: \(Hex.encode(entryBytes))\n"
        if let checkpoint { s += "checkpoint:\n" + checkpoint.note(key: key) }
        return s
    }
}

/// Proof that the tree of `oldSize` leaves is a prefix of the tree of `newSize` leaves
/// (RFC 6962 §2.1.2); check with `Merkle.verifyConsistency`.
public struct ConsistencyProof: Sendable, Equatable {
    /// The log's origin.
    public let origin: String
    /// Older tree size.
    public let oldSize: Int
    /// Newer tree size.
    public let newSize: Int
    /// Root at `oldSize`.
    public let oldRoot: Digest
    /// Root at `newSize`.
    public let newRoot: Digest
    /// The proof nodes.
    public let path: [Digest]
    /// Signed checkpoints at the two sizes, when they exist.
    public let oldCheckpoint: Checkpoint?
    /// Signed checkpoint at `newSize`, when it exists.
    public let newCheckpoint: Checkpoint?

    /// Checks the proof.
    public func verify() -> Bool {
        Merkle.verifyConsistency(oldSize: oldSize, newSize: newSize, oldRoot: oldRoot, newRoot: newRoot, proof: path)
    }

    /// The documented text format:
    ///
    /// ```
    /// lethe consistency proof v1
    /// origin: <origin>
    /// old-size: <m>
    /// new-size: <n>
    /// old-root: <hex>
    /// new-root: <hex>
    /// path: <hex>            (zero or more, RFC 6962 §2.1.2 order)
    /// ```
    public func text() -> String {
        var s = "lethe consistency proof v1\norigin: \(origin)\nold-size: \(oldSize)\nnew-size: \(newSize)\n"
        s += "old-root: \(oldRoot.hex)\nnew-root: \(newRoot.hex)\n"
        for p in path { s += "path: \(p.hex)\n" }
        return s
    }
}

extension Ledger {
    /// Inclusion proof of entry `seq` against the tree of `treeSize` leaves (default: the latest
    /// checkpoint's size, or the current size when no checkpoint covers the entry yet).
    ///
    /// - Complexity: O(log² n) stored-node lookups.
    public func inclusionProof(entry seq: Int, treeSize: Int? = nil) throws(LedgerError) -> InclusionProof {
        try locked { () throws(LedgerError) -> InclusionProof in
            let current = try db.scalar("SELECT coalesce(max(seq) + 1, 0) FROM log_entries")?.int ?? 0
            guard seq >= 0, seq < current else { throw .notFound("log entry \(seq) (the log has \(current) entries)") }
            var size = treeSize ?? current
            if treeSize == nil, let latest = try db.scalar("SELECT max(tree_size) FROM log_checkpoints")?.int, latest > seq {
                size = min(latest, current)
            }
            guard size > seq, size <= current else { throw .invalid("tree size \(size) does not contain entry \(seq)") }
            guard let h = try db.rows("SELECT seq, kind, subject, created_at, leaf_hash FROM log_entries WHERE seq = ?1",
                                      [.integer(Int64(seq))]).first else { throw .notFound("log entry \(seq)") }
            let entry = try LogEntry(row: h)
            let bytes = try LedgerWriter.encodeEntry(db: db, seq: Int64(seq))
            let root = try storedSubtreeRoot(0..<size)
            let cp = try checkpoint(atSize: size)
            if let cp, cp.root != root {
                throw .tampered("the recorded leaves give root \(root.hex) at size \(size), but checkpoint #\(cp.id) signed \(cp.root.hex)")
            }
            let leaf = Merkle.leafHash(bytes)
            if leaf != entry.leafHash {
                throw .tampered("\(entry.label): its rows no longer hash to the recorded leaf")
            }
            let path = try Merkle.inclusionProof(index: seq, treeSize: size) { (r: Range<Int>) throws(LedgerError) -> Digest in
                try storedSubtreeRoot(r)
            }
            guard Merkle.verifyInclusion(leafHash: leaf, index: seq, treeSize: size, proof: path, root: root) else {
                throw .tampered("the stored tree nodes do not give a valid path for \(entry.label); run 'lethe verify'")
            }
            return InclusionProof(origin: origin, entry: entry, entryBytes: bytes, treeSize: size, leafHash: leaf,
                                  path: path, root: root, checkpoint: cp)
        }
    }

    /// Inclusion proofs of every log entry about request `id` (received, then its outcome).
    public func inclusionProofs(request id: String) throws(LedgerError) -> [InclusionProof] {
        let entries = try self.entries(subject: id).filter { $0.kind.hasPrefix("request.") }
        guard !entries.isEmpty else { throw .notFound("forget request \(id)") }
        var out: [InclusionProof] = []
        for e in entries { out.append(try inclusionProof(entry: e.seq)) }
        return out
    }

    /// Consistency proof between tree sizes `oldSize` and `newSize` (default: current size).
    public func consistencyProof(oldSize: Int, newSize: Int? = nil) throws(LedgerError) -> ConsistencyProof {
        try locked { () throws(LedgerError) -> ConsistencyProof in
            let current = try db.scalar("SELECT coalesce(max(seq) + 1, 0) FROM log_entries")?.int ?? 0
            let n = newSize ?? current
            guard oldSize >= 1, oldSize <= n, n <= current else {
                throw .invalid("a consistency proof needs 1 <= old (\(oldSize)) <= new (\(n)) <= tree size (\(current))")
            }
            let oldRoot = try storedSubtreeRoot(0..<oldSize), newRoot = try storedSubtreeRoot(0..<n)
            let oldCP = try checkpoint(atSize: oldSize), newCP = try checkpoint(atSize: n)
            for (cp, root) in [(oldCP, oldRoot), (newCP, newRoot)] {
                if let cp, cp.root != root {
                    throw .tampered("the recorded leaves give root \(root.hex) at size \(cp.treeSize), but checkpoint #\(cp.id) signed \(cp.root.hex)")
                }
            }
            let path = try Merkle.consistencyProof(oldSize: oldSize, treeSize: n) { (r: Range<Int>) throws(LedgerError) -> Digest in
                try storedSubtreeRoot(r)
            }
            guard Merkle.verifyConsistency(oldSize: oldSize, newSize: n, oldRoot: oldRoot, newRoot: newRoot, proof: path) else {
                throw .tampered("the stored tree nodes do not give a valid consistency proof; run 'lethe verify'")
            }
            return ConsistencyProof(origin: origin, oldSize: oldSize, newSize: n, oldRoot: oldRoot, newRoot: newRoot,
                                    path: path, oldCheckpoint: oldCP, newCheckpoint: newCP)
        }
    }

    /// The root of the tree of the first `size` recorded leaves.
    public func root(atSize size: Int) throws(LedgerError) -> Digest {
        try locked { () throws(LedgerError) -> Digest in
            let current = try db.scalar("SELECT coalesce(max(seq) + 1, 0) FROM log_entries")?.int ?? 0
            guard size >= 0, size <= current else { throw .invalid("the log has \(current) entries, fewer than \(size)") }
            return size == 0 ? Merkle.emptyRoot : try storedSubtreeRoot(0..<size)
        }
    }

    /// `MTH(D[lo:hi])` from stored nodes: a perfect aligned subtree is one lookup (a leaf hash or
    /// a `log_nodes` row); any other range splits as RFC 6962 does.
    ///
    /// - Complexity: O(log n) lookups.
    func storedSubtreeRoot(_ r: Range<Int>) throws(LedgerError) -> Digest {
        let n = r.count
        precondition(n >= 1, "empty subtree")
        if n == 1 {
            guard let b = try db.scalar("SELECT leaf_hash FROM log_entries WHERE seq = ?1", [.integer(Int64(r.lowerBound))])?.bytes,
                  b.count == 32 else { throw .tampered("log entry \(r.lowerBound) is missing; run 'lethe verify'") }
            return Digest(bytes: b)
        }
        if n & (n - 1) == 0 && r.lowerBound % n == 0 {
            let height = n.trailingZeroBitCount
            guard let b = try db.scalar("SELECT hash FROM log_nodes WHERE height = ?1 AND idx = ?2",
                                        [.integer(Int64(height)), .integer(Int64(r.lowerBound / n))])?.bytes, b.count == 32
            else { throw .tampered("tree node (height \(height), index \(r.lowerBound / n)) is missing; run 'lethe verify'") }
            return Digest(bytes: b)
        }
        let k = Merkle.split(n)
        return Merkle.nodeHash(try storedSubtreeRoot(r.lowerBound..<(r.lowerBound + k)), try storedSubtreeRoot((r.lowerBound + k)..<r.upperBound))
    }
}
