import LetheText
/// Renders a `QueryResult` as an aligned table, JSON or CSV.
public enum QueryOutput {
    /// An aligned text table: a header, a rule, then one line per row; numbers right-aligned,
    /// NULL shown as `NULL`, blobs as hex. Ends with `(N rows)`.
    public static func table(_ r: QueryResult) -> String {
        let cells = r.rows.map { row in row.map(cell) }
        var widths = r.columns.map { $0.count }
        for row in cells { for (i, c) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func pad(_ s: String, _ w: Int, right: Bool) -> String {
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return right ? fill + s : s + fill
        }
        var out = ""
        out += zip(r.columns, widths).map { pad($0, $1, right: false) }.joined(separator: "  ").trimmingTrailingSpaces() + "\n"
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for (row, values) in zip(cells, r.rows) {
            var parts: [String] = []
            for (i, c) in row.enumerated() {
                let numeric: Bool
                switch values[i] { case .integer, .real: numeric = true; default: numeric = false }
                parts.append(pad(c, widths[i], right: numeric))
            }
            out += parts.joined(separator: "  ").trimmingTrailingSpaces() + "\n"
        }
        out += "(\(r.rows.count) row\(r.rows.count == 1 ? "" : "s"))\n"
        return out
    }

    private static func cell(_ v: SQLValue) -> String {
        switch v {
        case .null: return "NULL"
        default: return v.description.replacingOccurrences(of: "\n", with: "\\n")
        }
    }

    /// A JSON array with one object per row, keys in column order; INTEGER and finite REAL as
    /// JSON numbers, TEXT as strings, BLOB as lowercase hex strings, NULL (and NaN/∞) as null.
    public static func json(_ r: QueryResult) -> String {
        if r.rows.isEmpty { return "[]\n" }
        var out = "[\n"
        for (n, row) in r.rows.enumerated() {
            out += "  {"
            for (i, v) in row.enumerated() {
                if i > 0 { out += ", " }
                JSONString.escape(r.columns[i], into: &out)
                out += ": "
                out += jsonValue(v)
            }
            out += n + 1 < r.rows.count ? "},\n" : "}\n"
        }
        return out + "]\n"
    }

    /// One value as JSON text.
    public static func jsonValue(_ v: SQLValue) -> String {
        switch v {
        case .null: return "null"
        case .integer(let i): return String(i)
        case .real(let d):
            guard d.isFinite else { return "null" }
            if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) + ".0" }
            return "\(d)"
        case .text(let s): var o = ""; JSONString.escape(s, into: &o); return o
        case .blob: var o = ""; JSONString.escape(v.description, into: &o); return o
        }
    }

    /// RFC 4180 CSV: a header record, CRLF line breaks, fields quoted when they contain a comma,
    /// a double quote, CR or LF (quotes doubled); NULL is an empty field.
    public static func csv(_ r: QueryResult) -> String {
        var out = r.columns.map(csvField).joined(separator: ",") + "\r\n"
        for row in r.rows {
            out += row.map { v -> String in
                if case .null = v { return "" }
                return csvField(v.description)
            }.joined(separator: ",") + "\r\n"
        }
        return out
    }

    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
