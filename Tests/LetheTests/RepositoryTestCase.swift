import Foundation
import XCTest
import LetheNN
@testable import Lethe

/// A test case with a fresh temporary directory per test, and a repository in it holding a small
/// digits `mlp` trained for 3 epochs under `prod`.
class RepositoryTestCase: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-\(type(of: self))-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A repository in `dir` with a digits `mlp` (64-32 hidden) trained 3 epochs, committed under `prod`.
    func digitsRepository(origin: String) throws -> (repo: Repository, data: LoadedData, model: Model, version: ObjectID) {
        let repo = try Repository.initialize(in: dir, origin: origin)
        let data = try LoadedData.load("digits")
        var spec = ModelSpec(arch: "mlp")
        spec.hidden = [64, 32]
        let model = try Model(spec: spec, inputShape: data.splits.train.sampleShape, classes: data.splits.train.classCount, seed: 0)
        _ = try Training.train(model, on: data.splits.train,
                               config: TrainingConfig(epochs: 3, batchSize: 128, learningRate: 0.05, schedule: .constant, seed: 0))
        let trained = try repo.commitTrained(model, data: data, ref: "prod", message: "test model")
        return (repo, data, model, trained.version)
    }
}
