#if canImport(Glibc)
import Glibc
#endif
import LetheCrypto
import Synchronization

/// Size and age of a stored object, for gc.
public struct ObjectStat: Sendable, Equatable {
    /// Stored (encoded) bytes.
    public var size: Int
    /// Last write or freshen, seconds since the epoch.
    public var modified: Double
}

/// A place that keeps immutable encoded objects by id (as restic's backends do).
///
/// Callers never see paths, so an S3-compatible backend can replace the local directory.
/// A backend moves bytes only; `ObjectStore` decodes and verifies them.
public protocol ObjectBackend: Sendable {
    /// Stores `bytes` under `id` atomically. An existing object is success (its age is
    /// refreshed so a concurrent gc keeps it); returns whether the object was new.
    func put(_ id: ObjectID, _ bytes: [UInt8]) throws(StoreError) -> Bool
    /// The whole stored object; `.missingObject` when absent.
    func get(_ id: ObjectID) throws(StoreError) -> [UInt8]
    /// The first `count` bytes (fewer if the object is shorter); `.missingObject` when absent.
    func getPrefix(_ id: ObjectID, count: Int) throws(StoreError) -> [UInt8]
    /// Whether `id` is stored.
    func has(_ id: ObjectID) -> Bool
    /// Size and age, or nil when absent.
    func stat(_ id: ObjectID) -> ObjectStat?
    /// Every stored id, sorted.
    func list() throws(StoreError) -> [ObjectID]
    /// Removes `id` (absent is success).
    func delete(_ id: ObjectID) throws(StoreError)
    /// Removes leftovers of interrupted writes older than `cutoff` (epoch seconds); returns their count and bytes.
    func removeAbandonedWrites(olderThan cutoff: Double) throws(StoreError) -> (count: Int, bytes: Int)
    /// Makes every earlier `put` durable and listed. A backend may defer the durable part of
    /// `put` until here (objects put but not flushed are still readable by this process);
    /// callers flush before writing anything that references those objects.
    func flush() throws(StoreError)
    /// Forgets every `put` not yet flushed, as if it never happened (a failed import
    /// leaves nothing behind). Backends whose `put` is durable at once cannot.
    func discardPending()
    /// Whether `ObjectStore` must decode and re-hash an object it deduplicates against before
    /// trusting it (true for shared remote backends, where another host wrote it).
    var verifiesExistingObjects: Bool { get }
    /// Drops a local cached copy of `id` (one that failed verification); returns whether there
    /// was one. Backends without a cache return false.
    func evictCached(_ id: ObjectID) -> Bool
}

extension ObjectBackend {
    /// Backends whose `put` is durable at once need no flush.
    public func flush() throws(StoreError) {}
    /// Backends whose `put` is durable at once have nothing pending.
    public func discardPending() {}
    /// A local directory this process and its own writers fill: dedup hits are trusted, as git does.
    public var verifiesExistingObjects: Bool { false }
    /// No cache: nothing to drop.
    public func evictCached(_ id: ObjectID) -> Bool { false }
}

/// Objects as files `objects/<2 hex>/<62 hex>` under a directory, written with
/// temp file + `fsync` + `rename` + directory `fsync`.
///
/// `put` writes the temp file and starts its writeback (`posix_fadvise` DONTNEED) without waiting;
/// `flush` (or `deinit`) then `fsync`s each pending temp file, renames it into place and
/// `fsync`s the directories. The disk thus writes one chunk while the next is being
/// compressed, an object's final name appears only once its bytes are durable, and a failed
/// import can `discardPending()` so no other process ever saw (or deduplicated against) its objects.
public final class LocalBackend: ObjectBackend {
    /// The `objects` directory.
    public let root: String
    private struct Pending { var id: ObjectID; var tmp: String; var final: String; var dir: String }
    private let pending = Mutex<[ObjectID: Pending]>([:])

    /// A backend over an existing `objects` directory.
    public init(root: String) { self.root = root }

    deinit { try? flush() }

    private func pendingEntry(_ id: ObjectID) -> Pending? { pending.withLock { $0[id] } }

    /// Deletes the temp files of every write not yet flushed.
    public func discardPending() {
        let items = pending.withLock { p -> [Pending] in
            let all = Array(p.values)
            p.removeAll()
            return all
        }
        for item in items { unlink(item.tmp) }
    }

    public func flush() throws(StoreError) {
        let items = pending.withLock { p -> [Pending] in
            let all = Array(p.values)
            p.removeAll()
            return all
        }
        var dirs = Set<String>()
        var failure: StoreError?
        for item in items.sorted(by: { $0.id < $1.id }) {
            if failure != nil { unlink(item.tmp); continue }
            let fd = open(item.tmp, O_RDONLY | O_CLOEXEC)
            if fd < 0 { failure = .io("open(\(item.tmp)): \(String(cString: strerror(errno)))"); continue }
            if fsync(fd) != 0 { failure = .io("fsync(\(item.tmp)): \(String(cString: strerror(errno)))") }
            close(fd)
            if failure == nil && rename(item.tmp, item.final) != 0 {
                failure = .io("rename(\(item.tmp), \(item.final)): \(String(cString: strerror(errno)))")
            }
            if failure != nil { unlink(item.tmp) } else { dirs.insert(item.dir) }
        }
        for d in dirs.sorted() { syncDirectory(d) }
        if let failure { throw failure }
    }

    private func dir(_ id: ObjectID) -> String { root + "/" + String(id.hex.prefix(2)) }
    private func path(_ id: ObjectID) -> String { dir(id) + "/" + String(id.hex.dropFirst(2)) }

    public func put(_ id: ObjectID, _ bytes: [UInt8]) throws(StoreError) -> Bool {
        let final = path(id)
        if access(final, F_OK) == 0 {
            utimes(final, nil)  // freshen, as git does, so a gc grace period counts from now
            return false
        }
        if pendingEntry(id) != nil { return false }
        let d = dir(id)
        if mkdir(d, 0o755) != 0 && errno != EEXIST { throw .io("mkdir(\(d)): \(String(cString: strerror(errno)))") }
        let tmp = d + "/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
        guard fd >= 0 else { throw .io("open(\(tmp)): \(String(cString: strerror(errno)))") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return write(fd, base + done, raw.count - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno; close(fd); unlink(tmp)
                throw .io("write(\(tmp)): \(String(cString: strerror(e)))")
            }
            done += n
        }
        // Start writeback now without waiting: on Linux POSIX_FADV_DONTNEED on dirty pages
        // begins asynchronous writeout (WB_SYNC_NONE); flush() waits for it with fsync.
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        close(fd)
        pending.withLock { $0[id] = Pending(id: id, tmp: tmp, final: final, dir: d) }
        return true
    }

    public func get(_ id: ObjectID) throws(StoreError) -> [UInt8] {
        try read(id, limit: nil)
    }

    public func getPrefix(_ id: ObjectID, count: Int) throws(StoreError) -> [UInt8] {
        try read(id, limit: count)
    }

    private func read(_ id: ObjectID, limit: Int?) throws(StoreError) -> [UInt8] {
        let p = pendingEntry(id)?.tmp ?? path(id)
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw .missingObject(id.hex) }
            throw .io("open(\(p)): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw .io("fstat(\(p)): \(String(cString: strerror(errno)))") }
        let size = min(Int(st.st_size), limit ?? Int.max)
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return pread(fd, base + done, size - done, off_t(done))
            }
            if n < 0 { if errno == EINTR { continue }; throw .io("pread(\(p)): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            done += n
        }
        if done < size { out.removeLast(size - done) }
        return out
    }

    public func has(_ id: ObjectID) -> Bool { access(path(id), F_OK) == 0 || pendingEntry(id) != nil }

    public func stat(_ id: ObjectID) -> ObjectStat? {
        var st = Glibc.stat()
        guard Glibc.lstat(path(id), &st) == 0 else { return nil }
        return ObjectStat(size: Int(st.st_size), modified: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) * 1e-9)
    }

    public func list() throws(StoreError) -> [ObjectID] {
        var ids: [ObjectID] = []
        for sub in try entries(root) where sub.utf8.count == 2 && Hex.decode(sub) != nil {
            for name in try entries(root + "/" + sub) where name.utf8.count == 62 {
                if let id = ObjectID(hex: sub + name), id.hex == sub + name { ids.append(id) }
            }
        }
        return ids.sorted()
    }

    public func delete(_ id: ObjectID) throws(StoreError) {
        if let entry = pending.withLock({ $0.removeValue(forKey: id) }) { unlink(entry.tmp) }
        let p = path(id)
        if unlink(p) != 0 && errno != ENOENT { throw .io("unlink(\(p)): \(String(cString: strerror(errno)))") }
    }

    public func removeAbandonedWrites(olderThan cutoff: Double) throws(StoreError) -> (count: Int, bytes: Int) {
        var count = 0, bytes = 0
        for sub in try entries(root) where sub.utf8.count == 2 {
            for name in try entries(root + "/" + sub) where name.hasPrefix(".tmp-") {
                let p = root + "/" + sub + "/" + name
                var st = Glibc.stat()
                guard Glibc.lstat(p, &st) == 0, Double(st.st_mtim.tv_sec) < cutoff else { continue }
                if unlink(p) == 0 { count += 1; bytes += Int(st.st_size) }
            }
        }
        return (count, bytes)
    }

    /// Names in a directory (`opendir`/`readdir`), without `.` and `..`.
    private func entries(_ path: String) throws(StoreError) -> [String] {
        guard let d = opendir(path) else {
            if errno == ENOENT || errno == ENOTDIR { return [] }
            throw .io("opendir(\(path)): \(String(cString: strerror(errno)))")
        }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }
}

/// `fsync` on a directory so a rename in it is durable.
func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd >= 0 { fsync(fd); close(fd) }
}
