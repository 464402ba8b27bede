import Foundation
import LetheCrypto
import LetheLedger
import LetheNN
import LetheStore
import LetheTensor
import LetheUnlearning

/// Everything a PGU run on a stored version needs, reproducible from what the ledger records:
/// the parent version, the forget samples in order, the hyperparameters, the held-out split
/// seed and the thread count.
public struct UnlearningRecipe: Sendable, Equatable, Codable {
    /// Every PGU hyperparameter (mode, γ choice, epochs, learning rates, seed, tolerance...).
    public var configuration: PGUConfiguration
    /// Seed of the stratified split of the test set into validation (held-out) and test halves.
    public var splitSeed: UInt64
    /// Fraction of every test class that goes to the validation half.
    public var splitFraction: Double
    /// OpenBLAS and worker threads (results are bit-identical for the same count).
    public var threads: Int
    /// Classes left out of the held-out and test halves: classes a whole-class request already
    /// forgot in the parent's history (their ~0 % accuracy would otherwise make every later
    /// sample request look like a collapse). Nil in recipes recorded before this field existed.
    public var excludedClasses: [Int]?
    /// Which samples are the stopping rule's held-out set: nil or `.testHalf` — the validation half
    /// of the test split (`splitSeed`, `splitFraction`; recipes recorded before this field existed);
    /// `.validation` — the dataset's own validation split (`SOURCE:N+V`), with the whole test split
    /// as the test set. `forget` chooses `.validation` whenever the dataset has one.
    public var heldOut: HeldOutSource?
    /// OpenBLAS's kernel set when the request ran (`BLASKernel.current`): results are bit-identical
    /// only under the same kernel and thread count. Nil in recipes recorded before this field.
    public var blasKernel: String?

    /// Where the held-out set of a run comes from.
    public enum HeldOutSource: String, Sendable, Codable {
        case testHalf = "test-half"
        case validation
    }

    /// A recipe.
    public init(configuration: PGUConfiguration, splitSeed: UInt64 = 0, splitFraction: Double = 0.5, threads: Int = 1) {
        self.configuration = configuration; self.splitSeed = splitSeed; self.splitFraction = splitFraction; self.threads = threads
    }

    /// Whether a run under `other` held out the same samples (its held-out accuracy is comparable).
    public func holdsOutSameSamples(as other: UnlearningRecipe) -> Bool {
        (heldOut ?? .testHalf) == (other.heldOut ?? .testHalf) && (excludedClasses ?? []) == (other.excludedClasses ?? [])
            && ((heldOut ?? .testHalf) == .validation || (splitSeed == other.splitSeed && splitFraction == other.splitFraction))
    }

    /// The ledger's `hyperparameters` JSON (sorted keys, so equal recipes give equal text).
    public func hyperparametersJSON() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? String(decoding: e.encode(self), as: UTF8.self)) ?? "{}"
    }

    /// The ledger's `seeds` JSON.
    public var seedsJSON: String { "{\"held_out_split\":\(splitSeed),\"pgu\":\(configuration.seed)}" }

    /// Decodes a recipe recorded by `hyperparametersJSON()`.
    ///
    /// A recipe recorded by an older build lacks the hyperparameters added since. A missing
    /// optional one stays nil, which by convention means the behaviour from before it existed
    /// (e.g. no stretch cap); a missing required one takes today's default (a re-run then differs
    /// only if that default changes the computation).
    public static func decode(_ text: String) throws(EngineError) -> UnlearningRecipe {
        if let r = try? JSONDecoder().decode(UnlearningRecipe.self, from: Data(text.utf8)) { return r }
        do {
            let e = JSONEncoder()
            guard var recorded = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                  let defaults = try JSONSerialization.jsonObject(with: e.encode(PGUConfiguration())) as? [String: Any] else {
                throw EngineError.invalid("recorded hyperparameters are not a JSON object")
            }
            let config = recorded["configuration"] as? [String: Any] ?? [:]
            var merged = defaults.merging(config) { _, new in new }
            func decoded(_ configuration: [String: Any]) throws -> UnlearningRecipe {
                var object = recorded
                object["configuration"] = configuration
                return try JSONDecoder().decode(UnlearningRecipe.self, from: JSONSerialization.data(withJSONObject: object))
            }
            // Take back every default the recipe decodes without: those keys are optional.
            for key in defaults.keys.sorted() where config[key] == nil {
                var without = merged
                without.removeValue(forKey: key)
                if (try? decoded(without)) != nil { merged = without }
            }
            recorded["configuration"] = merged
            return try decoded(merged)
        } catch {
            throw .invalid("recorded hyperparameters are not an engine recipe: \(error)")
        }
    }
}

/// The outcome of running a recipe on a version, before anything is committed.
struct Computation {
    var result: PGUResult
    /// The whole state_dict after the run (equal to the parent's when the run failed).
    var stateDict: [NamedTensor]
    /// The tensors that changed.
    var changed: [NamedTensor]
    /// The retained bases, ready to store.
    var bases: [BasisInput]
    var metrics: [MetricValue]
    var timings: [PhaseTiming]
    /// Max ρ over layers.
    var maxRho: Double { result.maxRho }
    var applied: Bool { result.status == .applied && result.maxRho <= tolerance }
    var tolerance: Double
}

/// A dataset loaded once per command, with its digest.
public struct LoadedData {
    /// Where it came from (`digits`, `fashion-mnist`, a path).
    public let source: String
    /// Train and test splits.
    public let splits: DatasetSplits
    /// Digest of the training split (what versions record).
    public let digest: String

    /// Already loaded splits from `source`.
    public init(source: String, splits: DatasetSplits) {
        self.source = source; self.splits = splits; digest = splits.train.digest.hex
    }

    /// Loads `source` with `DatasetLoader`.
    public static func load(_ source: String) throws(EngineError) -> LoadedData {
        let splits = try lift { try DatasetLoader.load(source) }
        return LoadedData(source: source, splits: splits)
    }

    /// The ledger's dataset row.
    var record: DatasetRecord {
        DatasetRecord(digest: digest, name: splits.train.name, sampleCount: splits.train.count, source: source)
    }
}

extension Repository {
    /// Sets the OpenBLAS and worker thread counts.
    static func setThreads(_ n: Int) {
        BLASThreads.set(n)
        Parallel.set(n)
    }

    /// Builds the model of a stored version (its spec, the dataset's input shape and classes) and loads its weights.
    func loadModel(_ id: ObjectID, data: LoadedData) throws(EngineError) -> Model {
        guard let specBytes = try lift({ try store.spec(of: id) }) else {
            throw .invalid("version \(id.short) has no model spec; import it with --spec or train it with 'lethe train --ref'")
        }
        let spec = try lift { try ModelSpec.decode(json: specBytes) }
        let model = try lift { try Model(spec: spec, inputShape: data.splits.train.sampleShape, classes: data.splits.train.classCount) }
        try lift { try model.load(stateDict: try store.tensors(of: id)) }
        return model
    }

    /// Checks that `data` is the dataset version `id` was trained on.
    func checkDataset(_ id: ObjectID, _ data: LoadedData) throws(EngineError) {
        let recorded = try lift { try store.version(id).metadata.datasetDigest }
        guard let recorded else {
            throw .invalid("version \(id.short) records no dataset digest; train it with 'lethe train --ref' or import it with --dataset-digest")
        }
        guard recorded == data.digest else {
            throw .invalid("dataset \(data.source) has digest \(data.digest.prefix(16))…, but version \(id.short) was trained on \(recorded.prefix(16))…")
        }
    }

    /// The cached bases of a version as the PGU engine wants them; a clear error when any projectable layer lacks one.
    func cachedBases(_ id: ObjectID, model: Model) throws(EngineError) -> [String: LayerBasis] {
        let stored = try lift { try store.bases(of: id) }
        var out: [String: LayerBasis] = [:]
        for b in stored {
            guard b.u.shape.count == 2, b.u.shape[0] == b.d, b.u.shape[1] == b.sigma.count else {
                throw .invalid("stored basis of layer \(b.layer) in version \(id.short) has U of shape \(b.u.shape) for d = \(b.d) and \(b.sigma.count) singular values")
            }
            out[b.layer] = LayerBasis(layer: b.layer, dimension: b.d, u: b.u, sigma: b.sigma, rowCount: 0)
        }
        let missing = model.unlearningLayers.map(\.name).filter { out[$0] == nil }
        guard missing.isEmpty else {
            throw .invalid("version \(id.short) has no cached bases for \(missing.joined(separator: ", ")); run 'lethe bases --ref REF --data DATASET' first")
        }
        return out
    }

    /// The held-out set the stopping rule uses and the test set, as `recipe` names them.
    static func heldOutAndTest(_ data: LoadedData, _ recipe: UnlearningRecipe) throws(EngineError) -> (Dataset, Dataset) {
        switch recipe.heldOut ?? .testHalf {
        case .testHalf:
            return data.splits.test.stratifiedSplit(fraction: recipe.splitFraction, seed: recipe.splitSeed)
        case .validation:
            guard let val = data.splits.validation else {
                throw .invalid("the request holds out \(data.source)'s validation split, but it has none: pass the same --data (SOURCE:N+V) it ran on")
            }
            return (val, data.splits.test)
        }
    }

    /// Runs `recipe` on version `parent` forgetting `positions` (indices into the training split, in order).
    /// The model is left holding the result.
    ///
    /// With `reference` (e.g. a model retrained without the forget set), the Jensen–Shannon
    /// divergence of the predictions on D_f and on the test half to that model's is measured
    /// before and after (metrics only; it does not influence the run).
    func compute(parent: ObjectID, data: LoadedData, positions: [Int], recipe: UnlearningRecipe,
                 reference: ObjectID? = nil, progress: ((String) -> Void)?) throws(EngineError) -> Computation {
        Repository.setThreads(recipe.threads)
        var clock = Date()
        func lap() -> Double { let now = Date(); defer { clock = now }; return now.timeIntervalSince(clock) }
        let model = try loadModel(parent, data: data)
        let bases = try cachedBases(parent, model: model)
        let load = lap()
        let train = data.splits.train
        var (val, test) = try Repository.heldOutAndTest(data, recipe)
        if let excluded = recipe.excludedClasses, !excluded.isEmpty {
            let drop = Set(excluded)
            func keep(_ d: Dataset) -> Dataset { d.subset(d.labels.indices.filter { !drop.contains(Int(d.labels[$0])) }, name: d.name) }
            val = keep(val); test = keep(test)
        }
        let forget = train.subset(positions, name: "forget")
        // Retained data: the training set minus this request's samples and every sample already
        // forgotten in the parent's history (a seeded subsample of 2000, for the MIA's members).
        let forgetSet = Set(positions)
        let earlier = try lift { try ledger.forgottenSampleIDs(inHistoryOf: parent.hex, dataset: data.digest) }
        var rng = SeededGenerator(seed: recipe.splitSeed ^ 0x5EED)
        let retainPositions = rng.permutation(train.count)
            .filter { !forgetSet.contains($0) && !earlier.contains(String(train.ids[$0])) }.prefix(2000).sorted()
        let retain = train.subset(Array(retainPositions), name: "retain")
        let before = try Probe.measure(model, forget: forget, retain: retain, val: val, test: test)
        let measureBefore = lap()
        progress?(String(format: "before: forget %.2f%%, val %.2f%%, test %.2f%%", 100 * before.forget, 100 * before.val, 100 * before.test))

        let engine = PGUEngine(model: model, configuration: recipe.configuration)
        engine.progress = progress
        // The before-probe just measured the held-out accuracy the sample rule's target needs.
        let result = try lift { try engine.run(bases: bases, forget: LabeledSet(forget), heldOut: LabeledSet(val), heldOutAccuracy: before.val) }
        let run = lap()
        let after = try Probe.measure(model, forget: forget, retain: retain, val: val, test: test)
        let measureAfter = lap()
        let state = model.stateDict()
        let changed = state.filter { result.updatedWeights[$0.name] != nil }
        let basisInputs = result.retainedBases.map { b in
            BasisInput(layer: b.layer, u: b.u, sigma: b.sigma, d: b.dimension, k: result.layers.first { $0.layer == b.layer }?.k)
        }
        var timings = [PhaseTiming(phase: "load", seconds: load), PhaseTiming(phase: "metrics_before", seconds: measureBefore)]
        for key in ["forget_gram", "downdate", "survival", "search", "search_gradients", "search_projection", "search_evaluation", "verify"] {
            if let s = result.timings[key] { timings.append(PhaseTiming(phase: key, seconds: s)) }
        }
        // Every γ trial, outcome included, is recorded as a phase (the ledger signs it with the outcome).
        for (i, t) in result.trials.enumerated() {
            let phase = "trial \(i + 1): gamma " + String(format: "%.4f lr x%g", t.gamma, t.learningRateScale) + " \(t.outcome.rawValue) after \(t.epochs) epochs"
                + String(format: " (forget %.4f, held-out %.4f)", t.forgetAccuracy, t.heldOutAccuracy)
                + (t.continuedFrom.map { ", continued from trial \($0)" } ?? "")
                + (t.frozenLayers.map { ", left out: " + $0.joined(separator: ", ") } ?? "")
            timings.append(PhaseTiming(phase: phase, seconds: t.seconds))
        }
        timings.append(PhaseTiming(phase: "pgu_total", seconds: run))
        timings.append(PhaseTiming(phase: "metrics_after", seconds: measureAfter))
        var metrics = Probe.metricValues(before: before, after: after, classes: train.classCount)
        if let reference {
            let ref = try loadModel(reference, data: data)
            let rf = try lift { try Training.evaluate(ref, on: forget) }, rt = try lift { try Training.evaluate(ref, on: test) }
            metrics.append(MetricValue(name: "js_to_reference_forget", before: UnlearningMetrics.jsDivergence(before.forgetProbabilities, rf.probabilities),
                                       after: UnlearningMetrics.jsDivergence(after.forgetProbabilities, rf.probabilities)))
            metrics.append(MetricValue(name: "js_to_reference_test", before: UnlearningMetrics.jsDivergence(before.testProbabilities, rt.probabilities),
                                       after: UnlearningMetrics.jsDivergence(after.testProbabilities, rt.probabilities)))
        }
        metrics.append(MetricValue(name: "pgu_forget_accuracy_subsample", before: result.forgetAccuracyBefore, after: result.forgetAccuracyAfter))
        metrics.append(MetricValue(name: "pgu_held_out_accuracy_subsample", before: result.heldOutAccuracyBefore, after: result.heldOutAccuracyAfter))
        // The accuracy the sample rule stopped against (held-out before the request, on the whole held-out set).
        if let t = result.heldOutTarget { metrics.append(MetricValue(name: "pgu_stopping_target", before: t, after: t)) }
        return Computation(result: result, stateDict: state, changed: changed, bases: basisInputs, metrics: metrics,
                           timings: timings, tolerance: recipe.configuration.tolerance)
    }
}

/// Accuracy and membership-inference measurements of a model on the sets of a request.
struct Probe {
    var forget: Double, retain: Double, val: Double, test: Double
    /// Entropy attack: fraction of D_f predicted members, nil when the attack found no signal.
    var entropyMIA: Double?
    /// Loss attack: ROC AUC of −loss separating D_f (positives) from the test half (negatives).
    var lossAUC: Double
    /// Prediction entropies of D_f.
    var forgetEntropies: [Double]
    /// Predicted class probabilities on D_f and on the test half.
    var forgetProbabilities: Tensor<Float>, testProbabilities: Tensor<Float>

    static func measure(_ model: Model, forget: Dataset, retain: Dataset, val: Dataset, test: Dataset) throws(EngineError) -> Probe {
        let f = try lift { try Training.evaluate(model, on: forget) }
        let r = try lift { try Training.evaluate(model, on: retain) }
        let v = try lift { try Training.evaluate(model, on: val) }
        let t = try lift { try Training.evaluate(model, on: test) }
        let fe = UnlearningMetrics.entropies(f.probabilities)
        let mia = MembershipInference.entropyAttack(retainEntropies: UnlearningMetrics.entropies(r.probabilities),
                                                    testEntropies: UnlearningMetrics.entropies(t.probabilities), forgetEntropies: fe)
        let auc = UnlearningMetrics.rocAUC(positive: f.perSampleLoss.map { -Double($0) }, negative: t.perSampleLoss.map { -Double($0) })
        return Probe(forget: f.accuracy, retain: r.accuracy, val: v.accuracy, test: t.accuracy, entropyMIA: mia.value,
                     lossAUC: auc, forgetEntropies: fe, forgetProbabilities: f.probabilities, testProbabilities: t.probabilities)
    }

    /// Bins of the D_f entropy histogram recorded per request (over [0, ln classes]).
    static let histogramBins = 20

    static func metricValues(before: Probe, after: Probe, classes: Int) -> [MetricValue] {
        var m = [
            MetricValue(name: "forget_accuracy", before: before.forget, after: after.forget),
            MetricValue(name: "retain_accuracy", before: before.retain, after: after.retain),
            MetricValue(name: "val_accuracy", before: before.val, after: after.val),
            MetricValue(name: "test_accuracy", before: before.test, after: after.test),
            MetricValue(name: "mia_entropy", before: before.entropyMIA, after: after.entropyMIA),
            MetricValue(name: "mia_entropy_no_signal", before: before.entropyMIA == nil ? 1 : 0, after: after.entropyMIA == nil ? 1 : 0),
            MetricValue(name: "mia_loss_auc", before: before.lossAUC, after: after.lossAUC),
        ]
        let high = log(Double(max(classes, 2)))
        let b = Histogram.counts(before.forgetEntropies, low: 0, high: high, bins: histogramBins)
        let a = Histogram.counts(after.forgetEntropies, low: 0, high: high, bins: histogramBins)
        m.append(MetricValue(name: "forget_entropy_hist_high", before: high, after: high))
        for i in 0..<histogramBins {
            m.append(MetricValue(name: String(format: "forget_entropy_hist_%02d", i), before: Double(b[i]), after: Double(a[i])))
        }
        return m
    }
}
