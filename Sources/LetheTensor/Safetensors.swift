#if canImport(Glibc)
import Glibc
#endif
#if canImport(LetheText)
import LetheText  // tools/fuzz compiles these sources into one module instead
#endif

/// An error in a safetensors file, one line naming what is wrong.
public struct SafetensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The problem.
    public let message: String
    /// An error.
    public init(_ message: String) { self.message = message }
    public var description: String { "malformed safetensors: \(message)" }
}

/// One tensor's entry in a safetensors header; offsets are relative to the data buffer.
public struct SafetensorsEntry: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// First byte of the tensor in the data buffer.
    public var begin: Int
    /// One past its last byte.
    public var end: Int
    /// `end − begin`.
    public var byteCount: Int { end - begin }
}

/// A parsed and validated safetensors header.
public struct SafetensorsHeader: Sendable, Equatable {
    /// Entries in header order.
    public var entries: [SafetensorsEntry]
    /// The `__metadata__` string map, in header order (nil when absent).
    public var metadata: [(String, String)]?
    /// The header JSON exactly as stored (including any trailing padding spaces).
    public var rawJSON: [UInt8]
    /// Offset of the data buffer in the file: 8 + header length.
    public var dataOffset: Int { 8 + rawJSON.count }

    public static func == (a: SafetensorsHeader, b: SafetensorsHeader) -> Bool {
        a.entries == b.entries && a.rawJSON == b.rawJSON
    }
}

/// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte
/// little-endian header length N, N bytes of JSON header, then the data buffer.
///
/// Reading validates everything the format requires: header ≤ 100 MB starting with `{`,
/// valid JSON without duplicate names, known dtypes, `shape × dtype` size equal to the
/// offsets' span, and offsets that tile the data buffer exactly (no holes, no overlaps,
/// nothing past the end). Writing follows the reference writer: tensors sorted by dtype
/// (larger `referenceOrder` first) then by name, compact JSON with `__metadata__` first,
/// the header padded with spaces to a multiple of 8 bytes.
public enum Safetensors {
    /// The largest header accepted (100 MB), as in the reference implementation.
    public static let maxHeaderLength = 100_000_000

    /// Validates a header's JSON against a data buffer of `dataLength` bytes.
    public static func parseHeader(_ json: [UInt8], dataLength: Int) throws(SafetensorsError) -> SafetensorsHeader {
        guard json.first == UInt8(ascii: "{") else { throw SafetensorsError("header does not start with '{'") }
        let doc: OrderedJSON
        do { doc = try OrderedJSONParser.parse(json) } catch { throw SafetensorsError("header is not JSON (\(error))") }
        guard case .object(let members) = doc else { throw SafetensorsError("header is not a JSON object") }
        var entries: [SafetensorsEntry] = []
        var metadata: [(String, String)]?
        for (name, value) in members {
            if name == "__metadata__" {
                guard case .object(let kv) = value else { throw SafetensorsError("__metadata__ is not an object") }
                var m: [(String, String)] = []
                for (k, v) in kv {
                    guard case .string(let s) = v else { throw SafetensorsError("__metadata__ value for \"\(k)\" is not a string") }
                    m.append((k, s))
                }
                metadata = m
                continue
            }
            guard case .object = value else { throw SafetensorsError("entry \"\(name)\" is not an object") }
            guard case .string(let dt)? = value["dtype"] else { throw SafetensorsError("entry \"\(name)\" has no dtype") }
            guard let dtype = DType(rawValue: dt) else { throw SafetensorsError("entry \"\(name)\" has unknown dtype \"\(dt)\"") }
            guard case .array(let dims)? = value["shape"] else { throw SafetensorsError("entry \"\(name)\" has no shape") }
            var shape: [Int] = []
            for d in dims {
                guard let n = d.nonNegativeInt else { throw SafetensorsError("entry \"\(name)\" has an invalid shape") }
                shape.append(n)
            }
            guard case .array(let offs)? = value["data_offsets"], offs.count == 2,
                  let begin = offs[0].nonNegativeInt, let end = offs[1].nonNegativeInt, begin <= end else {
                throw SafetensorsError("entry \"\(name)\" has invalid data_offsets")
            }
            var elements = 1
            for d in shape {
                let (p, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw SafetensorsError("entry \"\(name)\" shape \(shape) overflows") }
                elements = p
            }
            let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, bytes == end - begin else {
                throw SafetensorsError("entry \"\(name)\": shape \(shape) of \(dt) needs \(overflow ? "too many" : String(bytes)) bytes but data_offsets span \(end - begin)")
            }
            entries.append(SafetensorsEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        // Offsets must tile [0, dataLength) exactly.
        var cursor = 0
        for e in entries.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            if e.begin < cursor { throw SafetensorsError("entry \"\(e.name)\" overlaps the previous tensor (offset \(e.begin) < \(cursor))") }
            if e.begin > cursor { throw SafetensorsError("hole in the data buffer before \"\(e.name)\" (bytes \(cursor)..<\(e.begin))") }
            cursor = e.end
        }
        if cursor > dataLength { throw SafetensorsError("data_offsets reach byte \(cursor) but the data buffer has \(dataLength) bytes") }
        if cursor < dataLength { throw SafetensorsError("\(dataLength - cursor) trailing bytes after the last tensor") }
        return SafetensorsHeader(entries: entries, metadata: metadata, rawJSON: json)
    }

    /// Parses a whole file held in memory.
    public static func decode(_ file: [UInt8]) throws(SafetensorsError) -> (header: SafetensorsHeader, tensors: [NamedTensor]) {
        guard file.count >= 8 else { throw SafetensorsError("file is shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for k in 0..<8 { n |= UInt64(file[k]) << (8 * UInt64(k)) }
        guard n <= UInt64(maxHeaderLength) else { throw SafetensorsError("header length \(n) exceeds \(maxHeaderLength) bytes") }
        let headerLength = Int(n)
        guard 8 + headerLength <= file.count else { throw SafetensorsError("header length \(n) runs past the end of the file") }
        let header = try parseHeader(Array(file[8..<(8 + headerLength)]), dataLength: file.count - 8 - headerLength)
        let base = header.dataOffset
        let tensors = header.entries.map {
            NamedTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape, data: Array(file[(base + $0.begin)..<(base + $0.end)]))
        }
        return (header, tensors)
    }

    /// The reference writer's tensor order: dtype rank descending, then name ascending.
    public static func referenceOrder(_ a: (name: String, dtype: DType), _ b: (name: String, dtype: DType)) -> Bool {
        if a.dtype.referenceOrder != b.dtype.referenceOrder { return a.dtype.referenceOrder > b.dtype.referenceOrder }
        return a.name < b.name
    }

    /// Builds header JSON (padded to 8 bytes) for tensors laid out in the given order.
    public static func headerJSON(for layout: [(name: String, dtype: DType, shape: [Int])], metadata: [(String, String)]?) -> [UInt8] {
        var s = "{"
        var first = true
        if let metadata {
            s += "\"__metadata__\":{"
            s += metadata.map { quote($0.0) + ":" + quote($0.1) }.joined(separator: ",")
            s += "}"
            first = false
        }
        var offset = 0
        for t in layout {
            let bytes = t.shape.reduce(1, *) * t.dtype.byteSize
            if !first { s += "," }
            first = false
            s += quote(t.name) + ":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        s += "}"
        var out = Array(s.utf8)
        let pad = (8 - out.count % 8) % 8
        out.append(contentsOf: [UInt8](repeating: 0x20, count: pad))
        return out
    }

    /// Serializes tensors in the reference writer's order.
    public static func encode(_ tensors: [NamedTensor], metadata: [(String, String)]? = nil) -> [UInt8] {
        let ordered = tensors.sorted { referenceOrder(($0.name, $0.dtype), ($1.name, $1.dtype)) }
        return encode(ordered, header: headerJSON(for: ordered.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata))
    }

    /// Serializes tensors with a given header (whose offsets must match `tensors` in this order).
    public static func encode(_ tensors: [NamedTensor], header: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(8 + header.count + tensors.reduce(0) { $0 + $1.data.count })
        var n = UInt64(header.count)
        for _ in 0..<8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
        out.append(contentsOf: header)
        for t in tensors { out.append(contentsOf: t.data) }
        return out
    }

    /// JSON string literal as serde_json writes it (`JSONString.quote`).
    public static func quote(_ s: String) -> String { JSONString.quote(s) }

    /// Reads and validates a whole file from disk.
    public static func read(path: String) throws(SafetensorsError) -> (header: SafetensorsHeader, tensors: [NamedTensor]) {
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(path) } catch { throw SafetensorsError("cannot read \(path): \(error)") }
        return try decode(bytes)
    }
}

/// Whole-file reads and writes with POSIX calls (`open`, `read`, `write`, `fsync`, `rename`).
public enum FileBytes {
    /// A failed system call, naming the call, path and errno text.
    public struct IOError: Error, CustomStringConvertible, Sendable {
        public let call: String, path: String, code: Int32
        public var description: String { "\(call)(\(path)) failed: \(String(cString: strerror(code)))" }
    }

    /// Reads a whole file.
    public static func read(_ path: String) throws(IOError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError(call: "open", path: path, code: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOError(call: "fstat", path: path, code: errno) }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.read(fd, base + done, raw.count - done)
            }
            if n < 0 { if errno == EINTR { continue }; throw IOError(call: "read", path: path, code: errno) }
            if n == 0 { break }
            done += n
        }
        if done < out.count { out.removeLast(out.count - done) }
        return out
    }

    /// Writes a file atomically: temp file in the same directory, fsync, rename, fsync of the directory.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(IOError) {
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError(call: "open", path: tmp, code: errno) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(fd, base + done, raw.count - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno; close(fd); unlink(tmp)
                throw IOError(call: "write", path: tmp, code: e)
            }
            done += n
        }
        guard fsync(fd) == 0 else { let e = errno; close(fd); unlink(tmp); throw IOError(call: "fsync", path: tmp, code: e) }
        close(fd)
        guard rename(tmp, path) == 0 else { let e = errno; unlink(tmp); throw IOError(call: "rename", path: path, code: e) }
        let dir = path.contains("/") ? String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) : "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
