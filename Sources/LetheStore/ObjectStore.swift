import LetheCrypto

/// Which codecs the writer tries for a chunk.
public enum CodecSelection: Sendable, Equatable {
    /// Encode every applicable codec in full and keep the smallest.
    case exhaustive
    /// Pick by compressing a sample (`sampleBytes` from the middle of the chunk) with every
    /// applicable codec, then encode the whole chunk with the winner only.
    case sampled(sampleBytes: Int)
    /// Always use one codec when applicable (for tests and benchmarks).
    case only(Codec)
}

/// The payload of the object a new chunk may be stored as a delta against.
public struct DeltaBase {
    /// The base chunk's id.
    public var id: ObjectID
    /// Its payload (same length as the new chunk).
    public var payload: [UInt8]
    /// Its delta depth.
    public var depth: Int

    /// A base.
    public init(id: ObjectID, payload: [UInt8], depth: Int) { self.id = id; self.payload = payload; self.depth = depth }
}

/// The result of a put.
public struct PutResult: Sendable, Equatable {
    /// The object's id.
    public var id: ObjectID
    /// Whether the object was new (false: it existed and was deduplicated).
    public var created: Bool
    /// Stored bytes (header + body) when new, 0 when deduplicated.
    public var storedBytes: Int
    /// The codec chosen (nil when deduplicated).
    public var codec: Codec?
}

/// Typed objects over a backend: encodes with the float-aware codecs, hashes while
/// encoding, and verifies every read against the id.
///
/// Not thread-safe (it owns zstd contexts and scratch buffers); use one per thread.
public final class ObjectStore {
    /// Where encoded objects live.
    public let backend: any ObjectBackend
    /// How chunk codecs are chosen.
    public var selection: CodecSelection = .sampled(sampleBytes: 256 << 10)
    /// The zstd level of the whole-payload codec and of match-finding plane compression.
    public let level: Int32
    private let compressor: ZstdCompressor
    private let entropyCompressor = ZstdCompressor(entropyOnly: true)
    private let decompressor = ZstdDecompressor()
    /// Reused scratch buffers (byte planes, XOR), so chunk after chunk needs no fresh pages.
    private var planeScratch: [UInt8] = []
    private var xorScratch: [UInt8] = []

    /// A store over `backend`, compressing at zstd `level`.
    public init(backend: any ObjectBackend, level: Int32 = 3) {
        self.backend = backend
        self.level = level
        compressor = ZstdCompressor(level: level)
    }

    // MARK: writing

    /// Stores `payload` as `kind` (deduplicated by id). Chunks of multi-byte elements may be
    /// byte-grouped; with a `base` of equal length they may be stored as an XOR delta.
    public func put(kind: ObjectKind, payload: [UInt8], elementSize: Int = 1,
                    base: () throws(StoreError) -> DeltaBase? = { nil }) throws(StoreError) -> PutResult {
        try typed { try payload.withUnsafeBytes { raw in try put(kind: kind, payload: raw, elementSize: elementSize, base: base) } }
    }

    /// Stores `payload` as `kind`; see `put(kind:payload:elementSize:base:)`. `base` is only
    /// called when the object is new and a delta is worth trying.
    public func put(kind: ObjectKind, payload: UnsafeRawBufferPointer, elementSize: Int = 1,
                    base: () throws(StoreError) -> DeltaBase? = { nil }) throws(StoreError) -> PutResult {
        let id = ObjectID.compute(kind: kind, payload: payload)
        if backend.has(id) {
            if backend.verifiesExistingObjects { try verifyExisting(id, kind: kind) }
            _ = try backend.put(id, [])  // freshens the existing object; no bytes are written
            return PutResult(id: id, created: false, storedBytes: 0, codec: nil)
        }
        guard payload.count <= ObjectHeader.payloadCap(kind) else {
            throw .invalidInput("\(kind.name) of \(payload.count) bytes exceeds the \(ObjectHeader.payloadCap(kind))-byte cap")
        }
        let deltaBase = kind == .chunk && payload.count >= 64 ? try base() : nil
        let (codec, s, body, usedBase) = encode(payload, elementSize: kind == .chunk ? elementSize : 1, base: deltaBase)
        let baseID: ObjectID? = usedBase?.id
        let depth = usedBase.map { $0.depth + 1 } ?? 0
        let header = ObjectHeader(kind: kind, codec: codec, elementSize: s, depth: depth, payloadLength: payload.count,
                                  bodyLength: body.count, base: baseID)
        var bytes = header.serialized()
        bytes.reserveCapacity(bytes.count + body.count)
        bytes += body
        let created = try backend.put(id, bytes)
        if !created && backend.verifiesExistingObjects { try verifyExisting(id, kind: kind) }  // another writer won the race
        return PutResult(id: id, created: created, storedBytes: created ? bytes.count : 0, codec: codec)
    }

    /// Decodes and re-hashes an object this write deduplicates against, so a version never
    /// references a damaged object written by someone else.
    private func verifyExisting(_ id: ObjectID, kind: ObjectKind) throws(StoreError) {
        do { _ = try get(id, kind: kind) } catch {
            throw .corruptObject("\(id.hex): the stored copy this write deduplicates against does not verify (\(error)); run 'lethe fsck'")
        }
    }

    private func encode(_ payload: UnsafeRawBufferPointer, elementSize s: Int, base: DeltaBase?)
        -> (Codec, Int, [UInt8], DeltaBase?)
    {
        var candidates: [Codec] = [.zstd]
        if s > 1 { candidates.append(.grouped) }
        let useBase = base.flatMap { b -> DeltaBase? in
            b.payload.count == payload.count && b.depth < ObjectHeader.maxDeltaDepth && payload.count > 0 ? b : nil
        }
        if useBase != nil { candidates.append(.deltaGrouped) }
        if payload.count < 64 { candidates = [.stored] }

        var chosen: [Codec]
        switch selection {
        case .exhaustive:
            chosen = candidates
        case .only(let c):
            chosen = candidates.contains(c) ? [c] : [candidates.contains(.grouped) ? .grouped : candidates[0]]
        case .sampled(let sampleBytes):
            if candidates.count == 1 || payload.count <= sampleBytes {
                chosen = candidates
            } else {
                // Same window of the payload (and base) for every candidate, whole elements.
                let len = sampleBytes - sampleBytes % 8
                let start = ((payload.count - len) / 2) & ~7
                let window = UnsafeRawBufferPointer(rebasing: payload[start..<(start + len)])
                let baseWindow = useBase.map { Array($0.payload[start..<(start + len)]) }
                var best = candidates[0], bestSize = Int.max
                for c in candidates {
                    let n = baseWindow.withUnsafeBufferPointerOrEmpty { bw in
                        encodeBody(c, window, elementSize: s, base: UnsafeRawBufferPointer(bw)).count
                    }
                    if n < bestSize { best = c; bestSize = n }
                }
                chosen = [best]
            }
        }
        var best: (Codec, [UInt8])?
        for c in chosen {
            let body = useBase.map(\.payload).withUnsafeBufferPointerOrEmpty { bp in
                encodeBody(c, payload, elementSize: s, base: UnsafeRawBufferPointer(bp))
            }
            if best == nil || body.count < (best?.1.count ?? Int.max) { best = (c, body) }
        }
        guard var (codec, body) = best else { return (.stored, 1, Array(payload), nil) }
        if body.count >= payload.count { codec = .stored; body = Array(payload) }
        let groupedSize = (codec == .grouped || codec == .deltaGrouped) ? s : 1
        return (codec, groupedSize, body, codec == .deltaGrouped ? useBase : nil)
    }

    /// The body of `payload` under `codec` (`base` used by `deltaGrouped` only).
    func encodeBody(_ codec: Codec, _ payload: UnsafeRawBufferPointer, elementSize s: Int, base: UnsafeRawBufferPointer) -> [UInt8] {
        switch codec {
        case .stored: return Array(payload)
        case .zstd: return compressor.compress(payload)
        case .grouped, .deltaGrouped:
            if planeScratch.count < payload.count { planeScratch = [UInt8](repeating: 0, count: payload.count) }
            if codec == .deltaGrouped && xorScratch.count < payload.count { xorScratch = [UInt8](repeating: 0, count: payload.count) }
            var grouped = planeScratch
            planeScratch = []  // hold the only reference while in use
            defer { planeScratch = grouped }
            grouped.withUnsafeMutableBytes { all in
                let g = UnsafeMutableRawBufferPointer(rebasing: all[0..<payload.count])
                if codec == .deltaGrouped {
                    xorScratch.withUnsafeMutableBytes { xall in
                        let xb = UnsafeMutableRawBufferPointer(rebasing: xall[0..<payload.count])
                        ByteGrouping.xor(payload, base, into: xb)
                        ByteGrouping.group(UnsafeRawBufferPointer(xb), into: g, elementSize: s)
                    }
                } else {
                    ByteGrouping.group(payload, into: g, elementSize: s)
                }
            }
            return grouped.withUnsafeBytes { encodePlanes(UnsafeRawBufferPointer(rebasing: $0[0..<payload.count]), planes: s) }
        }
    }

    /// Planes body: per plane a mode byte (0 stored, 1 zstd), an 8-byte length, the bytes.
    /// A 64 KiB sample of each plane picks between two zstd parameter sets: entropy-only
    /// (best on exponent planes: zstd's literal Huffman coder, within ~0.06 bit per symbol of
    /// their order-0 entropy) and the store's level (best on the long zero runs of XOR
    /// deltas); a plane whose sample shrinks by less than 1/64 is stored as it is.
    private func encodePlanes(_ grouped: UnsafeRawBufferPointer, planes s: Int) -> [UInt8] {
        let n = grouped.count / s
        var out: [UInt8] = []
        out.reserveCapacity(grouped.count + 9 * s)
        for j in 0..<s {
            let plane = UnsafeRawBufferPointer(rebasing: grouped[(j * n)..<((j + 1) * n)])
            var encoded: [UInt8]?
            let probe = min(n, 64 << 10)
            let sample = UnsafeRawBufferPointer(rebasing: plane[0..<probe])
            let e = entropyCompressor.compress(sample).count, m = compressor.compress(sample).count
            if probe < 256 || min(e, m) < probe - probe / 64 {
                let c = (e <= m ? entropyCompressor : compressor).compress(plane)
                if c.count < n { encoded = c }
            }
            if let encoded {
                out.append(PlaneMode.zstd.rawValue); appendLE(&out, UInt64(encoded.count)); out += encoded
            } else {
                out.append(PlaneMode.stored.rawValue); appendLE(&out, UInt64(n)); out += plane
            }
        }
        return out
    }

    // MARK: reading

    /// The parsed header of `id` (reads only the first bytes).
    public func header(_ id: ObjectID) throws(StoreError) -> ObjectHeader {
        try ObjectHeader.parse(try backend.getPrefix(id, count: ObjectHeader.maxSize), what: id.hex)
    }

    /// The verified payload of `id`, which must be of `kind`.
    ///
    /// When verification fails and the backend held a local cached copy of an object on the
    /// chain (`evictCached`), the copies are dropped and the read is tried once more.
    public func get(_ id: ObjectID, kind: ObjectKind? = nil) throws(StoreError) -> [UInt8] {
        var visited: [ObjectID] = []
        do { return try getOnce(id, kind: kind, visited: &visited) } catch {
            guard case .corruptObject = error, !visited.filter({ backend.evictCached($0) }).isEmpty else { throw error }
            var again: [ObjectID] = []
            return try getOnce(id, kind: kind, visited: &again)
        }
    }

    private func getOnce(_ id: ObjectID, kind: ObjectKind?, visited: inout [ObjectID]) throws(StoreError) -> [UInt8] {
        // Walk the delta chain by headers, then decode from the self-contained bottom upward,
        // XOR-ing each delta in; every level's payload is checked against its id.
        var chain: [(ObjectID, ObjectHeader)] = []
        var cursor = id
        while true {
            visited.append(cursor)
            let h = try header(cursor)
            if chain.isEmpty, let kind, h.kind != kind {
                throw .corruptObject("\(id.hex): is a \(h.kind.name), expected a \(kind.name)")
            }
            chain.append((cursor, h))
            guard let b = h.base else { break }
            guard chain.count <= ObjectHeader.maxDeltaDepth else { throw .corruptObject("\(id.hex): delta chain too long") }
            guard h.depth == (chain.count == 1 ? h.depth : chain[chain.count - 2].1.depth - 1) else {
                throw .corruptObject("\(cursor.hex): inconsistent delta depth")
            }
            cursor = b
        }
        var payload: [UInt8] = []
        for (k, (oid, h)) in chain.enumerated().reversed() {
            if k < chain.count - 1, h.payloadLength != payload.count {
                throw .corruptObject("\(oid.hex): delta of \(h.payloadLength) bytes against a base of \(payload.count)")
            }
            let stored = try readStored(oid, h)
            var next = [UInt8](unsafeUninitializedCapacity: h.payloadLength) { _, n in n = h.payloadLength }
            try typed {
                try next.withUnsafeMutableBytes { dst in
                    try stored.withUnsafeBytes { all in
                        let src = UnsafeRawBufferPointer(rebasing: all[h.size...])
                        try payload.withUnsafeBytes { base in try decodeBody(h, src, into: dst, base: base, what: oid.hex) }
                    }
                }
            }
            let actual = ObjectID.compute(kind: h.kind, payload: next)
            guard actual == oid else { throw .corruptObject("\(oid.hex): content hashes to \(actual.hex)") }
            payload = next
        }
        return payload
    }

    /// Streams the verified payload of `id` to `sink` in blocks of about `blockBytes`.
    ///
    /// Self-contained grouped and stored objects are decoded a block at a time (ungrouped
    /// straight from the stored planes, hashed, handed over while in cache); deltas and
    /// zstd frames are decoded whole first. The id is checked after the last block: on a
    /// mismatch this throws after `sink` has seen the bad bytes, so a caller writing a file
    /// must discard it (as export does with its temp file).
    ///
    /// A failed verification drops the backend's cached copy of `id` (`evictCached`), so the
    /// next read fetches it again.
    public func read(_ id: ObjectID, kind: ObjectKind, blockBytes: Int = 256 << 10,
                     sink: (UnsafeRawBufferPointer) throws(StoreError) -> Void) throws(StoreError) {
        do { try readOnce(id, kind: kind, blockBytes: blockBytes, sink: sink) } catch {
            if case .corruptObject = error { _ = backend.evictCached(id) }
            throw error
        }
    }

    private func readOnce(_ id: ObjectID, kind: ObjectKind, blockBytes: Int,
                          sink: (UnsafeRawBufferPointer) throws(StoreError) -> Void) throws(StoreError) {
        let h = try header(id)
        guard h.kind == kind else { throw .corruptObject("\(id.hex): is a \(h.kind.name), expected a \(kind.name)") }
        if h.base != nil || h.codec == .zstd {
            let payload = try get(id, kind: kind)
            try typed {
                try payload.withUnsafeBytes { raw in
                    for start in stride(from: 0, to: raw.count, by: blockBytes) {
                        try sink(UnsafeRawBufferPointer(rebasing: raw[start..<min(raw.count, start + blockBytes)]))
                    }
                }
            }
            return
        }
        let stored = try readStored(id, h)
        let hasher = SHA256()
        hasher.update("\(h.kind.name) \(h.payloadLength)\0")
        if h.codec == .stored {
            guard h.bodyLength == h.payloadLength else { throw .corruptObject("\(id.hex): stored body of \(h.bodyLength) bytes, expected \(h.payloadLength)") }
            try typed {
                try stored.withUnsafeBytes { all in
                    for start in stride(from: h.size, to: all.count, by: blockBytes) {
                        let block = UnsafeRawBufferPointer(rebasing: all[start..<min(all.count, start + blockBytes)])
                        hasher.update(block)
                        try sink(block)
                    }
                }
            }
        } else {
            let s = h.elementSize, n = h.payloadLength / s
            if planeScratch.count < h.payloadLength + blockBytes { planeScratch = [UInt8](repeating: 0, count: h.payloadLength + blockBytes) }
            var scratch = planeScratch
            planeScratch = []
            defer { planeScratch = scratch }
            try typed {
                try stored.withUnsafeBytes { all in
                    try scratch.withUnsafeMutableBytes { sc in
                        guard let scBase = sc.baseAddress, let allBase = all.baseAddress else { return }
                        var planes: [UnsafeRawPointer] = []
                        var at = h.size
                        for j in 0..<s {
                            guard at + 9 <= all.count else { throw StoreError.corruptObject("\(id.hex): truncated plane \(j)") }
                            let mode = all[at]
                            var len = 0
                            for k in 0..<8 { len |= Int(all[at + 1 + k]) << (8 * k) }
                            at += 9
                            guard len >= 0, len <= all.count - at else { throw StoreError.corruptObject("\(id.hex): plane \(j) runs past the body") }
                            switch mode {
                            case PlaneMode.stored.rawValue:
                                guard len == n else { throw StoreError.corruptObject("\(id.hex): plane \(j) has \(len) bytes, expected \(n)") }
                                planes.append(UnsafeRawPointer(allBase + at))
                            case PlaneMode.zstd.rawValue:
                                let dst = UnsafeMutableRawBufferPointer(start: scBase + j * n, count: n)
                                try decompressor.decompress(UnsafeRawBufferPointer(rebasing: all[at..<(at + len)]), into: dst, what: "\(id.hex) plane \(j)")
                                planes.append(UnsafeRawPointer(scBase + j * n))
                            default:
                                throw StoreError.corruptObject(PlaneMode.unknown(mode, what: "\(id.hex): plane \(j)"))
                            }
                            at += len
                        }
                        guard at == all.count else { throw StoreError.corruptObject("\(id.hex): \(all.count - at) stray bytes after the planes") }
                        let out = scBase + h.payloadLength
                        let perBlock = max(1, blockBytes / s)
                        for start in stride(from: 0, to: n, by: perBlock) {
                            let count = min(perBlock, n - start)
                            ByteGrouping.ungroup(planes: planes, start: start, count: count, into: out)
                            let block = UnsafeRawBufferPointer(start: out, count: count * s)
                            hasher.update(block)
                            try sink(block)
                        }
                    }
                }
            }
        }
        let actual = ObjectID(hasher.finalize())
        guard actual == id else { throw .corruptObject("\(id.hex): content hashes to \(actual.hex)") }
    }

    /// The stored bytes of `id` (header and body) after checking the length and that the
    /// header is the one parsed. Damage inside the body is caught after decoding: every read
    /// re-hashes the decoded payload against the id (SHA-256).
    func readStored(_ id: ObjectID, _ h: ObjectHeader) throws(StoreError) -> [UInt8] {
        let bytes = try backend.get(id)
        guard bytes.count == h.size + h.bodyLength else {
            throw .corruptObject("\(id.hex): stored \(bytes.count) bytes, header says \(h.size + h.bodyLength)")
        }
        guard Array(bytes.prefix(h.size)) == h.serialized() else { throw .corruptObject("\(id.hex): header changed while reading") }
        return bytes
    }

    /// Checks that the stored file of `id` has a valid header and the length it declares,
    /// without decoding. Damage inside the body is found by decoding and re-hashing (`get`).
    public func verifyStored(_ id: ObjectID) throws(StoreError) -> ObjectHeader {
        let bytes = try backend.get(id)
        let h = try ObjectHeader.parse(Array(bytes.prefix(ObjectHeader.maxSize)), what: id.hex)
        guard bytes.count == h.size + h.bodyLength else {
            throw .corruptObject("\(id.hex): stored \(bytes.count) bytes, header says \(h.size + h.bodyLength)")
        }
        return h
    }

    private func decodeBody(_ h: ObjectHeader, _ body: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer,
                            base: UnsafeRawBufferPointer, what: String) throws(StoreError) {
        switch h.codec {
        case .stored:
            guard body.count == dst.count else { throw .corruptObject("\(what): stored body of \(body.count) bytes, expected \(dst.count)") }
            if let d = dst.baseAddress, let s = body.baseAddress { d.copyMemory(from: s, byteCount: body.count) }
        case .zstd:
            try decompressor.decompress(body, into: dst, what: what)
        case .grouped, .deltaGrouped:
            let s = h.elementSize, n = dst.count / s
            if planeScratch.count < dst.count { planeScratch = [UInt8](repeating: 0, count: dst.count) }
            var grouped = planeScratch
            planeScratch = []
            defer { planeScratch = grouped }
            try typed {
                try grouped.withUnsafeMutableBytes { all in
                    let g = UnsafeMutableRawBufferPointer(rebasing: all[0..<dst.count])
                    try decodePlanes(body, g, s: s, n: n, what: what)
                    ByteGrouping.ungroup(UnsafeRawBufferPointer(g), into: dst, elementSize: s)
                }
            }
            if h.codec == .deltaGrouped {
                guard base.count == dst.count else { throw .corruptObject("\(what): base length mismatch") }
                ByteGrouping.xor(UnsafeRawBufferPointer(dst), base, into: dst)
            }
        }
    }

    private func decodePlanes(_ body: UnsafeRawBufferPointer, _ g: UnsafeMutableRawBufferPointer, s: Int, n: Int, what: String) throws(StoreError) {
                var at = 0
                for j in 0..<s {
                    guard at + 9 <= body.count else { throw .corruptObject("\(what): truncated plane \(j)") }
                    let mode = body[at]
                    var len = 0
                    for k in 0..<8 { len |= Int(body[at + 1 + k]) << (8 * k) }
                    at += 9
                    guard len >= 0, len <= body.count - at else { throw .corruptObject("\(what): plane \(j) runs past the body") }
                    let src = UnsafeRawBufferPointer(rebasing: body[at..<(at + len)])
                    let plane = UnsafeMutableRawBufferPointer(rebasing: g[(j * n)..<((j + 1) * n)])
                    switch mode {
                    case PlaneMode.stored.rawValue:
                        guard len == n else { throw .corruptObject("\(what): plane \(j) has \(len) bytes, expected \(n)") }
                        if let d = plane.baseAddress, let sp = src.baseAddress { d.copyMemory(from: sp, byteCount: n) }
                    case PlaneMode.zstd.rawValue:
                        try decompressor.decompress(src, into: plane, what: "\(what) plane \(j)")
                    default:
                        throw .corruptObject(PlaneMode.unknown(mode, what: "\(what): plane \(j)"))
                    }
                    at += len
                }
                guard at == body.count else { throw .corruptObject("\(what): \(body.count - at) stray bytes after the planes") }
    }
}

extension Optional where Wrapped == [UInt8] {
    /// Calls `body` with the array's buffer, or an empty buffer when nil.
    func withUnsafeBufferPointerOrEmpty<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        switch self {
        case .some(let a): return a.withUnsafeBufferPointer(body)
        case .none: return body(UnsafeBufferPointer(start: nil, count: 0))
        }
    }
}
