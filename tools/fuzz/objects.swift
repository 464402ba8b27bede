// libFuzzer target: the object decoder (header parser, stored / zstd / byte-grouped / XOR-delta
// bodies, the streaming reader) and the version decoder never crash, whatever the bytes.
// Built by tools/fuzz/run against LetheStore and its dependencies compiled as modules.
import LetheCrypto
import LetheStore
import Synchronization

/// Objects held in memory; ids are whatever the harness says (reads verify them anyway).
final class FuzzBackend: ObjectBackend {
    let objects = Mutex<[ObjectID: [UInt8]]>([:])
    func put(_ id: ObjectID, _ bytes: [UInt8]) throws(StoreError) -> Bool {
        objects.withLock { if $0[id] != nil { return false }; $0[id] = bytes; return true }
    }
    func get(_ id: ObjectID) throws(StoreError) -> [UInt8] {
        guard let b = objects.withLock({ $0[id] }) else { throw .missingObject(id.hex) }
        return b
    }
    func getPrefix(_ id: ObjectID, count: Int) throws(StoreError) -> [UInt8] { Array(try get(id).prefix(count)) }
    func has(_ id: ObjectID) -> Bool { objects.withLock { $0[id] != nil } }
    func stat(_ id: ObjectID) -> ObjectStat? { nil }  // only gc asks
    func list() throws(StoreError) -> [ObjectID] { objects.withLock { Array($0.keys) }.sorted() }
    func delete(_ id: ObjectID) throws(StoreError) { objects.withLock { $0[id] = nil } }
    func removeAbandonedWrites(olderThan cutoff: Double) throws(StoreError) -> (count: Int, bytes: Int) { (0, 0) }
}

let target = ObjectID(SHA256.hash([0x4c, 0x45, 0x54, 0x48, 0x45]))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let backend = FuzzBackend()
    let store = ObjectStore(backend: backend)
    _ = try? backend.put(target, bytes)
    // A delta names its base: give it a valid self-contained base of the declared length, so the
    // XOR path runs too (capped so a large declared length does not make the run slow).
    if let h = try? ObjectHeader.parse(Array(bytes.prefix(ObjectHeader.maxSize)), what: "fuzz"), let base = h.base,
       h.payloadLength <= 1 << 20 {
        let payload = (0..<h.payloadLength).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let baseHeader = ObjectHeader(kind: h.kind, codec: .stored, elementSize: 1, depth: 0, payloadLength: payload.count,
                                      bodyLength: payload.count, base: nil)
        _ = try? backend.put(base, baseHeader.serialized() + payload)
    }
    _ = try? store.get(target)
    _ = try? store.verifyStored(target)
    for kind in ObjectKind.allCases {
        _ = try? store.read(target, kind: kind, blockBytes: 4096) { (_: UnsafeRawBufferPointer) throws(StoreError) in }
    }
    // The same bytes as a version object's payload (JSON).
    _ = try? Version.decode(bytes, what: "fuzz")
    return 0
}
