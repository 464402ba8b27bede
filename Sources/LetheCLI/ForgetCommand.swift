import Foundation
import Lethe
import LetheCommandLine
import LetheLedger
import LetheUnlearning

/// `lethe forget --ref REF --data DATASET (--samples FILE | --class C)`.
struct ForgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Apply a forget request (GDPR Art. 17) to a ref's version with Projected-Gradient Unlearning.",
        discussion: """
            Records the request (sample ids, per-sample SHA-256 and their Merkle root; never the samples),
            runs PGU from the version's cached bases with the validation half of the test split as
            held-out data, and commits the new version with its retained bases only when every layer's
            orthogonality residual rho is within the tolerance; otherwise the request is recorded as
            failed and the ref does not move. Samples already forgotten change nothing. After earlier
            sample requests the collapse margin bounds the whole chain's drop of held-out accuracy
            since its first request, as recorded in the ledger (--per-request-margin: this request's).
            Progress goes to standard error; a summary to standard output (--json for JSON).
            """,
        options: [
            .option("ref", value: "name", help: "The ref to forget from (it moves to the new version).", required: true),
            .option("data", value: "source", help: "The training dataset of the version.", required: true),
            .option("samples", value: "file", help: "File of training sample ids to forget (one per line)."),
            .option("class", value: "c", help: "Forget every training sample of this class."),
            .option("request-id", value: "id", help: "Request id (default R<n>)."),
            .option("requester", value: "label", help: "Who asked (a label, not personal data).", default: "unspecified"),
            .option("ground", value: "text", help: "Legal ground.", default: "GDPR Art. 17(1)"),
            .option("deadline-days", value: "n", help: "Days from receipt to the deadline.", default: "30"),
            .option("reference", value: "revision", help: "A model retrained without the samples: JS divergence to its predictions is recorded."),
            .flag("per-request-margin", help: "Judge the collapse margin against this request's start only, not the start of the chain of sample requests that led to the ref's version."),
        ] + RecipeOptions.specs)

    let ref: String, data: String, samples: String?, classLabel: Int?
    let requestID: String?, requester: String, ground: String, deadlineDays: Double, reference: String?
    let recipe: UnlearningRecipe
    let perRequestMargin: Bool

    init(from values: ParsedValues) throws(CommandLineError) {
        guard let ref: String = try values.option("ref") else { throw .usage("Missing expected option '--ref <name>'") }
        guard let data: String = try values.option("data") else { throw .usage("Missing expected option '--data <source>'") }
        self.ref = ref; self.data = data
        samples = try values.option("samples")
        classLabel = try values.option("class")
        guard (samples == nil) != (classLabel == nil) else { throw .usage("Give exactly one of '--samples <file>' and '--class <c>'") }
        requestID = try values.option("request-id")
        requester = try values.option("requester", default: "unspecified")
        ground = try values.option("ground", default: "GDPR Art. 17(1)")
        deadlineDays = try values.option("deadline-days", default: 30.0)
        guard deadlineDays >= 0 else { throw .usage("The value '\(deadlineDays)' is invalid for '--deadline-days': expected a non-negative number") }
        reference = try values.option("reference")
        recipe = try RecipeOptions.parse(values)
        perRequestMargin = values.flag("per-request-margin")
    }

    func run(_ context: CommandContext) throws {
        let selection: ForgetSelection
        if let samples { selection = .samples(try readSampleIDs(samples)) } else { selection = .wholeClass(classLabel ?? 0) }
        let repo = try openRepository(context)
        let loaded = try LoadedData.load(data)
        var options = ForgetOptions(ref: ref, selection: selection, requestID: requestID, requester: requester, legalGround: ground,
                                    deadline: Date().addingTimeInterval(deadlineDays * 86_400), recipe: recipe)
        options.reference = reference
        options.chained = !perRequestMargin
        let t0 = Date()
        let r = try repo.forget(options, data: loaded, progress: engineProgress(context))
        let seconds = Date().timeIntervalSince(t0)
        let status: String
        switch r.status {
        case .applied: status = "applied"
        case .failed: status = "failed"
        case .alreadyForgotten: status = "already_forgotten"
        }
        if context.json {
            var reason: JSONValue = .null
            if case .failed(let why) = r.status { reason = .string(why) }
            context.out(JSONValue.object([
                "status": .string(status), "request": .optional(r.requestID), "ref": .string(r.ref),
                "version_before": .string(r.versionBefore), "version_after": .optional(r.versionAfter), "reason": reason,
                "samples": .int(r.sampleCount), "merkle_root": .optional(r.merkleRoot), "gamma": .optional(r.gamma),
                "threads": .int(r.threads), "seconds": .number(seconds),
                "already_forgotten": .array(r.alreadyForgotten.map { .string($0) }),
                "layers": .array(r.layers.map(layerJSON)),
                "trials": .array(r.trials.map { t in .object([
                    "gamma": .number(t.gamma), "learning_rate_scale": .number(t.learningRateScale), "epochs": .int(t.epochs), "outcome": .string(t.outcome.rawValue),
                    "forget_accuracy": .number(t.forgetAccuracy), "held_out_accuracy": .number(t.heldOutAccuracy), "seconds": .number(t.seconds),
                    "continued_from": t.continuedFrom.map { .int($0) } ?? .null,
                    "left_out": .array((t.frozenLayers ?? []).map { .string($0) }),
                ]) }),
                "metrics": .object(Dictionary(uniqueKeysWithValues: r.metrics.map { m in
                    (m.name, JSONValue.object(["before": .optional(m.before), "after": .optional(m.after)]))
                })),
                "timings": .object(Dictionary(r.timings.map { ($0.phase, JSONValue.number($0.seconds)) }, uniquingKeysWith: { a, _ in a })),
            ]).serialized() + "\n")
        } else {
            switch r.status {
            case .alreadyForgotten:
                context.out("All \(r.sampleCount) samples were already forgotten in the history of \(ref) (\(r.versionBefore.prefix(12))); nothing changed.\n")
                return
            case .failed(let why):
                context.out("Request \(r.requestID ?? "?") FAILED and was recorded as failed: \(why)\n\(ref) stays at \(r.versionBefore.prefix(12))\n")
                if r.trials.contains(where: { $0.outcome == .collapsed }) {
                    context.out("Held-out accuracy fell more than the collapse margin before the samples were forgotten. Options: retry with a wider"
                                + " --collapse-margin (recorded with the request), or re-base \(ref) from the retained training data first"
                                + " ('lethe bases --ref \(ref) --data \(data)' leaves the forgotten samples out).\n")
                }
            case .applied:
                context.out("Request \(r.requestID ?? "?") applied: \(r.sampleCount) samples forgotten (Merkle root \(r.merkleRoot ?? "")) in \(String(format: "%.1f", seconds)) s, gamma \(fmt(r.gamma)), \(r.trials.count) trial(s), \(r.threads) thread(s)\n")
                context.out("\(ref): \(r.versionBefore.prefix(12)) → \(r.versionAfter?.prefix(12) ?? "")\n")
                if !r.layers.isEmpty && r.layers.allSatisfy({ $0.updateNorm == 0 }) {
                    context.out("No weight changed: before any step the samples already scored below the held-out accuracy (the stopping"
                                + " rule held at epoch 0); the new version's bases leave them out.\n")
                }
                context.out("\n")
            }
            context.out(layerTable(r.layers) + "\n" + metricTable(r.metrics))
        }
        if case .failed = r.status { throw ExitCode.failure }
    }
}
