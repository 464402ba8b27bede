import Foundation
import Lethe
import LetheCommandLine

/// `lethe replay VERSION [--recompute --data DATASET]`.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Rebuild a version through its stored deltas, or re-run the requests that produced it.",
        discussion: """
            Without --recompute: decodes the version and every ancestor from their objects (each chunk
            through its XOR-delta chain) and checks every hash and the ledger's record of each version.
            With --recompute: re-runs every request applied in the version's history from its recorded
            parent with its recorded hyperparameters, seeds and thread count, after checking the
            supplied samples against the recorded Merkle root, and reports whether each result is
            bit-identical to the recorded version. Exits 1 when anything differs.
            """,
        arguments: [ArgumentSpec("version", help: "A ref, version id or id prefix.")],
        options: [
            .flag("recompute", help: "Re-run the recorded requests instead of only rebuilding."),
            .option("data", value: "source", help: "The training dataset (needed by --recompute)."),
        ])

    let version: String, recompute: Bool, data: String?

    init(from values: ParsedValues) throws(CommandLineError) {
        version = try values.required("version")
        recompute = values.flag("recompute")
        data = try values.option("data")
        if recompute && data == nil { throw .usage("--recompute needs '--data <source>' to supply the forgotten samples again") }
    }

    func run(_ context: CommandContext) throws {
        let repo = try openRepository(context)
        let id = try repo.resolve(version)
        if recompute, let data {
            let loaded = try LoadedData.load(data)
            let results = try repo.recompute(id, data: loaded, progress: engineProgress(context))
            let ok = results.allSatisfy(\.identical)
            if context.json {
                context.out(JSONValue.object([
                    "version": .string(id.hex), "mode": .string("recompute"), "identical": .bool(ok),
                    "requests": .array(results.map { r in .object([
                        "request": .string(r.requestID), "parent": .string(r.parent), "recorded": .string(r.recorded),
                        "samples_match": .bool(r.samplesMatch), "identical": .bool(r.identical), "threads": .int(r.threads),
                        "kernel": .string(r.kernel), "recorded_kernel": r.recordedKernel.map { .string($0) } ?? .null,
                        "seconds": .number(r.seconds), "differing": .array(r.differing.map { .string($0) }),
                    ]) }),
                ]).serialized() + "\n")
            } else {
                for r in results {
                    // A different kernel rounds differently: say so next to the difference.
                    let kernels = r.recordedKernel.map { $0 == r.kernel ? "kernel \($0)" : "kernel \(r.kernel), recorded under \($0)" } ?? "kernel \(r.kernel)"
                    context.out("\(r.requestID): \(r.parent.prefix(12)) → \(r.recorded.prefix(12)) samples match Merkle root; \(r.identical ? "bit-identical" : "DIFFERS (\(r.differing.prefix(5).joined(separator: ", ")))") (\(r.threads) thread(s), OpenBLAS \(kernels), \(String(format: "%.1f", r.seconds)) s)\n")
                }
                context.out(ok ? "\(results.count) request(s) recomputed: every result is bit-identical to the recorded version\n"
                               : "recomputation DIFFERS from the recorded versions\n")
            }
            if !ok { throw ExitCode.failure }
        } else {
            let chain = try repo.rebuild(id)
            let ok = chain.allSatisfy { $0.problems.isEmpty }
            if context.json {
                context.out(JSONValue.object([
                    "version": .string(id.hex), "mode": .string("rebuild"), "ok": .bool(ok),
                    "versions": .array(chain.map { v in .object([
                        "id": .string(v.id), "tensors": .int(v.tensors), "chunks": .int(v.chunks), "max_delta_depth": .int(v.maxDeltaDepth),
                        "bytes": .int(v.bytes), "problems": .array(v.problems.map { .string($0) }),
                    ]) }),
                ]).serialized() + "\n")
            } else {
                for v in chain {
                    context.out("\(v.id.prefix(12))  \(v.tensors) tensors, \(v.chunks) chunks, delta depth ≤ \(v.maxDeltaDepth), \(v.bytes) bytes: \(v.problems.isEmpty ? "ok" : "FAILED")\n")
                    for p in v.problems { context.out("  \(p)\n") }
                }
                context.out(ok ? "rebuilt \(chain.count) version(s) through their deltas; every hash matches\n" : "rebuild FAILED\n")
            }
            if !ok { throw ExitCode.failure }
        }
    }
}
