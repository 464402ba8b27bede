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
                    // Plane 3 holds the top byte of each element rotated left by two bits.
                    let v = UInt32(src[4]) | UInt32(src[5]) << 8 | UInt32(src[6]) << 16 | UInt32(src[7]) << 24
                    XCTAssertEqual(ByteGrouping.rotation(4), 2)
                    XCTAssertEqual(g[3 * n + 1], UInt8(truncatingIfNeeded: (v << 2 | v >> 30) >> 24))
                }
                g.withUnsafeBytes { gb in back.withUnsafeMutableBytes { ByteGrouping.ungroup(gb, into: $0, elementSize: s) } }
                XCTAssertEqual(back, src)
            }
        }
        let one: [UInt8] = [0x00, 0x00, 0x80, 0xBF]  // -1.0f: exponent 127 = 0b0111_1111, sign 1
        var planes = [UInt8](repeating: 0, count: 4)
        one.withUnsafeBytes { o in planes.withUnsafeMutableBytes { ByteGrouping.group(o, into: $0, elementSize: 4) } }
        // Top plane: the exponent's low 7 bits then the top mantissa bit; plane 0 ends with
        // the sign then the exponent's top bit.
        XCTAssertEqual(planes, [0b10, 0x00, 0x00, 0b1111_1110])
        let bf16: [UInt8] = [0x80, 0xBF]  // -1.0 as BF16: 2-byte elements still rotate by one bit
        var bfPlanes = [UInt8](repeating: 0, count: 2)
        bf16.withUnsafeBytes { o in bfPlanes.withUnsafeMutableBytes { ByteGrouping.group(o, into: $0, elementSize: 2) } }
        XCTAssertEqual(bfPlanes, [0x01, 0x7F])
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
        // plane decodes fine but is caught by the hash, in whole reads too.
        var streamed: [UInt8] = []
        try store.read(r.id, kind: .chunk, blockBytes: 1000) { streamed += Array($0) }
        XCTAssertEqual(streamed, try store.get(r.id))
        var bytes = try backend.get(r.id)
        // Plane 1 (low mantissa bits) is stored raw: its data starts after plane 0.
        let plane1 = ObjectHeader.fixedSize + 9 + Int(readLE(bytes, ObjectHeader.fixedSize + 1))
        XCTAssertEqual(bytes[plane1], PlaneMode.stored.rawValue)
        bytes[plane1 + 9 + 10] ^= 0x01  // element 10
        backend.objects[r.id] = bytes
        XCTAssertThrowsError(try store.read(r.id, kind: .chunk) { _ in }) { XCTAssertTrue("\($0)".contains("content hashes to"), "\($0)") }
        XCTAssertThrowsError(try store.get(r.id)) { XCTAssertTrue("\($0)".contains("content hashes to"), "\($0)") }
        XCTAssertNoThrow(try store.verifyStored(r.id), "header and length are intact; only decoding finds body damage")
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
                             bodyLength: frame.count, base: nil)
        bytes = h.serialized() + frame
        backend.objects[r.id] = bytes
        XCTAssertThrowsError(try store.get(r.id)) { XCTAssertTrue("\($0)".contains("declares 67108864 bytes, expected 4096"), "\($0)") }
    }

    /// Float weights with special values spliced in: the exponent planes compress, so the
    /// zstd plane modes (entropy-only and level) are exercised, plain and as XOR deltas.
    func testZstdPlanesRoundTripSpecialValuesForEveryFloatDType() throws {
        var rng = SeededGenerator(seed: 11)
        for dtype in [DType.f16, .bf16, .f32, .f64] {
            for count in [1000, 5000, 70_000] {
                let weights = normalFloatBytes(count, std: 0.02, seed: UInt64(count))
                var payload = [UInt8](repeating: 0, count: count * dtype.byteSize)
                weights.withUnsafeBytes { w in
                    let f = w.bindMemory(to: Float.self)
                    payload.withUnsafeMutableBytes { out in
                        for i in 0..<count {
                            switch dtype {
                            case .f16: out.storeBytes(of: Float16(f[i]).bitPattern, toByteOffset: 2 * i, as: UInt16.self)
                            case .bf16: out.storeBytes(of: UInt16(truncatingIfNeeded: f[i].bitPattern >> 16), toByteOffset: 2 * i, as: UInt16.self)
                            case .f64: out.storeBytes(of: Double(f[i]).bitPattern, toByteOffset: 8 * i, as: UInt64.self)
                            default: out.storeBytes(of: f[i].bitPattern, toByteOffset: 4 * i, as: UInt32.self)
                            }
                        }
                    }
                }
                let specials = specialTensorBytes(dtype, count: count, rng: &rng)
                for k in 0..<min(count, 10) {
                    let at = (k * 7919) % count * dtype.byteSize
                    payload.replaceSubrange(at..<(at + dtype.byteSize), with: specials[at..<(at + dtype.byteSize)])
                }
                var updated = payload
                for i in stride(from: 0, to: updated.count, by: 16 * dtype.byteSize) { updated[i] ^= 0x5A }
                let backend = MemoryBackend()
                let store = ObjectStore(backend: backend)
                store.selection = .only(.grouped)
                let base = try store.put(kind: .chunk, payload: payload, elementSize: dtype.byteSize)
                XCTAssertEqual(base.codec, .grouped, "\(dtype) × \(count)")
                XCTAssertEqual(try store.get(base.id, kind: .chunk), payload, "\(dtype) × \(count)")
                var streamed: [UInt8] = []
                try store.read(base.id, kind: .chunk, blockBytes: 4096) { streamed += Array($0) }
                XCTAssertEqual(streamed, payload)
                XCTAssertTrue(try planeModes(backend, base.id).contains(PlaneMode.zstd.rawValue), "\(dtype) × \(count): exponent plane compressed")
                store.selection = .only(.deltaGrouped)
                let delta = try store.put(kind: .chunk, payload: updated, elementSize: dtype.byteSize) {
                    DeltaBase(id: base.id, payload: payload, depth: 0)
                }
                XCTAssertEqual(delta.codec, .deltaGrouped)
                XCTAssertEqual(try planeModes(backend, delta.id), [UInt8](repeating: PlaneMode.zstd.rawValue, count: dtype.byteSize))
                XCTAssertEqual(try store.get(delta.id, kind: .chunk), updated, "\(dtype) × \(count) delta")
            }
        }
    }

    /// The mode byte of every plane of a grouped object.
    private func planeModes(_ backend: MemoryBackend, _ id: ObjectID) throws -> [UInt8] {
        let bytes = try backend.get(id)
        let h = try ObjectHeader.parse(Array(bytes.prefix(ObjectHeader.maxSize)), what: id.hex)
        guard h.codec == .grouped || h.codec == .deltaGrouped else { XCTFail("\(h.codec) has no planes"); return [] }
        var modes: [UInt8] = [], at = h.size
        for _ in 0..<h.elementSize {
            modes.append(bytes[at])
            at += 9 + Int(readLE(bytes, at + 1))
        }
        XCTAssertEqual(at, bytes.count)
        return modes
    }

    /// Objects of the removed format 1 (rANS planes, body checksum) and rANS plane modes are
    /// refused with a message that says so, never misread.
    func testFormatOneAndRANSPlanesAreRefused() throws {
        let backend = MemoryBackend()
        let store = ObjectStore(backend: backend)
        store.selection = .only(.grouped)
        let r = try store.put(kind: .chunk, payload: normalFloatBytes(5000, seed: 4), elementSize: 4)
        let good = try backend.get(r.id)
        XCTAssertEqual(good[8], ObjectHeader.format)
        var old = good
        old[8] = 1
        backend.objects[r.id] = old
        XCTAssertThrowsError(try store.get(r.id)) {
            XCTAssertEqual("\($0)", "corrupt object: \(r.id.hex): \(ObjectHeader.format1Refused)")
        }
        XCTAssertThrowsError(try store.header(r.id)) { XCTAssertTrue("\($0)".contains("format 1"), "\($0)") }
        backend.objects[r.id] = good
        let modes = try planeModes(backend, r.id)
        let zstdPlane = try XCTUnwrap(modes.firstIndex(of: PlaneMode.zstd.rawValue))
        var at = ObjectHeader.fixedSize
        for _ in 0..<zstdPlane { at += 9 + Int(readLE(good, at + 1)) }
        var rans = good
        rans[at] = 2
        backend.objects[r.id] = rans
        XCTAssertThrowsError(try store.get(r.id)) { XCTAssertTrue("\($0)".contains("removed rANS plane coder"), "\($0)") }
        XCTAssertThrowsError(try store.read(r.id, kind: .chunk) { _ in }) { XCTAssertTrue("\($0)".contains("removed rANS plane coder"), "\($0)") }
    }
}
