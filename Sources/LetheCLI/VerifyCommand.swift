import Foundation
import Lethe
import LetheCommandLine
import LetheCrypto
import LetheLedger

/// `lethe verify`: recompute the ledger's Merkle log from its rows and check every checkpoint.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute the ledger log from its rows and check every signed checkpoint.",
        discussion: """
            Exits 1 naming the first bad entry when a row was edited, inserted, deleted or
            reordered, or when a checkpoint is not signed by the store's key.
            """,
        options: [.option("public-key", value: "pem", help: "Check signatures against this Ed25519 public key instead of the store's."),
                  .option("checkpoint", value: "file", help: "Also check a checkpoint saved earlier from 'lethe checkpoint' (repeatable).",
                          repeating: true)])

    let publicKeyPath: String?
    let savedCheckpoints: [String]

    init(from values: ParsedValues) throws(CommandLineError) {
        publicKeyPath = try values.option("public-key", as: String.self)
        savedCheckpoints = try values.options("checkpoint", as: String.self)
    }

    func run(_ context: CommandContext) throws {
        let ledger = try openStoreLedger(context)
        var trusted: Ed25519.PublicKey?
        if let publicKeyPath {
            guard let data = FileManager.default.contents(atPath: publicKeyPath) else {
                throw LedgerError.io(path: publicKeyPath, message: "cannot read the public key")
            }
            trusted = try Ed25519.PublicKey(pem: String(decoding: data, as: UTF8.self))
        }
        let full = try ledger.verify(trustedKey: trusted)
        var extra: [VerifyFailure] = []
        for path in savedCheckpoints {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw LedgerError.io(path: path, message: "cannot read the saved checkpoint")
            }
            if let f = try ledger.checkSavedCheckpoint(note: String(decoding: data, as: UTF8.self), trustedKey: trusted) {
                extra.append(VerifyFailure(entry: f.entry, message: "\(path): \(f.message)"))
            }
        }
        let r = VerifyReport(entries: full.entries, checkpoints: full.checkpoints + savedCheckpoints.count, root: full.root,
                             publicKeyHex: full.publicKeyHex, failures: full.failures + extra)
        if context.json {
            context.out(JSONValue.object([
                "ok": .bool(r.isValid), "entries": .int(r.entries), "checkpoints": .int(r.checkpoints),
                "root": .string(r.root.hex), "public_key": .string(r.publicKeyHex),
                "first_bad_entry": r.firstBadEntry.map { .int($0) } ?? .null,
                "failures": .array(r.failures.map { f in
                    .object(["entry": f.entry.map { .int($0) } ?? .null, "message": .string(f.message)])
                }),
            ]).serialized() + "\n")
        } else if r.isValid {
            context.out("ledger ok: \(r.entries) entries, \(r.checkpoints) checkpoints verified, root \(r.root.hex)\n")
        }
        guard r.isValid else {
            let first = r.failures[0]
            let head = r.firstBadEntry.map { "first bad entry \($0): " } ?? ""
            context.err("Error: ledger verification failed: \(head)\(first.message)\n")
            for f in r.failures.dropFirst().prefix(20) { context.err("  also: \(f.message)\n") }
            if r.failures.count > 21 { context.err("  ... \(r.failures.count - 21) more\n") }
            throw ExitCode.failure
        }
    }
}
