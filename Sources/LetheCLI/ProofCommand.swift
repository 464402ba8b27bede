import Foundation
import Lethe
import LetheCommandLine
import LetheCrypto
import LetheLedger

/// `lethe proof`: inclusion and consistency proofs a third party can check.
struct ProofCommand: CommandGroup {
    static let configuration = CommandConfiguration(
        commandName: "proof",
        abstract: "Print Merkle proofs of the ledger log (RFC 6962).",
        subcommands: [InclusionProofCommand.self, ConsistencyProofCommand.self])
}

/// `lethe proof inclusion REQUEST|ENTRY`.
struct InclusionProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inclusion",
        abstract: "Prove that a request's entries (or one entry) are in the log.",
        discussion: """
            REQUEST is a forget-request id (proves each of its entries); ENTRY is a log entry
            number. The proof is against the latest checkpoint unless --tree-size is given.
            Check it: leaf = SHA-256(0x00 || entry-bytes), then the RFC 9162 §2.1.3.2 audit-path
            algorithm over the path lines must give root, and the checkpoint must verify.
            """,
        arguments: [ArgumentSpec("target", help: "A request id or a log entry number.")],
        options: [.option("tree-size", value: "n", help: "Prove against the tree of this many entries.")])

    let target: String
    let treeSize: Int?

    init(from values: ParsedValues) throws(CommandLineError) {
        target = try values.required("target")
        treeSize = try values.option("tree-size", as: Int.self)
    }

    func run(_ context: CommandContext) throws {
        let ledger = try openStoreLedger(context)
        let proofs: [InclusionProof]
        if let seq = Int(target), seq >= 0, try ledger.status(ofRequest: target) == nil {
            proofs = [try ledger.inclusionProof(entry: seq, treeSize: treeSize)]
        } else if let size = treeSize {
            proofs = try ledger.entries(subject: target).filter { $0.kind.hasPrefix("request.") }
                .map { try ledger.inclusionProof(entry: $0.seq, treeSize: size) }
            if proofs.isEmpty { throw LedgerError.notFound("forget request \(target)") }
        } else {
            proofs = try ledger.inclusionProofs(request: target)
        }
        if context.json {
            context.out(JSONValue.object([
                "origin": .string(ledger.origin),
                "proofs": .array(proofs.map { p in
                    .object([
                        "entry": .int(p.entry.seq), "kind": .string(p.entry.kind), "subject": .string(p.entry.subject),
                        "tree_size": .int(p.treeSize), "leaf_index": .int(p.leafIndex), "leaf_hash": .string(p.leafHash.hex),
                        "root": .string(p.root.hex), "path": .array(p.path.map { .string($0.hex) }),
                        "entry_bytes": .string(Hex.encode(p.entryBytes)),
                        "checkpoint": p.checkpoint.map { $0.json(key: ledger.publicKey) } ?? .null,
                    ])
                }),
            ]).serialized() + "\n")
        } else {
            context.out(proofs.map { $0.text(key: ledger.publicKey) }.joined(separator: "\n"))
        }
    }
}

/// `lethe proof consistency OLD [NEW]`.
struct ConsistencyProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consistency",
        abstract: "Prove that the log at size OLD is a prefix of the log at size NEW.",
        discussion: "NEW defaults to the current size. Check with the RFC 9162 §2.1.4.2 algorithm.",
        arguments: [ArgumentSpec("old", help: "The older tree size (>= 1)."),
                    ArgumentSpec("new", help: "The newer tree size (default: current).", optional: true)])

    let old: Int
    let new: Int?

    init(from values: ParsedValues) throws(CommandLineError) {
        old = try values.required("old", as: Int.self)
        new = try values.argument("new", as: Int.self)
    }

    func run(_ context: CommandContext) throws {
        let ledger = try openStoreLedger(context)
        let p = try ledger.consistencyProof(oldSize: old, newSize: new)
        if context.json {
            context.out(JSONValue.object([
                "origin": .string(p.origin), "old_size": .int(p.oldSize), "new_size": .int(p.newSize),
                "old_root": .string(p.oldRoot.hex), "new_root": .string(p.newRoot.hex),
                "path": .array(p.path.map { .string($0.hex) }),
                "old_checkpoint": p.oldCheckpoint.map { $0.json(key: ledger.publicKey) } ?? .null,
                "new_checkpoint": p.newCheckpoint.map { $0.json(key: ledger.publicKey) } ?? .null,
            ]).serialized() + "\n")
        } else {
            context.out(p.text())
        }
    }
}
