import CCrypto
import LetheCrypto

/// The Merkle hash tree of RFC 6962 §2.1 (Certificate Transparency), as used by the ledger's log.
///
/// - leaf hash: `SHA-256(0x00 ‖ entry)`
/// - node hash: `SHA-256(0x01 ‖ left ‖ right)`
/// - a tree of `n > 1` leaves splits at `k`, the largest power of two smaller than `n`:
///   `MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))`; the empty tree's hash is `SHA-256("")`.
///
/// Proofs are lists of 32-byte node hashes, ordered from the leaf (or the older tree) towards
/// the root, exactly as RFC 6962 §2.1.1 (`PATH`) and §2.1.2 (`PROOF`) define them; the
/// verification functions are the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, so any
/// Certificate Transparency client library can check them as well.
public enum Merkle {
    /// `SHA-256(0x00 ‖ entry)` — the hash of one log entry (libcrypto `SHA256`).
    public static func leafHash(_ entry: [UInt8]) -> Digest {
        var buf = [UInt8](); buf.reserveCapacity(entry.count + 1)
        buf.append(0); buf.append(contentsOf: entry)
        return sha256(buf)
    }

    /// `SHA-256(0x01 ‖ left ‖ right)` — an interior node.
    public static func nodeHash(_ left: Digest, _ right: Digest) -> Digest {
        var buf = [UInt8](); buf.reserveCapacity(65)
        buf.append(1); buf.append(contentsOf: left.bytes); buf.append(contentsOf: right.bytes)
        return sha256(buf)
    }

    /// The hash of the empty tree, `SHA-256("")`.
    public static let emptyRoot: Digest = sha256([])

    static func sha256(_ bytes: [UInt8]) -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                _ = CCrypto.SHA256(src.baseAddress, src.count, dst.baseAddress)
            }
        }
        return Digest(bytes: out)
    }

    /// The largest power of two strictly smaller than `n` (`n >= 2`): RFC 6962's split point.
    public static func split(_ n: Int) -> Int {
        precondition(n >= 2, "split needs at least two leaves")
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// `MTH(D[n])` over leaf hashes.
    ///
    /// - Complexity: O(n) node hashes, O(log n) memory.
    public static func root<C: Collection>(_ leafHashes: C) -> Digest where C.Element == Digest {
        var f = Frontier()
        for h in leafHashes { f.append(h) }
        return f.root
    }

    /// The audit path `PATH(index, D[n])` of RFC 6962 §2.1.1 for leaf `index` of the tree of `leafHashes`.
    ///
    /// - Complexity: O(n) node hashes.
    public static func inclusionProof(index: Int, leafHashes: [Digest]) -> [Digest] {
        inclusionProof(index: index, treeSize: leafHashes.count) { (r: Range<Int>) -> Digest in root(leafHashes[r]) }
    }

    /// `PATH(index, D[treeSize])` with subtree roots `MTH(D[lo:hi])` supplied by `subtreeRoot`
    /// (e.g. from stored nodes, making the proof O(log² n) lookups).
    public static func inclusionProof<E: Error>(index: Int, treeSize: Int,
                                                subtreeRoot: (Range<Int>) throws(E) -> Digest) throws(E) -> [Digest] {
        precondition(index >= 0 && index < treeSize, "leaf index out of range")
        var out: [Digest] = []
        var lo = 0, hi = treeSize, m = index
        var reversed: [Digest] = []
        // Walk down from the root, collecting siblings; PATH lists them leaf-first.
        while hi - lo > 1 {
            let k = split(hi - lo)
            if m < k {
                reversed.append(try subtreeRoot((lo + k)..<hi))
                hi = lo + k
            } else {
                reversed.append(try subtreeRoot(lo..<(lo + k)))
                lo += k; m -= k
            }
        }
        out = reversed.reversed()
        return out
    }

    /// The consistency proof `PROOF(m, D[n])` of RFC 6962 §2.1.2 between the tree of the first
    /// `oldSize` leaves and the tree of all `leafHashes` (`1 <= oldSize <= n`; empty when equal).
    ///
    /// - Complexity: O(n) node hashes.
    public static func consistencyProof(oldSize m: Int, leafHashes: [Digest]) -> [Digest] {
        consistencyProof(oldSize: m, treeSize: leafHashes.count) { (r: Range<Int>) -> Digest in root(leafHashes[r]) }
    }

    /// `PROOF(oldSize, D[treeSize])` with subtree roots supplied by `subtreeRoot`.
    public static func consistencyProof<E: Error>(oldSize m: Int, treeSize n: Int,
                                                  subtreeRoot: (Range<Int>) throws(E) -> Digest) throws(E) -> [Digest] {
        precondition(m >= 1 && m <= n, "old size out of range")
        // SUBPROOF(m, D[lo:hi], b), iteratively: nodes are appended deepest-last, so collect and reverse.
        var reversed: [Digest] = []
        var lo = 0, hi = n, mm = m, b = true
        while true {
            let size = hi - lo
            if mm == size {
                if !b { reversed.append(try subtreeRoot(lo..<hi)) }
                break
            }
            let k = split(size)
            if mm <= k {
                reversed.append(try subtreeRoot((lo + k)..<hi))
                hi = lo + k
            } else {
                reversed.append(try subtreeRoot(lo..<(lo + k)))
                lo += k; mm -= k; b = false
            }
        }
        return reversed.reversed()
    }

    /// Checks an inclusion proof (RFC 9162 §2.1.3.2): true when `leafHash` is leaf `index` of a
    /// tree of `treeSize` leaves whose root is `root`.
    public static func verifyInclusion(leafHash: Digest, index: Int, treeSize: Int, proof: [Digest], root: Digest) -> Bool {
        guard index >= 0, index < treeSize else { return false }
        var fn = index, sn = treeSize - 1
        var r = leafHash
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1; sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// Checks a consistency proof (RFC 9162 §2.1.4.2): true when the tree of `oldSize` leaves with
    /// root `oldRoot` is a prefix of the tree of `newSize` leaves with root `newRoot`.
    public static func verifyConsistency(oldSize: Int, newSize: Int, oldRoot: Digest, newRoot: Digest, proof: [Digest]) -> Bool {
        guard oldSize >= 1, oldSize <= newSize else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        guard !proof.isEmpty else { return false }
        var path = proof
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1, sn = newSize - 1
        while fn & 1 == 1 { fn >>= 1; sn >>= 1 }
        var fr = path[0], sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr); sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1; sn >>= 1
        }
        return fr == oldRoot && sr == newRoot && sn == 0
    }

    /// The right edge of a growing tree: the roots of its perfect subtrees, largest first.
    /// Appending is O(log n) and the root of the whole tree is available at any size,
    /// which is how the ledger signs a checkpoint after every transaction without rehashing.
    public struct Frontier: Sendable, Equatable {
        /// Number of leaves appended.
        public private(set) var size: Int = 0
        /// Perfect-subtree roots paired with their heights (leaf count `1 << height`), left to right.
        public private(set) var nodes: [(height: Int, hash: Digest)] = []

        /// An empty frontier.
        public init() {}

        /// Rebuilds a frontier from stored (height, hash) pairs, left to right; nil when they do
        /// not form a valid frontier (heights must strictly decrease).
        public init?(size: Int, nodes: [(height: Int, hash: Digest)]) {
            var total = 0
            for (i, n) in nodes.enumerated() {
                if i > 0 && nodes[i - 1].height <= n.height { return nil }
                total += 1 << n.height
            }
            guard total == size else { return nil }
            self.size = size; self.nodes = nodes
        }

        /// Appends one leaf hash.
        public mutating func append(_ leaf: Digest) { append(leaf) { _, _, _ in } }

        /// Appends one leaf hash, reporting each perfect subtree completed by it as
        /// (height >= 1, index, hash): the subtree of leaves `index << height ..< (index + 1) << height`.
        public mutating func append(_ leaf: Digest, completed: (Int, Int, Digest) -> Void) {
            var h = leaf, height = 0
            while let last = nodes.last, last.height == height {
                nodes.removeLast()
                h = Merkle.nodeHash(last.hash, h)
                height += 1
                completed(height, size >> height, h)
            }
            nodes.append((height, h))
            size += 1
        }

        /// `MTH` of the leaves appended so far.
        public var root: Digest {
            guard var r = nodes.last?.hash else { return Merkle.emptyRoot }
            for n in nodes.dropLast().reversed() { r = Merkle.nodeHash(n.hash, r) }
            return r
        }

        /// Same size and the same subtree roots.
        public static func == (a: Frontier, b: Frontier) -> Bool {
            a.size == b.size && a.nodes.count == b.nodes.count
                && zip(a.nodes, b.nodes).allSatisfy { $0.height == $1.height && $0.hash == $1.hash }
        }
    }
}
