import LetheTensor

/// Refs in an S3 bucket, moved by compare-and-swap, with a history that cannot lose or fork a move.
///
/// Layout under the prefix:
/// - `reflog/<name>/<move number, 12 digits>`: one immutable object per move (the `refs.log`
///   JSON line), created with `If-None-Match: *`. Creating move n+1 *is* the commit point: of
///   concurrent movers that all read move n, exactly one creates n+1; the others get 412 and
///   report a concurrent move (or, for an unconditional set, re-read and try n+2).
/// - `refs/<name>`: `{"move":n,"version":"<hex>"}`, the head pointer, so reading a ref needs
///   no listing. It is created with `If-None-Match: *` and then replaced only with `If-Match`
///   on the ETag it had when read (RGW matches the unquoted ETag), after the log entry exists.
///
/// A mover killed between the two steps leaves the pointer one move behind its log; every
/// read checks for move n+1 and rolls the pointer forward (the move was committed), so the
/// ref and its history always agree. The engine's own ordering is unchanged: its ledger
/// transaction commits first, then this ref moves with `expected` set to the old target.
public final class S3RefStore: RefBackend {
    /// Signed requests.
    public let client: S3Client
    /// Bucket and key prefix.
    public let location: S3Location
    /// Attempts of an unconditional `set` that keeps losing races.
    public let maxAttempts = 20

    /// Refs at `location`.
    public init(client: S3Client, location: S3Location) { self.client = client; self.location = location }

    private func refKey(_ name: String) -> String { location.key("refs/" + name) }
    private func logPrefix(_ name: String) -> String { location.key("reflog/" + name + "/") }
    private func logKey(_ name: String, _ move: Int) -> String {
        let digits = String(move)
        return logPrefix(name) + String(repeating: "0", count: max(0, 12 - digits.utf8.count)) + digits
    }

    /// A ref's state: its last move number and target (0 / nil when it never moved), and the
    /// pointer object's unquoted ETag (nil when the pointer does not exist).
    struct Head { var move: Int; var id: ObjectID?; var etag: String? }

    /// Reads the pointer, then rolls it forward over any committed move it missed.
    func head(_ name: String) throws(StoreError) -> Head {
        guard RefStore.isValidName(name) else { throw .invalidInput("invalid ref name \"\(name)\"") }
        let k = refKey(name)
        let r = try client.send("GET", bucket: location.bucket, key: k)
        var h = Head(move: 0, id: nil, etag: nil)
        switch r.status {
        case 200:
            guard let doc = try? OrderedJSONParser.parse(r.body), case .number(let m)? = doc["move"], let move = Int(m),
                  case .string(let v)? = doc["version"], let id = ObjectID(hex: v) else {
                throw .corruptObject("ref \(name) at \(location.bucket)/\(k) holds \"\(String(decoding: r.body.prefix(80), as: UTF8.self))\"")
            }
            h = Head(move: move, id: id, etag: r.headers["etag"].map(S3RefStore.unquote))
        case 404: break
        default: throw S3Client.failure("GET", bucket: location.bucket, key: k, r)
        }
        var advanced = false
        while let m = try logEntry(name, h.move + 1) {
            h.move += 1; h.id = m.new; advanced = true
        }
        if advanced { h.etag = try writePointer(name, h, previousETag: h.etag) ?? h.etag }
        return h
    }

    /// Move `n` of `name`, or nil when it was never made.
    private func logEntry(_ name: String, _ n: Int) throws(StoreError) -> RefMove? {
        let k = logKey(name, n)
        let r = try client.send("GET", bucket: location.bucket, key: k)
        if r.status == 404 { return nil }
        guard r.status == 200 else { throw S3Client.failure("GET", bucket: location.bucket, key: k, r) }
        guard let m = RefMove.parse(r.body) else { throw .corruptObject("ref log entry \(location.bucket)/\(k) does not parse") }
        return m
    }

    /// Replaces the pointer with `h` if it still has `previousETag` (absent when nil); returns
    /// the new ETag, or nil when someone else moved it first (harmless: the log is the truth).
    private func writePointer(_ name: String, _ h: Head, previousETag: String?) throws(StoreError) -> String? {
        guard let id = h.id else { return nil }
        let k = refKey(name)
        let body = Array("{\"move\":\(h.move),\"version\":\"\(id.hex)\"}\n".utf8)
        let condition = previousETag.map { ("if-match", $0) } ?? ("if-none-match", "*")
        let r = try client.send("PUT", bucket: location.bucket, key: k, headers: [condition], body: body)
        if r.status == 200 { return r.headers["etag"].map(S3RefStore.unquote) }
        if r.status == 412 || r.status == 409 { return nil }
        throw S3Client.failure("PUT", bucket: location.bucket, key: k, r)
    }

    static func unquote(_ etag: String) -> String {
        var s = Substring(etag)
        if s.hasPrefix("W/") { s = s.dropFirst(2) }
        if s.hasPrefix("\""), s.hasSuffix("\""), s.count >= 2 { s = s.dropFirst().dropLast() }
        return String(s)
    }

    public func get(_ name: String) throws(StoreError) -> ObjectID? { try head(name).id }

    public func list() throws(StoreError) -> [(name: String, id: ObjectID)] {
        let base = location.key("reflog/")
        let page = try client.listAll(bucket: location.bucket, prefix: base, delimiter: "/")
        var out: [(String, ObjectID)] = []
        for p in page.commonPrefixes.sorted() {
            var name = String(p.dropFirst(base.utf8.count))
            if name.hasSuffix("/") { name.removeLast() }
            guard RefStore.isValidName(name) else { continue }
            if let id = try get(name) { out.append((name, id)) }
        }
        return out
    }

    @discardableResult
    public func set(_ name: String, to id: ObjectID, reason: String, expected: ObjectID??, time: Double?) throws(StoreError) -> RefMove {
        guard RefStore.isValidName(name) else { throw .invalidInput("invalid ref name \"\(name)\" (use letters, digits, '.', '_', '-')") }
        for _ in 0..<maxAttempts {
            let h = try head(name)
            if let expected, expected != h.id {
                throw .invalidInput("ref \(name) moved concurrently (now \(h.id?.hex ?? "absent"), expected \(expected?.hex ?? "absent"))")
            }
            let move = RefMove(time: time ?? Store.now(), ref: name, old: h.id, new: id, reason: reason)
            let k = logKey(name, h.move + 1)
            let r = try client.send("PUT", bucket: location.bucket, key: k, headers: [("if-none-match", "*")], body: Array(move.jsonLine.utf8))
            if r.status == 412 || r.status == 409 { continue }  // another mover took this number: re-read
            guard r.status == 200 else { throw S3Client.failure("PUT", bucket: location.bucket, key: k, r) }
            _ = try writePointer(name, Head(move: h.move + 1, id: id, etag: nil), previousETag: h.etag)
            return move
        }
        throw .io("ref \(name): lost \(maxAttempts) races in a row against concurrent movers")
    }

    public func history(_ name: String?) throws(StoreError) -> [RefMove] {
        if let name, !RefStore.isValidName(name) { throw .invalidInput("invalid ref name \"\(name)\"") }
        let prefix = name.map(logPrefix) ?? location.key("reflog/")
        let page = try client.listAll(bucket: location.bucket, prefix: prefix)
        var out: [(RefMove, String)] = []
        for o in page.objects {
            let r = try client.send("GET", bucket: location.bucket, key: o.key)
            guard r.status == 200 else { throw S3Client.failure("GET", bucket: location.bucket, key: o.key, r) }
            guard let m = RefMove.parse(r.body) else { throw .corruptObject("ref log entry \(location.bucket)/\(o.key) does not parse") }
            out.append((m, o.key))
        }
        // One ref: move-number order (the keys). All refs: by time, ties by key.
        if name != nil { return out.map(\.0) }
        return out.sorted { $0.0.time == $1.0.time ? $0.1 < $1.1 : $0.0.time < $1.0.time }.map(\.0)
    }
}
