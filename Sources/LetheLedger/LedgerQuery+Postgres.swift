import Foundation

extension LedgerQuery {
    /// Functions refused in PostgreSQL queries: they reach outside the ledger's rows (server
    /// files, other backends, locks, sequences, configuration) even in a read-only transaction.
    static let deniedPostgresFunctions: [String] = [
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import", "lo_export", "lo_get", "lo_put",
        "lo_create", "lo_unlink", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
        "set_config", "pg_advisory_lock", "pg_advisory_xact_lock", "pg_try_advisory_lock", "pg_try_advisory_xact_lock",
        "pg_advisory_lock_shared", "pg_advisory_xact_lock_shared", "pg_try_advisory_lock_shared", "dblink", "dblink_exec",
        "nextval", "setval", "txid_current", "pg_current_xact_id", "pg_switch_wal", "pg_create_restore_point",
        "pg_logical_emit_message", "pg_notify", "pg_sleep_until",
    ]

    /// The statement with comments blanked out and string literals and quoted identifiers
    /// replaced by spaces, for keyword and function-name checks (lowercased).
    static func skeleton(_ sql: String) -> String {
        var out = ""
        let c = Array(sql.unicodeScalars)
        var i = 0
        while i < c.count {
            if c[i] == "'" || c[i] == "\"" {
                let q = c[i]; i += 1
                while i < c.count, c[i] != q { i += 1 }
                i += 1; out += " "
            } else if c[i] == "-", i + 1 < c.count, c[i + 1] == "-" {
                while i < c.count, c[i] != "\n" { i += 1 }
                out += " "
            } else if c[i] == "/", i + 1 < c.count, c[i + 1] == "*" {
                i += 2
                while i + 1 < c.count, !(c[i] == "*" && c[i + 1] == "/") { i += 1 }
                i += 2; out += " "
            } else {
                out.unicodeScalars.append(c[i]); i += 1
            }
        }
        return out.lowercased()
    }

    /// Rewrites `:name` parameters (not `::type` casts, not inside literals or comments) to
    /// `$1, $2...`; returns the statement and the names in `$n` order.
    static func rewriteNamedParameters(_ sql: String) -> (sql: String, names: [String]) {
        var out = ""
        var names: [String] = []
        let c = Array(sql.unicodeScalars)
        func isIdent(_ u: Unicode.Scalar) -> Bool { u == "_" || CharacterSet.alphanumerics.contains(u) }
        var i = 0
        while i < c.count {
            if c[i] == "'" || c[i] == "\"" {
                let q = c[i]
                out.unicodeScalars.append(c[i]); i += 1
                while i < c.count { out.unicodeScalars.append(c[i]); i += 1; if c[i - 1] == q { break } }
            } else if c[i] == "-", i + 1 < c.count, c[i + 1] == "-" {
                while i < c.count, c[i] != "\n" { out.unicodeScalars.append(c[i]); i += 1 }
            } else if c[i] == ":", i + 1 < c.count, c[i + 1] == ":" {
                out += "::"; i += 2
            } else if c[i] == ":", i + 1 < c.count, isIdent(c[i + 1]), !("0"..."9").contains(c[i + 1]) {
                var j = i + 1
                var name = ""
                while j < c.count, isIdent(c[j]) { name.unicodeScalars.append(c[j]); j += 1 }
                if let k = names.firstIndex(of: name) { out += "$\(k + 1)" } else { names.append(name); out += "$\(names.count)" }
                i = j
            } else {
                out.unicodeScalars.append(c[i]); i += 1
            }
        }
        return (out, names)
    }

    func runPostgres(_ pg: PostgresConnection, _ sql: String, parameters: [String: String], limit: Int?,
                     timeLimit: Double) throws(LedgerError) -> QueryResult {
        var text = sql.trimmingCharacters(in: .whitespacesAndNewlines)
        while text.hasSuffix(";") { text = String(text.dropLast()).trimmingCharacters(in: .whitespacesAndNewlines) }
        let skeleton = Self.skeleton(text)
        let words = skeleton.split(whereSeparator: { !$0.isLetter && $0 != "_" })
        guard let first = words.first else { throw .invalid("the query is empty") }
        if skeleton.contains(";") { throw .queryDenied("one statement at a time: remove everything after the first ';'") }
        guard ["select", "with", "values", "table"].contains(String(first)) else {
            throw .queryDenied("only SELECT, WITH, VALUES or TABLE statements are allowed (not \(first.uppercased()))")
        }
        for f in Self.deniedPostgresFunctions where skeleton.range(of: "\\b\(f)\\s*\\(", options: .regularExpression) != nil {
            throw .queryDenied("the function \(f)() is not allowed")
        }
        let (rewritten, names) = Self.rewriteNamedParameters(text)
        var values: [SQLValue] = []
        for n in names {
            guard let raw = parameters[n] else { throw .invalid("the query uses :\(n) but no --param \(n)=... was given") }
            values.append(.text(raw))
        }
        if let unused = parameters.keys.sorted().first(where: { !names.contains($0) }) {
            throw .invalid("--param \(unused) is not used by the query")
        }
        var result = QueryResult(columns: [], rows: [], truncated: false)
        do {
            try pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            defer { try? pg.execute("ROLLBACK") }
            try pg.execute("SET LOCAL statement_timeout = \(max(1, Int((timeLimit * 1000).rounded())))")
            try pg.withResult("DECLARE lethe_query NO SCROLL CURSOR FOR \(rewritten)", values, inferTypes: true) { _ throws(LedgerError) in }
            let fetch = limit.map { "FETCH \($0 + 1) FROM lethe_query" } ?? "FETCH ALL FROM lethe_query"
            result = try pg.withResult(fetch, [], inferTypes: true) { res throws(LedgerError) -> QueryResult in
                var rows = PostgresConnection.rows(res)
                var truncated = false
                if let limit, rows.count > limit { rows.removeLast(rows.count - limit); truncated = true }
                return QueryResult(columns: Self.uniqueNames(PostgresConnection.columns(res)), rows: rows, truncated: truncated)
            }
        } catch {
            if case .postgres(let state, let message, _) = error {
                if state == "57014" { throw .queryTimeout(seconds: timeLimit, sql: sql) }
                if state == "25006" { throw .queryDenied("writes are not allowed (\(message))") }
                if state == "42501" { throw .queryDenied(message) }
            }
            throw error
        }
        return result
    }
}
