/// Byte-plane transforms used by the float-aware codecs, on unsafe buffers.
///
/// Grouping rotates each element of `s` ∈ {2, 4, 8} bytes left by one bit, then splits `n`
/// elements into `s` planes of `n` bytes, plane `j` holding byte `j` of every rotated
/// element (after ZipNN: Hershcovitch et al., "ZipNN: Lossless Compression for AI Models",
/// 2024). The rotation moves the sign bit to the bottom, so the top plane of an F32 or BF16
/// value is exactly its 8-bit exponent (F16: 5 exponent bits, F64: the top 8 of 11): that
/// plane is low-entropy and compresses well, while the near-random mantissa bytes are kept
/// apart. Integers are unharmed (small values keep zero or 0xFF top bytes).
public enum ByteGrouping {
    /// Splits `src` (elements of `elementSize` bytes) into planes in `dst` (same size).
    /// - Complexity: O(n), one pass.
    public static func group(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, elementSize s: Int) {
        precondition(src.count == dst.count && src.count % s == 0, "grouping needs equal buffers of whole elements")
        let n = src.count / s
        guard n > 0, let sp = src.baseAddress, let dp = dst.baseAddress else { return }
        let a = sp.assumingMemoryBound(to: UInt8.self), b = dp.assumingMemoryBound(to: UInt8.self)
        switch s {
        case 1: b.update(from: a, count: n)
        case 2:
            let p0 = b, p1 = b + n
            let w = UnsafeRawPointer(a)
            for i in 0..<n {
                var v = w.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                v = v << 1 | v >> 15
                p0[i] = UInt8(truncatingIfNeeded: v); p1[i] = UInt8(truncatingIfNeeded: v >> 8)
            }
        case 4:
            let p0 = b, p1 = b + n, p2 = b + 2 * n, p3 = b + 3 * n
            let w = UnsafeRawPointer(a)
            for i in 0..<n {
                var v = w.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                v = v << 1 | v >> 31
                p0[i] = UInt8(truncatingIfNeeded: v); p1[i] = UInt8(truncatingIfNeeded: v >> 8)
                p2[i] = UInt8(truncatingIfNeeded: v >> 16); p3[i] = UInt8(truncatingIfNeeded: v >> 24)
            }
        case 8:
            let w = UnsafeRawPointer(a)
            for i in 0..<n {
                var v = w.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
                v = v << 1 | v >> 63
                for j in 0..<8 { b[j * n + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(j))) }
            }
        default:
            for i in 0..<n { for j in 0..<s { b[j * n + i] = a[s * i + j] } }
        }
    }

    /// Inverse of `group`.
    /// - Complexity: O(n), one pass.
    public static func ungroup(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, elementSize s: Int) {
        precondition(src.count == dst.count && src.count % s == 0, "ungrouping needs equal buffers of whole elements")
        let n = src.count / s
        guard n > 0, let sp = src.baseAddress, let dp = dst.baseAddress else { return }
        let a = sp.assumingMemoryBound(to: UInt8.self), b = dp.assumingMemoryBound(to: UInt8.self)
        switch s {
        case 1: b.update(from: a, count: n)
        case 2:
            let p0 = a, p1 = a + n
            let w = UnsafeMutableRawPointer(b)
            for i in 0..<n {
                let v = UInt16(p0[i]) | UInt16(p1[i]) << 8
                w.storeBytes(of: v >> 1 | v << 15, toByteOffset: 2 * i, as: UInt16.self)
            }
        case 4:
            let p0 = a, p1 = a + n, p2 = a + 2 * n, p3 = a + 3 * n
            let w = UnsafeMutableRawPointer(b)
            for i in 0..<n {
                let v = UInt32(p0[i]) | UInt32(p1[i]) << 8 | UInt32(p2[i]) << 16 | UInt32(p3[i]) << 24
                w.storeBytes(of: v >> 1 | v << 31, toByteOffset: 4 * i, as: UInt32.self)
            }
        case 8:
            let w = UnsafeMutableRawPointer(b)
            for i in 0..<n {
                var v: UInt64 = 0
                for j in 0..<8 { v |= UInt64(a[j * n + i]) << (8 * UInt64(j)) }
                w.storeBytes(of: v >> 1 | v << 63, toByteOffset: 8 * i, as: UInt64.self)
            }
        default:
            for i in 0..<n { for j in 0..<s { b[s * i + j] = a[j * n + i] } }
        }
    }

    /// Ungroups elements `start ..< start + count` from `planes` (one base pointer per byte
    /// plane, each plane `n` bytes) into `dst` (`count · s` bytes): a block at a time, so
    /// the output is still in cache when it is hashed and written.
    /// - Complexity: O(count).
    public static func ungroup(planes: [UnsafeRawPointer], start: Int, count: Int, into dst: UnsafeMutableRawPointer) {
        let s = planes.count
        switch s {
        case 2:
            let p0 = planes[0] + start, p1 = planes[1] + start
            for i in 0..<count {
                let v = UInt16(p0.load(fromByteOffset: i, as: UInt8.self)) | UInt16(p1.load(fromByteOffset: i, as: UInt8.self)) << 8
                dst.storeBytes(of: v >> 1 | v << 15, toByteOffset: 2 * i, as: UInt16.self)
            }
        case 4:
            let p0 = (planes[0] + start).assumingMemoryBound(to: UInt8.self), p1 = (planes[1] + start).assumingMemoryBound(to: UInt8.self)
            let p2 = (planes[2] + start).assumingMemoryBound(to: UInt8.self), p3 = (planes[3] + start).assumingMemoryBound(to: UInt8.self)
            for i in 0..<count {
                let v = UInt32(p0[i]) | UInt32(p1[i]) << 8 | UInt32(p2[i]) << 16 | UInt32(p3[i]) << 24
                dst.storeBytes(of: v >> 1 | v << 31, toByteOffset: 4 * i, as: UInt32.self)
            }
        case 8:
            for i in 0..<count {
                var v: UInt64 = 0
                for j in 0..<8 { v |= UInt64(planes[j].load(fromByteOffset: start + i, as: UInt8.self)) << (8 * UInt64(j)) }
                dst.storeBytes(of: v >> 1 | v << 63, toByteOffset: 8 * i, as: UInt64.self)
            }
        default:
            for i in 0..<count { for j in 0..<s { dst.storeBytes(of: planes[j].load(fromByteOffset: start + i, as: UInt8.self), toByteOffset: s * i + j, as: UInt8.self) } }
        }
    }

    /// `dst[i] = a[i] ^ b[i]`, eight bytes at a time.
    /// - Complexity: O(n).
    public static func xor(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) {
        precondition(a.count == b.count && a.count == dst.count, "xor needs equal buffers")
        guard let ap = a.baseAddress, let bp = b.baseAddress, let dp = dst.baseAddress else { return }
        let words = a.count / 8
        for i in 0..<words {
            let v = ap.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self) ^ bp.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
            dp.storeBytes(of: v, toByteOffset: 8 * i, as: UInt64.self)
        }
        for i in (8 * words)..<a.count {
            dp.storeBytes(of: ap.load(fromByteOffset: i, as: UInt8.self) ^ bp.load(fromByteOffset: i, as: UInt8.self),
                          toByteOffset: i, as: UInt8.self)
        }
    }
}
