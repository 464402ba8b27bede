import LetheTensor

/// A JSON value serialized canonically (compact, object keys sorted by UTF-8 bytes), so
/// equal versions encode to equal bytes and hash to equal ids.
enum CanonicalJSON: Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([CanonicalJSON])
    case object([String: CanonicalJSON])

    /// Compact serialization with sorted keys.
    var bytes: [UInt8] {
        var out = ""
        write(&out)
        return Array(out.utf8)
    }

    private func write(_ out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .string(let s): out += Safetensors.quote(s)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() { if i > 0 { out += "," }; v.write(&out) }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, k) in o.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }).enumerated() {
                if i > 0 { out += "," }
                out += Safetensors.quote(k) + ":"
                o[k]?.write(&out)
            }
            out += "}"
        }
    }
}

/// Typed access to parsed JSON, throwing `corruptObject` naming `what` on any mismatch.
struct JSONReader {
    let value: OrderedJSON
    let what: String

    func fail(_ m: String) -> StoreError { .corruptObject("\(what): \(m)") }

    subscript(_ key: String) -> JSONReader? {
        value[key].map { JSONReader(value: $0, what: what) }
    }

    func field(_ key: String) throws(StoreError) -> JSONReader {
        guard let v = self[key] else { throw fail("missing field \"\(key)\"") }
        return v
    }

    func isNull() -> Bool { value == .null }

    func string() throws(StoreError) -> String {
        guard case .string(let s) = value else { throw fail("expected a string") }
        return s
    }

    func int() throws(StoreError) -> Int {
        guard case .number(let s) = value, let i = Int(s) else { throw fail("expected an integer") }
        return i
    }

    func array() throws(StoreError) -> [JSONReader] {
        guard case .array(let a) = value else { throw fail("expected an array") }
        return a.map { JSONReader(value: $0, what: what) }
    }

    func object() throws(StoreError) -> [(String, JSONReader)] {
        guard case .object(let o) = value else { throw fail("expected an object") }
        return o.map { ($0.0, JSONReader(value: $0.1, what: what)) }
    }

    func id() throws(StoreError) -> ObjectID {
        let s = try string()
        guard let id = ObjectID(hex: s), id.hex == s else { throw fail("invalid object id \"\(s)\"") }
        return id
    }

    func optionalID(_ key: String) throws(StoreError) -> ObjectID? {
        guard let v = self[key], !v.isNull() else { return nil }
        return try v.id()
    }

    func optionalString(_ key: String) throws(StoreError) -> String? {
        guard let v = self[key], !v.isNull() else { return nil }
        return try v.string()
    }
}
