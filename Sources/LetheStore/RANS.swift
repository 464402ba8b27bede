#if canImport(Glibc)
import Glibc
#endif

/// A static order-0 range asymmetric numeral system (rANS) coder for byte planes.
///
/// Four interleaved 32-bit states sharing one stream of 16-bit words (Duda, "Asymmetric
/// numeral systems", 2013; after Giesen's `rans_word`: state in [2¹⁶, 2³²), at most one
/// word per symbol, so decoding renormalizes without branches), 12-bit probabilities (so the
/// decoding tables, 4 Ki entries, stay in L1 cache). On the
/// exponent plane of float weights it lands within ~0.01 bit per symbol of the empirical
/// entropy, where Huffman (what zstd uses for literals) loses ~0.05.
///
/// Encoded layout: the number K of present symbols (`UInt16` LE), K × (symbol byte,
/// frequency `UInt16` LE) in increasing symbol order (frequencies sum to 2¹²), four `UInt32`
/// initial decoder states, then the stream.
enum RANS {
    static let scaleBits: UInt32 = 12
    static let total: UInt32 = 1 << 12
    static let lower: UInt32 = 1 << 16
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

    /// Frequencies summing to 2¹², every present symbol at least 1.
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
        let cap = 2 * n + 64
        var out = [UInt8](repeating: 0, count: cap)
        var pos = cap
        // x / f by multiplying with m = ⌈2⁶⁴ / f⌉ and keeping the high word: exact for x < 2³²,
        // f < 2¹² (the error x·(m − 2⁶⁴/f)/2⁶⁴ < 2⁻³² never crosses an integer). f = 1 is x itself.
        let recip = freq.map { f -> UInt64 in f > 1 ? UInt64.max / UInt64(f) &+ 1 : 0 }
        var x: (UInt32, UInt32, UInt32, UInt32) = (lower, lower, lower, lower)
        out.withUnsafeMutableBufferPointer { o in
            freq.withUnsafeBufferPointer { fp in recip.withUnsafeBufferPointer { rp in start.withUnsafeBufferPointer { sp in
                guard let ob = o.baseAddress, let inBase = src.baseAddress else { return }
                let raw = UnsafeMutableRawPointer(ob)
                let input = inBase.assumingMemoryBound(to: UInt8.self)
                @inline(__always) func put(_ state: inout UInt32, _ sym: Int) {
                    var v = state
                    let f = fp[sym]
                    if UInt64(v) >= UInt64(f) << (32 - UInt64(scaleBits)) {  // ((lower >> scaleBits) << 16) · f, which may be 2³²
                        pos -= 2
                        raw.storeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian, toByteOffset: pos, as: UInt16.self)
                        v >>= 16
                    }
                    let q = f > 1 ? UInt32(truncatingIfNeeded: UInt64(v).multipliedFullWidth(by: rp[sym]).high) : v
                    state = (q << scaleBits) &+ (v &- q &* f) &+ sp[sym]
                }
                var i = n - 1
                while i >= 0 && i & 3 != 3 {  // the tail past the last whole group of four
                    switch i & 3 {
                    case 0: put(&x.0, Int(input[i]))
                    case 1: put(&x.1, Int(input[i]))
                    default: put(&x.2, Int(input[i]))
                    }
                    i -= 1
                }
                while i >= 3 {
                    put(&x.3, Int(input[i])); put(&x.2, Int(input[i - 1])); put(&x.1, Int(input[i - 2])); put(&x.0, Int(input[i - 3]))
                    i -= 4
                }
            } } }
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
        // Per slot: the symbol, and (freq << 16 | slot − start) so a step is one load, one multiply-add.
        var slotSymbol = [UInt8](repeating: 0, count: Int(total))
        var slotStep = [UInt32](repeating: 0, count: Int(total))
        for sym in 0..<256 where freq[sym] > 0 {
            for k in Int(start[sym])..<Int(start[sym] + freq[sym]) {
                slotSymbol[k] = UInt8(sym)
                slotStep[k] = freq[sym] << 16 | (UInt32(k) - start[sym])
            }
        }
        func state(_ k: Int) -> UInt32 {
            var v: UInt32 = 0
            for b in 0..<4 { v |= UInt32(src[statesAt + 4 * k + b]) << (8 * UInt32(b)) }
            return v
        }
        var x0 = state(0), x1 = state(1), x2 = state(2), x3 = state(3)
        for v in [x0, x1, x2, x3] where v < lower { return false }
        var pos = statesAt + 16
        let end = src.count
        let n = dst.count
        guard let inBase = src.baseAddress, let outBase = dst.baseAddress else { return n == 0 && pos == end }
        let input = inBase.assumingMemoryBound(to: UInt8.self), output = outBase.assumingMemoryBound(to: UInt8.self)
        let mask = total - 1
        var i = 0
        slotSymbol.withUnsafeBufferPointer { symBuf in
            slotStep.withUnsafeBufferPointer { stepBuf in
                guard let sym = symBuf.baseAddress, let step = stepBuf.baseAddress else { return }
                // Fast loop: each state reads at most one word per symbol, so 8 bytes of input
                // always suffice for 4 symbols; renormalization is a select, not a branch.
                let words = UnsafeRawPointer(input)
                @inline(__always) func decodeStep(_ x: inout UInt32, _ at: Int) {
                    let slot = Int(x & mask)
                    output[at] = sym[slot]
                    let e = step[slot]
                    x = (e >> 16) &* (x >> scaleBits) &+ (e & 0xFFFF)
                }
                @inline(__always) func word(_ at: Int) -> UInt32 {
                    UInt32(UInt16(littleEndian: words.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                }
                while i + 4 <= n && pos + 8 <= end {
                    // The four states decode independently; only then are the word offsets laid out
                    // (a chain of cheap adds), so the loads and selects of the four run in parallel.
                    decodeStep(&x0, i); decodeStep(&x1, i + 1); decodeStep(&x2, i + 2); decodeStep(&x3, i + 3)
                    let n0 = x0 < lower ? 2 : 0, n1 = x1 < lower ? 2 : 0, n2 = x2 < lower ? 2 : 0, n3 = x3 < lower ? 2 : 0
                    let p1 = pos + n0, p2 = p1 + n1, p3 = p2 + n2
                    let w0 = word(pos), w1 = word(p1), w2 = word(p2), w3 = word(p3)
                    x0 = n0 != 0 ? (x0 << 16 | w0) : x0
                    x1 = n1 != 0 ? (x1 << 16 | w1) : x1
                    x2 = n2 != 0 ? (x2 << 16 | w2) : x2
                    x3 = n3 != 0 ? (x3 << 16 | w3) : x3
                    pos = p3 + n3
                    i += 4
                }
                // Careful tail: one symbol at a time with bounds checks.
                while i < n {
                    var x: UInt32
                    switch i & 3 { case 0: x = x0; case 1: x = x1; case 2: x = x2; default: x = x3 }
                    let slot = Int(x & mask)
                    output[i] = sym[slot]
                    let e = step[slot]
                    x = (e >> 16) &* (x >> scaleBits) &+ (e & 0xFFFF)
                    if x < lower {
                        guard pos + 2 <= end else { return }
                        x = x << 16 | UInt32(input[pos]) | UInt32(input[pos + 1]) << 8
                        pos += 2
                    }
                    switch i & 3 { case 0: x0 = x; case 1: x1 = x; case 2: x2 = x; default: x3 = x }
                    i += 1
                }
            }
        }
        return i == n && pos == end && x0 == lower && x1 == lower && x2 == lower && x3 == lower
    }
}
