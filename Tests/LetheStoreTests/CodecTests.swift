import XCTest
import Foundation
import LetheCrypto
import LetheTensor
@testable import LetheStore

final class CodecTests: XCTestCase {
    func testByteGroupingAndXorAreInverses() {
        var rng = SeededGenerator(seed: 1)
        for s in [1, 2, 4, 8] {
            for n in [0, 1, 3, 17, 1000] {
                let src = (0..<(n * s)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                var g = [UInt8](repeating: 0, count: src.count), back = g
                src.withUnsafeBytes { sb in g.withUnsafeMutableBytes { ByteGrouping.group(sb, into: $0, elementSize: s) } }
                if n > 1 && s == 1 { XCTAssertEqual(g[1], src[1]) }
                if n > 1 && s == 4 {
                    // Plane 3 holds the top byte of each element rotated left by one bit (an F32's exponent).
                    let v = UInt32(src[4]) | UInt32(src[5]) << 8 | UInt32(src[6]) << 16 | UInt32(src[7]) << 24
                    XCTAssertEqual(g[3 * n + 1], UInt8(truncatingIfNeeded: (v << 1 | v >> 31) >> 24))
                }
                g.withUnsafeBytes { gb in back.withUnsafeMutableBytes { ByteGrouping.ungroup(gb, into: $0, elementSize: s) } }
                XCTAssertEqual(back, src)
            }
        }
        let one: [UInt8] = [0x00, 0x00, 0x80, 0xBF]  // -1.0f: exponent 127, sign 1
        var planes = [UInt8](repeating: 0, count: 4)
        one.withUnsafeBytes { o in planes.withUnsafeMutableBytes { ByteGrouping.group(o, into: $0, elementSize: 4) } }
        XCTAssertEqual(planes, [0x01, 0x00, 0x00, 0x7F])
        let a: [UInt8] = Array(0..<13), b: [UInt8] = Array((0..<13).map { UInt8($0 * 3) })
        var x = [UInt8](repeating: 0, count: 13)
        a.withUnsafeBytes { ab in b.withUnsafeBytes { bb in x.withUnsafeMutableBytes { ByteGrouping.xor(ab, bb, into: $0) } } }
        XCTAssertEqual(x, zip(a, b).map { $0 ^ $1 })
    }

    /// Every codec, every dtype, special values: decode is bit-exact and the id is the payload's.
    func testEveryCodecRoundTripsBitExactForEveryDType() throws {
        var rng = SeededGenerator(seed: 42)
        for dtype in DType.allCases {
            for count in [1, 7, 64, 5000] {
                let payload = specialTensorBytes(dtype, count: count, rng: &rng)
                var baseBytes = payload
                for i in stride(from: 0, to: baseBytes.count, by: 3) { baseBytes[i] ^= UInt8(truncatingIfNeeded: rng.next()) }
                let backend = MemoryBackend()
                let store = ObjectStore(backend: backend)
                let base = try store.put(kind: .chunk, payload: baseBytes, elementSize: dtype.byteSize)
                for codec in Codec.allCases {
                    store.selection = .only(codec)
                    let r = try store.put(kind: .chunk, payload: payload, elementSize: dtype.byteSize) {
                        DeltaBase(id: base.id, payload: baseBytes, depth: 0)
                    }
                    XCTAssertEqual(r.id, ObjectID.compute(kind: .chunk, payload: payload))
                    XCTAssertEqual(try store.get(r.id, kind: .chunk), payload, "\(dtype) × \(count) via \(codec)")
                    if dtype.byteSize > 1, payload.count >= 64, let c = r.codec, c != .stored { XCTAssertEqual(c, codec) }
                    backend.objects[r.id] = nil  // next codec writes anew
                }
                store.selection = .exhaustive
                let r = try store.put(kind: .chunk, payload: payload, elementSize: dtype.byteSize)
                XCTAssertEqual(try store.get(r.id), payload)
            }
        }
    }

    func testWriterPicksTheSmallestCodec() throws {
        let backend = MemoryBackend()
        let store = ObjectStore(backend: backend)
        store.selection = .exhaustive
        let weights = normalFloatBytes(1 << 16, seed: 3)
        // A small update: exponents and signs stay, low mantissa bits change.
        var updated = weights
        for i in stride(from: 0, to: updated.count, by: 4) { updated[i] ^= UInt8(truncatingIfNeeded: i / 4) }
        let base = try store.put(kind: .chunk, payload: weights, elementSize: 4)
        XCTAssertEqual(base.codec, .grouped, "byte grouping beats plain zstd on float weights")
        var sizes: [Codec: Int] = [:]
        for c in [Codec.zstd, .grouped, .deltaGrouped] {
            let probe = ObjectStore(backend: MemoryBackend())
            probe.selection = .only(c)
            sizes[c] = try probe.put(kind: .chunk, payload: updated, elementSize: 4) {
                DeltaBase(id: base.id, payload: weights, depth: 0)
            }.storedBytes
        }
        let r = try store.put(kind: .chunk, payload: updated, elementSize: 4) { DeltaBase(id: base.id, payload: weights, depth: 0) }
        XCTAssertEqual(r.codec, .deltaGrouped)
        XCTAssertEqual(r.storedBytes, sizes.values.min())
        XCTAssertLessThan(r.storedBytes, (sizes[.grouped] ?? 0) / 2)
        XCTAssertEqual(try store.get(r.id), updated)
        // Sampled selection makes the same choice here.
        let sampled = ObjectStore(backend: backend)
        sampled.selection = .sampled(sampleBytes: 16 << 10)
        var other = updated; other[0] ^= 1
        XCTAssertEqual(try sampled.put(kind: .chunk, payload: other, elementSize: 4) { DeltaBase(id: base.id, payload: weights, depth: 0) }.codec, .deltaGrouped)
    }

    func testDeltaChainsDecodeAndStopAtMaxDepth() throws {
        let backend = MemoryBackend()
        let store = ObjectStore(backend: backend)
        store.selection = .only(.deltaGrouped)
        var payload = normalFloatBytes(4096, seed: 9)
        var prev = try store.put(kind: .chunk, payload: payload, elementSize: 4)
        var prevPayload = payload
        var depths: [Int] = []
        for step in 0..<12 {
            payload[step * 4] ^= 0x01
            let base = DeltaBase(id: prev.id, payload: prevPayload, depth: try store.header(prev.id).depth)
            let r = try store.put(kind: .chunk, payload: payload, elementSize: 4) { base }
            depths.append(try store.header(r.id).depth)
            XCTAssertEqual(try store.get(r.id), payload)
            prev = r; prevPayload = payload
        }
        XCTAssertEqual(depths, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3])
    }

    func testDamagedReadsAreCaught() throws {
        let backend = MemoryBackend()
        let store = ObjectStore(backend: backend)
        let r = try store.put(kind: .chunk, payload: normalFloatBytes(1000, seed: 5), elementSize: 4)
        backend.damageNextGet = true
        XCTAssertThrowsError(try store.get(r.id)) { XCTAssertTrue("\($0)".hasPrefix("corrupt object: \(r.id.hex)"), "\($0)") }
        XCTAssertNoThrow(try store.get(r.id))
        // Streaming reads hand out blocks, then check the id: a flipped mantissa byte in a stored
        // plane decodes fine but is caught by the hash; fsck's body checksum pins it on the file.
        var streamed: [UInt8] = []
        try store.read(r.id, kind: .chunk, blockBytes: 1000) { streamed += Array($0) }
        XCTAssertEqual(streamed, try store.get(r.id))
        var bytes = try backend.get(r.id)
        bytes[ObjectHeader.fixedSize + 9 + 10] ^= 0x01  // plane 0 (stored raw), element 10
        backend.objects[r.id] = bytes
        XCTAssertThrowsError(try store.read(r.id, kind: .chunk) { _ in }) { XCTAssertTrue("\($0)".contains("content hashes to"), "\($0)") }
        XCTAssertThrowsError(try store.verifyStored(r.id)) { XCTAssertTrue("\($0)".contains("does not match its checksum"), "\($0)") }
        XCTAssertThrowsError(try store.get(ObjectID.compute(kind: .blob, payload: [1])) ) {
            XCTAssertEqual($0 as? StoreError, .missingObject(ObjectID.compute(kind: .blob, payload: [1]).hex))
        }
        XCTAssertThrowsError(try store.get(r.id, kind: .version)) { XCTAssertTrue("\($0)".contains("expected a version")) }
    }

    /// A stored object whose zstd frame declares a huge content size is refused before decoding.
    func testDecompressionBombIsRefused() throws {
        let backend = MemoryBackend()
        let store = ObjectStore(backend: backend)
        store.selection = .only(.zstd)
        let payload = [UInt8](repeating: 7, count: 4096)
        let r = try store.put(kind: .blob, payload: payload)
        XCTAssertEqual(r.codec, .zstd)
        // Header claiming 1 TiB: refused by the cap.
        var bytes = try backend.get(r.id)
        var forged = bytes
        for k in 0..<8 { forged[16 + k] = UInt8(truncatingIfNeeded: UInt64(1 << 40) >> (8 * UInt64(k))) }
        backend.objects[r.id] = forged
        XCTAssertThrowsError(try store.get(r.id)) { XCTAssertTrue("\($0)".contains("cap"), "\($0)") }
        // A frame declaring 1 GiB inside an honest-looking header: refused by the frame check.
        let big = [UInt8](repeating: 0, count: 64 << 20)
        let frame = big.withUnsafeBytes { ZstdCompressor(level: 1).compress($0) }
        XCTAssertLessThan(frame.count, 1 << 16)
        let h = ObjectHeader(kind: .blob, codec: .zstd, elementSize: 1, depth: 0, payloadLength: 4096,
                             bodyLength: frame.count, bodyChecksum: BodyChecksum.compute(frame), base: nil)
        bytes = h.serialized() + frame
        backend.objects[r.id] = bytes
        XCTAssertThrowsError(try store.get(r.id)) { XCTAssertTrue("\($0)".contains("declares 67108864 bytes, expected 4096"), "\($0)") }
    }
}

final class RANSTests: XCTestCase {
    func testRoundTripsSkewedUniformAndDegenerateDistributions() {
        var rng = SeededGenerator(seed: 8)
        let makers: [(Int) -> UInt8] = [
            { _ in UInt8(truncatingIfNeeded: rng.next()) },                        // uniform
            { _ in UInt8(120 + min(10, Int(rng.next() % 1000).trailingZeroBitCount)) },  // geometric, exponent-like
            { _ in 7 },                                                              // one symbol
            { i in i % 1000 == 0 ? 255 : 0 },                                        // rare symbol
        ]
        for (k, make) in makers.enumerated() {
            for n in [1, 3, 4, 5, 1000, 70_001] {
                let src = (0..<n).map { make($0) }
                let enc = src.withUnsafeBytes { RANS.encode($0, counts: RANS.histogram($0)) }
                var dst = [UInt8](repeating: 0, count: n)
                let ok = enc.withUnsafeBytes { e in dst.withUnsafeMutableBytes { RANS.decode(e, into: $0) } }
                XCTAssertTrue(ok, "distribution \(k), n \(n)")
                XCTAssertEqual(dst, src, "distribution \(k), n \(n)")
                if k == 1 && n == 70_001 {
                    // Within 1% of the empirical entropy (plus the table).
                    let counts = src.withUnsafeBytes { RANS.histogram($0) }
                    let h = counts.filter { $0 > 0 }.reduce(0.0) { $0 - Double($1) / Double(n) * log2(Double($1) / Double(n)) }
                    XCTAssertLessThan(Double(enc.count - RANS.tableBytes(symbols: counts.filter { $0 > 0 }.count)), h * Double(n) / 8 * 1.01)
                }
            }
        }
    }

    func testMalformedStreamsAreRejected() {
        let src = (0..<5000).map { UInt8($0 % 7) }
        let enc = src.withUnsafeBytes { RANS.encode($0, counts: RANS.histogram($0)) }
        var dst = [UInt8](repeating: 0, count: src.count)
        for cut in [0, 10, RANS.tableBytes(symbols: 7), enc.count - 1] {
            XCTAssertFalse(Array(enc.prefix(cut)).withUnsafeBytes { e in dst.withUnsafeMutableBytes { RANS.decode(e, into: $0) } }, "cut \(cut)")
        }
        var badTable = enc; badTable[3] &+= 1  // first frequency
        XCTAssertFalse(badTable.withUnsafeBytes { e in dst.withUnsafeMutableBytes { RANS.decode(e, into: $0) } })
        var longer = [UInt8](repeating: 0, count: src.count + 10)
        XCTAssertFalse(enc.withUnsafeBytes { e in longer.withUnsafeMutableBytes { RANS.decode(e, into: $0) } })
    }
}
