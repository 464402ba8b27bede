import Foundation
import Lethe
import LetheCommandLine
import LetheCrypto
import LetheLedger

/// Opens the ledger of the store named by `--store` / `LETHE_STORE` / the nearest `.lethe`.
func openStoreLedger(_ context: CommandContext) throws -> Ledger {
    let location = try StoreLocation.find(explicit: try context.globals.option("store", as: String.self))
    // The key is looked up at the path recorded at creation (the store's signing-key.pem);
    // reading, proving and verifying work without it, writing and `checkpoint` need it.
    // A PostgreSQL ledger named in .lethe/remote.json is opened instead of ledger.sqlite.
    return try location.openLedger()
}

extension Checkpoint {
    /// The `--json` form shared by `checkpoint`, `proof` and `verify` (schema/checkpoint.schema.json).
    func json(key: Ed25519.PublicKey) -> JSONValue {
        .object([
            "id": .int(id), "origin": .string(origin), "tree_size": .int(treeSize), "root": .string(root.hex),
            "signature": .string(Hex.encode(signature)), "public_key": .string(publicKeyHex),
            "created_at": .string(createdAt), "note": .string(note(key: key)),
        ])
    }
}

/// `lethe checkpoint`: sign the current tree head.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Sign a checkpoint of the ledger's Merkle log (origin, tree size, root).",
        discussion: """
            Prints the checkpoint as a C2SP signed note: the signed text (origin, tree size,
            base64 root), a blank line, and an Ed25519 signature line. Every ledger transaction
            already signs one; this command signs the current head on demand.
            """)

    init(from values: ParsedValues) throws(CommandLineError) {}

    func run(_ context: CommandContext) throws {
        let ledger = try openStoreLedger(context)
        let cp = try ledger.checkpoint()
        if context.json {
            context.out(cp.json(key: ledger.publicKey).serialized() + "\n")
        } else {
            context.out(cp.note(key: ledger.publicKey))
        }
    }
}
