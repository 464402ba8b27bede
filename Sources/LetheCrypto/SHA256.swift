import CCrypto

/// A 32-byte SHA-256 digest.
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The raw 32 bytes.
    public let bytes: [UInt8]

    /// Wraps 32 raw bytes.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "a SHA-256 digest has 32 bytes, got \(bytes.count)")
        self.bytes = bytes
    }

    /// Parses 64 lowercase or uppercase hex digits.
    public init?(hex: String) {
        guard hex.utf8.count == 64, let b = Hex.decode(hex) else { return nil }
        self.bytes = b
    }

    /// Lowercase hex.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
    public static func < (a: Digest, b: Digest) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// Incremental SHA-256 through libcrypto's EVP interface (`EVP_DigestInit_ex`, `EVP_DigestUpdate`, `EVP_DigestFinal_ex`).
public final class SHA256 {
    private let ctx: OpaquePointer

    /// A fresh hasher.
    public init() {
        guard let c = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed: out of memory") }
        ctx = c
        EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(ctx) }

    /// Adds bytes.
    public func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        EVP_DigestUpdate(ctx, base, buffer.count)
    }

    /// Adds bytes.
    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Adds bytes.
    public func update(_ bytes: ArraySlice<UInt8>) { bytes.withUnsafeBytes { update($0) } }

    /// Adds the UTF-8 bytes of a string.
    public func update(_ string: String) { update(Array(string.utf8)) }

    /// Finishes and returns the digest; the hasher must not be used afterwards.
    public func finalize() -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        let ok = out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(ctx, $0.baseAddress, &len) }
        precondition(ok == 1 && len == 32, "EVP_DigestFinal_ex failed")
        return Digest(bytes: out)
    }

    /// One-shot digest of a byte buffer.
    public static func hash(_ bytes: [UInt8]) -> Digest {
        let h = SHA256(); h.update(bytes); return h.finalize()
    }

    /// One-shot digest of a string's UTF-8 bytes.
    public static func hash(_ string: String) -> Digest { hash(Array(string.utf8)) }
}

/// Lowercase hexadecimal encoding.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Bytes → lowercase hex.
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8](); out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hex (either case) → bytes, or nil on odd length or a non-hex character.
    public static func decode(_ hex: String) -> [UInt8]? {
        let u = Array(hex.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out = [UInt8](); out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo); i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
}
