// `lethe-eval cell`: runs one evaluation cell and writes its JSON record atomically.
//
//   lethe-eval cell --data digits|fashion-mnist --arch mlp|cnn|allcnn --setting random1000|random1000v|seq4x250|seq4x250v|class0|depoison
//                   --seed N --results DIR [--threads 2] [--epochs 15] [--cache DIR] [--commit SHA]
//                   [--finetune-epochs 2] [--forget-epochs 5] [--baseline-lr 0.01] [--scale-cap C|none] [--split-seed 7]
//
// Original, Retrain and the de-poisoning clean model use the `pgu` subcommand's training recipe.
// PGU and the baselines are timed in this process on the same thread count; the Original's, the
// clean model's and Retrain's weights may come from the cache (training is deterministic), and then
// their training time is the one recorded when they were trained, flagged as cached in the JSON.
import Foundation
import LetheNN
import LetheTensor
import LetheUnlearning

/// A usage error (exit 64) or a failure (exit 1) of lethe-eval's own subcommands.
struct EvalError: Error, CustomStringConvertible {
    var description: String
    var usage = false
}

/// `--name value` / `--name=value` options and `--flag` switches; anything else is an error.
struct EvalOptions {
    private var values: [String: String] = [:]

    init(_ args: [String], valued: Set<String>) throws(EvalError) {
        var i = 0
        while i < args.count {
            let a = args[i]
            guard a.hasPrefix("--") else { throw EvalError(description: "unexpected argument \"\(a)\"", usage: true) }
            var name = String(a.dropFirst(2)), value: String?
            if let eq = name.firstIndex(of: "=") { value = String(name[name.index(after: eq)...]); name = String(name[..<eq]) }
            guard valued.contains(name) else { throw EvalError(description: "unknown option --\(name)", usage: true) }
            if value == nil {
                i += 1
                guard i < args.count else { throw EvalError(description: "--\(name) needs a value", usage: true) }
                value = args[i]
            }
            values[name] = value
            i += 1
        }
    }

    func string(_ name: String) -> String? { values[name] }

    func required(_ name: String) throws(EvalError) -> String {
        guard let v = values[name] else { throw EvalError(description: "missing --\(name)", usage: true) }
        return v
    }

    func int(_ name: String, default d: Int, range: ClosedRange<Int> = 0...Int.max) throws(EvalError) -> Int {
        guard let s = values[name] else { return d }
        guard let v = Int(s), range.contains(v) else { throw EvalError(description: "--\(name) \(s): expected an integer in \(range)", usage: true) }
        return v
    }

    func double(_ name: String, default d: Double) throws(EvalError) -> Double {
        guard let s = values[name] else { return d }
        guard let v = Double(s), v > 0, v.isFinite else { throw EvalError(description: "--\(name) \(s): expected a positive number", usage: true) }
        return v
    }
}

/// The evaluation's settings (the rows of the issue's grid).
enum EvalSetting: String, CaseIterable {
    /// Forget 1000 random training samples (digits: 100).
    case random1000
    /// The same, but the held-out set of PGU's stopping rule (and the "validation" column) is 5000
    /// stratified training samples (digits: 500) that no model trains on (as `--data SOURCE:N+V` in
    /// the CLI, with split seed 7 where the CLI uses 1), instead of half of the test split; the test
    /// half is the same as in `random1000`.
    case random1000v
    /// Four sequential requests of 250 random samples (digits: 4 × 25), measured after each.
    case seq4x250
    /// The same four requests' sizes with `random1000v`'s held-out set from the training split.
    case seq4x250v
    /// Forget every training sample of class 0.
    case class0
    /// Flip 500 labels between paired classes (digits: 50), train on that, then de-poison them.
    case depoison

    /// 1 for Fashion-MNIST-sized training sets, 10 for small ones (digits: 1438 training samples).
    static func sizeDivisor(trainCount: Int) -> Int { trainCount >= 10_000 ? 1 : 10 }
}

/// The dataset/architecture pairs of the grid, in report order.
let evalModels: [(data: String, arch: String)] = [("digits", "mlp"), ("fashion-mnist", "mlp"), ("fashion-mnist", "cnn"), ("fashion-mnist", "allcnn")]

/// Class pairs whose labels the de-poisoning setting swaps (Fashion-MNIST's look-alikes:
/// T-shirt/Shirt, Pullover/Coat, Sandal/Sneaker, Trouser/Dress, Bag/Ankle boot).
let poisonPairs: [(Int32, Int32)] = [(0, 6), (2, 4), (5, 7), (1, 3), (8, 9)]

/// The model spec of an architecture on a dataset (digits mlp: [64, 32], as in `pgu`; allcnn at width 0.5).
func evalSpec(data: String, arch: String) -> ModelSpec {
    var spec = ModelSpec(arch: arch)
    if data == "digits" && arch == "mlp" { spec.hidden = [64, 32] }
    if arch == "allcnn" { spec.width = 0.5 }
    return spec
}

/// Runs one cell.
final class CellRunner {
    let data: String, arch: String, setting: EvalSetting, seed: UInt64
    let threads: Int, epochs: Int, cacheDir: String, commit: String?
    let fineTuneEpochs: Int, forgetEpochs: Int, baselineLR: Double
    /// `--scale-cap C | none`: PGU's `normalizedScaleCap` (`.some(nil)`: none, no limit, what the records
    /// before it became 30 ran); `.none` when absent: the configuration's default.
    let scaleCap: Double??
    /// `--split-seed N`: the seed of the stratified halving of the test split into validation and
    /// test halves (7, every record's; other seeds measure how much the halving itself matters).
    let splitSeed: UInt64
    let splits: DatasetSplits
    let valSet: Dataset, testSet: Dataset
    /// `random1000v`, `seq4x250v`: the training samples held out as the validation set (0 otherwise).
    let trainHoldout: Int
    let spec: ModelSpec
    let trainConfig: TrainingConfig

    init(options o: EvalOptions) throws {
        let data = try o.required("data"), arch = try o.required("arch")
        self.data = data; self.arch = arch
        guard evalModels.contains(where: { $0.data == data && $0.arch == arch }) else {
            throw EvalError(description: "no cell for --data \(data) --arch \(arch) (expected one of \(evalModels.map { "\($0.data)/\($0.arch)" }.joined(separator: ", ")))", usage: true)
        }
        let s = try o.required("setting")
        guard let parsed = EvalSetting(rawValue: s) else {
            throw EvalError(description: "unknown --setting \(s) (expected \(EvalSetting.allCases.map(\.rawValue).joined(separator: ", ")))", usage: true)
        }
        setting = parsed
        seed = UInt64(try o.int("seed", default: 0, range: 0...1_000_000))
        threads = try o.int("threads", default: 2, range: 1...256)
        epochs = try o.int("epochs", default: 15, range: 1...1000)
        fineTuneEpochs = try o.int("finetune-epochs", default: 2, range: 1...1000)
        forgetEpochs = try o.int("forget-epochs", default: 5, range: 1...1000)
        baselineLR = try o.double("baseline-lr", default: 0.01)
        if let text = o.string("scale-cap") {
            guard let parsed = PGUConfiguration.scaleCap(parsing: text) else {
                throw EvalError(description: "--scale-cap \(text): expected a finite number at least 1 (1: plain steps) or none", usage: true)
            }
            scaleCap = .some(parsed)
        } else {
            scaleCap = .none
        }
        cacheDir = o.string("cache") ?? ".build/eval-cache"
        commit = o.string("commit")
        BLASThreads.set(threads)
        Parallel.set(threads)
        var loaded = try DatasetLoader.load(data)
        splitSeed = UInt64(try o.int("split-seed", default: 7, range: 0...1_000_000))
        var (val, test) = loaded.test.stratifiedSplit(fraction: 0.5, seed: splitSeed)
        trainHoldout = parsed == .random1000v || parsed == .seq4x250v ? 5000 / EvalSetting.sizeDivisor(trainCount: loaded.train.count) : 0
        if trainHoldout > 0 {
            (val, loaded.train) = loaded.train.holdingOut(trainHoldout, seed: 7)
        }
        splits = loaded
        (valSet, testSet) = (val, test)
        spec = evalSpec(data: data, arch: arch)
        trainConfig = TrainingConfig(epochs: epochs, batchSize: 128, learningRate: 0.05,
                                     schedule: .cosine(totalEpochs: epochs, minimum: 0), seed: seed)
    }

    func say(_ s: String) { FileHandle.standardError.write(Data(("[\(data)-\(arch)-\(setting.rawValue)-s\(seed)] " + s + "\n").utf8)) }

    static func clock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    func freshModel() throws -> Model {
        try Model(spec: spec, inputShape: splits.train.sampleShape, classes: splits.train.classCount, seed: seed)
    }

    func copy(_ model: Model) throws -> Model {
        let m = try freshModel()
        try m.load(stateDict: model.stateDict())
        return m
    }

    /// Trains on `set`; with a cache key, loads the weights (and their recorded training time) when cached.
    func train(_ set: Dataset, cacheKey: String?) throws -> (model: Model, seconds: Double, cpuSeconds: Double?, cached: Bool) {
        let model = try freshModel()
        var path: String?
        if let key = cacheKey {
            try? FileManager.default.createDirectory(atPath: cacheDir, withIntermediateDirectories: true)
            let p = "\(cacheDir)/eval-\(data)-\(arch)-e\(epochs)-s\(seed)-\(key)-t\(threads).safetensors"
            path = p
            if let (header, tensors) = try? Safetensors.read(path: p),
               let seconds = header.metadata?.first(where: { $0.0 == "seconds" }).flatMap({ Double($0.1) }) {
                try model.load(stateDict: tensors)
                let cpuSeconds = header.metadata?.first(where: { $0.0 == "cpu" }).flatMap { Double($0.1) }
                say("loaded \(key) weights from \(p) (trained in \(String(format: "%.1f", seconds)) s earlier)")
                return (model, seconds, cpuSeconds, true)
            }
        }
        let t0 = CellRunner.clock(), c0 = cpu()
        _ = try Training.train(model, on: set, config: trainConfig)
        let seconds = CellRunner.clock() - t0, cpuSeconds = cpu() - c0
        if let p = path {
            try FileBytes.writeAtomically(Safetensors.encode(model.stateDict(), metadata: [("seconds", String(seconds)), ("cpu", String(cpuSeconds))]), to: p)
        }
        return (model, seconds, cpuSeconds, false)
    }

    static func weights(_ model: Model) -> [String: Tensor<Float>] {
        Dictionary(model.parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    func histogram(_ entropies: [Double]) -> [Int] {
        let top = log(Double(max(splits.train.classCount, 2)))
        var bins = [Int](repeating: 0, count: histogramBins)
        for h in entropies {
            let b = Int((h / top * Double(histogramBins)).rounded(.down))
            bins[min(max(b, 0), histogramBins - 1)] += 1
        }
        return bins
    }

    /// Test accuracy on class `c` and on the other classes.
    func classAccuracies(_ model: Model, _ c: Int32) throws -> (Double, Double) {
        let e = try Training.evaluate(model, on: testSet)
        var cc = 0, cn = 0, oc = 0, on = 0
        for i in 0..<testSet.count {
            let ok = e.predictions[i] == testSet.labels[i]
            if testSet.labels[i] == c { cn += 1; if ok { cc += 1 } } else { on += 1; if ok { oc += 1 } }
        }
        return (Double(cc) / Double(max(cn, 1)), Double(oc) / Double(max(on, 1)))
    }

    /// Context shared by the rows of one request.
    struct StepContext {
        var evaluator: UnlearningEvaluator
        var retrained: Model?
        var originalWeights: [String: Tensor<Float>]
        var forgottenClass: Int32?
        var forgetTrueLabels: Dataset?
    }

    func row(_ method: String, _ model: Model, _ ctx: StepContext, seconds: Double, cpuSeconds: Double?, cached: Bool = false) throws -> RowResult {
        let isRetrain = method == "retrain"
        let m = try ctx.evaluator.measure(model, reference: isRetrain ? nil : ctx.retrained)
        var r = RowResult(method: method, forgetAccuracy: m.forgetAccuracy, retainAccuracy: m.retainAccuracy,
                          validationAccuracy: m.validationAccuracy, testAccuracy: m.testAccuracy, entropyMIA: m.entropyMIA,
                          lossMIAAUC: m.lossMIAAUC, jsToRetrain: m.jsToReference, activationDistanceToRetrain: m.activationDistanceToReference,
                          weightDistanceToOriginal: UnlearningMetrics.weightDistance(CellRunner.weights(model), ctx.originalWeights),
                          seconds: seconds, secondsCached: cached, cpuSeconds: cpuSeconds, entropyHistogram: histogram(m.forgetEntropies))
        if let c = ctx.forgottenClass { (r.classTestAccuracy, r.otherClassesTestAccuracy) = try classAccuracies(model, c) }
        if let t = ctx.forgetTrueLabels { r.trueLabelAccuracy = try Training.evaluate(model, on: t).accuracy }
        say(String(format: "%@: forget %.2f%%, test %.2f%%, %.2f s", method, 100 * r.forgetAccuracy, 100 * r.testAccuracy, seconds))
        return r
    }

    func pguConfiguration(_ mode: UnlearningMode) -> PGUConfiguration {
        var config = PGUConfiguration()
        config.mode = mode
        config.seed = seed
        if case .some(let cap) = scaleCap { config.normalizedScaleCap = cap }
        return config
    }

    /// Runs the cell and returns its record.
    func run(command: String) throws -> CellResult {
        var machine = MachineInfo.current(threads: threads)
        let started = ISO8601DateFormatter().string(from: Date())
        let t0 = CellRunner.clock()
        let train = splits.train
        let divisor = EvalSetting.sizeDivisor(trainCount: train.count)
        var details: [String: String] = ["classes": String(train.classCount), "train": String(train.count), "validation": String(valSet.count), "test": String(testSet.count)]
        var rng = SeededGenerator(seed: seed &+ 99)
        let order = rng.permutation(train.count)

        // The training set the original sees, the forget requests and the PGU mode.
        var originalSet = train
        // With training samples held out as the validation set, every model trains without them.
        var originalKey = trainHoldout > 0 ? "trainval\(trainHoldout)" : "full"
        if trainHoldout > 0 { details["validation"] = "\(trainHoldout) training samples held out of training" }
        if splitSeed != 7 { details["splitSeed"] = String(splitSeed) }
        var requests: [[Int]] = []
        var mode = UnlearningMode.samples
        var forgottenClass: Int32?
        switch setting {
        case .random1000, .random1000v:
            requests = [Array(order.prefix(1000 / divisor)).sorted()]
        case .seq4x250, .seq4x250v:
            let size = 250 / divisor
            requests = (0..<4).map { Array(order[($0 * size)..<(($0 + 1) * size)]).sorted() }
        case .class0:
            forgottenClass = 0
            mode = .wholeClass(0)
            requests = [train.labels.indices.filter { train.labels[$0] == 0 }]
            details["class"] = "0"
        case .depoison:
            guard train.classCount == 10 else { throw EvalError(description: "de-poisoning pairs need 10 classes, \(data) has \(train.classCount)") }
            var prng = SeededGenerator(seed: seed &+ 199)
            let poisoned = Array(prng.permutation(train.count).prefix(500 / divisor)).sorted()
            var partner = [Int32](0..<10)
            for (a, b) in poisonPairs { partner[Int(a)] = b; partner[Int(b)] = a }
            for i in poisoned { originalSet.labels[i] = partner[Int(train.labels[i])] }
            originalKey = "poisoned\(poisoned.count)"
            requests = [poisoned]
            mode = .depoison
            details["pairs"] = poisonPairs.map { "(\($0.0),\($0.1))" }.joined(separator: " ")
        }
        details["requests"] = requests.map { String($0.count) }.joined(separator: "+")

        say("training the original (\(originalKey), \(epochs) epochs)")
        let (original, originalSeconds, originalCPU, originalCached) = try self.train(originalSet, cacheKey: originalKey)
        let originalWeights = CellRunner.weights(original)
        var clean: (model: Model, seconds: Double, cpuSeconds: Double?, cached: Bool)?
        if setting == .depoison {
            say("training the clean model (full, \(epochs) epochs)")
            clean = try self.train(train, cacheKey: "full")
        }
        var clock = CellRunner.clock()
        var bases = Dictionary(uniqueKeysWithValues: try PGUEngine.computeBases(model: original, images: originalSet.images).map { ($0.layer, $0) })
        let basesSeconds = CellRunner.clock() - clock
        say(String(format: "bases: %.2f s", basesSeconds))

        let config = pguConfiguration(mode)
        details["pguSteps"] = config.effectiveStepScaling.rawValue
        let pguModel = try copy(original)
        var baselineModels: [UnlearningBaseline: Model] = [:]
        for b in [UnlearningBaseline.fineTune, .negGradPlus, .randomLabel] { baselineModels[b] = try copy(original) }

        var steps: [StepResult] = []
        var forgotten = Set<Int>()
        // Later requests of a sequential setting form a chain from the original (as `lethe forget` builds one from the ledger).
        let chainStart = requests.count > 1 && mode == .samples ? pguModel.accuracy(on: LabeledSet(valSet)) : nil
        for (index, request) in requests.enumerated() {
            forgotten.formUnion(request)
            let retainIdx = (0..<train.count).filter { !forgotten.contains($0) }
            let retain = originalSet.subset(retainIdx)
            var sampleRng = SeededGenerator(seed: seed &+ 5)
            let retainSample = retain.subset(Array(sampleRng.permutation(retain.count).prefix(5000)).sorted())
            let forgetAll = originalSet.subset(forgotten.sorted())
            let requestSet = originalSet.subset(request)
            var ctx = StepContext(evaluator: UnlearningEvaluator(forget: forgetAll, retainSample: retainSample, validation: valSet, test: testSet),
                                  retrained: nil, originalWeights: originalWeights, forgottenClass: forgottenClass,
                                  forgetTrueLabels: setting == .depoison ? train.subset(forgotten.sorted()) : nil)
            say("step \(index + 1): |request| \(request.count), |D_f| \(forgotten.count), |D_r| \(retain.count); retraining")
            // Cached like the original (flagged † in the report) so a cell can be re-run for a changed PGU
            // without retraining; the key names the training set and the exact forgotten indices.
            let retrainKey = "retrain-\(data)-\(originalKey == "full" ? "" : originalKey + "-")\(forgotten.count)-\(SHA256Key.of(forgotten.sorted()))"
            let (retrained, retrainSeconds, retrainCPU, retrainCached) = try self.train(retain, cacheKey: retrainKey)
            ctx.retrained = retrained

            var rows: [RowResult] = []
            rows.append(try row("original", original, ctx, seconds: originalSeconds, cpuSeconds: originalCPU, cached: originalCached))
            if let clean { rows.append(try row("clean", clean.model, ctx, seconds: clean.seconds, cpuSeconds: clean.cpuSeconds, cached: clean.cached)) }
            rows.append(try row("retrain", retrained, ctx, seconds: retrainSeconds, cpuSeconds: retrainCPU, cached: retrainCached))

            var stepConfig = config
            if index > 0 { stepConfig.chainHeldOutAccuracy = chainStart }
            let engine = PGUEngine(model: pguModel, configuration: stepConfig)
            engine.progress = { [weak self] in self?.say("  pgu: " + $0) }
            clock = CellRunner.clock()
            var cpu0 = cpu()
            let result = try engine.run(bases: bases, forget: LabeledSet(requestSet), heldOut: LabeledSet(valSet))
            let pguSeconds = CellRunner.clock() - clock, pguCPU = cpu() - cpu0
            if case .failed(let why) = result.status { say("PGU did not commit: \(why)") }
            rows.append(try row("pgu", pguModel, ctx, seconds: pguSeconds, cpuSeconds: pguCPU))
            if case .applied = result.status {
                bases = Dictionary(uniqueKeysWithValues: result.retainedBases.map { ($0.layer, $0) })
            }

            for b in [UnlearningBaseline.fineTune, .negGradPlus, .randomLabel] {
                guard let start = baselineModels[b] else { continue }
                clock = CellRunner.clock()
                cpu0 = cpu()
                let model = try b.run(original: start, retain: retain, forget: requestSet, training: trainConfig, initSeed: seed,
                                      epochs: b == .fineTune ? fineTuneEpochs : forgetEpochs, learningRate: Float(baselineLR),
                                      seed: seed &+ UInt64(index), forgetTarget: forgottenClass.map { _ in config.classTarget(classCount: train.classCount) })
                let seconds = CellRunner.clock() - clock, cpuSeconds = cpu() - cpu0
                baselineModels[b] = model
                rows.append(try row(b.rawValue, model, ctx, seconds: seconds, cpuSeconds: cpuSeconds))
            }
            steps.append(StepResult(step: index + 1, requestSize: request.count, forgetCount: forgotten.count,
                                    retainCount: retain.count, rows: rows, pguRun: PGURunInfo(result)))
        }
        machine.loadEnd = MachineInfo.loadAverage()
        let recipe = TrainingRecipe(epochs: epochs, batchSize: trainConfig.batchSize, learningRate: Double(trainConfig.learningRate),
                                    schedule: "cosine to 0", hidden: spec.hidden, width: spec.width)
        return CellResult(data: data, arch: arch, setting: setting.rawValue, seed: seed, commit: commit, command: command,
                          machine: machine, started: started, totalSeconds: CellRunner.clock() - t0, training: recipe,
                          baselines: BaselineRecipe(fineTuneEpochs: fineTuneEpochs, forgetEpochs: forgetEpochs, learningRate: baselineLR),
                          pgu: try JSONAny.of(config), basesSeconds: basesSeconds, details: details, steps: steps)
    }
}

/// `lethe-eval cell` and `lethe-eval report`.
enum EvalCommand {
    static let usage = """
        USAGE: lethe-eval cell --data D --arch A --setting S --seed N --results DIR [--threads 2] [--epochs 15]
                               [--cache DIR] [--commit SHA] [--finetune-epochs 2] [--forget-epochs 5] [--baseline-lr 0.01]
                               [--scale-cap C|none] [--split-seed 7]
               lethe-eval report --results DIR --out EVALUATION.md [--svg-dir docs/eval] [--seeds 3]
               lethe-eval pgu ...   (the exploratory PGU table; see main.swift)

        SETTINGS: random1000, random1000v, seq4x250, seq4x250v, class0, depoison (digits: a tenth of the sizes)
        """

    /// Runs a subcommand; returns the exit code.
    static func main(_ args: [String]) -> Int32 {
        let sub = args.first ?? ""
        do {
            switch sub {
            case "cell": try cell(Array(args.dropFirst()))
            case "report": try Report.run(Array(args.dropFirst()))
            default: print(usage); return sub == "--help" || sub == "help" ? 0 : 64
            }
            return 0
        } catch let e as EvalError {
            FileHandle.standardError.write(Data("Error: \(e.description)\n".utf8))
            if e.usage { FileHandle.standardError.write(Data((usage + "\n").utf8)); return 64 }
            return 1
        } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            return 1
        }
    }

    static func cell(_ args: [String]) throws {
        let o = try EvalOptions(args, valued: ["data", "arch", "setting", "seed", "results", "threads", "epochs", "cache", "commit",
                                               "finetune-epochs", "forget-epochs", "baseline-lr", "scale-cap", "split-seed"])
        let results = try o.required("results")
        let runner = try CellRunner(options: o)
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        let command = "lethe-eval cell " + args.joined(separator: " ")
        let cell = try runner.run(command: command)
        let path = results + "/" + CellJSON.name(data: cell.data, arch: cell.arch, setting: cell.setting, seed: cell.seed)
        try FileBytes.writeAtomically(Array(try CellJSON.encode(cell)) + [0x0A], to: path)
        runner.say(String(format: "wrote %@ (%.1f s)", path, cell.totalSeconds))
    }
}
