#if canImport(Glibc)
import Glibc
#endif
import LetheTensor

/// One recorded move of a ref.
public struct RefMove: Sendable, Equatable {
    /// Seconds since the epoch.
    public var time: Double
    /// The ref.
    public var ref: String
    /// The version before (nil when the ref was created).
    public var old: ObjectID?
    /// The version after.
    public var new: ObjectID
    /// Why it moved.
    public var reason: String
}

/// Named refs pointing at versions, with a history that never loses a move: a local directory
/// (`RefStore`) or an S3 bucket (`S3RefStore`).
public protocol RefBackend: Sendable {
    /// The version `name` points at, or nil when the ref does not exist.
    func get(_ name: String) throws(StoreError) -> ObjectID?
    /// Every ref, by name.
    func list() throws(StoreError) -> [(name: String, id: ObjectID)]
    /// Points `name` at `id`, recording the move at `time` (nil: now; a time is given when a
    /// history is copied). With `expected`, fails unless the ref currently points there (nil:
    /// must not exist), as a compare-and-swap.
    @discardableResult
    func set(_ name: String, to id: ObjectID, reason: String, expected: ObjectID??, time: Double?) throws(StoreError) -> RefMove
    /// Every recorded move, oldest first (only `name`'s when given).
    func history(_ name: String?) throws(StoreError) -> [RefMove]
}

extension RefBackend {
    /// Points `name` at `id` whatever it pointed at, recording the move now.
    @discardableResult
    public func set(_ name: String, to id: ObjectID, reason: String) throws(StoreError) -> RefMove {
        try set(name, to: id, reason: reason, expected: nil, time: nil)
    }

    /// Points `name` at `id` if it points at `expected` (nil: must not exist), recording the move now.
    @discardableResult
    public func set(_ name: String, to id: ObjectID, reason: String, expected: ObjectID??) throws(StoreError) -> RefMove {
        try set(name, to: id, reason: reason, expected: expected, time: nil)
    }

    /// Every recorded move of every ref, oldest first.
    public func history() throws(StoreError) -> [RefMove] { try history(nil) }
}

extension RefMove {
    /// One JSON line (keys sorted like canonical JSON, the time with millisecond precision), newline-terminated.
    public var jsonLine: String {
        "{\"new\":\"\(new.hex)\",\"old\":" + (old.map { "\"\($0.hex)\"" } ?? "null")
            + ",\"reason\":" + Safetensors.quote(reason) + ",\"ref\":" + Safetensors.quote(ref)
            + ",\"time\":" + format3(time) + "}\n"
    }

    /// Parses a line written by `jsonLine` (nil when it is not one, e.g. torn by a crash).
    public static func parse(_ line: [UInt8]) -> RefMove? {
        var line = line[...]
        while let last = line.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { line.removeLast() }
        guard let doc = try? OrderedJSONParser.parse(Array(line)) else { return nil }
        let r = JSONReader(value: doc, what: "ref move")
        guard let ref = try? r.field("ref").string(), let new = try? r.field("new").id(),
              let reason = try? r.field("reason").string(), case .number(let t)? = r["time"]?.value,
              let time = Double(t) else { return nil }
        let old: ObjectID?
        do { old = try r.optionalID("old") } catch { return nil }
        return RefMove(time: time, ref: ref, old: old, new: new, reason: reason)
    }
}

/// Named refs (`prod`, `staging`) pointing at versions, with an append-only history.
///
/// A ref is the file `refs/<name>` holding a version id, replaced atomically (temp file,
/// `fsync`, `rename`, directory `fsync`). Every move is first appended (and `fsync`ed) to
/// `refs.log` as one JSON line with time, ref, old, new and reason; moves are serialized
/// by an exclusive `flock` on `refs.lock`.
public final class RefStore: RefBackend {
    /// The `.lethe` directory.
    public let directory: String

    /// Refs of the store at `directory`.
    public init(directory: String) { self.directory = directory }

    private var refsDir: String { directory + "/refs" }
    private var logPath: String { directory + "/refs.log" }

    /// Whether `name` may be a ref: 1–100 of `A-Z a-z 0-9 . _ -`, starting with a letter or
    /// digit, and not ending in `.tmp.<digits>` (the temp file `FileBytes.writeAtomically`
    /// leaves behind when a writer is killed before its rename: never listed as a ref).
    public static func isValidName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        guard !u.isEmpty, u.count <= 100 else { return false }
        func ok(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
        guard ok(u[0]) else { return false }
        guard u.allSatisfy({ ok($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) else { return false }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count >= 3, parts[parts.count - 2] == "tmp", let last = parts.last, !last.isEmpty,
           last.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) { return false }
        return true
    }

    /// The version `name` points at, or nil when the ref does not exist.
    public func get(_ name: String) throws(StoreError) -> ObjectID? {
        guard RefStore.isValidName(name) else { throw .invalidInput("invalid ref name \"\(name)\"") }
        let path = refsDir + "/" + name
        guard access(path, F_OK) == 0 else { return nil }
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(path) } catch { throw .io("\(error)") }
        let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
        guard let id = ObjectID(hex: text) else { throw .corruptObject("ref \(name) holds \"\(text.prefix(80))\", not a version id") }
        return id
    }

    /// Every ref, by name.
    public func list() throws(StoreError) -> [(name: String, id: ObjectID)] {
        var out: [(String, ObjectID)] = []
        guard let d = opendir(refsDir) else { return [] }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if RefStore.isValidName(name) { names.append(name) }
        }
        closedir(d)
        for name in names.sorted() { if let id = try get(name) { out.append((name, id)) } }
        return out
    }

    /// Points `name` at `id`, recording the move. With `expected`, fails unless the ref
    /// currently points there (nil: must not exist), as a compare-and-swap.
    @discardableResult
    public func set(_ name: String, to id: ObjectID, reason: String, expected: ObjectID??, time: Double?) throws(StoreError) -> RefMove {
        guard RefStore.isValidName(name) else { throw .invalidInput("invalid ref name \"\(name)\" (use letters, digits, '.', '_', '-')") }
        let lock = try FileLock(path: directory + "/refs.lock", exclusive: true)
        defer { lock.unlock() }
        let old = try get(name)
        if let expected, expected != old {
            throw .invalidInput("ref \(name) moved concurrently (now \(old?.hex ?? "absent"), expected \(expected?.hex ?? "absent"))")
        }
        let move = RefMove(time: time ?? Store.now(), ref: name, old: old, new: id, reason: reason)
        try appendHistory(move)
        do { try FileBytes.writeAtomically(Array((id.hex + "\n").utf8), to: refsDir + "/" + name) } catch { throw .io("\(error)") }
        return move
    }

    /// Every recorded move, oldest first (only `name`'s when given). A torn last line left by a crash is skipped.
    public func history(_ name: String?) throws(StoreError) -> [RefMove] {
        guard access(logPath, F_OK) == 0 else { return [] }
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(logPath) } catch { throw .io("\(error)") }
        var out: [RefMove] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let m = RefMove.parse(Array(line)) else { continue }
            if let name, m.ref != name { continue }
            out.append(m)
        }
        return out
    }

    private func appendHistory(_ m: RefMove) throws(StoreError) {
        let line = m.jsonLine
        let fd = open(logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("open(\(logPath)): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(line.utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw .io("write(\(logPath)): \(String(cString: strerror(errno)))") }
        guard fsync(fd) == 0 else { throw .io("fsync(\(logPath)): \(String(cString: strerror(errno)))") }
    }
}

/// `t` with millisecond precision, without Foundation.
func format3(_ t: Double) -> String {
    let ms = Int((t * 1000).rounded())
    let frac = ms % 1000
    return "\(ms / 1000)." + String(repeating: "0", count: frac < 10 ? 2 : frac < 100 ? 1 : 0) + "\(frac)"
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }

}
