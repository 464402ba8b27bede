import LetheCommandLine
import LetheNN
import LetheTensor

/// `lethe dataset`: what a dataset source holds — digest, split sizes, classes — and the ids of
/// its training samples (the ids `lethe forget --samples` and `lethe unlearn --samples` take).
struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Describe a dataset and list the ids of its training samples.",
        discussion: """
        A sample's id is its index in the dataset source; ids of the test split are not training samples.
        With --ids the training ids are printed one per line (filtered by --class, sampled with --sample N).
        """,
        options: [
            .option("data", value: "source", help: "fashion-mnist, digits, a directory of gzip IDX files, or a .safetensors dataset.", default: "fashion-mnist"),
            .flag("ids", help: "Print training sample ids, one per line."),
            .option("class", value: "c", help: "Only training samples of this class."),
            .option("sample", value: "n", help: "A seeded random sample of n ids (sorted)."),
            .option("seed", value: "n", help: "Seed of --sample.", default: "0"),
        ])

    var data: String, ids: Bool, classLabel: Int?, sample: Int?, seed: UInt64

    init(from values: ParsedValues) throws(CommandLineError) {
        data = try values.option("data", default: "fashion-mnist")
        ids = values.flag("ids")
        classLabel = try values.option("class")
        sample = try values.option("sample")
        seed = try values.option("seed", default: 0)
        if let n = sample, n < 1 { throw .usage("The value '\(n)' is invalid for '--sample': expected a positive integer") }
    }

    func run(_ context: CommandContext) throws {
        let splits = try DatasetLoader.load(data)
        let train = splits.train
        if let c = classLabel, c < 0 || c >= train.classCount {
            throw UnlearnError("class \(c) is outside 0..<\(train.classCount) of \(data)")
        }
        var positions = Array(0..<train.count)
        if let c = classLabel { positions = positions.filter { train.labels[$0] == Int32(c) } }
        if let n = sample, n < positions.count {
            var rng = SeededGenerator(seed: seed)
            positions = rng.permutation(positions.count).prefix(n).map { positions[$0] }
        }
        let chosen = positions.map { train.ids[$0] }.sorted()
        if ids {
            context.out(chosen.map(String.init).joined(separator: "\n") + (chosen.isEmpty ? "" : "\n"))
            return
        }
        var perClass = [Int](repeating: 0, count: train.classCount)
        for l in train.labels { perClass[Int(l)] += 1 }
        if context.json {
            var object: [String: JSONValue] = [
                "data": .string(data), "digest": .string(train.digest.hex),
                "train": .int(train.count), "test": .int(splits.test.count), "classes": .int(train.classCount),
                "sample_shape": .array(train.sampleShape.map { .int($0) }),
                "train_per_class": .array(perClass.map { .int($0) }),
            ]
            if let v = splits.validation { object["validation"] = .int(v.count) }
            context.out(JSONValue.object(object).serialized() + "\n")
        } else {
            context.out("""
            dataset \(data)
              digest        \(train.digest.hex)
              train / test  \(train.count) / \(splits.test.count) samples of shape \(train.sampleShape)\(splits.validation.map { "\n  validation    \($0.count) training samples held out of training (the held-out set of forget requests)" } ?? "")
              classes       \(train.classCount) (training samples per class: \(perClass.map(String.init).joined(separator: ", ")))

            """)
        }
    }
}
