#if canImport(Glibc)
import Glibc
#endif
import LetheCrypto
import LetheTensor

/// Objects in an S3-compatible bucket at `<prefix>/objects/<2 hex>/<62 hex>`, with a local
/// read cache.
///
/// - Writes are single `PUT`s with `If-None-Match: *`: S3 makes an object visible whole or not
///   at all, so a process killed mid-upload leaves nothing, and a concurrent writer of the same
///   id gets 412 (the object exists: success, and `ObjectStore` then checks its hash because
///   `verifiesExistingObjects` is set). Every `put` is durable when it returns, so `flush` has
///   nothing to do; `discardPending` cannot take puts back — they are unreferenced objects,
///   harmless, swept by gc. A version only becomes visible through a ref, which moves after the
///   version object, which is written after every object it references.
/// - Reads go to the cache first (`<cache>/<2 hex>/<62 hex>`, filled on get and put; objects are
///   immutable and content-addressed, so an entry never goes stale). `ObjectStore` re-hashes
///   every decoded payload, so a damaged cache entry is caught, not trusted: it is evicted
///   (`evictCached`) and the object fetched again.
/// - `has` and `stat` are `HEAD`s (never the cache: gc elsewhere may have removed the object).
public final class S3Backend: ObjectBackend {
    /// Signed requests.
    public let client: S3Client
    /// Bucket and key prefix.
    public let location: S3Location
    /// The local read cache directory (nil: none).
    public let cacheDirectory: String?
    /// Keys per `ListObjectsV2` page (1000 is S3's maximum; smaller in tests to force pagination).
    public let pageSize: Int

    /// A backend for `location`; `cacheDirectory` is created when missing.
    public init(client: S3Client, location: S3Location, cacheDirectory: String?, pageSize: Int = 1000) throws(StoreError) {
        self.client = client; self.location = location; self.cacheDirectory = cacheDirectory; self.pageSize = pageSize
        if let cacheDirectory { try makeDirectories(cacheDirectory) }
    }

    /// Dedup hits are verified by decoding (another host wrote the object).
    public var verifiesExistingObjects: Bool { true }

    /// The key of `id`: `<prefix>/objects/ab/cdef…`.
    public func key(_ id: ObjectID) -> String {
        location.key("objects/" + String(id.hex.prefix(2)) + "/" + String(id.hex.dropFirst(2)))
    }

    private var objectsPrefix: String { location.key("objects/") }

    public func put(_ id: ObjectID, _ bytes: [UInt8]) throws(StoreError) -> Bool {
        let k = key(id)
        if bytes.isEmpty { return try freshen(id) }
        let r = try client.send("PUT", bucket: location.bucket, key: k, headers: [("if-none-match", "*")], body: bytes)
        switch r.status {
        case 200:
            cacheStore(id, bytes)
            return true
        case 412:
            return false  // written by someone else first; ObjectStore verifies it
        default:
            throw S3Client.failure("PUT", bucket: location.bucket, key: k, r)
        }
    }

    /// Refreshes an existing object's modification time with a copy onto itself (metadata
    /// REPLACE), so a gc grace period counts from now. Absent: `.missingObject`.
    private func freshen(_ id: ObjectID) throws(StoreError) -> Bool {
        let k = key(id)
        let source = SigV4.uriEncode("/" + location.bucket + "/" + k, keepSlash: true)
        let r = try client.send("PUT", bucket: location.bucket, key: k,
                                headers: [("x-amz-copy-source", source), ("x-amz-metadata-directive", "REPLACE")])
        if r.status == 200 { return false }
        if r.status == 404 { throw .missingObject("\(id.hex) (\(location.bucket)/\(k) vanished while deduplicating)") }
        throw S3Client.failure("PUT (copy)", bucket: location.bucket, key: k, r)
    }

    public func get(_ id: ObjectID) throws(StoreError) -> [UInt8] {
        if let cached = cacheLoad(id, limit: nil) { return cached }
        let k = key(id)
        let r = try client.send("GET", bucket: location.bucket, key: k)
        switch r.status {
        case 200:
            cacheStore(id, r.body)
            return r.body
        case 404: throw .missingObject("\(id.hex) (\(location.bucket)/\(k))")
        default: throw S3Client.failure("GET", bucket: location.bucket, key: k, r)
        }
    }

    public func getPrefix(_ id: ObjectID, count: Int) throws(StoreError) -> [UInt8] {
        if let cached = cacheLoad(id, limit: count) { return cached }
        guard count > 0 else { return [] }
        let k = key(id)
        let r = try client.send("GET", bucket: location.bucket, key: k, headers: [("range", "bytes=0-\(count - 1)")])
        switch r.status {
        case 206: return Array(r.body.prefix(count))
        case 200:
            cacheStore(id, r.body)
            return Array(r.body.prefix(count))
        case 416: return []  // an empty object
        case 404: throw .missingObject("\(id.hex) (\(location.bucket)/\(k))")
        default: throw S3Client.failure("GET (range)", bucket: location.bucket, key: k, r)
        }
    }

    public func has(_ id: ObjectID) -> Bool { (try? head(id)) != nil }

    public func stat(_ id: ObjectID) -> ObjectStat? {
        guard let r = try? head(id) else { return nil }
        let size = r.headers["content-length"].flatMap { Int($0) } ?? 0
        let modified = r.headers["last-modified"].flatMap(S3Time.parseHTTPDate) ?? 0
        return ObjectStat(size: size, modified: modified)
    }

    /// `HEAD` of `id`: the response when it exists, nil when absent; throws on other failures.
    private func head(_ id: ObjectID) throws(StoreError) -> HTTPResponse? {
        let k = key(id)
        let r = try client.send("HEAD", bucket: location.bucket, key: k)
        if r.status == 200 { return r }
        if r.status == 404 { return nil }
        throw S3Client.failure("HEAD", bucket: location.bucket, key: k, r)
    }

    public func list() throws(StoreError) -> [ObjectID] {
        let page = try client.listAll(bucket: location.bucket, prefix: objectsPrefix, maxKeys: pageSize)
        var ids: [ObjectID] = []
        for o in page.objects {
            let rest = o.key.dropFirst(objectsPrefix.utf8.count)
            let parts = rest.split(separator: "/")
            guard parts.count == 2, parts[0].utf8.count == 2, parts[1].utf8.count == 62 else { continue }
            let hex = String(parts[0] + parts[1])
            if let id = ObjectID(hex: hex), id.hex == hex { ids.append(id) }
        }
        return ids.sorted()
    }

    public func delete(_ id: ObjectID) throws(StoreError) {
        let k = key(id)
        if let path = cachePath(id) { unlink(path) }
        let r = try client.send("DELETE", bucket: location.bucket, key: k)
        guard r.status == 204 || r.status == 200 || r.status == 404 else { throw S3Client.failure("DELETE", bucket: location.bucket, key: k, r) }
    }

    /// Single PUTs leave no partial uploads (multipart uploads are not used).
    public func removeAbandonedWrites(olderThan cutoff: Double) throws(StoreError) -> (count: Int, bytes: Int) { (0, 0) }

    // MARK: cache

    /// Removes the cache entry of `id` (`unlink`); whether there was one.
    public func evictCached(_ id: ObjectID) -> Bool {
        guard let path = cachePath(id) else { return false }
        return unlink(path) == 0
    }

    private func cachePath(_ id: ObjectID) -> String? {
        cacheDirectory.map { $0 + "/" + String(id.hex.prefix(2)) + "/" + String(id.hex.dropFirst(2)) }
    }

    /// The cached bytes (at most `limit`), or nil.
    private func cacheLoad(_ id: ObjectID, limit: Int?) -> [UInt8]? {
        guard let path = cachePath(id), access(path, F_OK) == 0, let bytes = try? FileBytes.read(path) else { return nil }
        if let limit { return Array(bytes.prefix(limit)) }
        return bytes
    }

    /// Writes a cache entry (temp file + rename; failures only cost a later download).
    private func cacheStore(_ id: ObjectID, _ bytes: [UInt8]) {
        guard let path = cachePath(id), let dir = cacheDirectory else { return }
        let sub = dir + "/" + String(id.hex.prefix(2))
        if mkdir(sub, 0o755) != 0 && errno != EEXIST { return }
        let tmp = sub + "/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
        guard fd >= 0 else { return }
        var done = 0, ok = true
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return write(fd, base + done, raw.count - done)
            }
            if n < 0 { if errno == EINTR { continue }; ok = false; break }
            done += n
        }
        close(fd)
        if !ok || rename(tmp, path) != 0 { unlink(tmp) }
    }
}

/// `mkdir -p`.
func makeDirectories(_ path: String) throws(StoreError) {
    var current = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        current += "/" + part
        if mkdir(current, 0o755) != 0 && errno != EEXIST { throw .io("mkdir(\(current)): \(String(cString: strerror(errno)))") }
    }
}
