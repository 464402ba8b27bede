import Foundation

/// A parsed JSON value that keeps integers apart from other numbers (JSON Schema's
/// "integer" vs "number") and booleans apart from numbers.
indirect enum JSONDoc: Equatable {
    case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSONDoc]), object([(String, JSONDoc)])

    static func == (a: JSONDoc, b: JSONDoc) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    subscript(key: String) -> JSONDoc? {
        if case .object(let kv) = self { return kv.first { $0.0 == key }?.1 }
        return nil
    }

    /// Parses JSON text (RFC 8259); nil on any syntax error or trailing garbage.
    static func parse(_ text: String) -> JSONDoc? {
        var p = Parser(Array(text.utf8))
        guard let v = p.value() else { return nil }
        p.ws()
        return p.i == p.b.count ? v : nil
    }

    private struct Parser {
        let b: [UInt8]; var i = 0
        init(_ b: [UInt8]) { self.b = b }
        mutating func ws() { while i < b.count, [0x20, 0x0a, 0x0d, 0x09].contains(b[i]) { i += 1 } }
        mutating func lit(_ s: String) -> Bool {
            let u = Array(s.utf8)
            guard i + u.count <= b.count, Array(b[i..<i + u.count]) == u else { return false }
            i += u.count; return true
        }
        mutating func value() -> JSONDoc? {
            ws()
            guard i < b.count else { return nil }
            switch b[i] {
            case UInt8(ascii: "n"): return lit("null") ? .null : nil
            case UInt8(ascii: "t"): return lit("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return lit("false") ? .bool(false) : nil
            case UInt8(ascii: "\""): return string().map { .string($0) }
            case UInt8(ascii: "["):
                i += 1; var items: [JSONDoc] = []
                ws(); if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    guard let v = value() else { return nil }
                    items.append(v); ws()
                    guard i < b.count else { return nil }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    return nil
                }
            case UInt8(ascii: "{"):
                i += 1; var kv: [(String, JSONDoc)] = []
                ws(); if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(kv) }
                while true {
                    ws()
                    guard i < b.count, b[i] == UInt8(ascii: "\""), let k = string() else { return nil }
                    ws(); guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
                    i += 1
                    guard let v = value() else { return nil }
                    kv.append((k, v)); ws()
                    guard i < b.count else { return nil }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .object(kv) }
                    return nil
                }
            default:
                let start = i
                while i < b.count, "+-0123456789.eE".utf8.contains(b[i]) { i += 1 }
                let t = String(decoding: b[start..<i], as: UTF8.self)
                if t.contains(where: { ".eE".contains($0) }) { return Double(t).map { .number($0) } }
                return Int64(t).map { .integer($0) }
            }
        }
        mutating func string() -> String? {
            i += 1; var out = [UInt8]()
            while i < b.count {
                let c = b[i]; i += 1
                if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if c < 0x20 { return nil }
                if c == UInt8(ascii: "\\") {
                    guard i < b.count else { return nil }
                    let e = b[i]; i += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0a)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0d)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0c)
                    case UInt8(ascii: "u"):
                        guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i..<i + 4], as: UTF8.self), radix: 16),
                              let s = Unicode.Scalar(v) else { return nil }
                        i += 4; out.append(contentsOf: Array(String(Character(s)).utf8))
                    default: out.append(e)
                    }
                } else { out.append(c) }
            }
            return nil
        }
    }
}

/// Validates against the subset of JSON Schema (draft-07) that schema/*.schema.json use:
/// type, properties, required, additionalProperties, items, minItems, minimum, minLength,
/// pattern, oneOf and $ref to a sibling schema file.
struct LedgerSchemaValidator {
    let directory: URL

    func load(_ name: String) throws -> JSONDoc {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        guard let doc = JSONDoc.parse(text) else { throw NSError(domain: "schema", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(name) is not JSON"]) }
        return doc
    }

    /// Problems found validating `value` against the schema file `name` (empty when valid).
    func validate(_ value: JSONDoc, against name: String) throws -> [String] {
        try check(value, try load(name), at: "$")
    }

    private func typeName(_ v: JSONDoc) -> [String] {
        switch v {
        case .null: return ["null"]
        case .bool: return ["boolean"]
        case .integer: return ["integer", "number"]
        case .number: return ["number"]
        case .string: return ["string"]
        case .array: return ["array"]
        case .object: return ["object"]
        }
    }

    private func check(_ v: JSONDoc, _ s: JSONDoc, at path: String) throws -> [String] {
        var errors: [String] = []
        if case .string(let ref)? = s["$ref"] { return try check(v, try load(ref), at: path) }
        if let t = s["type"] {
            var allowed: [String] = []
            if case .string(let one) = t { allowed = [one] }
            if case .array(let many) = t { allowed = many.compactMap { if case .string(let x) = $0 { return x }; return nil } }
            if !typeName(v).contains(where: allowed.contains) { return ["\(path): expected \(allowed), got \(typeName(v)[0])"] }
        }
        if case .array(let options)? = s["oneOf"] {
            let matching = try options.filter { try check(v, $0, at: path).isEmpty }.count
            if matching != 1 { errors.append("\(path): matches \(matching) of oneOf, expected exactly 1") }
        }
        if case .object(let kv) = v {
            if case .array(let req)? = s["required"] {
                for case .string(let k) in req where v[k] == nil { errors.append("\(path): missing required \(k)") }
            }
            let props = s["properties"]
            for (k, child) in kv {
                if let ps = props?[k] { errors += try check(child, ps, at: "\(path).\(k)") }
                else if let ap = s["additionalProperties"] {
                    if ap == .bool(false) { errors.append("\(path): unexpected property \(k)") }
                    else if case .object = ap { errors += try check(child, ap, at: "\(path).\(k)") }
                }
            }
        }
        if case .array(let items) = v {
            if let itemSchema = s["items"] { for (i, item) in items.enumerated() { errors += try check(item, itemSchema, at: "\(path)[\(i)]") } }
            if case .integer(let n)? = s["minItems"], items.count < n { errors.append("\(path): fewer than \(n) items") }
        }
        if case .integer(let minimum)? = s["minimum"] {
            if case .integer(let x) = v, x < minimum { errors.append("\(path): \(x) < \(minimum)") }
            if case .number(let x) = v, x < Double(minimum) { errors.append("\(path): \(x) < \(minimum)") }
        }
        if case .string(let str) = v {
            if case .integer(let n)? = s["minLength"], str.count < n { errors.append("\(path): shorter than \(n)") }
            if case .string(let pattern)? = s["pattern"] {
                let re = try NSRegularExpression(pattern: pattern)
                if re.firstMatch(in: str, range: NSRange(str.startIndex..., in: str)) == nil {
                    errors.append("\(path): '\(str.prefix(80))' does not match \(pattern)")
                }
            }
        }
        return errors
    }
}
