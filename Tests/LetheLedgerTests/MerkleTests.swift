import XCTest
import LetheCrypto
@testable import LetheLedger

/// RFC 6962 test vectors as published with Certificate Transparency (the 8-leaf reference tree).
final class MerkleTests: XCTestCase {
    static let leaves: [[UInt8]] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                    "606162636465666768696a6b6c6d6e6f"].map { Hex.decode($0) ?? [] }
    static let roots = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    var hashes: [Digest] { Self.leaves.map(Merkle.leafHash) }

    func d(_ hex: String) -> Digest { Digest(hex: hex) ?? Merkle.emptyRoot }

    func testReferenceRootsForEverySize() {
        for n in 0...8 { XCTAssertEqual(Merkle.root(hashes.prefix(n)).hex, Self.roots[n], "size \(n)") }
        XCTAssertEqual(Merkle.leafHash([]).hex, Self.roots[1])
    }

    func testSplitIsLargestPowerOfTwoBelowN() {
        XCTAssertEqual([2, 3, 4, 5, 8, 9, 1000].map(Merkle.split), [1, 2, 2, 4, 4, 8, 512])
    }

    func testReferenceInclusionProofs() {
        let path0 = ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"].map(d)
        let path5 = ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map(d)
        XCTAssertEqual(Merkle.inclusionProof(index: 0, leafHashes: hashes), path0)
        XCTAssertEqual(Merkle.inclusionProof(index: 5, leafHashes: hashes), path5)
        let root = d(Self.roots[8])
        XCTAssertTrue(Merkle.verifyInclusion(leafHash: hashes[0], index: 0, treeSize: 8, proof: path0, root: root))
        XCTAssertTrue(Merkle.verifyInclusion(leafHash: hashes[5], index: 5, treeSize: 8, proof: path5, root: root))
        XCTAssertFalse(Merkle.verifyInclusion(leafHash: hashes[5], index: 4, treeSize: 8, proof: path5, root: root))
    }

    func testReferenceConsistencyProofs() {
        let p28 = ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                   "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"].map(d)
        let p68 = ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                   "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                   "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map(d)
        let p25 = ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                   "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"].map(d)
        XCTAssertEqual(Merkle.consistencyProof(oldSize: 2, leafHashes: hashes), p28)
        XCTAssertEqual(Merkle.consistencyProof(oldSize: 6, leafHashes: hashes), p68)
        XCTAssertEqual(Merkle.consistencyProof(oldSize: 2, leafHashes: Array(hashes.prefix(5))), p25)
        XCTAssertTrue(Merkle.verifyConsistency(oldSize: 2, newSize: 8, oldRoot: d(Self.roots[2]), newRoot: d(Self.roots[8]), proof: p28))
        XCTAssertTrue(Merkle.verifyConsistency(oldSize: 6, newSize: 8, oldRoot: d(Self.roots[6]), newRoot: d(Self.roots[8]), proof: p68))
        XCTAssertTrue(Merkle.verifyConsistency(oldSize: 2, newSize: 5, oldRoot: d(Self.roots[2]), newRoot: d(Self.roots[5]), proof: p25))
        XCTAssertFalse(Merkle.verifyConsistency(oldSize: 2, newSize: 8, oldRoot: d(Self.roots[3]), newRoot: d(Self.roots[8]), proof: p28))
    }

    /// Every (index, n) and every (m, n) for n in 1...64: proofs verify, and perturbed ones do not.
    func testRandomizedSizesUpTo64() {
        var rng = SystemRandomNumberGenerator()
        // The index byte first keeps the leaves distinct: two equal random 1-byte leaves (n − 1 and 0
        // when n − 1 is a multiple of 7) made a proof for one verify for the other about one run in 30.
        let all = (0..<64).map { i in Merkle.leafHash([UInt8(i)] + (0..<(i % 7)).map { _ in UInt8.random(in: 0...255, using: &rng) }) }
        for n in 1...64 {
            let leaves = Array(all.prefix(n))
            let root = Merkle.root(leaves)
            XCTAssertEqual(root, naiveRoot(leaves[...]), "n=\(n)")
            for i in 0..<n {
                let p = Merkle.inclusionProof(index: i, leafHashes: leaves)
                XCTAssertTrue(Merkle.verifyInclusion(leafHash: leaves[i], index: i, treeSize: n, proof: p, root: root), "i=\(i) n=\(n)")
                if n > 1 {
                    XCTAssertFalse(Merkle.verifyInclusion(leafHash: leaves[i], index: (i + 1) % n, treeSize: n, proof: p, root: root))
                    XCTAssertFalse(Merkle.verifyInclusion(leafHash: leaves[(i + 1) % n], index: i, treeSize: n, proof: p, root: root))
                    var bad = p; bad[0] = Merkle.nodeHash(bad[0], bad[0])
                    XCTAssertFalse(Merkle.verifyInclusion(leafHash: leaves[i], index: i, treeSize: n, proof: bad, root: root))
                    XCTAssertFalse(Merkle.verifyInclusion(leafHash: leaves[i], index: i, treeSize: n, proof: Array(p.dropLast()), root: root))
                }
            }
            for m in 1...n {
                let p = Merkle.consistencyProof(oldSize: m, leafHashes: leaves)
                let oldRoot = Merkle.root(leaves.prefix(m))
                XCTAssertTrue(Merkle.verifyConsistency(oldSize: m, newSize: n, oldRoot: oldRoot, newRoot: root, proof: p), "m=\(m) n=\(n)")
                if m < n {
                    XCTAssertFalse(Merkle.verifyConsistency(oldSize: m, newSize: n, oldRoot: root, newRoot: root, proof: p))
                    var bad = p; bad[bad.count - 1] = Merkle.emptyRoot
                    XCTAssertFalse(Merkle.verifyConsistency(oldSize: m, newSize: n, oldRoot: oldRoot, newRoot: root, proof: bad))
                }
            }
        }
    }

    func testFrontierRoundTrip() {
        var f = Merkle.Frontier()
        for h in hashes { f.append(h) }
        XCTAssertEqual(f.root.hex, Self.roots[8])
        XCTAssertEqual(Merkle.Frontier(size: f.size, nodes: f.nodes), f)
        XCTAssertNil(Merkle.Frontier(size: 7, nodes: f.nodes))
    }

    /// MTH straight from RFC 6962 §2.1, recursively.
    private func naiveRoot(_ d: ArraySlice<Digest>) -> Digest {
        if d.isEmpty { return Merkle.emptyRoot }
        if d.count == 1 { return d[d.startIndex] }
        var k = 1; while k * 2 < d.count { k *= 2 }
        return Merkle.nodeHash(naiveRoot(d.prefix(k)), naiveRoot(d.dropFirst(k)))
    }
}
