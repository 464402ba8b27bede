#if canImport(Glibc)
import Glibc
#endif
import LetheCrypto
import LetheTensor

/// A Lethe store: content-addressed objects, versions and refs in a `.lethe` directory.
///
/// Layout: `config` (format version), `objects/` (the local backend), `refs/<name>`,
/// `refs.log` (ref history), `refs.lock` and `gc.lock`. A version becomes visible only once
/// its version object exists and a ref points at it, so a crash at any point leaves
/// unreferenced objects at worst, which gc removes after its grace period.
public final class Store {
    /// The on-disk format this build reads and writes.
    public static let formatVersion = 1

    /// The `.lethe` directory.
    public let directory: String
    /// Typed, verified objects.
    public let objects: ObjectStore
    /// Named refs and their history (`refs/` and `refs.log` here, or an `S3RefStore`).
    public let refs: any RefBackend
    /// Bytes per chunk for tensors written from now on.
    public var chunkBytes: Int = ChunkLayout.chunkBytes
    /// Chunks encoded or decoded at once by import, export and version writes (one thread
    /// each, `DispatchQueue.concurrentPerform`); 1 keeps everything on the calling thread.
    public var threads: Int = 1
    private var extraObjectStores: [ObjectStore] = []

    /// `n` object stores for `n` threads: `objects` first, then workers sharing its backend and codec choice.
    func laneStores(_ n: Int) -> [ObjectStore] {
        while extraObjectStores.count < n - 1 { extraObjectStores.append(ObjectStore(backend: objects.backend, level: objects.level)) }
        for w in extraObjectStores { w.selection = objects.selection }
        return [objects] + extraObjectStores.prefix(max(0, n - 1))
    }

    /// Seconds since the epoch (`clock_gettime(CLOCK_REALTIME)`).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Creates a store at `directory` (the `.lethe` directory itself): `objects/`, `refs/`
    /// and, last and atomically, `config`. Re-running on a half-created directory completes
    /// it; an existing store is an error.
    public static func initialize(at directory: String) throws(StoreError) -> Store {
        let config = directory + "/config"
        if access(config, F_OK) == 0 { throw .invalidInput("a Lethe store already exists at \(directory)") }
        for d in [directory, directory + "/objects", directory + "/refs"] {
            if mkdir(d, 0o755) != 0 && errno != EEXIST { throw .io("mkdir(\(d)): \(String(cString: strerror(errno)))") }
        }
        let text = "{\"format\":\(formatVersion)}\n"
        do { try FileBytes.writeAtomically(Array(text.utf8), to: config) } catch { throw .io("\(error)") }
        syncDirectory(directory)
        return try Store(directory: directory)
    }

    /// Opens the store at `directory` (the `.lethe` directory), checking its format. Objects and
    /// refs live in `objects/` and `refs/` unless other backends are given (e.g. S3).
    public init(directory: String, backend: (any ObjectBackend)? = nil, refs refBackend: (any RefBackend)? = nil) throws(StoreError) {
        let config = directory + "/config"
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(config) } catch { throw .notAStore("\(directory) has no readable config (\(error))") }
        guard let doc = try? OrderedJSONParser.parse(bytes), case .number(let f)? = doc["format"], let format = Int(f) else {
            throw .notAStore("\(config) is not a Lethe config")
        }
        guard format == Store.formatVersion else {
            throw .notAStore("\(directory) has store format \(format); this build reads format \(Store.formatVersion)")
        }
        self.directory = directory
        objects = ObjectStore(backend: backend ?? LocalBackend(root: directory + "/objects"))
        refs = refBackend ?? RefStore(directory: directory)
    }

    /// Holds the store lock shared (writers) or exclusive (gc) until released.
    func lock(exclusive: Bool) throws(StoreError) -> FileLock {
        try FileLock(path: directory + "/gc.lock", exclusive: exclusive)
    }

    // MARK: reading

    /// The version `id`.
    public func version(_ id: ObjectID) throws(StoreError) -> Version {
        try Version.decode(try objects.get(id, kind: .version), what: "version \(id.hex)")
    }

    /// A blob's bytes (a model spec or a safetensors header).
    public func blob(_ id: ObjectID) throws(StoreError) -> [UInt8] {
        try objects.get(id, kind: .blob)
    }

    /// Resolves a ref name, a full id or a unique id prefix (≥ 4 hex digits) to a version id.
    public func resolve(_ revision: String) throws(StoreError) -> ObjectID {
        if RefStore.isValidName(revision), let id = try refs.get(revision) { return id }
        let lower = revision.lowercased()
        guard lower.utf8.count >= 4, lower.utf8.count <= 64, lower.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw .unknownRevision("\"\(revision)\" is neither a ref nor an id prefix of at least 4 hex digits")
        }
        let matches = try objects.backend.list().filter { $0.hex.hasPrefix(lower) }
            .filter { (try? objects.header($0).kind) == .version }
        guard let first = matches.first else { throw .unknownRevision("no ref or version matches \"\(revision)\"") }
        guard matches.count == 1 else {
            throw .unknownRevision("\"\(revision)\" is ambiguous: \(matches.prefix(5).map(\.short).joined(separator: ", "))")
        }
        return first
    }

    /// The versions from `id` following first parents, newest first (at most `limit`).
    public func log(from id: ObjectID, limit: Int = Int.max) throws(StoreError) -> [(id: ObjectID, version: Version)] {
        var out: [(ObjectID, Version)] = []
        var cursor: ObjectID? = id
        var seen = Set<ObjectID>()
        while let c = cursor, out.count < limit, seen.insert(c).inserted {
            let v = try version(c)
            out.append((c, v))
            cursor = v.parents.first
        }
        return out
    }

    /// A tensor's bytes, in memory.
    public func read(_ t: StoredTensor) throws(StoreError) -> NamedTensor {
        var data = [UInt8]()
        data.reserveCapacity(t.byteCount)
        for (chunk, range) in zip(t.chunks, t.chunkRanges) {
            let payload = try objects.get(chunk, kind: .chunk)
            guard payload.count == range.count else {
                throw .corruptObject("\(chunk.hex): chunk of \(t.name) has \(payload.count) bytes, expected \(range.count)")
            }
            data += payload
        }
        return NamedTensor(name: t.name, dtype: t.dtype, shape: t.shape, data: data)
    }

    /// Every tensor of version `id`, in memory, in stored order.
    public func tensors(of id: ObjectID) throws(StoreError) -> [NamedTensor] {
        var out: [NamedTensor] = []
        for t in try version(id).tensors { out.append(try read(t)) }
        return out
    }

    // MARK: writing tensors

    /// Counts of what a write did.
    public struct WriteStats: Sendable, Equatable {
        /// Objects written.
        public var newObjects = 0
        /// Objects that already existed.
        public var dedupedObjects = 0
        /// Bytes written to the backend.
        public var storedBytes = 0
        /// Payload bytes taken in.
        public var payloadBytes = 0
        /// New chunks per codec name.
        public var codecs: [String: Int] = [:]

        mutating func add(_ r: PutResult, payload: Int, chunk: Bool = false) {
            payloadBytes += payload
            if r.created { newObjects += 1; storedBytes += r.storedBytes } else { dedupedObjects += 1 }
            if let c = r.codec, r.created, chunk { codecs[c.name, default: 0] += 1 }
        }
    }

    /// Stores one tensor chunk by chunk; `fill(range, buffer)` writes bytes `range` of the
    /// tensor into `buffer`. Chunks of `parent` (same name, dtype, shape, chunk size) are offered
    /// as XOR-delta bases.
    func storeTensor(name: String, dtype: DType, shape: [Int], parent: StoredTensor?, stats: inout WriteStats,
                     fill: (Range<Int>, UnsafeMutableRawBufferPointer) throws(StoreError) -> Void) throws(StoreError) -> StoredTensor {
        let byteCount = shape.reduce(1, *) * dtype.byteSize
        let ranges = ChunkLayout.ranges(byteCount: byteCount, chunkBytes: chunkBytes)
        let compatible = parent.flatMap { p in p.dtype == dtype && p.shape == shape && p.chunkBytes == chunkBytes ? p : nil }
        let lanes = max(1, min(threads, ranges.count))
        let stores = laneStores(lanes)
        var buffers = (0..<lanes).map { _ in [UInt8](repeating: 0, count: min(byteCount, chunkBytes)) }
        var chunks: [ObjectID] = []
        var next = 0
        while next < ranges.count {
            let batch = Array(next..<min(ranges.count, next + lanes))
            // Read in order on this thread, then encode the batch's chunks in parallel.
            for (k, i) in batch.enumerated() {
                try typed {
                    try buffers[k].withUnsafeMutableBytes { raw in try fill(ranges[i], UnsafeMutableRawBufferPointer(rebasing: raw[0..<ranges[i].count])) }
                }
            }
            var results = [Result<PutResult, StoreError>](repeating: .failure(.io("not run")), count: batch.count)
            buffers.withUnsafeBufferPointer { bufs in
                results.withUnsafeMutableBufferPointer { out in
                    let work = { (k: Int) in
                        let i = batch[k], range = ranges[i], store = stores[k]
                        out[k] = bufs[k].withUnsafeBytes { raw in
                            Result { () throws(StoreError) -> PutResult in
                                try store.put(kind: .chunk, payload: UnsafeRawBufferPointer(rebasing: raw[0..<range.count]),
                                              elementSize: dtype.byteSize) { () throws(StoreError) -> DeltaBase? in
                                    guard let p = compatible, i < p.chunks.count else { return nil }
                                    // A damaged parent chunk only costs the delta, never the write.
                                    guard let payload = try? store.get(p.chunks[i], kind: .chunk), payload.count == range.count,
                                          let h = try? store.header(p.chunks[i]) else { return nil }
                                    return DeltaBase(id: p.chunks[i], payload: payload, depth: h.depth)
                                }
                            }
                        }
                    }
                    parallelLanes(batch.count, work)
                }
            }
            for (k, i) in batch.enumerated() {
                let r = try results[k].get()
                stats.add(r, payload: ranges[i].count, chunk: true)
                chunks.append(r.id)
            }
            next += batch.count
        }
        return StoredTensor(name: name, dtype: dtype, shape: shape, chunkBytes: chunkBytes, chunks: chunks)
    }

    /// Stores an in-memory tensor.
    func storeTensor(_ t: NamedTensor, parent: StoredTensor?, stats: inout WriteStats) throws(StoreError) -> StoredTensor {
        try Store.validateName(t.name)
        return try storeTensor(name: t.name, dtype: t.dtype, shape: t.shape, parent: parent, stats: &stats) { range, buf in
            t.data.withUnsafeBytes { src in
                if let d = buf.baseAddress, let s = src.baseAddress { d.copyMemory(from: s + range.lowerBound, byteCount: range.count) }
            }
        }
    }

    /// Refuses names that are empty, too long, contain control characters or backslashes,
    /// start with `/`, or have an empty, `.` or `..` path component.
    public static func validateName(_ name: String) throws(StoreError) {
        let u = Array(name.utf8)
        guard !u.isEmpty, u.count <= 1024 else { throw .invalidInput("tensor name \"\(name.prefix(80))\" is empty or too long") }
        guard !u.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\\") }) else {
            throw .invalidInput("tensor name \(Safetensors.quote(name)) contains a control character or backslash")
        }
        if name.contains("/") {
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            guard !name.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw .invalidInput("tensor name \"\(name)\" looks like a path traversal")
            }
        } else if name == ".." || name == "." {
            throw .invalidInput("tensor name \"\(name)\" looks like a path traversal")
        }
    }

    /// Stores a version object and, with `ref`, points the ref at it (making it visible).
    func commit(_ v: Version, ref: (name: String, reason: String)?, stats: inout WriteStats) throws(StoreError) -> ObjectID {
        try objects.backend.flush()  // everything the version references is durable first
        let r = try objects.put(kind: .version, payload: v.encoded())
        try objects.backend.flush()
        stats.add(r, payload: 0)
        if let ref { try refs.set(ref.name, to: r.id, reason: ref.reason) }
        return r.id
    }
}
