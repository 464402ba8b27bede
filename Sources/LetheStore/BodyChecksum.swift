/// A fast 64-bit checksum of stored object bodies, in the style of XXH64 (four lanes of
/// multiply–rotate rounds over little-endian 8-byte words, then the tail, then an avalanche).
///
/// It pins accidental damage to the file that holds it (fsck); it is not a defence against
/// tampering: that is the job of the SHA-256 object id, which every read re-checks.
public enum BodyChecksum {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87, p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9, p4: UInt64 = 0x85EB_CA77_C2B2_AE63

    private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { x << r | x >> (64 - r) }
    private static func round(_ acc: UInt64, _ w: UInt64) -> UInt64 { rotl(acc &+ w &* p2, 31) &* p1 }

    /// The checksum of `buf`.
    /// - Complexity: O(n), several GB/s.
    public static func compute(_ buf: UnsafeRawBufferPointer) -> UInt64 {
        let n = buf.count
        guard let base = buf.baseAddress else { return avalanche(p4) }
        func word(_ at: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        var i = 0
        var h: UInt64
        if n >= 32 {
            var a = p1 &+ p2, b = p2, c: UInt64 = 0, d = 0 &- p1
            while i + 32 <= n {
                a = round(a, word(i)); b = round(b, word(i + 8)); c = round(c, word(i + 16)); d = round(d, word(i + 24))
                i += 32
            }
            h = rotl(a, 1) &+ rotl(b, 7) &+ rotl(c, 12) &+ rotl(d, 18)
            for v in [a, b, c, d] { h = (h ^ round(0, v)) &* p1 &+ p4 }
        } else {
            h = p3
        }
        h = h &+ UInt64(n)
        while i + 8 <= n { h = rotl(h ^ round(0, word(i)), 27) &* p1 &+ p4; i += 8 }
        while i < n { h = rotl(h ^ UInt64(base.load(fromByteOffset: i, as: UInt8.self)) &* p3, 11) &* p1; i += 1 }
        return avalanche(h)
    }

    /// The checksum of `bytes`.
    public static func compute(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { compute($0) } }

    private static func avalanche(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33; h = h &* p2; h ^= h >> 29; h = h &* p3; h ^= h >> 32
        return h
    }
}
