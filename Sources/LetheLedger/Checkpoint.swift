import Foundation
import LetheCrypto

/// A signed tree head: the Ed25519 signature of the text
///
/// ```
/// <origin>\n<tree size, decimal>\n<base64 of the 32-byte root hash>\n
/// ```
///
/// (the C2SP `tlog-checkpoint` body). `note` renders it as a C2SP signed note so tools that
/// speak that format (e.g. `golang.org/x/mod/sumdb/note`) can check it too.
public struct Checkpoint: Sendable, Equatable {
    /// Row id in `log_checkpoints`.
    public let id: Int
    /// The log's origin line.
    public let origin: String
    /// Number of leaves covered.
    public let treeSize: Int
    /// Root hash at that size.
    public let root: Digest
    /// The exact signed text.
    public let body: String
    /// 64-byte Ed25519 signature over `body`'s UTF-8 bytes.
    public let signature: [UInt8]
    /// Hex of the public key recorded as the signer.
    public let publicKeyHex: String
    /// When it was signed.
    public let createdAt: String

    /// The body text for (origin, size, root).
    public static func body(origin: String, treeSize: Int, root: Digest) -> String {
        "\(origin)\n\(treeSize)\n\(Data(root.bytes).base64EncodedString())\n"
    }

    init(id: Int, origin: String, treeSize: Int, root: Digest, body: String, signature: [UInt8], publicKeyHex: String, createdAt: String) {
        self.id = id; self.origin = origin; self.treeSize = treeSize; self.root = root; self.body = body
        self.signature = signature; self.publicKeyHex = publicKeyHex; self.createdAt = createdAt
    }

    init(row r: [SQLValue]) throws(LedgerError) {
        guard let id = r[0].int, let origin = r[1].string, let size = r[2].int, let root = r[3].bytes, root.count == 32,
              let body = r[4].string, let sig = r[5].bytes, let pub = r[6].string, let at = r[7].string
        else { throw .tampered("malformed checkpoint row") }
        self.init(id: id, origin: origin, treeSize: size, root: Digest(bytes: root), body: body, signature: sig,
                  publicKeyHex: pub, createdAt: at)
    }

    /// Whether `body` is exactly the text for (origin, treeSize, root) and `signature` verifies under `key`.
    public func isValid(under key: Ed25519.PublicKey) -> Bool {
        body == Checkpoint.body(origin: origin, treeSize: treeSize, root: root)
            && key.isValidSignature(signature, for: Array(body.utf8))
    }

    /// The C2SP key hash: the first 4 bytes of SHA-256(origin ‖ "\n" ‖ 0x01 ‖ public key).
    public static func keyHash(origin: String, key: Ed25519.PublicKey) -> [UInt8] {
        let h = SHA256()
        h.update(origin); h.update([0x0a, 0x01]); h.update(key.raw)
        return Array(h.finalize().bytes.prefix(4))
    }

    /// The checkpoint as a C2SP signed note: the body, a blank line, then
    /// `— <origin> <base64(key hash ‖ signature)>`.
    public func note(key: Ed25519.PublicKey) -> String {
        body + "\n\u{2014} \(origin) " + Data(Checkpoint.keyHash(origin: origin, key: key) + signature).base64EncodedString() + "\n"
    }

    /// Parses a signed note written by `note(key:)` (e.g. one an auditor saved from
    /// `lethe checkpoint`); nil when it is not in that form. `id` is 0 and `publicKeyHex` empty:
    /// the note names its key only by the 4-byte key hash, checked by `Ledger.checkSavedCheckpoint`.
    public static func parse(note: String) -> (checkpoint: Checkpoint, keyHash: [UInt8])? {
        let lines = note.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 5, lines[3].isEmpty, let size = Int(lines[1]), size >= 0,
              let rootBytes = Data(base64Encoded: lines[2]), rootBytes.count == 32 else { return nil }
        let parts = lines[4].split(separator: " ")
        guard parts.count == 3, parts[0] == "\u{2014}", parts[1] == lines[0],
              let blob = Data(base64Encoded: String(parts[2])), blob.count == 68 else { return nil }
        let root = Digest(bytes: [UInt8](rootBytes))
        let body = Checkpoint.body(origin: lines[0], treeSize: size, root: root)
        let cp = Checkpoint(id: 0, origin: lines[0], treeSize: size, root: root, body: body,
                            signature: [UInt8](blob.suffix(64)), publicKeyHex: "", createdAt: "")
        return (cp, [UInt8](blob.prefix(4)))
    }
}
