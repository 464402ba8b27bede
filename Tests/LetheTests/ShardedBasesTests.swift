import Foundation
import XCTest
import LetheNN
import LetheTensor
import LetheUnlearning
@testable import Lethe

/// Sharded bases: N partial Gram passes, written to files and summed, give the bases of one pass.
final class ShardedBasesTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testFourShardsGiveTheBasesOfOnePass() throws {
        let repo = try Repository.initialize(in: dir, origin: "lethe.test/shards")
        let data = try LoadedData.load("digits")
        var spec = ModelSpec(arch: "mlp")
        spec.hidden = [64, 32]
        let model = try Model(spec: spec, inputShape: data.splits.train.sampleShape, classes: data.splits.train.classCount, seed: 0)
        _ = try Training.train(model, on: data.splits.train,
                               config: TrainingConfig(epochs: 3, batchSize: 128, learningRate: 0.05, schedule: .constant, seed: 0))
        let trained = try repo.commitTrained(model, data: data, ref: "prod", message: "test model")

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
        XCTAssertEqual(try repo.head("prod"), trained.version, "partial passes change nothing")
        let onePass = try PGUEngine.computeBases(model: model, images: data.splits.train.images).map { $0.truncated() }

        // Refusals: a missing shard, a repeated one; nothing moves.
        XCTAssertThrowsError(try repo.reduceBases(ref: "prod", data: data, partials: Array(partials.prefix(3)), threads: 1)) {
            XCTAssertTrue("\($0)".contains("missing 3"), "\($0)")
        }
        XCTAssertThrowsError(try repo.reduceBases(ref: "prod", data: data, partials: partials + [partials[1]], threads: 1)) {
            XCTAssertTrue("\($0)".contains("repeated 1"), "\($0)")
        }
        XCTAssertEqual(try repo.head("prod"), trained.version)

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
}
