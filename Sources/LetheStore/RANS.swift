#if canImport(Glibc)
import Glibc
#endif

/// A static order-0 range asymmetric numeral system (rANS) coder for byte planes.
///
/// Four interleaved 32-bit states sharing one byte stream (Duda, "Asymmetric numeral
/// systems", 2013; layout after Giesen's `rans_byte.h`), 14-bit probabilities. On the
/// exponent plane of float weights it lands within ~0.01 bit per symbol of the empirical
/// entropy, where Huffman (what zstd uses for literals) loses ~0.05.
///
/// Encoded layout: the number K of present symbols (`UInt16` LE), K × (symbol byte,
/// frequency `UInt16` LE) in increasing symbol order (frequencies sum to 2¹⁴), four `UInt32`
/// initial decoder states, then the stream.
enum RANS {
    static let scaleBits: UInt32 = 14
    static let total: UInt32 = 1 << 14
    static let lower: UInt32 = 1 << 23
    /// Fixed bytes besides the per-symbol entries: K and the four states.
    static let fixedBytes = 2 + 16

    /// Table bytes for `symbols` present symbols.
    static func tableBytes(symbols: Int) -> Int { fixedBytes + 3 * symbols }

    /// Symbol counts of `src`.
    static func histogram(_ src: UnsafeRawBufferPointer) -> [Int] {
        var c = [Int](repeating: 0, count: 256)
        c.withUnsafeMutableBufferPointer { cp in
            for b in src { cp[Int(b)] += 1 }
        }
        return c
    }

    /// Frequencies summing to 2¹⁴, every present symbol at least 1.
    static func normalize(_ counts: [Int]) -> [UInt32] {
        let n = counts.reduce(0, +)
        guard n > 0 else { return [UInt32](repeating: 0, count: 256) }
        var f = counts.map { c -> Int in c == 0 ? 0 : max(1, Int((Double(c) * Double(total) / Double(n)).rounded())) }
        var sum = f.reduce(0, +)
        while sum > Int(total) {
            // Take from the largest frequency (it loses least), a little at a time.
            guard let i = f.indices.max(by: { f[$0] < f[$1] }), f[i] > 1 else { break }
            let d = min(sum - Int(total), f[i] - 1, max(1, f[i] / 16))
            f[i] -= d; sum -= d
        }
        if sum < Int(total), let i = f.indices.max(by: { f[$0] < f[$1] }) { f[i] += Int(total) - sum }
        return f.map { UInt32($0) }
    }

    /// Estimated encoded bytes of data with these counts.
    static func estimate(_ counts: [Int]) -> Int {
        let f = normalize(counts)
        var bits = 0.0
        for s in 0..<256 where counts[s] > 0 { bits += Double(counts[s]) * (Double(scaleBits) - log2(Double(f[s]))) }
        return Int(bits / 8) + tableBytes(symbols: counts.filter { $0 > 0 }.count) + 4
    }

    /// Encodes `src`.
    /// - Complexity: O(n), one pass backward.
    static func encode(_ src: UnsafeRawBufferPointer, counts: [Int]) -> [UInt8] {
        let freq = normalize(counts)
        var start = [UInt32](repeating: 0, count: 256)
        var acc: UInt32 = 0
        for s in 0..<256 { start[s] = acc; acc += freq[s] }
        let n = src.count
        let cap = n + n / 4 + 64
        var out = [UInt8](repeating: 0, count: cap)
        var pos = cap
        // Division-free encoding with reciprocals (Giesen's RansEncSymbolInit / RansEncPutSymbol).
        var xMax = [UInt32](repeating: 0, count: 256), rcp = [UInt32](repeating: 0, count: 256)
        var shift = [UInt32](repeating: 0, count: 256), bias = [UInt32](repeating: 0, count: 256)
        var cmpl = [UInt32](repeating: 0, count: 256)
        for sym in 0..<256 where freq[sym] > 0 {
            let f = freq[sym]
            xMax[sym] = ((lower >> scaleBits) << 8) &* f
            cmpl[sym] = total - f
            if f < 2 {
                rcp[sym] = ~0; shift[sym] = 0; bias[sym] = start[sym] + total - 1
            } else {
                var sh: UInt32 = 0
                while f > (1 << sh) { sh += 1 }
                rcp[sym] = UInt32(((UInt64(1) << (UInt64(sh) + 31)) + UInt64(f) - 1) / UInt64(f))
                shift[sym] = sh - 1; bias[sym] = start[sym]
            }
        }
        var x: (UInt32, UInt32, UInt32, UInt32) = (lower, lower, lower, lower)
        out.withUnsafeMutableBufferPointer { o in
            xMax.withUnsafeBufferPointer { xm in rcp.withUnsafeBufferPointer { rp in shift.withUnsafeBufferPointer { shp in
            bias.withUnsafeBufferPointer { bp in cmpl.withUnsafeBufferPointer { cp in
                @inline(__always) func put(_ state: inout UInt32, _ sym: Int) {
                    var v = state
                    let m = xm[sym]
                    while v >= m { pos -= 1; o[pos] = UInt8(truncatingIfNeeded: v); v >>= 8 }
                    let q = UInt32(truncatingIfNeeded: (UInt64(v) &* UInt64(rp[sym])) >> 32) >> shp[sym]
                    state = v &+ bp[sym] &+ q &* cp[sym]
                }
                var i = n - 1
                while i >= 0 {
                    let sym = Int(src[i])
                    switch i & 3 {
                    case 0: put(&x.0, sym)
                    case 1: put(&x.1, sym)
                    case 2: put(&x.2, sym)
                    default: put(&x.3, sym)
                    }
                    i -= 1
                }
            } } } } }
        }
        var result: [UInt8] = []
        let present = (0..<256).filter { freq[$0] > 0 }
        result.reserveCapacity(tableBytes(symbols: present.count) + cap - pos)
        result.append(UInt8(present.count & 0xFF)); result.append(UInt8(present.count >> 8))
        for sym in present { result.append(UInt8(sym)); result.append(UInt8(freq[sym] & 0xFF)); result.append(UInt8(freq[sym] >> 8)) }
        for s in [x.0, x.1, x.2, x.3] { for k in 0..<4 { result.append(UInt8(truncatingIfNeeded: s >> (8 * UInt32(k)))) } }
        result += out[pos..<cap]
        return result
    }

    /// Decodes exactly `dst.count` symbols from `src`; false when `src` is malformed.
    /// - Complexity: O(n), one pass forward, bounds-checked stream reads.
    static func decode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Bool {
        guard src.count >= fixedBytes else { return false }
        let k = Int(src[0]) | Int(src[1]) << 8
        guard k >= 1, k <= 256, src.count >= tableBytes(symbols: k) else { return false }
        var freq = [UInt32](repeating: 0, count: 256), start = [UInt32](repeating: 0, count: 256)
        var acc: UInt32 = 0
        var previous = -1
        for e in 0..<k {
            let sym = Int(src[2 + 3 * e])
            guard sym > previous else { return false }
            previous = sym
            let f = UInt32(src[3 + 3 * e]) | UInt32(src[4 + 3 * e]) << 8
            guard f > 0, f <= total else { return false }
            freq[sym] = f
        }
        for sym in 0..<256 { start[sym] = acc; acc += freq[sym] }
        guard acc == total else { return false }
        let statesAt = 2 + 3 * k
        var slotSymbol = [UInt8](repeating: 0, count: Int(total))
        for s in 0..<256 where freq[s] > 0 { for k in Int(start[s])..<Int(start[s] + freq[s]) { slotSymbol[k] = UInt8(s) } }
        func state(_ k: Int) -> UInt32 {
            var v: UInt32 = 0
            for b in 0..<4 { v |= UInt32(src[statesAt + 4 * k + b]) << (8 * UInt32(b)) }
            return v
        }
        var x = (state(0), state(1), state(2), state(3))
        for v in [x.0, x.1, x.2, x.3] where v < lower || v >= 1 << 31 { return false }
        var pos = statesAt + 16
        let end = src.count
        let n = dst.count
        var ok = true
        slotSymbol.withUnsafeBufferPointer { sym in
            freq.withUnsafeBufferPointer { fp in
                start.withUnsafeBufferPointer { sp in
                    @inline(__always) func get(_ st: inout UInt32) -> UInt8 {
                        let slot = st & (total - 1)
                        let s = sym[Int(slot)]
                        st = fp[Int(s)] &* (st >> scaleBits) &+ slot &- sp[Int(s)]
                        while st < lower {
                            if pos >= end { ok = false; return s }
                            st = (st << 8) | UInt32(src[pos]); pos += 1
                        }
                        return s
                    }
                    var i = 0
                    while i + 4 <= n && ok {
                        dst[i] = get(&x.0); dst[i + 1] = get(&x.1); dst[i + 2] = get(&x.2); dst[i + 3] = get(&x.3)
                        i += 4
                    }
                    while i < n && ok {
                        switch i & 3 {
                        case 0: dst[i] = get(&x.0)
                        case 1: dst[i] = get(&x.1)
                        case 2: dst[i] = get(&x.2)
                        default: dst[i] = get(&x.3)
                        }
                        i += 1
                    }
                }
            }
        }
        return ok && pos == end && x.0 == lower && x.1 == lower && x.2 == lower && x.3 == lower
    }
}
