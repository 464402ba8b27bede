import Foundation
import Lethe
import LetheCommandLine
import LetheLedger

/// `lethe migrate-store [--objects s3://BUCKET/PREFIX] [--ledger postgresql://...]`.
struct MigrateStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-store",
        abstract: "Copy the store's objects and refs to S3 and/or its ledger to PostgreSQL, verify the copies, then use them.",
        discussion: """
            --objects: objects are written once and re-read, decoded and hash-checked by a full fsck of
            the copy; refs (with history) must then agree. --ledger: every row of .lethe/ledger.sqlite
            (log entries, tree nodes, signed checkpoints, records) goes into an empty PostgreSQL
            database, whose verify must give the local ledger's answer; proofs and saved checkpoints
            stay valid. Each part updates .lethe/remote.json only after its copy verified; the local
            files stay in place. Run it while no other lethe process uses the store.
            """,
        options: [
            .option("objects", value: "s3://bucket/prefix", help: "Where objects and refs go (keys, region, endpoint from AWS_* variables)."),
            .option("ledger", value: "postgresql://...", help: "The empty PostgreSQL database the ledger goes to."),
        ])

    let objects: String?
    let ledger: String?
    init(from values: ParsedValues) throws(CommandLineError) {
        objects = try values.option("objects")
        ledger = try values.option("ledger")
        if objects == nil && ledger == nil {
            throw .usage("Missing expected option '--objects <s3://bucket/prefix>' or '--ledger <postgresql://...>'")
        }
        if let o = objects {
            do { _ = try S3Location(url: o) } catch { throw .usage("The value '\(o)' is invalid for '--objects': expected s3://BUCKET/PREFIX") }
        }
        if let l = ledger, !(l.hasPrefix("postgresql://") || l.hasPrefix("postgres://")) {
            throw .usage("The value '\(l)' is invalid for '--ledger': expected a postgresql:// URL")
        }
    }

    func run(_ context: CommandContext) throws {
        let explicit = try context.globals.option("store", as: String.self)
        let location = try StoreLocation.find(explicit: explicit)
        var fields: [String: JSONValue] = [:]
        if let objects {
            let r = try location.migrateObjects(to: objects)
            fields.merge([
                "objects": .string(objects), "source_objects": .int(r.objects), "copied": .int(r.copied),
                "already_present": .int(r.alreadyPresent), "bytes_copied": .int(r.bytesCopied), "ref_moves": .int(r.refMoves),
                "verified_objects": .int(r.verifiedObjects), "refs": .array(r.refs.map { .string($0) }),
            ]) { a, _ in a }
            if !context.json {
                context.out("Copied \(r.copied) of \(r.objects) objects (\(formatBytes(r.bytesCopied)); \(r.alreadyPresent) already there) and \(r.refMoves) ref moves to \(objects)\n")
                context.out("verified: \(r.verifiedObjects) objects read back and re-hashed, \(r.refs.count) refs agree; the store now uses \(objects)\n")
            }
        }
        if let ledger {
            let r = try Repository.migrateLedger(location, to: ledger)
            let target = Ledger.redactedURL(ledger) ?? ledger
            fields.merge([
                "ledger": .string(target), "entries": .int(r.copy.entries), "checkpoints": .int(r.copy.checkpoints),
                "root": .string(r.copy.root.hex),
                "rows": .object(Dictionary(uniqueKeysWithValues: r.rows.map { ($0.table, JSONValue.int($0.count)) })),
            ]) { a, _ in a }
            if !context.json {
                let rows = r.rows.reduce(0) { $0 + $1.count }
                context.out("Copied \(rows) rows (\(r.copy.entries) log entries, \(r.copy.checkpoints) checkpoints) to \(target)\n")
                context.out("copy verified: root \(r.copy.root.hex), the same as the local ledger's; .lethe/remote.json now names it\n")
            }
        }
        if context.json { context.out(JSONValue.object(fields).serialized() + "\n") }
    }
}
