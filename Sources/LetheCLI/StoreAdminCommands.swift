import Foundation
import Lethe
import LetheCommandLine

/// `lethe ref`: set, list, history.
struct RefCommand: CommandGroup {
    static let configuration = CommandConfiguration(
        commandName: "ref",
        abstract: "Move, list and audit named refs.",
        subcommands: [RefSetCommand.self, RefListCommand.self, RefHistoryCommand.self])
}

/// `lethe ref set NAME REVISION`.
struct RefSetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Point a ref at a version (recorded in the ref history).",
        arguments: [ArgumentSpec("name", help: "The ref (e.g. prod)."), ArgumentSpec("revision", help: "A ref, version id or prefix.")],
        options: [.option("reason", value: "text", help: "Why the ref moves.", default: "ref set")])

    let name: String, revision: String, reason: String
    init(from values: ParsedValues) throws(CommandLineError) {
        name = try values.required("name")
        revision = try values.required("revision")
        reason = try values.option("reason", default: "ref set")
        if !RefStore.isValidName(name) { throw .usage("The value '\(name)' is invalid for '<name>': expected a ref name (letters, digits, '.', '_', '-')") }
    }

    func run(_ context: CommandContext) throws {
        let store = try openStore(context)
        let id = try store.resolve(revision)
        _ = try store.version(id)  // must be a readable version
        let move = try store.refs.set(name, to: id, reason: reason)
        if context.json {
            context.out(JSONValue.object(["ref": .string(name), "old": move.old.map { .string($0.hex) } ?? .null,
                                          "new": .string(id.hex), "reason": .string(reason)]).serialized() + "\n")
        } else {
            context.out("\(name): \(move.old?.short ?? "(new)") → \(id.short)\n")
        }
    }
}

/// `lethe ref list`.
struct RefListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List refs and their versions.")
    init(from values: ParsedValues) throws(CommandLineError) {}

    func run(_ context: CommandContext) throws {
        let refs = try openStore(context).refs.list()
        if context.json {
            context.out(JSONValue.array(refs.map { .object(["ref": .string($0.name), "version": .string($0.id.hex)]) }).serialized() + "\n")
        } else {
            for r in refs { context.out("\(r.id.short)  \(r.name)\n") }
        }
    }
}

/// `lethe ref history [NAME]`.
struct RefHistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show every recorded ref move (time, old, new, reason).",
        arguments: [ArgumentSpec("name", help: "Only this ref.", optional: true)])

    let name: String?
    init(from values: ParsedValues) throws(CommandLineError) { name = try values.argument("name") }

    func run(_ context: CommandContext) throws {
        let moves = try openStore(context).refs.history(name)
        if context.json {
            context.out(JSONValue.array(moves.map { m in
                .object(["time": .string(formatTime(m.time)), "ref": .string(m.ref), "old": m.old.map { .string($0.hex) } ?? .null,
                         "new": .string(m.new.hex), "reason": .string(m.reason)])
            }).serialized() + "\n")
        } else {
            for m in moves { context.out("\(formatTime(m.time))  \(m.ref)  \(m.old?.short ?? "(new)") → \(m.new.short)  \(m.reason)\n") }
        }
    }
}

/// `lethe fsck [--quick]`.
struct FsckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Verify every object; report corrupt or missing objects and the versions and refs they affect.",
        options: [.flag("quick", help: "Check headers and references only (no re-hashing).")])

    let quick: Bool
    init(from values: ParsedValues) throws(CommandLineError) { quick = values.flag("quick") }

    func run(_ context: CommandContext) throws {
        let store = try openStore(context)
        let r = try store.fsck(quick: quick)
        if context.json {
            context.out(JSONValue.object([
                "ok": .bool(r.isClean), "quick": .bool(quick), "objects_checked": .int(r.objectsChecked), "versions_checked": .int(r.versionsChecked),
                "corrupt": .array(r.corrupt.map { .object(["object": .string($0.id.hex), "reason": .string($0.reason)]) }),
                "missing": .array(r.missing.map { .object(["object": .string($0.id.hex), "referenced_by": .array($0.referencedBy.map { .string($0) })]) }),
                "affected_versions": .array(r.affectedVersions.map { .string($0.hex) }),
                "affected_refs": .array(r.affectedRefs.map { .string($0) }),
            ]).serialized() + "\n")
        } else {
            for c in r.corrupt { context.out("corrupt object \(c.id.hex): \(c.reason)\n") }
            for m in r.missing { context.out("missing object \(m.id.hex) (referenced by \(m.referencedBy.joined(separator: ", ")))\n") }
            for v in r.affectedVersions { context.out("affected version \(v.hex)\n") }
            for n in r.affectedRefs { context.out("affected ref \(n)\n") }
            context.out("checked \(r.objectsChecked) objects, \(r.versionsChecked) versions\(quick ? " (quick)" : ""): "
                        + (r.isClean ? "ok\n" : "\(r.corrupt.count) corrupt, \(r.missing.count) missing, \(r.affectedVersions.count) versions and \(r.affectedRefs.count) refs affected\n"))
        }
        if !r.isClean {
            if !context.json { context.err("Error: the store is damaged (see above)\n") }
            throw ExitCode.failure
        }
    }
}

/// `lethe gc`.
struct GcCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Delete objects unreachable from refs and extra roots, older than a grace period.",
        options: [
            .option("prune", value: "age", help: "Grace period: 'now' or a number with s, m, h, d or w.", default: "14d"),
            .flag("dry-run", help: "List what would be deleted without deleting."),
            .option("root", value: "revision", help: "Also keep this version and its ancestors.", repeating: true),
        ])

    let grace: Double, dryRun: Bool, roots: [String]
    init(from values: ParsedValues) throws(CommandLineError) {
        let prune = try values.option("prune", default: "14d")
        guard let g = GcCommand.parseAge(prune) else {
            throw .usage("The value '\(prune)' is invalid for '--prune': expected 'now' or a duration like 30m, 12h, 14d")
        }
        grace = g
        dryRun = values.flag("dry-run")
        roots = try values.options("root")
    }

    /// "now" → 0; "<n>[s|m|h|d|w]" → seconds.
    static func parseAge(_ s: String) -> Double? {
        if s == "now" { return 0 }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        guard let u = s.last, let mult = units[u], let n = Double(s.dropLast()), n >= 0, n.isFinite else { return nil }
        return n * mult
    }

    func run(_ context: CommandContext) throws {
        // Versions the ledger records are roots too (audits and `replay --recompute` need them),
        // and every deletion becomes a ledger event.
        let repo = try openRepository(context)
        let extra = try roots.map { try repo.store.resolve($0) }
        let r = try repo.gc(extraRoots: extra, grace: grace, dryRun: dryRun)
        if context.json {
            context.out(JSONValue.object([
                "dry_run": .bool(dryRun), "reachable": .int(r.reachable), "kept_young": .int(r.keptYoung),
                "swept": .array(r.swept.map { .string($0.hex) }), "bytes_freed": .int(r.bytesFreed),
                "abandoned_writes": .int(r.abandonedWrites),
            ]).serialized() + "\n")
        } else {
            if dryRun { for id in r.swept { context.out("would delete \(id.hex)\n") } }
            context.out("\(dryRun ? "would delete" : "deleted") \(r.swept.count) objects, \(formatBytes(r.bytesFreed)) \(dryRun ? "to free" : "freed"); \(r.reachable) reachable, \(r.keptYoung) unreachable kept (younger than the grace period)\n")
        }
    }
}
