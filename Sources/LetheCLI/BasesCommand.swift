import Foundation
import Lethe
import LetheCommandLine
import LetheUnlearning

/// `lethe bases --ref NAME --data DATASET`.
struct BasesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bases",
        abstract: "Compute and store the cached PGU bases of a ref's version.",
        discussion: """
            One eval-mode pass over the training split: per projectable layer the Gram matrix of its
            input rows and its eigendecomposition (U, sigma). They are stored with a child version of
            the same weights, and the ref moves to it (recorded in the ledger).
            """,
        options: [
            .option("ref", value: "name", help: "The ref whose version gets bases.", required: true),
            .option("data", value: "source", help: "The training dataset (must match the version's dataset digest).", required: true),
            .option("threads", value: "n", help: "OpenBLAS and worker threads.", default: "1"),
        ])

    let ref: String, data: String, threads: Int

    init(from values: ParsedValues) throws(CommandLineError) {
        guard let ref: String = try values.option("ref") else { throw .usage("Missing expected option '--ref <name>'") }
        guard let data: String = try values.option("data") else { throw .usage("Missing expected option '--data <source>'") }
        self.ref = ref; self.data = data
        threads = try values.option("threads", default: 1)
        guard threads > 0 else { throw .usage("The value '\(threads)' is invalid for '--threads': expected a positive integer") }
    }

    func run(_ context: CommandContext) throws {
        let repo = try openRepository(context)
        let loaded = try LoadedData.load(data)
        let t0 = Date()
        let (w, bases) = try repo.storeBases(ref: ref, data: loaded, threads: threads, progress: engineProgress(context))
        let seconds = Date().timeIntervalSince(t0)
        if context.json {
            context.out(JSONValue.object([
                "ref": .string(ref), "version": .string(w.version.hex), "parent": .optional(w.parent?.hex),
                "dataset_digest": .string(loaded.digest), "samples": .int(loaded.splits.train.count), "seconds": .number(seconds),
                "layers": .array(bases.map { .object(["layer": .string($0.layer), "d": .int($0.dimension), "rank": .int($0.rank)]) }),
            ]).serialized() + "\n")
        } else {
            context.out("Stored bases of \(bases.count) layers over \(loaded.splits.train.count) samples in \(String(format: "%.1f", seconds)) s\n")
            for b in bases { context.out("  " + pad(b.layer, 20) + String(format: " d %6d  rank %6d\n", b.dimension, b.rank)) }
            context.out("\(ref) → \(w.version.short)\n")
        }
    }
}
