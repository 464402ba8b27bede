import XCTest
import LetheTensor
@testable import LetheUnlearning

final class PGULossTests: XCTestCase {
    /// Central finite differences of the loss against the analytic dLogits, in both loss forms.
    func testGradientMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 11)
        var z = Tensor<Float>(zeros: [3, 5])
        z.scalars.withUnsafeMutableBufferPointer { rng.fillNormal($0, std: 2) }
        let labels = [0, 3, 4]
        let loss = PGULoss()
        for depoison in [false, true] {
            let (_, grad) = loss.evaluate(logits: z, labels: labels, depoison: depoison)
            for i in 0..<z.count {
                let eps: Float = 1e-2
                var zp = z, zm = z
                zp.scalars[i] += eps; zm.scalars[i] -= eps
                let fd = (loss.evaluate(logits: zp, labels: labels, depoison: depoison).loss
                          - loss.evaluate(logits: zm, labels: labels, depoison: depoison).loss) / Double(2 * eps)
                XCTAssertEqual(Double(grad.scalars[i]), fd, accuracy: 2e-4 + 1e-3 * abs(fd), "depoison=\(depoison) index \(i)")
            }
        }
    }

    func testLossValuesAtKnownPoints() {
        // Uniform prediction over 4 classes: p_y = 0.25.
        let z = Tensor<Float>(zeros: [1, 4])
        let (l, _) = PGULoss().evaluate(logits: z, labels: [1], depoison: false)
        XCTAssertEqual(l, -log(1 - 0.25 + 0.05) + 0.2 * -log(4.0), accuracy: 1e-9)
        let (ld, _) = PGULoss().evaluate(logits: z, labels: [1], depoison: true)
        XCTAssertEqual(ld, -log(1 - 0.25 + 0.05) + 0.2 * log(3.0), accuracy: 1e-9)
    }
}

final class PGUEngineTests: XCTestCase {
    func makeModel() -> (TinyMLP, LabeledSet, LabeledSet, [String: LayerBasis]) {
        let all = blobs(n: 1000, d: 10, classes: 4, noise: 1.6, seed: 21)
        let train = all.subset(Array(0..<600)), val = all.subset(Array(600..<1000))
        let model = TinyMLP(d: 10, h: 32, c: 4, seed: 3)
        model.train(train, epochs: 60, lr: 0.1, batch: 32, seed: 4)
        let bases = try! PGUEngine.computeBases(model: model, images: train.images)
        return (model, train, val, Dictionary(uniqueKeysWithValues: bases.map { ($0.layer, $0) }))
    }

    /// Normalized steps stretch a projected gradient back to the length it had before the
    /// projection, by at most `normalizedScaleCap`: a cap of 1 leaves every projected gradient as
    /// it is (the plain step), a cap above every stretch changes nothing, one in between changes the run.
    func testNormalizedScaleCapBoundsTheStretch() throws {
        let (model, train, val, bases) = makeModel()
        let start = model.params
        let forget = train.subset(Array(0..<60))
        // The per-epoch losses of a fixed-γ run (they follow every step).
        func losses(_ scaling: PGUConfiguration.StepScaling, cap: Double?) throws -> [Double] {
            model.params = start
            var config = PGUConfiguration()
            config.gamma = .fixed(0.9)
            config.stepScaling = scaling
            config.normalizedScaleCap = cap
            config.maxEpochs = 8
            config.batchSize = 16
            config.evaluationWindow = 1  // evaluate every epoch
            let result = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
            return try XCTUnwrap(result.trials.first).history.map(\.loss)
        }
        let plain = try losses(.plain, cap: nil), free = try losses(.normalized, cap: nil)
        XCTAssertGreaterThan(plain.count, 1)
        XCTAssertNotEqual(free, plain, "normalized steps differ from plain ones here")
        XCTAssertEqual(try losses(.normalized, cap: 1), plain, "a cap of 1 is the plain step")
        XCTAssertEqual(try losses(.normalized, cap: 1e6), free, "a cap above every stretch changes nothing")
        let mid = try losses(.normalized, cap: 2)
        XCTAssertNotEqual(mid, free)
        XCTAssertNotEqual(mid, plain)
    }

    func testFixedGammaRunIsOrthogonalDeterministicAndFreezesBiases() throws {
        let (model, train, val, bases) = makeModel()
        let forget = train.subset(Array(0..<60))
        let biases = (model.parameterValues("fc1.bias"), model.parameterValues("fc2.bias"))
        var config = PGUConfiguration()
        config.gamma = .fixed(0.5)
        config.stepScaling = .plain
        config.maxEpochs = 20
        config.batchSize = 16
        config.collapseMargin = 0.05  // 400 held-out samples: one point is 4 samples
        let engine = PGUEngine(model: model, configuration: config)
        let before = model.params
        let result = try engine.run(bases: bases, forget: forget, heldOut: val)
        XCTAssertEqual(result.trials.count, 1)
        XCTAssertEqual(result.layers.map(\.layer), ["fc1", "fc2"])
        for l in result.layers {
            XCTAssertLessThanOrEqual(l.rho, 1e-5, "layer \(l.layer)")
            // What is left of ρ is the Float32 rounding of the stored weights.
            let floor = try XCTUnwrap(l.roundingFloor, "layer \(l.layer)")
            XCTAssertEqual(log10(l.rho / floor), 0, accuracy: 0.5, "layer \(l.layer): rho \(l.rho), floor \(floor)")
            XCTAssertGreaterThan(l.k, 0)
            XCTAssertLessThan(l.k, l.dimension + 1)
        }
        if result.status == .applied {
            XCTAssertFalse(result.updatedWeights.isEmpty, "an applied run changes weights")
            XCTAssertEqual(model.parameterValues("fc1.bias"), biases.0)
            XCTAssertEqual(model.parameterValues("fc2.bias"), biases.1)
        }
        // Determinism: the same run from the same start gives bit-identical weights.
        let after = model.params
        model.params = before
        let again = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
        XCTAssertEqual(model.params, after)
        XCTAssertEqual(again.trials.first?.epochs, result.trials.first?.epochs)
        // Retained bases equal a direct computation on the retained rows.
        let retainedDirect = PGUEngine.layerGrams(model: TinyMLPSnapshot.copy(before, of: model), images: train.subset(Array(60..<600)).images)
        let direct = try LayerBasis(layer: "fc1", gram: retainedDirect["fc1"]!.matrix, rowCount: 540)
        let down = result.retainedBases.first { $0.layer == "fc1" }!
        for i in 0..<min(5, down.rank) {
            XCTAssertEqual(down.sigma[i], direct.sigma[i], accuracy: 1e-6 * direct.sigma[0])
        }
    }

    /// A request that fails the ρ tolerance on rounding alone says so, and changes nothing.
    func testRhoFailureAtTheRoundingFloorNamesIt() throws {
        let (model, train, val, bases) = makeModel()
        let start = model.params
        var config = guardConfiguration(seed: 1, maxEpochs: 20)
        config.collapseMargin = 0.05
        config.tolerance = 1e-10  // below any Float32 rounding floor
        let result = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: train.subset(Array(0..<60)), heldOut: val)
        guard case .failed(let why) = result.status else { return XCTFail("a tolerance of 1e-10 cannot be met: \(result.status)") }
        XCTAssertTrue(why.hasPrefix("max orthogonality residual "), why)
        XCTAssertTrue(why.contains("of its weights' norm, and rounding them to Float32 alone leaves about"), why)
        XCTAssertTrue(model.params == start, "nothing is committed")
    }

    func testInvalidParametersAreRejected() {
        let (model, train, val, bases) = makeModel()
        var config = PGUConfiguration()
        config.gamma = .fixed(1.5)
        XCTAssertThrowsError(try PGUEngine(model: model, configuration: config).run(bases: bases, forget: train.subset([0]), heldOut: val)) {
            XCTAssertEqual($0 as? UnlearningError, .invalidParameter("gamma 1.5 outside (0, 1]"))
        }
        config.gamma = .fixed(0.5)
        XCTAssertThrowsError(try PGUEngine(model: model, configuration: config).run(bases: [:], forget: train.subset([0]), heldOut: val)) {
            XCTAssertEqual($0 as? UnlearningError, .invalidParameter("no cached basis for layer fc1"))
        }
        for (cap, interval, message) in [(0.5, 5, "normalized scale cap 0.5 must be a finite number at least 1 (1: plain steps)"),
                                         (.infinity, 5, "normalized scale cap inf must be a finite number at least 1 (1: plain steps)"),
                                         (2.0, 0, "reconfirmation interval 0 must be at least 1")] {
            var c = PGUConfiguration()
            c.normalizedScaleCap = cap
            c.reconfirmationInterval = interval
            XCTAssertThrowsError(try PGUEngine(model: model, configuration: c).run(bases: bases, forget: train.subset([0]), heldOut: val)) {
                XCTAssertEqual($0 as? UnlearningError, .invalidParameter(message))
            }
        }
    }

    func testAutoGammaRecordsEveryTrialAndPicksTheLargestThatMet() throws {
        let (model, train, val, bases) = makeModel()
        var config = PGUConfiguration()
        config.gamma = .auto(low: 0.3, high: 0.99, maxTrials: 4)
        config.maxEpochs = 15
        config.batchSize = 16
        config.collapseMargin = 0.05
        let result = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: train.subset(Array(0..<60)), heldOut: val)
        XCTAssertGreaterThanOrEqual(result.trials.count, 1)
        XCTAssertLessThanOrEqual(result.trials.count, 4)
        let met = result.trials.filter { $0.outcome == .met }.map(\.gamma)
        XCTAssertEqual(result.gamma, met.max())
        XCTAssertEqual(result.trials.first?.gamma ?? 0, 0.99, accuracy: 1e-12)
        // Descending: every trial before the chosen one failed as "too high".
        for t in result.trials.dropLast() { XCTAssertTrue(t.outcome == .abandoned || t.outcome == .budgetExhausted) }
        XCTAssertEqual(PGUConfiguration.gammaGrid(low: 0.3, high: 0.99).map { ($0 * 100).rounded() / 100 },
                       [0.99, 0.98, 0.96, 0.92, 0.84, 0.68, 0.36, 0.3])
    }

    /// Samples the model already gets right less often than held-out ones meet the rule at epoch 0:
    /// the request commits no weight change, its bases are still downdated; the old recipe (nil)
    /// takes at least one epoch.
    func testSamplesAlreadyBelowHeldOutAccuracyCommitNoChange() throws {
        let (model, train, val, bases) = makeModel()
        let predicted = model.predictions(on: train)
        let wrong = train.labels.indices.filter { predicted[$0] != train.labels[$0] }
        let right = train.labels.indices.filter { predicted[$0] == train.labels[$0] }
        // 10 misclassified and 20 correctly classified training samples: 66.7%, below held-out accuracy.
        let forget = train.subset(Array(wrong.prefix(10)) + Array(right.prefix(20)))
        let heldOut = model.accuracy(on: val)
        XCTAssertGreaterThan(heldOut, model.accuracy(on: forget), "the setup needs forget accuracy below held-out")
        let start = model.params
        var config = guardConfiguration(seed: 1, maxEpochs: 20)
        let result = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
        XCTAssertEqual(result.status, .applied)
        XCTAssertEqual(result.trials.map(\.epochs), [0])
        XCTAssertEqual(result.trials.first?.outcome, .met)
        XCTAssertTrue(result.updatedWeights.isEmpty)
        XCTAssertTrue(model.params == start, "no weight changed")
        XCTAssertEqual(result.maxRho, 0)
        XCTAssertEqual(result.forgetAccuracyAfter, result.forgetAccuracyBefore)
        let downdated = try XCTUnwrap(result.retainedBases.first { $0.layer == "fc1" })
        XCTAssertLessThan(downdated.sigma[0], try XCTUnwrap(bases["fc1"]).sigma[0], "the forget samples left the bases")
        config.stopWhenMetAtStart = nil
        let old = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
        XCTAssertGreaterThanOrEqual(old.trials.first?.epochs ?? 0, 1)
    }

    func testSampleRuleTargetIsTheWholeHeldOutAccuracyBeforeTheRequest() throws {
        let (model, train, val, bases) = makeModel()
        let wholeBefore = model.accuracy(on: val)
        let forget = train.subset(Array(0..<60))
        var config = PGUConfiguration()
        config.gamma = .fixed(0.5)
        config.maxEpochs = 10
        config.batchSize = 16
        config.collapseMargin = 0.05
        config.evaluationSubsample = 37  // the per-epoch held-out subsample: 37 of 400 samples
        let start = model.params
        let result = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
        XCTAssertEqual(try XCTUnwrap(result.heldOutTarget), wholeBefore, accuracy: 1e-12)
        XCTAssertEqual(result.heldOutAccuracyBefore * 37, (result.heldOutAccuracyBefore * 37).rounded(), accuracy: 1e-9, "subsample of 37")
        XCTAssertNotEqual(result.heldOutAccuracyBefore, wholeBefore, "this seed's subsample reads differently from the whole set")
        // A caller that measured the whole held-out accuracy passes it in: the same run, no extra pass.
        model.params = start
        let given = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val, heldOutAccuracy: wholeBefore)
        XCTAssertEqual(given.heldOutTarget, result.heldOutTarget)
        XCTAssertEqual(given.updatedWeights, result.updatedWeights)
        XCTAssertEqual(given.trials.map(\.epochs), result.trials.map(\.epochs))
        // The figure passed in is the target (here a deliberately different one).
        model.params = start
        let other = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val, heldOutAccuracy: wholeBefore - 0.25)
        XCTAssertEqual(try XCTUnwrap(other.heldOutTarget), wholeBefore - 0.25, accuracy: 1e-12)
        // Recipes recorded before the option (nil) keep the subsample's figure; the literal rule has no fixed target.
        model.params = start
        config.targetOnWholeHeldOut = nil
        let old = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
        XCTAssertEqual(old.heldOutTarget, old.heldOutAccuracyBefore)
        model.params = start
        config.stopAtStartingHeldOut = false
        XCTAssertNil(try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val).heldOutTarget)
        model.params = start
        config.mode = .wholeClass(1)
        XCTAssertNil(try PGUEngine(model: model, configuration: config).run(bases: bases, forget: train.subset(train.labels.indices.filter { train.labels[$0] == 1 }), heldOut: val).heldOutTarget)
    }

    /// Class forgetting stops on the class's held-out samples: when the run meets the rule, their
    /// accuracy (not the training samples') is at the target, and every trial figure is theirs.
    /// Recipes without the option (nil) track the training samples.
    func testClassRuleTracksTheClassesHeldOutSamples() throws {
        let (model, train, val, bases) = makeModel()
        let start = model.params
        let forget = train.filter { $0 == 1 }, heldOutClass = val.filter { $0 == 1 }
        var config = PGUConfiguration()
        config.mode = .wholeClass(1)
        config.gamma = .fixed(0.5)
        config.maxEpochs = 60
        config.batchSize = 16
        config.classTargetAccuracy = 0.05
        let result = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
        let trial = try XCTUnwrap(result.trials.first)
        XCTAssertEqual(trial.outcome, .met)
        XCTAssertEqual(trial.forgetAccuracy, model.accuracy(on: heldOutClass), accuracy: 1e-12, "the rule's figure is the held-out class's")
        XCTAssertLessThanOrEqual(trial.forgetAccuracy, 0.05)
        XCTAssertEqual(result.forgetAccuracyAfter, model.accuracy(on: forget), accuracy: 1e-12, "the result still reports the forget samples")
        XCTAssertEqual(result.forgetAccuracyBefore, { model.params = start; return model.accuracy(on: forget) }(), accuracy: 1e-12)
        // The old rule stops on the training samples, earlier: the held-out class is then still recognised more.
        model.params = start
        config.classTargetOnHeldOut = nil
        let old = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
        let oldTrial = try XCTUnwrap(old.trials.first)
        XCTAssertEqual(oldTrial.outcome, .met)
        XCTAssertEqual(oldTrial.forgetAccuracy, model.accuracy(on: forget), accuracy: 1e-12)
        XCTAssertLessThan(oldTrial.epochs, trial.epochs)
        XCTAssertGreaterThan(model.accuracy(on: heldOutClass), 0.05)
    }

    /// A fixed low γ with plain steps on 60 forget samples, whose collapse guard watches a tiny
    /// held-out subsample: 37 of `makeModel`'s 400 held-out samples (one sample is 2.7 points)
    /// against a 2-point margin (8 of the 400).
    func guardConfiguration(seed: UInt64, maxEpochs: Int) -> PGUConfiguration {
        var config = PGUConfiguration()
        config.gamma = .fixed(0.5)
        config.stepScaling = .plain
        config.maxEpochs = maxEpochs
        config.batchSize = 16
        config.seed = seed
        config.collapseMargin = 0.02
        config.evaluationSubsample = 37
        return config
    }

    /// The collapse guard watches a held-out subsample; a collapse is declared only when the whole
    /// held-out set confirms the drop; after it overrules one, it is asked again only when the
    /// subsample reads lower or 5 epochs later. Recipes without the option (nil) let the subsample decide.
    func testCollapseIsConfirmedOnTheWholeHeldOutSet() throws {
        let (model, train, val, bases) = makeModel()
        let start = model.params
        let wholeBefore = model.accuracy(on: val)
        var overruled = 0, skipped = 0
        for seed: UInt64 in 0..<6 {
            var config = guardConfiguration(seed: seed, maxEpochs: 12)
            config.confirmMetOnWholeHeldOut = nil  // the commit's own check: testMetTrialIsCheckedOnTheWholeHeldOutSet
            let forget = train.subset(Array(Int(seed) * 60..<Int(seed) * 60 + 60))
            model.params = start
            let confirmed = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
            let trial = try XCTUnwrap(confirmed.trials.first)
            // After an overruled drop the whole set is asked again only below that reading or 5 epochs on.
            var lastOverruled: (epoch: Int, subsample: Double)?
            for e in trial.history where e.heldOutAccuracy < confirmed.heldOutAccuracyBefore - config.collapseMargin {
                let recent = lastOverruled.map { e.heldOutAccuracy >= $0.subsample && e.epoch - $0.epoch < 5 } ?? false
                XCTAssertEqual(e.wholeHeldOutAccuracy == nil, recent, "seed \(seed) epoch \(e.epoch)")
                if recent { skipped += 1 }
                if let whole = e.wholeHeldOutAccuracy, whole >= wholeBefore - config.collapseMargin { lastOverruled = (e.epoch, e.heldOutAccuracy) }
            }
            for (i, e) in trial.history.enumerated() {
                guard let whole = e.wholeHeldOutAccuracy else { continue }
                // Asked only when the subsample reported a drop beyond the margin.
                XCTAssertLessThan(e.heldOutAccuracy, confirmed.heldOutAccuracyBefore - config.collapseMargin, "seed \(seed) epoch \(e.epoch)")
                XCTAssertEqual(whole * 400, (whole * 400).rounded(), accuracy: 1e-9)
                if i == trial.history.count - 1 && trial.outcome == .collapsed {
                    XCTAssertLessThan(whole, wholeBefore - config.collapseMargin, "seed \(seed): a collapse the whole set confirms")
                } else {
                    XCTAssertGreaterThanOrEqual(whole, wholeBefore - config.collapseMargin, "seed \(seed): overruled, the run went on")
                    overruled += 1
                }
            }
            if trial.outcome == .collapsed { XCTAssertNotNil(trial.history.last?.wholeHeldOutAccuracy, "seed \(seed): no collapse without the whole set's word") }
            // The same request with the subsample alone deciding (recipes recorded before the option).
            config.confirmCollapseOnWholeHeldOut = nil
            model.params = start
            let subsampleOnly = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
            let old = try XCTUnwrap(subsampleOnly.trials.first)
            XCTAssertTrue(old.history.allSatisfy { $0.wholeHeldOutAccuracy == nil })
            // Both runs agree until the subsample first reports a drop; there the old rule stops.
            guard let firstIndex = trial.history.firstIndex(where: { $0.wholeHeldOutAccuracy != nil }) else {
                XCTAssertEqual(old.history, trial.history, "seed \(seed): no confirmation asked, the same run")
                continue
            }
            XCTAssertEqual(old.outcome, .collapsed, "seed \(seed)")
            XCTAssertEqual(old.epochs, trial.history[firstIndex].epoch, "seed \(seed): the subsample alone stops at its first drop")
            var shared = Array(trial.history[...firstIndex])
            shared[shared.count - 1].wholeHeldOutAccuracy = nil
            XCTAssertEqual(old.history, shared, "seed \(seed)")
        }
        XCTAssertGreaterThan(overruled, 0, "at least one subsample drop is overruled by the whole set")
        XCTAssertGreaterThan(skipped, 0, "at least one drop no lower than an overruled one is not asked again")
    }

    /// A sample trial that meets the rule is committed only when the whole held-out set is within
    /// the margin; the guard inside the trial watches a subsample, which can under-read a drop.
    /// Recipes without the option (nil) commit what the subsample let through.
    func testMetTrialIsCheckedOnTheWholeHeldOutSet() throws {
        let (model, train, val, bases) = makeModel()
        let start = model.params
        let wholeBefore = model.accuracy(on: val)
        var letThrough = 0
        for seed: UInt64 in 0..<10 {
            var config = guardConfiguration(seed: seed, maxEpochs: 40)
            let forget = train.subset(Array(Int(seed) * 60..<Int(seed) * 60 + 60))
            model.params = start
            let checked = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
            let trial = try XCTUnwrap(checked.trials.first)
            if checked.status == .applied {
                XCTAssertGreaterThanOrEqual(model.accuracy(on: val), wholeBefore - config.collapseMargin - 1e-12, "seed \(seed)")
                XCTAssertEqual(try XCTUnwrap(trial.history.last?.wholeHeldOutAccuracy), model.accuracy(on: val), accuracy: 0.0025,
                               "seed \(seed): the check read the committed weights (before the exact re-projection)")
            } else {
                XCTAssertEqual(model.params, start, "seed \(seed): a refused request leaves the weights alone")
            }
            config.confirmMetOnWholeHeldOut = nil
            model.params = start
            let unchecked = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
            let old = try XCTUnwrap(unchecked.trials.first)
            guard old.outcome == .met else {
                XCTAssertEqual(old.history, trial.history, "seed \(seed): the check is only asked of a met trial")
                continue
            }
            let whole = model.accuracy(on: val)
            if whole < wholeBefore - config.collapseMargin {
                letThrough += 1
                XCTAssertEqual(trial.outcome, .collapsed, "seed \(seed): the same trial, caught")
                XCTAssertNotEqual(checked.status, .applied, "seed \(seed)")
                if let w = trial.history.last?.wholeHeldOutAccuracy { XCTAssertLessThan(w, wholeBefore - config.collapseMargin) }
            } else {
                XCTAssertEqual(trial.outcome, .met, "seed \(seed)")
                XCTAssertEqual(checked.status, unchecked.status, "seed \(seed)")
            }
        }
        print("met trials the subsample let through below the margin, now refused: \(letThrough)")
        XCTAssertGreaterThan(letThrough, 0, "at least one seed's subsample under-reads the drop")
    }

    /// Class forgetting: a trial that cost the other classes more than `classLayerExclusion` is
    /// followed by the same γ without the layer whose update moved its retained outputs most,
    /// continued from the trial's weights minus that update; a left-out layer stays out, is
    /// reported with γ 1 and an unchanged weight, and of two met runs at one γ the cheaper is
    /// committed. Without the option the search behaves as before.
    func testClassSearchLeavesOutTheLayerWithTheLargestRetainedShift() throws {
        let (model, train, val, bases) = makeModel()
        let start = model.params
        func run(_ c: Int, exclusion: Double?, target: Double = 0.02, lead: Double = 1.5) throws -> (PGUResult, [String]) {
            model.params = start
            var config = PGUConfiguration()
            config.mode = .wholeClass(c)
            config.gamma = .auto(low: 0.3, high: 0.99, maxTrials: 8)
            config.maxEpochs = 60
            config.batchSize = 16
            config.classTargetAccuracy = target
            config.classLayerExclusion = exclusion
            config.classExclusionLead = lead
            var lines: [String] = []
            let engine = PGUEngine(model: model, configuration: config)
            engine.progress = { lines.append($0) }
            return (try engine.run(bases: bases, forget: train.filter { $0 == c }, heldOut: val), lines)
        }
        // Class 2: the first trial (γ 0.99) costs the other classes 5.7 points, a collapse; fc1's
        // retained shift is 0.21 against fc2's 0.004: fc1 is left out, and the search goes on without it.
        let (result, lines) = try run(2, exclusion: 0.02)
        XCTAssertEqual(result.status, .applied)
        let first = try XCTUnwrap(result.trials.first)
        XCTAssertEqual(first.outcome, .collapsed)
        XCTAssertNil(first.frozenLayers)
        XCTAssertEqual(result.trials[1].gamma, first.gamma, "the same γ again")
        XCTAssertEqual(result.trials[1].learningRateScale, first.learningRateScale, "not a slower retry")
        XCTAssertEqual(result.trials[1].continuedFrom, 1)
        XCTAssertTrue(result.trials.dropFirst().allSatisfy { $0.frozenLayers == ["fc1"] })
        XCTAssertEqual(lines.filter { $0.contains("fc1 is left out") }.count, 1)
        let fc1 = try XCTUnwrap(result.layers.first { $0.layer == "fc1" })
        XCTAssertEqual(fc1.gamma, 1)
        XCTAssertEqual(fc1.k, 10)
        XCTAssertEqual(fc1.updateNorm, 0)
        XCTAssertEqual(model.params["fc1.weight"], start["fc1.weight"])
        XCTAssertNotEqual(model.params["fc2.weight"], start["fc2.weight"])
        XCTAssertLessThanOrEqual(result.maxRho, 1e-5)
        XCTAssertGreaterThanOrEqual(result.heldOutAccuracyAfter, result.heldOutAccuracyBefore - 0.02)
        // Without the option the same collapse is retried at half the learning rate, fc1 moving.
        let (old, _) = try run(2, exclusion: nil)
        XCTAssertEqual(old.trials.first?.history, first.history)
        XCTAssertEqual(old.trials[1].learningRateScale, 0.5)
        XCTAssertTrue(old.trials.allSatisfy { $0.frozenLayers == nil })

        // Class 1 (target 5%) with any cost too much: the run without fc1 is met but costs more
        // than the one with it, which is committed.
        let (cheaper, cheaperLines) = try run(1, exclusion: 0.001, target: 0.05)
        let n = cheaper.trials.count
        let met = cheaper.trials[n - 2], retry = cheaper.trials[n - 1]
        XCTAssertEqual(met.outcome, .met)
        XCTAssertEqual(retry.outcome, .met)
        XCTAssertEqual(retry.gamma, met.gamma)
        XCTAssertEqual(retry.frozenLayers, ["fc1"])
        XCTAssertLessThan(retry.heldOutAccuracy, met.heldOutAccuracy)
        XCTAssertEqual(cheaper.heldOutAccuracyAfter, met.heldOutAccuracy)
        XCTAssertNotEqual(model.params["fc1.weight"], start["fc1.weight"])
        XCTAssertEqual(cheaperLines.filter { $0.contains("cost the other classes more than trial \(n - 1): nothing more left out") }.count, 1)

        // fc1 must lead fc2 by 100×: it does not (0.21 against 0.004 is about 50×), so the collapse is
        // retried at half the learning rate, nothing left out.
        let (noLead, noLeadLines) = try run(2, exclusion: 0.02, lead: 100)
        XCTAssertEqual(noLead.trials.first?.history, first.history)
        XCTAssertEqual(noLead.trials[1].learningRateScale, 0.5)
        XCTAssertTrue(noLead.trials.allSatisfy { $0.frozenLayers == nil })
        XCTAssertTrue(noLeadLines.contains { $0.contains("no layer leads the next by 1e+02x") })
    }

    /// The exclusion's lead rule on the retained shifts measured in Fashion-MNIST `cnn` class-0
    /// searches (7de9fe4): the first convolution leads clearly, a second exclusion helped at 1.84×
    /// (seed 1) and hurt at 1.07× (seed 2).
    func testLayerToLeaveOutNeedsAClearLead() {
        XCTAssertEqual(PGUEngine.layerToLeaveOut(shifts: [0.1624, 0.0130, 0.0077, 0.0377], lead: 1.5), 0)
        XCTAssertEqual(PGUEngine.layerToLeaveOut(shifts: [0.0275, 0.0154, 0.0505], lead: 1.5), 2)
        XCTAssertNil(PGUEngine.layerToLeaveOut(shifts: [0.0261, 0.0160, 0.0279], lead: 1.5))
        XCTAssertEqual(PGUEngine.layerToLeaveOut(shifts: [0.0261, 0.0160, 0.0279], lead: 1), 2, "lead 1: the largest, as before the rule")
        XCTAssertNil(PGUEngine.layerToLeaveOut(shifts: [0.5], lead: 1), "a single moving layer is never left out")
        XCTAssertNil(PGUEngine.layerToLeaveOut(shifts: [], lead: 1))
    }

    /// In a chain of requests the collapse margin bounds the whole drop since the chain's start:
    /// nothing left → refused before any trial, weights untouched; something left → the guard fires
    /// at the narrower floor and the target is the chain's starting accuracy; a start at or below
    /// the current accuracy changes nothing.
    func testChainOfRequestsSharesOneCollapseMargin() throws {
        let (model, train, val, bases) = makeModel()
        let start = model.params
        let wholeBefore = model.accuracy(on: val)
        let forget = train.subset(Array(0..<60))
        var config = PGUConfiguration()
        config.gamma = .fixed(0.3)
        config.stepScaling = .plain
        config.maxEpochs = 30
        config.batchSize = 16
        config.collapseMargin = 0.2
        config.stopAtStartingHeldOut = false   // the literal rule: the target stays put, only the margin is at stake
        let alone = try PGUEngine(model: model, configuration: config).run(bases: bases, forget: forget, heldOut: val)
        XCTAssertEqual(alone.status, .applied)
        let drop = wholeBefore - model.accuracy(on: val)
        XCTAssertGreaterThan(drop, 0.05, "the lone request costs more than 5 points and stays within its own 20")
        XCTAssertLessThan(drop, 0.2)

        // 15 of the 20 points already spent by the chain: the same request collapses, nothing committed.
        model.params = start
        var spent = config
        spent.chainHeldOutAccuracy = wholeBefore + 0.15
        let narrow = try PGUEngine(model: model, configuration: spent).run(bases: bases, forget: forget, heldOut: val)
        XCTAssertEqual(narrow.trials.map(\.outcome), [.collapsed])
        XCTAssertLessThan(try XCTUnwrap(narrow.trials.first?.heldOutAccuracy), wholeBefore - 0.05)
        guard case .failed = narrow.status else { return XCTFail("a collapsed chain request must fail") }
        XCTAssertTrue(narrow.updatedWeights.isEmpty)
        XCTAssertEqual(model.params, start)

        // All 20 spent (21 below the chain's start): refused before any trial.
        var exhausted = config
        exhausted.chainHeldOutAccuracy = wholeBefore + 0.21
        let refused = try PGUEngine(model: model, configuration: exhausted).run(bases: bases, forget: forget, heldOut: val)
        guard case .failed(let why) = refused.status else { return XCTFail("a chain past its margin must be refused") }
        XCTAssertTrue(why.contains("where this chain of requests started"), why)
        XCTAssertTrue(refused.trials.isEmpty)
        XCTAssertEqual(model.params, start)

        // A chain that started at or below today's accuracy: the lone request's run, step for step.
        var level = config
        level.chainHeldOutAccuracy = wholeBefore - 0.02
        let same = try PGUEngine(model: model, configuration: level).run(bases: bases, forget: forget, heldOut: val)
        XCTAssertEqual(same.updatedWeights, alone.updatedWeights)
        XCTAssertEqual(same.trials.map(\.history), alone.trials.map(\.history))

        // With the target fixed at the starting held-out accuracy (the default), a chain's start is the target.
        model.params = start
        var target = PGUConfiguration()
        target.gamma = .fixed(0.3)
        target.maxEpochs = 30
        target.batchSize = 16
        target.collapseMargin = 0.2
        target.chainHeldOutAccuracy = wholeBefore + 0.05
        let raised = try PGUEngine(model: model, configuration: target).run(bases: bases, forget: forget, heldOut: val)
        XCTAssertEqual(try XCTUnwrap(raised.heldOutTarget), wholeBefore + 0.05, accuracy: 1e-12)
    }
}

/// A fresh TinyMLP holding given parameters (for computing Grams of the original model).
enum TinyMLPSnapshot {
    static func copy(_ params: [String: Tensor<Float>], of model: TinyMLP) -> TinyMLP {
        let m = TinyMLP(d: model.d, h: model.h, c: model.c, seed: 0)
        m.params = params
        return m
    }
}
