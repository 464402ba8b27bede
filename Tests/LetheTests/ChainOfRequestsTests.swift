import Foundation
import XCTest
import LetheNN
import LetheUnlearning
@testable import Lethe

/// `forget` judges a sample request as part of the chain of sample requests that led to the ref's
/// version: the chain's starting held-out accuracy comes from the ledger and is recorded with the request.
final class ChainOfRequestsTests: RepositoryTestCase {
    func testTheChainStartsAtTheFirstRequestAndSurvivesRebasing() throws {
        let (repo, data, _, _) = try digitsRepository(origin: "lethe.test/chain")
        let train = data.splits.train
        _ = try repo.storeBases(ref: "prod", data: data, threads: 1)

        var config = PGUConfiguration()
        config.maxEpochs = 30
        config.collapseMargin = 0.1
        func forget(_ range: Range<Int>, chained: Bool = true) throws -> (ForgetReport, UnlearningRecipe, Double) {
            var options = ForgetOptions(ref: "prod", selection: .samples(Array(train.ids[range])), recipe: UnlearningRecipe(configuration: config))
            options.chained = chained
            let report = try repo.forget(options, data: data)
            let outcome = try XCTUnwrap(try repo.ledger.outcome(ofRequest: try XCTUnwrap(report.requestID)))
            let recipe = try UnlearningRecipe.decode(outcome.hyperparameters)
            let valBefore = try XCTUnwrap(outcome.metrics.first { $0.name == "val_accuracy" }?.before)
            return (report, recipe, valBefore)
        }

        let (first, firstRecipe, start) = try forget(10..<50)
        XCTAssertEqual(first.status, .applied)
        XCTAssertNil(firstRecipe.configuration.chainHeldOutAccuracy, "the first request of a trained version starts the chain")

        let (second, secondRecipe, _) = try forget(50..<90)
        XCTAssertEqual(second.status, .applied)
        XCTAssertEqual(secondRecipe.configuration.chainHeldOutAccuracy, start, "recorded: the held-out accuracy before the first request")

        // New bases of the same weights do not start a new chain.
        let (rebased, _) = try repo.storeBases(ref: "prod", data: data, threads: 1)
        XCTAssertEqual(rebased.parent?.hex, second.versionAfter)
        let (_, thirdRecipe, _) = try forget(90..<130)
        XCTAssertEqual(thirdRecipe.configuration.chainHeldOutAccuracy, start)

        // Judged on its own when asked.
        let (_, aloneRecipe, _) = try forget(130..<170, chained: false)
        XCTAssertNil(aloneRecipe.configuration.chainHeldOutAccuracy)
    }
}
