/// A seeded, splittable pseudo-random generator whose streams are identical on every machine.
///
/// Algorithm: **xoshiro256\*\*** (Blackman & Vigna, 2018) for the stream, seeded by
/// **SplitMix64** (Steele, Lea & Flood, 2014) from a 64-bit seed. `split(_:)` derives an
/// independent child stream by seeding SplitMix64 with a hash of (this stream's next
/// output, the child index), so the child depends only on the parent's state and the
/// index, never on thread scheduling. Floating-point helpers use only exact integer→float
/// conversions and IEEE operations (`log`, `cos` via Foundation-free `Double` math are
/// avoided where possible; Box–Muller uses `Double` and is deterministic for a given libm).
///
/// - uniform Float in [0, 1): top 24 bits · 2⁻²⁴; uniform Double: top 53 bits · 2⁻⁵³.
/// - bounded integers: Lemire's multiply-shift with rejection (unbiased).
/// - normal: Box–Muller on two uniform Doubles (the cosine branch only).
/// - permutation: Fisher–Yates from the last index down.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// A generator whose stream is a pure function of `seed`.
    public init(seed: UInt64) {
        var sm = seed
        s0 = SeededGenerator.splitMix(&sm); s1 = SeededGenerator.splitMix(&sm)
        s2 = SeededGenerator.splitMix(&sm); s3 = SeededGenerator.splitMix(&sm)
        if s0 | s1 | s2 | s3 == 0 { s0 = 0x9E37_79B9_7F4A_7C15 }
    }

    @inline(__always)
    static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Next 64 random bits (xoshiro256**).
    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = SeededGenerator.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = SeededGenerator.rotl(s3, 45)
        return result
    }

    /// An independent child stream; advances this stream by one draw.
    public mutating func split(_ index: UInt64 = 0) -> SeededGenerator {
        var mix = next() ^ (index &* 0xD1B5_4A32_D192_ED03)
        return SeededGenerator(seed: SeededGenerator.splitMix(&mix))
    }

    /// Uniform Float in [0, 1).
    @inline(__always)
    public mutating func uniformFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform Double in [0, 1).
    @inline(__always)
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform integer in 0..<bound (unbiased, Lemire's method).
    public mutating func uniformInt(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// Standard normal sample (Box–Muller, cosine branch).
    public mutating func normal() -> Double {
        var u1 = uniformDouble()
        while u1 <= 0 { u1 = uniformDouble() }
        let u2 = uniformDouble()
        return (-2 * logDouble(u1)).squareRoot() * cosDouble(2 * Double.pi * u2)
    }

    /// A random permutation of 0..<n (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = uniformInt(below: i + 1)
            p.swapAt(i, j)
        }
        return p
    }

    /// Fills a buffer with N(mean, std²) Float samples.
    public mutating func fillNormal(_ buffer: UnsafeMutableBufferPointer<Float>, mean: Float = 0, std: Float = 1) {
        for i in buffer.indices { buffer[i] = mean + std * Float(normal()) }
    }

    /// Fills a buffer with uniform Float samples in [low, high).
    public mutating func fillUniform(_ buffer: UnsafeMutableBufferPointer<Float>, low: Float, high: Float) {
        for i in buffer.indices { buffer[i] = low + (high - low) * uniformFloat() }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func logDouble(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func cosDouble(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Foundation
@inline(__always) func logDouble(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) func cosDouble(_ x: Double) -> Double { Foundation.cos(x) }
#endif
