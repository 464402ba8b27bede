import Foundation
import Lethe
import LetheCommandLine
import LetheCrypto
import LetheNN
import LetheTensor

/// `lethe train`: trains a model from a spec on a dataset and writes its state_dict as safetensors.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on a dataset and store it as a version (--ref) or write it as safetensors (-o).",
        discussion: """
        The weights are written with PyTorch state_dict names, so torch's safetensors loader reads them.
        Progress goes to standard error; --json prints a summary on standard output.
        """,
        options: [
            .option("arch", value: "name", help: "Named architecture: mlp, cnn, allcnn, resnet18.", default: "cnn"),
            .option("spec", value: "file", help: "A JSON model spec (schema/model-spec.schema.json) instead of --arch."),
            .option("width", value: "x", help: "Width multiplier for allcnn / resnet18."),
            .option("data", value: "source", help: "fashion-mnist, digits, a directory of gzip IDX files, or a .safetensors dataset.", default: "fashion-mnist"),
            .option("epochs", value: "n", help: "Passes over the training set.", default: "15"),
            .option("batch-size", value: "n", help: "Samples per mini-batch.", default: "128"),
            .option("lr", value: "rate", help: "Base learning rate.", default: "0.05"),
            .option("optimizer", value: "name", help: "sgd or adam.", default: "sgd"),
            .option("momentum", value: "m", help: "SGD momentum.", default: "0.9"),
            .option("weight-decay", value: "w", help: "L2 weight decay.", default: "0.0005"),
            .flag("nesterov", help: "Use Nesterov momentum (SGD)."),
            .option("schedule", value: "s", help: "LR schedule: constant, step:SIZE:GAMMA, exp:GAMMA, cosine[:MIN] (cosine annealing over --epochs).", default: "cosine"),
            .option("seed", value: "n", help: "Seed of initialization and shuffling.", default: "0"),
            .option("threads", value: "n", help: "OpenBLAS threads.", default: "2"),
            .option("eval-every", value: "n", help: "Measure test accuracy after every n-th epoch (and always after the last).", default: "1"),
            .option("out", short: "o", value: "file", help: "Where to write the weights (.safetensors)."),
            .option("ref", value: "name", help: "Store the trained model as a new version on this ref (with its spec and dataset digest, recorded in the ledger)."),
        ])

    var arch: String, specPath: String?, width: Double?, data: String, out: String?, ref: String?
    var threads: Int, evalEvery: Int, seed: UInt64, scheduleText: String
    var config: TrainingConfig

    init(from values: ParsedValues) throws(CommandLineError) {
        arch = try values.option("arch", default: "cnn")
        specPath = try values.option("spec")
        width = try values.option("width")
        data = try values.option("data", default: "fashion-mnist")
        out = try values.option("out")
        ref = try values.option("ref")
        guard out != nil || ref != nil else { throw .usage("Missing expected option '--out <file>' or '--ref <name>'") }
        threads = try values.option("threads", default: 2)
        evalEvery = try values.option("eval-every", default: 1)
        guard evalEvery >= 1 else { throw .usage("The value '\(evalEvery)' is invalid for '--eval-every': expected a positive integer") }
        seed = try values.option("seed", default: 0)
        scheduleText = try values.option("schedule", default: "cosine")
        let optimizerName: String = try values.option("optimizer", default: "sgd")
        guard let kind = OptimizerKind(rawValue: optimizerName) else {
            throw .usage("The value '\(optimizerName)' is invalid for '--optimizer': expected sgd or adam")
        }
        let epochs: Int = try values.option("epochs", default: 15)
        config = TrainingConfig(
            epochs: epochs, batchSize: try values.option("batch-size", default: 128),
            learningRate: try values.option("lr", default: Float(0.05)), optimizer: kind,
            momentum: try values.option("momentum", default: Float(0.9)),
            weightDecay: try values.option("weight-decay", default: Float(5e-4)),
            nesterov: values.flag("nesterov"), schedule: .constant, seed: seed)
        do {
            config.schedule = try LRSchedule.parse(scheduleText, epochs: epochs)
            try config.validate()
        } catch { throw .usage(error.description) }
        guard threads > 0 else { throw .usage("The value '\(threads)' is invalid for '--threads': expected a positive integer") }
    }

    func run(_ context: CommandContext) throws {
        // Open the store first: a missing store fails before the training, not after it.
        let repo = try ref.map { _ in try openRepository(context) }
        if let ref, let repo { try repo.checkTrainable(ref: ref, dataSource: data) }
        BLASThreads.set(threads)
        Parallel.set(threads)
        var spec = ModelSpec(arch: arch, width: width)
        if let specPath { spec = try ModelSpec.decode(json: try FileBytes.read(specPath)) }
        let t0 = Date()
        let splits = try DatasetLoader.load(data)
        context.err("loaded \(data): \(splits.train.count) train, \(splits.validation.map { "\($0.count) validation (held out), " } ?? "")\(splits.test.count) test samples of shape \(splits.train.sampleShape)\n")
        let model = try Model(spec: spec, inputShape: splits.train.sampleShape, classes: splits.train.classCount, seed: seed)
        context.err("model \(spec.arch ?? "layers"): \(model.parameterCount) parameters, \(model.projectableLayers.count) projectable layers\n")
        var bar: ProgressBar?
        let reports = try Training.train(model, on: splits.train, evaluation: splits.test, evaluateEvery: evalEvery, config: config) { event in
            switch event {
            case .batch(let epoch, let done, let total, let loss):
                if done == 1 { bar = ProgressBar("epoch \(epoch)/\(config.epochs)", total: total, sink: context.err) }
                bar?.update(done, String(format: "loss %.4f", loss))
            case .epoch(let r):
                let test = r.evalAccuracy.map { String(format: " | test loss %.4f acc %.4f", r.evalLoss ?? .nan, $0) } ?? ""
                context.err(String(format: "epoch %d: lr %.4g train loss %.4f acc %.4f%@ | %.0f samples/s\n",
                                   r.epoch, r.learningRate, r.trainLoss, r.trainAccuracy, test as NSString, r.samplesPerSecond))
            }
        }
        let specJSON = String(decoding: try JSONEncoder().encode(model.spec), as: UTF8.self)
        let metadata: [(String, String)] = [
            ("format", "pt"), ("lethe.spec", specJSON), ("lethe.dataset", data),
            ("lethe.dataset_digest", splits.train.digest.hex), ("lethe.seed", String(seed)),
        ]
        let bytes = Safetensors.encode(model.stateDict(), metadata: metadata)
        if let out { try FileBytes.writeAtomically(bytes, to: out) }
        var version: String?
        if let ref, let repo {
            let loaded = LoadedData(source: data, splits: splits)
            let w = try repo.commitTrained(model, data: loaded, ref: ref,
                                           message: "train \(spec.arch ?? "layers") on \(data) (seed \(seed), \(config.epochs) epochs)")
            version = w.version.hex
        }
        let final = reports.last
        let seconds = Date().timeIntervalSince(t0)
        if context.json {
            context.out(JSONValue.object([
                "out": out.map { .string($0) } ?? .null, "ref": ref.map { .string($0) } ?? .null,
                "version": version.map { .string($0) } ?? .null, "sha256": .string(SHA256.hash(bytes).hex),
                "arch": .string(spec.arch ?? "layers"), "parameters": .int(model.parameterCount),
                "data": .string(data), "train_samples": .int(splits.train.count), "test_samples": .int(splits.test.count),
                "dataset_digest": .string(splits.train.digest.hex), "seed": .int(Int(seed)), "threads": .int(threads),
                "test_accuracy": final?.evalAccuracy.map { .number($0) } ?? .null,
                "seconds": .number(seconds),
                "epochs": .array(reports.map { r in .object([
                    "epoch": .int(r.epoch), "lr": .number(Double(r.learningRate)), "train_loss": .number(r.trainLoss),
                    "train_accuracy": .number(r.trainAccuracy), "test_loss": r.evalLoss.map { .number($0) } ?? .null,
                    "test_accuracy": r.evalAccuracy.map { .number($0) } ?? .null, "samples_per_second": .number(r.samplesPerSecond),
                ]) }),
            ]).serialized() + "\n")
        } else {
            let target = [out, ref.map { r in "\(r) → \(version?.prefix(12) ?? "")" }].compactMap { $0 }.joined(separator: " and ")
            context.out(String(format: "wrote %@ (%d parameters); test accuracy %.4f after %d epochs in %.0f s\n",
                               target, model.parameterCount, final?.evalAccuracy ?? .nan, reports.count, seconds))
        }
    }
}
