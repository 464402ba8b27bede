import Foundation
import Lethe
import LetheCommandLine

/// `lethe rollback REF VERSION [--reapply --data DATASET | --force --reason TEXT]`.
struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Move a ref back to an earlier version without resurfacing forgotten data.",
        discussion: """
            Refuses when forget requests were applied after VERSION (naming them): moving back would
            bring their samples back. --reapply forgets them again on top of VERSION (the samples are
            supplied with --data and checked against each request's Merkle root), producing a new
            version; --force --reason TEXT moves anyway and records a compliance exception.
            Every rollback is a ledger event.
            """,
        arguments: [ArgumentSpec("ref", help: "The ref to move."), ArgumentSpec("version", help: "The version to go back to.")],
        options: [
            .flag("reapply", help: "Re-apply the later requests on top of VERSION."),
            .option("data", value: "source", help: "The training dataset (needed by --reapply)."),
            .flag("force", help: "Move even though forgotten samples resurface (needs --reason)."),
            .option("reason", value: "text", help: "Why a forced rollback is justified (recorded)."),
        ])

    let ref: String, version: String, strategy: RollbackStrategy, data: String?

    init(from values: ParsedValues) throws(CommandLineError) {
        ref = try values.required("ref")
        version = try values.required("version")
        data = try values.option("data")
        let reason: String? = try values.option("reason")
        switch (values.flag("reapply"), values.flag("force")) {
        case (true, true): throw .usage("--reapply and --force cannot be used together")
        case (true, false):
            guard data != nil else { throw .usage("--reapply needs '--data <source>' to supply the forgotten samples again") }
            strategy = .reapply
        case (false, true):
            guard let reason, !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw .usage("--force needs '--reason <text>'") }
            strategy = .force(reason: reason)
        case (false, false):
            if reason != nil { throw .usage("--reason is only used with --force") }
            strategy = .refuse
        }
    }

    func run(_ context: CommandContext) throws {
        let repo = try openRepository(context)
        let loaded = try data.map { try LoadedData.load($0) }
        let r = try repo.rollback(ref: ref, to: version, strategy: strategy, data: loaded, progress: engineProgress(context))
        if context.json {
            context.out(JSONValue.object([
                "ref": .string(r.ref), "from": .string(r.from), "target": .string(r.target), "result": .string(r.result),
                "mode": .string(r.mode.rawValue), "lost_requests": .array(r.lostRequests.map { .string($0) }),
                "reapplied": .array(r.reapplied.map { .object(["original": .string($0.original), "request": .string($0.request),
                                                                "version": .string($0.version)]) }),
            ]).serialized() + "\n")
        } else {
            switch r.mode {
            case .plain: context.out("Rolled \(ref) back: \(r.from.prefix(12)) → \(r.result.prefix(12)) (no forget request applied since)\n")
            case .force:
                context.out("FORCED rollback of \(ref): \(r.from.prefix(12)) → \(r.result.prefix(12)); compliance exception recorded for \(r.lostRequests.joined(separator: ", "))\n")
            case .reapply:
                context.out("Rolled \(ref) back to \(r.target.prefix(12)) and re-applied \(r.reapplied.count) request(s):\n")
                for a in r.reapplied { context.out("  \(a.original) → \(a.request): \(a.version.prefix(12))\n") }
                context.out("\(ref): \(r.from.prefix(12)) → \(r.result.prefix(12))\n")
            }
        }
    }
}
