// Store benchmarks: a synthetic safetensors generator and an in-process codec comparison.
import Foundation
import LetheStore
import LetheTensor

/// Writes a safetensors file of `bytes` bytes of N(0, 0.02²) float32 values in tensors of at
/// most 64 Mi elements, streaming 16 MiB at a time (bounded memory).
func storeGenerate(out: String, bytes: Int, seed: UInt64) throws {
    let perTensor = 64 << 20  // elements
    let total = bytes / 4
    var layout: [(name: String, dtype: DType, shape: [Int])] = []
    var left = total, k = 0
    while left > 0 {
        let n = min(left, perTensor)
        layout.append((String(format: "layers.%03d.weight", k), .f32, [n / 1024, 1024]))
        left -= (n / 1024) * 1024
        k += 1
        if n < 1024 { break }
    }
    let header = Safetensors.headerJSON(for: layout, metadata: [("format", "pt")])
    guard let fh = FileHandle(forWritingAtPath: out) ?? {
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        return FileHandle(forWritingAtPath: out)
    }() else { throw StoreError.io("cannot create \(out)") }
    var len = UInt64(header.count)
    var prefix: [UInt8] = []
    for _ in 0..<8 { prefix.append(UInt8(len & 0xFF)); len >>= 8 }
    fh.write(Data(prefix + header))
    var rng = SeededGenerator(seed: seed)
    var buf = [Float](repeating: 0, count: 4 << 20)
    var remaining = layout.reduce(0) { $0 + $1.shape.reduce(1, *) }
    while remaining > 0 {
        let n = min(remaining, buf.count)
        buf.withUnsafeMutableBufferPointer { rng.fillNormal(UnsafeMutableBufferPointer(rebasing: $0[0..<n]), mean: 0, std: 0.02) }
        fh.write(buf.withUnsafeBytes { Data($0.prefix(n * 4)) })
        remaining -= n
    }
    try fh.close()
}

/// A backend that only counts (for codec comparisons without disk I/O).
final class CountingBackend: ObjectBackend, @unchecked Sendable {
    var stored = 0
    var objects: [ObjectID: [UInt8]] = [:]
    let keep: Bool
    init(keep: Bool) { self.keep = keep }
    func put(_ id: ObjectID, _ bytes: [UInt8]) throws(StoreError) -> Bool {
        if objects[id] != nil { return false }
        stored += bytes.count
        objects[id] = keep ? bytes : []
        return true
    }
    func get(_ id: ObjectID) throws(StoreError) -> [UInt8] {
        guard let b = objects[id] else { throw .missingObject(id.hex) }
        return b
    }
    func getPrefix(_ id: ObjectID, count: Int) throws(StoreError) -> [UInt8] { Array(try get(id).prefix(count)) }
    func has(_ id: ObjectID) -> Bool { objects[id] != nil }
    func stat(_ id: ObjectID) -> ObjectStat? { nil }
    func list() throws(StoreError) -> [ObjectID] { objects.keys.sorted() }
    func delete(_ id: ObjectID) throws(StoreError) { objects[id] = nil }
    func removeAbandonedWrites(olderThan cutoff: Double) throws(StoreError) -> (count: Int, bytes: Int) { (0, 0) }
}

/// Stored size and encode speed of each codec choice on the tensors of a safetensors file
/// (first `limit` bytes of tensor data), in process.
func storeCodecs(file: String, limit: Int, level: Int32) throws {
    let header = try Store.readSafetensorsHeader(file)
    let fh = try FileHandle(forReadingFrom: URL(fileURLWithPath: file))
    print("codecs on \(file) (up to \(limit >> 20) MiB of tensor data, 16 MiB chunks, zstd level \(level), 1 thread)")
    print("| selection | stored / raw | encode MB/s |")
    print("|---|---:|---:|")
    let choices: [(String, CodecSelection)] = [("zstd only", .only(.zstd)), ("byte-grouped only", .only(.grouped)),
                                                ("sampled (default)", .sampled(sampleBytes: 256 << 10)), ("exhaustive", .exhaustive)]
    for (label, selection) in choices {
        let backend = CountingBackend(keep: false)
        let store = ObjectStore(backend: backend, level: level)
        store.selection = selection
        var raw = 0, seconds = 0.0
        for e in header.entries.sorted(by: { $0.begin < $1.begin }) where raw < limit {
            for r in ChunkLayout.ranges(byteCount: e.byteCount) where raw < limit {
                try fh.seek(toOffset: UInt64(header.dataOffset + e.begin + r.lowerBound))
                let bytes = [UInt8](fh.readData(ofLength: r.count))
                let t0 = now()
                _ = try store.put(kind: .chunk, payload: bytes, elementSize: e.dtype.byteSize)
                seconds += now() - t0
                raw += r.count
            }
        }
        print("| \(label) | \(String(format: "%.4f", Double(backend.stored) / Double(max(raw, 1)))) | \(String(format: "%.0f", Double(raw) / 1e6 / seconds)) |")
    }
}
