import Foundation
import Lethe
import LetheCommandLine
import LetheLedger

/// `lethe migrate-store --ledger postgresql://...`: move a local store's backends to remote ones.
struct MigrateStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-store",
        abstract: "Copy the store's local ledger to PostgreSQL, verify the copy and switch to it.",
        discussion: """
            Copies every row of .lethe/ledger.sqlite (log entries, tree nodes, signed checkpoints,
            records) into an empty PostgreSQL database, verifies the copy gives the same answer
            (entries, root, checkpoints), then names it in .lethe/remote.json. Proofs and saved
            checkpoints issued before stay valid. Run it while no other lethe process uses the store.
            """,
        options: [.option("ledger", value: "postgresql://...", help: "The empty PostgreSQL database to move the ledger to.", required: true)])

    let ledger: String
    init(from values: ParsedValues) throws(CommandLineError) {
        guard let l: String = try values.option("ledger") else { throw .usage("Missing expected argument '--ledger <postgresql://...>'") }
        if !(l.hasPrefix("postgresql://") || l.hasPrefix("postgres://")) {
            throw .usage("The value '\(l)' is invalid for '--ledger': expected a postgresql:// URL")
        }
        ledger = l
    }

    func run(_ context: CommandContext) throws {
        let location = try StoreLocation.find(explicit: try context.globals.option("store", as: String.self))
        let r = try Repository.migrateLedger(location, to: ledger)
        let target = Ledger.redactedURL(ledger) ?? ledger
        if context.json {
            context.out(JSONValue.object([
                "ledger": .string(target), "entries": .int(r.copy.entries), "checkpoints": .int(r.copy.checkpoints),
                "root": .string(r.copy.root.hex),
                "rows": .object(Dictionary(uniqueKeysWithValues: r.rows.map { ($0.table, JSONValue.int($0.count)) })),
            ]).serialized() + "\n")
        } else {
            let rows = r.rows.reduce(0) { $0 + $1.count }
            context.out("Copied \(rows) rows (\(r.copy.entries) log entries, \(r.copy.checkpoints) checkpoints) to \(target)\n")
            context.out("copy verified: root \(r.copy.root.hex), the same as the local ledger's; .lethe/remote.json now names it\n")
        }
    }
}
