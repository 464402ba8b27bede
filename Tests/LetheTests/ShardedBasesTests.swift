import Foundation
import XCTest
import LetheNN
import LetheTensor
import LetheUnlearning
@testable import Lethe

/// Sharded bases: N partial Gram passes, written to files and summed, give the bases of one pass.
final class ShardedBasesTests: RepositoryTestCase {

    func testFourShardsGiveTheBasesOfOnePass() throws {
        let (repo, data, model, trainedVersion) = try digitsRepository(origin: "lethe.test/shards")

        // Four shards, each through its file; one pass over the whole split for comparison.
        var partials: [PartialGram] = []
        for i in 0..<4 {
            let p = try repo.partialBases(ref: "prod", data: data, shard: i, of: 4, threads: 1)
            XCTAssertEqual(p.samples, PartialGram.positions(shard: i, of: 4, samples: data.splits.train.count).count)
            let path = dir.appendingPathComponent("s\(i).gram").path
            try FileBytes.writeAtomically(p.encoded(), to: path)
            partials.append(try PartialGram.decode(path: path))
        }
        XCTAssertEqual(partials.reduce(0) { $0 + $1.samples }, data.splits.train.count)
        XCTAssertEqual(try repo.head("prod"), trainedVersion, "partial passes change nothing")
        let onePass = try PGUEngine.computeBases(model: model, images: data.splits.train.images).map { $0.truncated() }

        // Refusals: a missing shard, a repeated one; nothing moves.
        XCTAssertThrowsError(try repo.reduceBases(ref: "prod", data: data, partials: Array(partials.prefix(3)), threads: 1)) {
            XCTAssertTrue("\($0)".contains("missing 3"), "\($0)")
        }
        XCTAssertThrowsError(try repo.reduceBases(ref: "prod", data: data, partials: partials + [partials[1]], threads: 1)) {
            XCTAssertTrue("\($0)".contains("repeated 1"), "\($0)")
        }
        XCTAssertEqual(try repo.head("prod"), trainedVersion)

        let (write, reduced) = try repo.reduceBases(ref: "prod", data: data, partials: partials.reversed(), threads: 1)
        XCTAssertEqual(try repo.head("prod"), write.version)
        let stored = try repo.store.bases(of: write.version)
        XCTAssertEqual(stored.map(\.layer), onePass.map(\.layer))
        XCTAssertEqual(reduced.map(\.rank), onePass.map(\.rank))
        for (s, o) in zip(stored, onePass) {
            XCTAssertEqual(s.sigma.count, o.sigma.count, s.layer)
            let top = o.sigma.first ?? 1
            for (a, b) in zip(s.sigma, o.sigma) {
                // Relative to each value, with the largest as the floor for components near zero.
                XCTAssertLessThanOrEqual(abs(a - b), 1e-10 * max(abs(b), 1e-3 * top), "\(s.layer): \(a) vs \(b)")
            }
            // The Gram matrices they describe agree (sign-free comparison of the eigenvectors).
            let gs = LayerBasis(layer: s.layer, dimension: s.d, u: s.u, sigma: s.sigma, rowCount: 0).gram()
            let go = o.gram()
            var diff = 0.0, norm = 0.0
            for (x, y) in zip(gs.scalars, go.scalars) { diff += (x - y) * (x - y); norm += y * y }
            XCTAssertLessThanOrEqual(diff.squareRoot(), 1e-10 * norm.squareRoot(), s.layer)
        }

        // Partials of the version before cannot be reduced onto the version that now has bases.
        XCTAssertThrowsError(try repo.reduceBases(ref: "prod", data: data, partials: partials, threads: 1)) {
            XCTAssertTrue("\($0)".contains("computed for version"), "\($0)")
        }
    }

    /// Bases of a version that forgot samples leave them out (one pass and sharded alike): a Gram
    /// over the whole split would write the forgotten samples back into the cached bases.
    func testBasesOfAVersionThatForgotLeaveTheForgottenSamplesOut() throws {
        let (repo, data, _, _) = try digitsRepository(origin: "lethe.test/rebase")
        let train = data.splits.train
        _ = try repo.storeBases(ref: "prod", data: data, threads: 1)
        XCTAssertEqual(try repo.retainedSampleCount(ref: "prod", data: data), train.count)

        var config = PGUConfiguration()
        config.maxEpochs = 30
        config.collapseMargin = 0.05
        let forgotten = Array(train.ids[10..<50])
        let report = try repo.forget(ForgetOptions(ref: "prod", selection: .samples(forgotten), recipe: UnlearningRecipe(configuration: config)), data: data)
        XCTAssertEqual(report.status, .applied)
        let after = try XCTUnwrap(report.versionAfter)
        XCTAssertEqual(try repo.retainedSampleCount(ref: "prod", data: data), train.count - 40)

        // One pass: the bases equal those of the current weights over the 40 fewer samples.
        let current = try repo.loadModel(try repo.head("prod"), data: data)
        let keep = train.ids.indices.filter { !forgotten.contains(train.ids[$0]) }
        let expected = try PGUEngine.computeBases(model: current, images: train.subset(keep).images).map { $0.truncated() }
        let everything = try PGUEngine.computeBases(model: current, images: train.images).map { $0.truncated() }
        let (write, _) = try repo.storeBases(ref: "prod", data: data, threads: 1)
        XCTAssertEqual(write.parent?.hex, after)
        func gramDistance(_ a: [(layer: String, u: Tensor<Double>, sigma: [Double], d: Int, k: Int?)], _ b: [LayerBasis]) -> Double {
            var worst = 0.0
            for (s, o) in zip(a, b) {
                let gs = LayerBasis(layer: s.layer, dimension: s.d, u: s.u, sigma: s.sigma, rowCount: 0).gram(), go = o.gram()
                var diff = 0.0, norm = 0.0
                for (x, y) in zip(gs.scalars, go.scalars) { diff += (x - y) * (x - y); norm += y * y }
                worst = max(worst, diff.squareRoot() / norm.squareRoot())
            }
            return worst
        }
        let stored = try repo.store.bases(of: write.version)
        XCTAssertEqual(stored.map(\.layer), expected.map(\.layer))
        XCTAssertLessThanOrEqual(gramDistance(stored, expected), 1e-12)
        XCTAssertGreaterThan(gramDistance(stored, everything), 1e-4, "40 of \(train.count) samples make a visible difference")

        // Three shards over the retained samples reduce to the same bases; their sample counts add up to them.
        var partials: [PartialGram] = []
        for i in 0..<3 { partials.append(try repo.partialBases(ref: "prod", data: data, shard: i, of: 3, threads: 1)) }
        XCTAssertEqual(partials.reduce(0) { $0 + $1.samples }, train.count - 40)
        let (reducedWrite, _) = try repo.reduceBases(ref: "prod", data: data, partials: partials, threads: 1)
        XCTAssertLessThanOrEqual(gramDistance(try repo.store.bases(of: reducedWrite.version), expected), 1e-10)
    }
}
