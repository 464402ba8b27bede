#if canImport(Glibc)
import Glibc
#endif
import LetheTensor

/// What to record with an import.
public struct ImportOptions {
    /// Model spec JSON text, or nil for a tensors-only version.
    public var spec: [UInt8]?
    /// The parent version (its same-named tensors serve as delta bases), or nil.
    public var parent: ObjectID?
    /// Author, time, message, dataset digest.
    public var metadata: VersionMetadata
    /// Accept NaN and ±inf in floating-point tensors.
    public var allowNonfinite = false
    /// The ref to point at the new version (and the reason recorded), or nil.
    public var ref: (name: String, reason: String)?
    /// Called with (bytes done, bytes total) as chunks are stored.
    public var progress: ((Int, Int) -> Void)?

    /// Options for an import.
    public init(spec: [UInt8]? = nil, parent: ObjectID? = nil, metadata: VersionMetadata, allowNonfinite: Bool = false,
                ref: (name: String, reason: String)? = nil, progress: ((Int, Int) -> Void)? = nil) {
        self.spec = spec; self.parent = parent; self.metadata = metadata; self.allowNonfinite = allowNonfinite
        self.ref = ref; self.progress = progress
    }
}

/// What an import or version write did.
public struct WriteResult: Sendable, Equatable {
    /// The new version.
    public var version: ObjectID
    /// Objects and bytes.
    public var stats: Store.WriteStats
}

/// What an export wrote.
public struct ExportResult: Sendable, Equatable {
    /// Bytes in the output file.
    public var bytes: Int
    /// Whether the original header was reused (byte-identical to the imported file).
    public var originalHeader: Bool
}

/// An open file read with `pread`, closed in `deinit`.
final class ReadFile {
    let fd: Int32
    let path: String
    let size: Int

    init(_ path: String) throws(StoreError) {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .invalidInput("cannot open \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { let e = errno; close(fd); throw .io("fstat(\(path)): \(String(cString: strerror(e)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { close(fd); throw .invalidInput("\(path) is not a regular file") }
        size = Int(st.st_size)
    }

    deinit { close(fd) }

    /// Fills `buf` from `offset` exactly.
    func read(at offset: Int, into buf: UnsafeMutableRawBufferPointer) throws(StoreError) {
        var done = 0
        while done < buf.count {
            guard let base = buf.baseAddress else { return }
            let n = pread(fd, base + done, buf.count - done, off_t(offset + done))
            if n < 0 { if errno == EINTR { continue }; throw .io("pread(\(path)): \(String(cString: strerror(errno)))") }
            if n == 0 { throw .invalidInput("\(path) ended early (file changed while reading?)") }
            done += n
        }
    }

    func bytes(at offset: Int, count: Int) throws(StoreError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try typed { try out.withUnsafeMutableBytes { try read(at: offset, into: $0) } }
        return out
    }
}

/// An output file written to a temp name beside the target, renamed into place only when complete.
final class AtomicOutput {
    let path: String
    let tmp: String
    private var fd: Int32
    private var committed = false

    init(_ path: String) throws(StoreError) {
        self.path = path
        tmp = path + ".lethe-tmp-\(getpid())"
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("cannot create \(tmp): \(String(cString: strerror(errno)))") }
    }

    func write(_ buf: UnsafeRawBufferPointer) throws(StoreError) {
        var done = 0
        while done < buf.count {
            guard let base = buf.baseAddress else { return }
            let n = Glibc.write(fd, base + done, buf.count - done)
            if n < 0 { if errno == EINTR { continue }; throw .io("write(\(tmp)): \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    func write(_ bytes: [UInt8]) throws(StoreError) { try typed { try bytes.withUnsafeBytes { try write($0) } } }

    /// Renames the temp file over the target; with `sync`, `fsync`s the file first and the directory after.
    func commit(sync: Bool) throws(StoreError) {
        if sync { guard fsync(fd) == 0 else { throw .io("fsync(\(tmp)): \(String(cString: strerror(errno)))") } }
        close(fd); fd = -1
        guard rename(tmp, path) == 0 else { throw .io("rename(\(tmp), \(path)): \(String(cString: strerror(errno)))") }
        committed = true
        guard sync else { return }
        let dir = path.contains("/") ? String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) : "."
        syncDirectory(dir.isEmpty ? "/" : dir)
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(tmp) }
    }
}

extension Store {
    /// Reads and validates a safetensors file's header (nothing else is read).
    public static func readSafetensorsHeader(_ file: String) throws(StoreError) -> SafetensorsHeader {
        try readHeader(try ReadFile(file))
    }

    static func readHeader(_ f: ReadFile) throws(StoreError) -> SafetensorsHeader {
        guard f.size >= 8 else { throw .invalidInput("\(f.path): malformed safetensors: file is shorter than the 8-byte header length") }
        let lenBytes = try f.bytes(at: 0, count: 8)
        var n: UInt64 = 0
        for k in 0..<8 { n |= UInt64(lenBytes[k]) << (8 * UInt64(k)) }
        guard n <= UInt64(Safetensors.maxHeaderLength) else {
            throw .invalidInput("\(f.path): malformed safetensors: header length \(n) exceeds \(Safetensors.maxHeaderLength) bytes")
        }
        guard 8 + Int(n) <= f.size else { throw .invalidInput("\(f.path): malformed safetensors: header length \(n) runs past the end of the file") }
        let json = try f.bytes(at: 8, count: Int(n))
        let header: SafetensorsHeader
        do { header = try Safetensors.parseHeader(json, dataLength: f.size - 8 - Int(n)) } catch {
            throw .invalidInput("\(f.path): \(error)")
        }
        for e in header.entries { try validateName(e.name) }
        return header
    }

    /// The index of the first NaN or ±inf element in `raw`, or nil (integer dtypes: nil).
    /// - Complexity: O(n), branch-free inner loop over blocks.
    public static func firstNonFinite(_ raw: UnsafeRawBufferPointer, dtype: DType) -> Int? {
        func scan<T: FixedWidthInteger>(_ type: T.Type, mask: T) -> Int? {
            let n = raw.count / MemoryLayout<T>.size
            let block = 4096
            var start = 0
            while start < n {
                let end = min(n, start + block)
                var hit = false
                for i in start..<end {
                    hit = hit || (raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self) & mask) == mask
                }
                if hit {
                    for i in start..<end where (raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self) & mask) == mask { return i }
                }
                start = end
            }
            return nil
        }
        switch dtype {
        case .f32: return scan(UInt32.self, mask: 0x7F80_0000)
        case .f16: return scan(UInt16.self, mask: 0x7C00)
        case .bf16: return scan(UInt16.self, mask: 0x7F80)
        case .f64: return scan(UInt64.self, mask: 0x7FF0_0000_0000_0000)
        default: return nil
        }
    }

    /// Imports a safetensors file as a new version, streaming it chunk by chunk.
    ///
    /// The header (format rules, names) is validated before anything is written; every
    /// floating-point value is checked (unless `allowNonfinite`) as its chunk is read, and on
    /// any error the objects written so far, still pending in the backend, are discarded, so a
    /// refused file leaves the store untouched. The original header is kept as a blob so
    /// export reproduces the file byte for byte.
    public func importSafetensors(_ file: String, options: ImportOptions) throws(StoreError) -> WriteResult {
        let f = try ReadFile(file)
        let header = try Store.readHeader(f)
        if let spec = options.spec {
            do { _ = try OrderedJSONParser.parse(spec) } catch { throw .invalidInput("model spec is not JSON: \(error)") }
        }
        if let ref = options.ref, !RefStore.isValidName(ref.name) {
            throw .invalidInput("invalid ref name \"\(ref.name)\" (use letters, digits, '.', '_', '-')")
        }
        let parent = try options.parent.map { (p) throws(StoreError) -> Version in try version(p) }
        let lock = try self.lock(exclusive: false)
        defer { lock.unlock() }
        do {
            return try importData(file, f, header, parent: parent, options: options)
        } catch {
            // Nothing this import wrote has been flushed: drop it, leaving the store untouched.
            objects.backend.discardPending()
            throw error
        }
    }

    private func importData(_ file: String, _ f: ReadFile, _ header: SafetensorsHeader, parent: Version?,
                            options: ImportOptions) throws(StoreError) -> WriteResult {
        let base = header.dataOffset
        let total = f.size - base
        var stats = WriteStats()
        var tensors: [StoredTensor] = []
        var done = 0
        for e in header.entries {
            let t = try storeTensor(name: e.name, dtype: e.dtype, shape: e.shape, parent: parent?.tensor(e.name), stats: &stats) { (range, buf) throws(StoreError) in
                try f.read(at: base + e.begin + range.lowerBound, into: buf)
                if !options.allowNonfinite, let bad = Store.firstNonFinite(UnsafeRawBufferPointer(buf), dtype: e.dtype) {
                    throw .invalidInput("\(file): tensor \(e.name) has a non-finite value at element \(range.lowerBound / e.dtype.byteSize + bad) (pass --allow-nonfinite to accept)")
                }
                done += range.count
                options.progress?(done, total)
            }
            tensors.append(t)
        }
        let headerBlob = try objects.put(kind: .blob, payload: header.rawJSON)
        stats.add(headerBlob, payload: 0)
        var specID: ObjectID?
        if let spec = options.spec {
            let r = try objects.put(kind: .blob, payload: spec)
            stats.add(r, payload: 0)
            specID = r.id
        }
        let v = Version(spec: specID ?? parent?.spec, parents: options.parent.map { [$0] } ?? [], tensors: tensors,
                        bases: [], safetensorsHeader: headerBlob.id, metadata: options.metadata)
        let id = try commit(v, ref: options.ref, stats: &stats)
        return WriteResult(version: id, stats: stats)
    }

    /// The header and tensor order an export of `v` writes: the original header when it
    /// still describes exactly these tensors, else the reference writer's.
    func exportLayout(_ v: Version) throws(StoreError) -> (header: [UInt8], order: [StoredTensor], original: Bool) {
        let total = v.tensors.reduce(0) { $0 + $1.byteCount }
        if let h = v.safetensorsHeader {
            let json = try blob(h)
            if let parsed = try? Safetensors.parseHeader(json, dataLength: total) {
                let byName = Dictionary(v.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
                let matches = parsed.entries.count == v.tensors.count && parsed.entries.allSatisfy { e in
                    byName[e.name].map { t in t.dtype == e.dtype && t.shape == e.shape } ?? false
                }
                if matches {
                    let order = parsed.entries.sorted { $0.begin < $1.begin }.compactMap { byName[$0.name] }
                    return (json, order, true)
                }
            }
        }
        let order = v.tensors.sorted { Safetensors.referenceOrder(($0.name, $0.dtype), ($1.name, $1.dtype)) }
        return (Safetensors.headerJSON(for: order.map { ($0.name, $0.dtype, $0.shape) }, metadata: nil), order, false)
    }

    /// Writes version `id` as a safetensors file at `path`, streaming chunk by chunk into a
    /// temp file that replaces `path` only when complete and verified (no partial output on
    /// error, nor after a crash of this process). With `sync` the file is also `fsync`ed
    /// before the rename, so it survives a power loss; an export is a copy of data the
    /// store keeps durably, so this is off by default.
    public func exportSafetensors(_ id: ObjectID, to path: String, sync: Bool = false,
                                  progress: ((Int, Int) -> Void)? = nil) throws(StoreError) -> ExportResult {
        let v = try version(id)
        let (header, order, original) = try exportLayout(v)
        let out = try AtomicOutput(path)
        var lenBytes: [UInt8] = []
        appendLE(&lenBytes, UInt64(header.count))
        try out.write(lenBytes)
        try out.write(header)
        let total = order.reduce(0) { $0 + $1.byteCount }
        var done = 0
        let all = order.flatMap { t in zip(t.chunks, t.chunkRanges).map { (name: t.name, id: $0.0, range: $0.1) } }
        let lanes = max(1, min(threads, all.count))
        if lanes == 1 {
            for c in all {
                let h = try objects.header(c.id)
                guard h.payloadLength == c.range.count else {
                    throw .corruptObject("\(c.id.hex): chunk of \(c.name) has \(h.payloadLength) bytes, expected \(c.range.count)")
                }
                try objects.read(c.id, kind: .chunk) { (block) throws(StoreError) in try out.write(block) }
                done += c.range.count
                progress?(done, total)
            }
        } else {
            // Decode (and verify) `lanes` chunks in parallel, write them in order.
            let stores = laneStores(lanes)
            var next = 0
            while next < all.count {
                let batch = Array(all[next..<min(all.count, next + lanes)])
                var results = [Result<[UInt8], StoreError>](repeating: .failure(.io("not run")), count: batch.count)
                results.withUnsafeMutableBufferPointer { res in
                    parallelLanes(batch.count) { k in
                        res[k] = Result { () throws(StoreError) -> [UInt8] in try stores[k].get(batch[k].id, kind: .chunk) }
                    }
                }
                for (k, c) in batch.enumerated() {
                    let payload = try results[k].get()
                    guard payload.count == c.range.count else {
                        throw .corruptObject("\(c.id.hex): chunk of \(c.name) has \(payload.count) bytes, expected \(c.range.count)")
                    }
                    try out.write(payload)
                    done += payload.count
                    progress?(done, total)
                }
                results = []
                next += batch.count
            }
        }
        try out.commit(sync: sync)
        return ExportResult(bytes: 8 + header.count + total, originalHeader: original)
    }
}
