import LetheCrypto

/// How an object's body encodes its payload.
public enum Codec: UInt8, Sendable, CaseIterable {
    /// The payload bytes as they are.
    case stored = 0
    /// One zstd frame of the payload.
    case zstd = 1
    /// Byte-grouped planes, each stored or zstd-compressed.
    case grouped = 2
    /// The payload XOR the base object's payload, then byte-grouped like `grouped`.
    case deltaGrouped = 3

    /// Name shown by `lethe show`.
    public var name: String {
        switch self {
        case .stored: return "stored"
        case .zstd: return "zstd"
        case .grouped: return "grouped-zstd"
        case .deltaGrouped: return "xor-delta-grouped-zstd"
        }
    }
}

/// The fixed header in front of every stored object's body.
///
/// Layout (little-endian): magic `LETHEOBJ` (8) · format 1 (1) · kind (1) · codec (1) ·
/// element size (1) · delta depth (1) · reserved zeros (3) · payload length (8) ·
/// body length (8) · `BodyChecksum` of the body (8) · reserved zeros (24) = 64 bytes, then the
/// base id (32) for `deltaGrouped`. The body checksum lets fsck pinpoint a damaged file even
/// when a delta's base is the damaged one; the object id (SHA-256 of the payload) is checked
/// after decoding on every read.
public struct ObjectHeader: Sendable, Equatable {
    /// The magic bytes.
    public static let magic: [UInt8] = Array("LETHEOBJ".utf8)
    /// Bytes before the optional base id.
    public static let fixedSize = 64
    /// Enough bytes to parse any header.
    public static let maxSize = 96
    /// Longest delta chain before a chunk is stored without its base.
    public static let maxDeltaDepth = 8

    /// What the object holds.
    public var kind: ObjectKind
    /// How the body encodes the payload.
    public var codec: Codec
    /// Element size used by byte grouping (1 for non-grouped codecs).
    public var elementSize: Int
    /// Number of delta links below this object (0 when self-contained).
    public var depth: Int
    /// Uncompressed payload length.
    public var payloadLength: Int
    /// Body length.
    public var bodyLength: Int
    /// `BodyChecksum` of the body.
    public var bodyChecksum: UInt64
    /// The object this one is a delta against.
    public var base: ObjectID?

    /// A header.
    public init(kind: ObjectKind, codec: Codec, elementSize: Int, depth: Int, payloadLength: Int, bodyLength: Int,
                bodyChecksum: UInt64, base: ObjectID?) {
        self.kind = kind; self.codec = codec; self.elementSize = elementSize; self.depth = depth
        self.payloadLength = payloadLength; self.bodyLength = bodyLength; self.bodyChecksum = bodyChecksum; self.base = base
    }

    /// Bytes of this header.
    public var size: Int { ObjectHeader.fixedSize + (base == nil ? 0 : 32) }

    /// The largest payload a kind may declare (refused above: no decompression bombs).
    public static func payloadCap(_ kind: ObjectKind) -> Int {
        switch kind {
        case .chunk: return ChunkLayout.maxChunkBytes
        case .version: return 64 << 20
        case .blob: return 128 << 20
        }
    }

    /// Serialized header bytes.
    public func serialized() -> [UInt8] {
        var out = ObjectHeader.magic
        out += [1, kind.rawValue, codec.rawValue, UInt8(elementSize), UInt8(depth), 0, 0, 0]
        appendLE(&out, UInt64(payloadLength))
        appendLE(&out, UInt64(bodyLength))
        appendLE(&out, bodyChecksum)
        out += [UInt8](repeating: 0, count: 24)
        if let base { out += base.digest.bytes }
        return out
    }

    /// Parses and validates a header from the start of a stored object; `what` names it in errors.
    public static func parse(_ b: [UInt8], what: String) throws(StoreError) -> ObjectHeader {
        guard b.count >= fixedSize, Array(b[0..<8]) == magic else { throw .corruptObject("\(what): bad magic") }
        guard b[8] == 1 else { throw .corruptObject("\(what): unknown object format \(b[8])") }
        guard let kind = ObjectKind(rawValue: b[9]) else { throw .corruptObject("\(what): unknown kind \(b[9])") }
        guard let codec = Codec(rawValue: b[10]) else { throw .corruptObject("\(what): unknown codec \(b[10])") }
        let s = Int(b[11]), depth = Int(b[12])
        guard [1, 2, 4, 8].contains(s) else { throw .corruptObject("\(what): bad element size \(s)") }
        guard b[13] == 0, b[14] == 0, b[15] == 0 else { throw .corruptObject("\(what): reserved bytes set") }
        let payload = readLE(b, 16), body = readLE(b, 24)
        guard payload <= UInt64(payloadCap(kind)) else {
            throw .corruptObject("\(what): declares \(payload) payload bytes, above the \(payloadCap(kind))-byte cap for a \(kind.name) (refused)")
        }
        guard payload % UInt64(s) == 0 else { throw .corruptObject("\(what): payload is not whole elements") }
        guard body <= UInt64(Int.max / 2) else { throw .corruptObject("\(what): bad body length") }
        guard b[40..<64].allSatisfy({ $0 == 0 }) else { throw .corruptObject("\(what): reserved bytes set") }
        var base: ObjectID?
        if codec == .deltaGrouped {
            guard b.count >= fixedSize + 32 else { throw .corruptObject("\(what): truncated header") }
            base = ObjectID(Digest(bytes: Array(b[64..<96])))
            guard depth >= 1, depth <= maxDeltaDepth else { throw .corruptObject("\(what): bad delta depth \(depth)") }
            guard kind == .chunk else { throw .corruptObject("\(what): only chunks may be deltas") }
        } else {
            guard depth == 0 else { throw .corruptObject("\(what): bad delta depth \(depth)") }
        }
        return ObjectHeader(kind: kind, codec: codec, elementSize: s, depth: depth, payloadLength: Int(payload),
                            bodyLength: Int(body), bodyChecksum: readLE(b, 32), base: base)
    }
}

func appendLE(_ out: inout [UInt8], _ v: UInt64) {
    var v = v
    for _ in 0..<8 { out.append(UInt8(v & 0xFF)); v >>= 8 }
}

func readLE(_ b: [UInt8], _ at: Int) -> UInt64 {
    var v: UInt64 = 0
    for k in 0..<8 { v |= UInt64(b[at + k]) << (8 * UInt64(k)) }
    return v
}

/// How tensors are cut into chunk objects.
public enum ChunkLayout {
    /// Bytes per chunk (16 MiB): import and export hold a few chunks at a time.
    public static let chunkBytes = 16 << 20
    /// The largest chunk an object may declare.
    public static let maxChunkBytes = 64 << 20

    /// Byte ranges of the chunks of a tensor of `byteCount` bytes (one empty chunk for an empty tensor).
    public static func ranges(byteCount: Int, chunkBytes: Int = chunkBytes) -> [Range<Int>] {
        if byteCount == 0 { return [0..<0] }
        return stride(from: 0, to: byteCount, by: chunkBytes).map { $0..<min($0 + chunkBytes, byteCount) }
    }
}
