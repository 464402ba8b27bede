import LetheCrypto

/// The content address of an object: SHA-256 over `"<kind> <length>\0"` followed by the
/// object's canonical uncompressed payload, written as 64 lowercase hex digits (as git does).
public struct ObjectID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The digest.
    public let digest: Digest

    /// Wraps a digest.
    public init(_ digest: Digest) { self.digest = digest }

    /// Parses 64 hex digits, or nil.
    public init?(hex: String) {
        guard let d = Digest(hex: hex) else { return nil }
        digest = d
    }

    /// Lowercase hex.
    public var hex: String { digest.hex }
    /// The first 12 hex digits, for display.
    public var short: String { String(hex.prefix(12)) }
    public var description: String { hex }
    public static func < (a: ObjectID, b: ObjectID) -> Bool { a.digest < b.digest }

    /// The id of `payload` stored as `kind`.
    public static func compute(kind: ObjectKind, payload: UnsafeRawBufferPointer) -> ObjectID {
        let h = SHA256()
        h.update("\(kind.name) \(payload.count)\0")
        h.update(payload)
        return ObjectID(h.finalize())
    }

    /// The id of `payload` stored as `kind`.
    public static func compute(kind: ObjectKind, payload: [UInt8]) -> ObjectID {
        payload.withUnsafeBytes { compute(kind: kind, payload: $0) }
    }
}

/// What an object holds.
public enum ObjectKind: UInt8, Sendable, CaseIterable {
    /// A slice (at most `ChunkLayout.chunkBytes`) of a tensor's little-endian bytes.
    case chunk = 1
    /// A version: JSON naming spec, tensors, parents, bases and metadata.
    case version = 2
    /// Opaque bytes: a model spec's JSON text, an original safetensors header.
    case blob = 3

    /// The word hashed into ids.
    public var name: String {
        switch self {
        case .chunk: return "chunk"
        case .version: return "version"
        case .blob: return "blob"
        }
    }
}
