import Foundation
import LetheTensor
@testable import LetheStore

/// An in-memory backend; `damageNextGet` flips a byte of the next object read (restic-style fault injection).
final class MemoryBackend: ObjectBackend, @unchecked Sendable {
    private let lock = NSLock()
    var objects: [ObjectID: [UInt8]] = [:]
    var damageNextGet = false

    func put(_ id: ObjectID, _ bytes: [UInt8]) throws(StoreError) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if objects[id] != nil { return false }
        objects[id] = bytes
        return true
    }
    func get(_ id: ObjectID) throws(StoreError) -> [UInt8] {
        lock.lock(); defer { lock.unlock() }
        guard var b = objects[id] else { throw .missingObject(id.hex) }
        if damageNextGet { damageNextGet = false; b[b.count - 1] ^= 0x40 }
        return b
    }
    func getPrefix(_ id: ObjectID, count: Int) throws(StoreError) -> [UInt8] {
        lock.lock(); defer { lock.unlock() }
        guard let b = objects[id] else { throw .missingObject(id.hex) }
        return Array(b.prefix(count))
    }
    func has(_ id: ObjectID) -> Bool { lock.lock(); defer { lock.unlock() }; return objects[id] != nil }
    func stat(_ id: ObjectID) -> ObjectStat? { objects[id].map { ObjectStat(size: $0.count, modified: 0) } }
    func list() throws(StoreError) -> [ObjectID] { objects.keys.sorted() }
    func delete(_ id: ObjectID) throws(StoreError) { objects[id] = nil }
    func removeAbandonedWrites(olderThan cutoff: Double) throws(StoreError) -> (count: Int, bytes: Int) { (0, 0) }
}

/// A fresh temporary directory, removed by the caller.
func temporaryDirectory(_ label: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The committed fixtures directory, found next to this source file.
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// Random bytes for a tensor of `count` elements of `dtype`, sprinkled with IEEE special
/// values (NaN payloads, ±0, subnormals, ±inf, extremes) for float dtypes.
func specialTensorBytes(_ dtype: DType, count: Int, rng: inout SeededGenerator) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count * dtype.byteSize)
    for i in 0..<out.count { out[i] = UInt8(truncatingIfNeeded: rng.next()) }
    let specials: [UInt64]
    switch dtype {
    case .f32: specials = [0x7FC0_0001, 0xFFA0_0000, 0x7F80_0001, 0x0000_0000, 0x8000_0000, 0x0000_0001, 0x807F_FFFF, 0x7F80_0000, 0xFF80_0000, 0x7F7F_FFFF]
    case .f16: specials = [0x7E01, 0xFD00, 0x0000, 0x8000, 0x0001, 0x83FF, 0x7C00, 0xFC00, 0x7BFF]
    case .bf16: specials = [0x7FC1, 0xFF81, 0x0000, 0x8000, 0x0001, 0x807F, 0x7F80, 0xFF80, 0x7F7F]
    case .f64: specials = [0x7FF8_0000_0000_0001, 0xFFF4_0000_0000_0000, 0, 0x8000_0000_0000_0000, 1, 0x800F_FFFF_FFFF_FFFF, 0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000]
    default: specials = [0, UInt64.max, 1]
    }
    for (k, v) in specials.enumerated() where k < count {
        let at = (k * 7919) % count
        for b in 0..<dtype.byteSize { out[at * dtype.byteSize + b] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(b))) }
    }
    return out
}

/// Normal float32 weights as bytes.
func normalFloatBytes(_ count: Int, std: Float = 0.05, seed: UInt64) -> [UInt8] {
    var rng = SeededGenerator(seed: seed)
    var v = [Float](repeating: 0, count: count)
    v.withUnsafeMutableBufferPointer { rng.fillNormal($0, mean: 0, std: std) }
    return v.withUnsafeBytes { Array($0) }
}
