import Foundation
import LetheCommandLine
import LetheNN
import LetheTensor
import LetheUnlearning

/// `lethe unlearn`: applies PGU (or a baseline) to a model file and writes the new weights.
///
/// Works on files, without a store: the cached bases are computed from the training split in
/// one pass (or read with --bases from an earlier run's output). In a store, `lethe forget` does
/// the same with recorded bases and a ledger entry.
struct UnlearnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlearn",
        abstract: "Remove samples or a class from a model file with PGU or a baseline.",
        discussion: """
        The samples file lists training-sample ids (their index in the dataset source), one per line.
        Held-out accuracy for the stopping rule is measured on the validation half of the test split
        (stratified, seed 0, as `lethe forget` does by default); the metrics table also reports the test half and membership inference.
        """,
        options: [
            .option("model", short: "m", value: "file", help: "Weights (.safetensors) written by lethe train or PyTorch.", required: true),
            .option("spec", value: "file", help: "Model spec JSON (default: the file's lethe.spec metadata)."),
            .option("arch", value: "name", help: "Named architecture when the file carries no spec."),
            .option("data", value: "source", help: "The training dataset (fashion-mnist, digits, IDX directory, .safetensors).", default: "fashion-mnist"),
            .option("samples", value: "file", help: "Training-sample ids to forget, one per line."),
            .option("class", value: "c", help: "Forget every training sample of this class."),
            .option("method", value: "name", help: "pgu, retrain, finetune, neggrad+, random-label.", default: "pgu"),
            .option("mode", value: "m", help: "PGU mode for --samples: samples or depoison.", default: "samples"),
            .option("gamma", value: "g", help: "CGS threshold in (0, 1], or auto (largest gamma that meets the stopping rule).", default: "auto"),
            .option("rule", value: "r", help: "k from cumulative sigma (sigma) or energy sigma^2 (energy).", default: "sigma"),
            StepOptions.step, StepOptions.classTarget, StepOptions.scaleCap,
            .option("lr", value: "rate", help: "First-epoch learning rate (decays exponentially to a fifth).", default: "0.05"),
            .option("max-epochs", value: "n", help: "Epoch budget of a PGU run.", default: "100"),
            .option("batch-size", value: "n", help: "Forget batch size.", default: "128"),
            .option("tolerance", value: "t", help: "Largest allowed orthogonality residual rho.", default: "1e-05"),
            .option("baseline-epochs", value: "n", help: "Baselines: epochs over D_r (finetune) or passes over D_f (neggrad+, random-label).",
                    default: "2"),
            .option("baseline-lr", value: "rate", help: "Baselines' constant learning rate (retrain keeps its training recipe).", default: "0.01"),
            .option("seed", value: "n", help: "Seed of the forget-batch order.", default: "0"),
            .option("threads", value: "n", help: "OpenBLAS threads.", default: "2"),
            .option("out", short: "o", value: "file", help: "Where to write the new weights (.safetensors).", required: true),
        ])

    var modelPath: String, specPath: String?, arch: String?, data: String, samplesPath: String?, forgetClass: Int?
    var method: String, out: String, threads: Int, seed: UInt64
    var baselineEpochs: Int, baselineLearningRate: Float
    var config = PGUConfiguration()

    init(from values: ParsedValues) throws(CommandLineError) {
        modelPath = try values.option("model") ?? ""
        out = try values.option("out") ?? ""
        specPath = try values.option("spec")
        arch = try values.option("arch")
        data = try values.option("data", default: "fashion-mnist")
        samplesPath = try values.option("samples")
        forgetClass = try values.option("class")
        guard (samplesPath == nil) != (forgetClass == nil) else { throw .usage("Give exactly one of --samples FILE or --class C") }
        method = try values.option("method", default: "pgu")
        guard method == "pgu" || UnlearningBaseline(rawValue: method) != nil else {
            throw .usage("The value '\(method)' is invalid for '--method': expected pgu, retrain, finetune, neggrad+ or random-label")
        }
        threads = try values.option("threads", default: 2)
        baselineEpochs = try values.option("baseline-epochs", default: 2)
        guard baselineEpochs >= 1 else { throw .usage("The value '\(baselineEpochs)' is invalid for '--baseline-epochs': expected a positive integer") }
        baselineLearningRate = try values.option("baseline-lr", default: 0.01)
        guard baselineLearningRate > 0, baselineLearningRate.isFinite else {
            throw .usage("The value '\(baselineLearningRate)' is invalid for '--baseline-lr': expected a positive number")
        }
        seed = try values.option("seed", default: 0)
        let gammaText: String = try values.option("gamma", default: "auto")
        if gammaText != "auto" {
            guard let g = Double(gammaText), g > 0, g <= 1 else {
                throw .usage("The value '\(gammaText)' is invalid for '--gamma': expected auto or a number in (0, 1]")
            }
            config.gamma = .fixed(g)
        }
        let rule: String = try values.option("rule", default: "sigma")
        guard let r = CoreSpaceRule(rawValue: rule) else { throw .usage("The value '\(rule)' is invalid for '--rule': expected sigma or energy") }
        config.rule = r
        try StepOptions.parse(values, into: &config)
        config.learningRate = try values.option("lr", default: 0.05)
        config.finalLearningRate = config.learningRate / 5
        config.maxEpochs = try values.option("max-epochs", default: 100)
        config.batchSize = try values.option("batch-size", default: 128)
        config.tolerance = try values.option("tolerance", default: 1e-5)
        config.seed = seed
        let mode: String = try values.option("mode", default: "samples")
        if let c = forgetClass { config.mode = .wholeClass(c) } else if mode == "depoison" { config.mode = .depoison } else if mode != "samples" {
            throw .usage("The value '\(mode)' is invalid for '--mode': expected samples or depoison")
        }
        do { try config.validate() } catch { throw .usage(error.description) }
        guard threads > 0 else { throw .usage("The value '\(threads)' is invalid for '--threads': expected a positive integer") }
    }

    func run(_ context: CommandContext) throws {
        BLASThreads.set(threads)
        Parallel.set(threads)
        let (header, tensors) = try Safetensors.read(path: modelPath)
        var spec: ModelSpec
        if let specPath {
            spec = try ModelSpec.decode(json: try FileBytes.read(specPath))
        } else if let json = header.metadata?.first(where: { $0.0 == "lethe.spec" })?.1 {
            spec = try ModelSpec.decode(json: Array(json.utf8))
        } else if let arch {
            spec = ModelSpec(arch: arch)
        } else {
            throw UnlearnError("\(modelPath) carries no lethe.spec metadata: give --spec FILE or --arch NAME")
        }
        let splits = try DatasetLoader.load(data)
        let train = splits.train
        let model = try Model(spec: spec, inputShape: train.sampleShape, classes: train.classCount)
        try model.load(stateDict: tensors)

        // The forget set.
        var forgetPositions: [Int]
        if let c = forgetClass {
            guard c >= 0 && c < train.classCount else { throw UnlearnError("class \(c) is outside 0..<\(train.classCount)") }
            forgetPositions = train.labels.indices.filter { train.labels[$0] == Int32(c) }
        } else {
            let ids = try UnlearnCommand.readIDs(samplesPath ?? "")
            let positions = train.positions(ofIDs: Set(ids))
            guard positions.count == ids.count else {
                let known = Set(positions.map { train.ids[$0] })
                let unknown = ids.filter { !known.contains($0) }.prefix(5).map(String.init).joined(separator: ", ")
                throw UnlearnError("sample ids not in the training split of \(data): \(unknown)")
            }
            forgetPositions = positions
        }
        forgetPositions.sort()
        let forget = train.subset(forgetPositions)
        let forgotten = Set(forgetPositions)
        let retain = train.subset(train.labels.indices.filter { !forgotten.contains($0) })
        // The dataset's validation split (SOURCE:N+V) when it has one, else half of the test split.
        let (validation, test) = splits.validation.map { ($0, splits.test) } ?? splits.test.stratifiedSplit(fraction: 0.5, seed: 0)
        var sampleRng = SeededGenerator(seed: seed &+ 5)
        let retainSample = retain.subset(Array(sampleRng.permutation(retain.count).prefix(5000)).sorted())
        let evaluator = UnlearningEvaluator(forget: forget, retainSample: retainSample, validation: validation, test: test)
        let before = try evaluator.measure(model)
        context.err("forgetting \(forget.count) of \(train.count) training samples with \(method)\n")

        var rows: [(String, Double?, Double?)] = []
        var extra: [String: JSONValue] = [:]
        let result: Model
        let t0 = Date()
        if method == "pgu" {
            let basesStart = Date()
            let bases = try PGUEngine.computeBases(model: model, images: train.images, unfoldStride1: config.unfoldStride1)
            extra["bases_seconds"] = .number(Date().timeIntervalSince(basesStart))
            let engine = PGUEngine(model: model, configuration: config)
            engine.progress = { context.err($0 + "\n") }
            let r = try engine.run(bases: Dictionary(uniqueKeysWithValues: bases.map { ($0.layer, $0) }),
                                   forget: LabeledSet(forget), heldOut: LabeledSet(validation))
            guard r.status == .applied else {
                if case .failed(let why) = r.status { throw UnlearnError("PGU did not commit: \(why)") }
                return
            }
            extra["gamma"] = r.gamma.map(JSONValue.number) ?? .null
            extra["max_rho"] = .number(r.maxRho)
            extra["layers"] = .array(r.layers.map { .object(["layer": .string($0.layer), "d": .int($0.dimension), "k": .int($0.k),
                                                             "gamma": .number($0.gamma), "rho": .number($0.rho),
                                                             "rounding_floor": JSONValue.optional($0.roundingFloor)]) })
            extra["trials"] = .array(r.trials.map { .object(["gamma": .number($0.gamma), "epochs": .int($0.epochs),
                                                             "outcome": .string($0.outcome.rawValue), "seconds": .number($0.seconds)]) })
            extra["timings"] = .object(r.timings.mapValues { .number($0) })
            result = model
        } else if let baseline = UnlearningBaseline(rawValue: method) {
            let training = TrainingConfig(epochs: 15, batchSize: 128, learningRate: 0.05, schedule: .cosine(totalEpochs: 15, minimum: 0), seed: seed)
            var target: Double?
            if case .wholeClass = config.mode { target = config.classTarget(classCount: train.classCount) }
            result = try baseline.run(original: model, retain: retain, forget: forget, training: training, initSeed: seed,
                                      epochs: baselineEpochs, learningRate: baselineLearningRate, seed: seed, forgetTarget: target)
        } else { return }
        let seconds = Date().timeIntervalSince(t0)
        let after = try evaluator.measure(result)
        rows = [("forget accuracy", before.forgetAccuracy, after.forgetAccuracy),
                ("retain accuracy (5000 sampled)", before.retainAccuracy, after.retainAccuracy),
                ("validation accuracy", before.validationAccuracy, after.validationAccuracy),
                ("test accuracy", before.testAccuracy, after.testAccuracy),
                ("entropy-MIA fraction", before.entropyMIA, after.entropyMIA),
                ("loss-MIA AUC", before.lossMIAAUC, after.lossMIAAUC)]
        let metadata: [(String, String)] = (header.metadata ?? []).filter { $0.0 != "lethe.unlearned" }
            + [("lethe.unlearned", "\(method) of \(forget.count) samples")]
        try FileBytes.writeAtomically(Safetensors.encode(result.stateDict(), metadata: metadata), to: out)

        if context.json {
            var obj = extra
            obj["method"] = .string(method)
            obj["samples"] = .int(forget.count)
            obj["seconds"] = .number(seconds)
            obj["out"] = .string(out)
            obj["metrics"] = .array(rows.map { .object(["name": .string($0.0), "before": $0.1.map(JSONValue.number) ?? .null,
                                                        "after": $0.2.map(JSONValue.number) ?? .null]) })
            context.out(JSONValue.object(obj).serialized() + "\n")
        } else {
            func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
                let fill = String(repeating: " ", count: max(0, w - s.count))
                return left ? s + fill : fill + s
            }
            func fmt(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "no signal" }
            var text = pad("metric", 32, left: true) + pad("before", 10) + " " + pad("after", 10) + "\n"
            for (name, b, a) in rows { text += pad(name, 32, left: true) + pad(fmt(b), 10) + " " + pad(fmt(a), 10) + "\n" }
            if case .number(let rho)? = extra["max_rho"] { text += String(format: "max orthogonality residual rho: %.2e\n", rho) }
            text += String(format: "%@ took %.1f s; weights written to %@\n", method as NSString, seconds, out as NSString)
            context.out(text)
        }
    }

    /// Reads sample ids (`readSampleIDs`); an id listed twice is an error.
    static func readIDs(_ path: String) throws -> [Int] {
        let ids = try readSampleIDs(path)
        var seen = Set<Int>()
        for id in ids where !seen.insert(id).inserted { throw UnlearnError("\(path): sample id \(id) is listed more than once") }
        return ids
    }
}

/// A failure of `lethe unlearn`, printed as one line.
struct UnlearnError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
