import Foundation
import Lethe
import LetheCommandLine
import LetheTensor
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

            Samples forgotten in the version's history are left out of the pass. On a version that
            has forgotten samples this re-bases it: after several requests the incremental bases
            still describe the representations of the version they were first computed for, and
            re-basing from the retained data restores the protection of the next requests.

            The pass can be sharded, since a Gram matrix is a sum over samples: 'lethe bases --shard I/N -o FILE'
            computes shard I's partial Grams (about n/N training samples, cut at multiples of 256) and writes them to FILE without
            changing the store; 'lethe bases --reduce FILE...' checks that the N files belong to the ref's version and
            dataset, sums them, eigendecomposes and stores the bases as a single pass would.
            """,
        arguments: [ArgumentSpec("partials", help: "Partial Gram files to sum (with --reduce).", optional: true, repeating: true)],
        options: [
            .option("ref", value: "name", help: "The ref whose version gets bases.", required: true),
            .option("data", value: "source", help: "The training dataset (must match the version's dataset digest).", required: true),
            .option("threads", value: "n", help: "OpenBLAS and worker threads.", default: "1"),
            .option("shard", value: "I/N", help: "Compute only shard I of N and write its partial Gram file (see --out)."),
            .option("out", short: "o", value: "file", help: "Where --shard writes (default: bases-<version>-<I>of<N>.gram)."),
            .flag("reduce", help: "Sum the partial Gram files given as arguments and store the bases."),
        ])

    let ref: String, data: String, threads: Int
    let shard: (index: Int, count: Int)?, out: String?, reduce: Bool, partials: [String]

    init(from values: ParsedValues) throws(CommandLineError) {
        guard let ref: String = try values.option("ref") else { throw .usage("Missing expected option '--ref <name>'") }
        guard let data: String = try values.option("data") else { throw .usage("Missing expected option '--data <source>'") }
        self.ref = ref; self.data = data
        threads = try values.option("threads", default: 1)
        guard threads > 0 else { throw .usage("The value '\(threads)' is invalid for '--threads': expected a positive integer") }
        if let text: String = try values.option("shard") {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 2, let i = parts[0], let n = parts[1], n >= 1, i >= 0, i < n else {
                throw .usage("The value '\(text)' is invalid for '--shard': expected I/N with 0 <= I < N")
            }
            shard = (i, n)
        } else {
            shard = nil
        }
        out = try values.option("out")
        reduce = values.flag("reduce")
        partials = try values.arguments("partials")
        if reduce && shard != nil { throw .usage("Give at most one of '--shard' and '--reduce'") }
        if reduce && partials.isEmpty { throw .usage("'--reduce' needs the partial Gram files as arguments") }
        if !reduce && !partials.isEmpty { throw .usage("Partial Gram files are only read with '--reduce'") }
        if out != nil && shard == nil { throw .usage("'--out' is only used with '--shard'") }
    }

    func run(_ context: CommandContext) throws {
        let repo = try openRepository(context)
        let loaded = try LoadedData.load(data)
        let t0 = Date()
        if let shard {
            let partial = try repo.partialBases(ref: ref, data: loaded, shard: shard.index, of: shard.count, threads: threads,
                                                progress: engineProgress(context))
            let path = out ?? "bases-\(partial.version.prefix(12))-\(shard.index)of\(shard.count).gram"
            try FileBytes.writeAtomically(partial.encoded(), to: path)
            let seconds = Date().timeIntervalSince(t0)
            if context.json {
                context.out(JSONValue.object([
                    "ref": .string(ref), "version": .string(partial.version), "dataset_digest": .string(partial.datasetDigest),
                    "shard": .int(shard.index), "shards": .int(shard.count), "samples": .int(partial.samples), "out": .string(path),
                    "seconds": .number(seconds),
                ]).serialized() + "\n")
            } else {
                context.out("Wrote the partial Grams of shard \(shard.index)/\(shard.count) (\(partial.samples) samples, \(partial.grams.count) layers) to \(path) in \(String(format: "%.1f", seconds)) s\n")
            }
            return
        }
        let (w, bases): (VersionWrite, [LayerBasis])
        if reduce {
            var read: [PartialGram] = []
            for p in partials { read.append(try PartialGram.decode(path: p)) }
            (w, bases) = try repo.reduceBases(ref: ref, data: loaded, partials: read, threads: threads, progress: engineProgress(context))
        } else {
            (w, bases) = try repo.storeBases(ref: ref, data: loaded, threads: threads, progress: engineProgress(context))
        }
        let seconds = Date().timeIntervalSince(t0)
        let samples = try repo.retainedSampleCount(ref: ref, data: loaded)
        let left = loaded.splits.train.count - samples
        if context.json {
            context.out(JSONValue.object([
                "ref": .string(ref), "version": .string(w.version.hex), "parent": .optional(w.parent?.hex),
                "dataset_digest": .string(loaded.digest), "samples": .int(samples), "forgotten_left_out": .int(left), "seconds": .number(seconds),
                "layers": .array(bases.map { .object(["layer": .string($0.layer), "d": .int($0.dimension), "rank": .int($0.rank)]) }),
            ]).serialized() + "\n")
        } else {
            context.out("Stored bases of \(bases.count) layers over \(samples) samples"
                        + (left > 0 ? " (\(left) forgotten in the history of \(ref) left out)" : "") + " in \(String(format: "%.1f", seconds)) s\n")
            for b in bases { context.out("  " + pad(b.layer, 20) + String(format: " d %6d  rank %6d\n", b.dimension, b.rank)) }
            context.out("\(ref) → \(w.version.short)\n")
        }
    }
}
