import CSQLite
import Foundation

/// The rows a query returned.
public struct QueryResult: Sendable, Equatable {
    /// Column names, in order.
    public let columns: [String]
    /// Rows, each with one value per column.
    public let rows: [[SQLValue]]
    /// True when the row limit stopped the query before its last row.
    public let truncated: Bool
}

/// Read-only SQL over the ledger for auditors and scripts (`lethe query`).
///
/// Four layers keep it read-only: the connection is opened with `SQLITE_OPEN_READONLY`;
/// an authorizer (`sqlite3_set_authorizer`) allows only SELECT, reads, recursive CTEs, plain
/// functions and an allow-list of introspection PRAGMAs, denying every write, DDL, ATTACH,
/// DETACH, transaction control, state-changing PRAGMA and `load_extension`; the connection is
/// put in defensive mode (`SQLITE_DBCONFIG_DEFENSIVE`) with extension loading off and
/// `SQLITE_LIMIT_ATTACHED` 0; and each statement has a wall-time limit (progress handler) and a
/// row limit.
///
/// On PostgreSQL (`init(postgres:)`) the statement runs in a `READ ONLY` transaction with
/// `statement_timeout`, through a cursor that fetches at most `limit` + 1 rows; only one
/// statement starting with SELECT, WITH, VALUES or TABLE is accepted, functions with side
/// effects outside the database (file access, locks, backend signals, sequences) are refused
/// by name, and writes fail in the server (SQLSTATE 25006). For auditors, put a role with
/// SELECT-only grants in the URL as well.
public final class LedgerQuery {
    private let db: Database?
    private let sentry: QuerySentry
    private let pg: PostgresConnection?

    /// PRAGMAs a query may use (introspection only); those marked `true` may take an argument
    /// (a table or index name).
    static let allowedPragmas: [String: Bool] = [
        "table_info": true, "table_xinfo": true, "index_list": true, "index_info": true, "index_xinfo": true,
        "foreign_key_list": true, "table_list": false, "function_list": false, "pragma_list": false,
        "collation_list": false, "compile_options": false, "data_version": false, "user_version": false,
        "schema_version": false, "page_count": false, "page_size": false, "freelist_count": false, "encoding": false,
        "quick_check": false, "integrity_check": false, "foreign_key_check": false,
    ]

    /// Functions denied even though they are only functions.
    static let deniedFunctions: Set<String> = ["load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"]

    /// Opens the ledger at `path` read-only (`sqlite3_open_v2` with `SQLITE_OPEN_READONLY`).
    public init(path: String) throws(LedgerError) {
        guard FileManager.default.fileExists(atPath: path) else { throw .notFound("no ledger at \(path) (run 'lethe init' first)") }
        pg = nil
        let db = try Database(path: path, flags: SQLITE_OPEN_READONLY)
        self.db = db
        sqlite3_busy_timeout(db.handle, 5000)
        _ = lethe_sqlite3_db_config_int(db.handle, SQLITE_DBCONFIG_DEFENSIVE, 1)
        _ = lethe_sqlite3_db_config_int(db.handle, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0)
        sqlite3_limit(db.handle, SQLITE_LIMIT_ATTACHED, 0)
        try db.execute("PRAGMA query_only = 1")
        sentry = QuerySentry()
        let context = Unmanaged.passUnretained(sentry).toOpaque()
        sqlite3_set_authorizer(db.handle, { ctx, action, a1, a2, _, _ in
            guard let ctx else { return SQLITE_DENY }
            let sentry = Unmanaged<QuerySentry>.fromOpaque(ctx).takeUnretainedValue()
            return sentry.authorize(action: action, a1.map { String(cString: $0) }, a2.map { String(cString: $0) })
        }, context)
        sqlite3_progress_handler(db.handle, 1000, { ctx in
            guard let ctx else { return 1 }
            return Unmanaged<QuerySentry>.fromOpaque(ctx).takeUnretainedValue().expired() ? 1 : 0
        }, context)
    }

    /// Connects (`PQconnectdb`) to the PostgreSQL ledger at `url` for read-only queries.
    public init(postgres url: String) throws(LedgerError) {
        db = nil
        sentry = QuerySentry()
        let conn = try PostgresConnection(url: url)
        if try conn.scalar("SELECT to_regclass('ledger_meta') IS NOT NULL")?.int != 1 {
            throw .notFound("no ledger in \(conn.redactedURL) (run 'lethe init --ledger URL' first)")
        }
        pg = conn
    }

    deinit {
        guard let db else { return }
        sqlite3_set_authorizer(db.handle, nil, nil)
        sqlite3_progress_handler(db.handle, 0, nil, nil)
    }

    /// Runs one read-only statement.
    ///
    /// - Parameters:
    ///   - sql: exactly one SQL statement (comments and a trailing `;` are fine).
    ///   - parameters: values for the statement's named parameters (`:name`, `@name`, `$name`),
    ///     bound with `sqlite3_bind_*`, never spliced: canonical integers bind as INTEGER, other
    ///     finite numbers as REAL, anything else as TEXT. Every parameter must be given and
    ///     every given value used.
    ///   - limit: maximum rows returned (nil: no limit).
    ///   - timeLimit: seconds before the statement is interrupted.
    public func run(_ sql: String, parameters: [String: String] = [:], limit: Int? = 10_000,
                    timeLimit: Double = 10) throws(LedgerError) -> QueryResult {
        if let pg { return try runPostgres(pg, sql, parameters: parameters, limit: limit, timeLimit: timeLimit) }
        sentry.reset(deadline: Date().addingTimeInterval(timeLimit))
        let stmt = try prepareSingle(sql)
        try bind(stmt, parameters, sql: sql)
        let columns = Self.uniqueNames((0..<stmt.columnCount).map { stmt.columnName($0) })
        var rows: [[SQLValue]] = []
        var truncated = false
        do {
            while try stmt.step() {
                if let limit, rows.count >= limit { truncated = true; break }
                rows.append(stmt.row())
            }
        } catch {
            if case .sqlite(let code, _, _) = error, code & 0xff == SQLITE_INTERRUPT {
                throw .queryTimeout(seconds: timeLimit, sql: sql)
            }
            throw error
        }
        return QueryResult(columns: columns, rows: rows, truncated: truncated)
    }

    private func prepareSingle(_ sql: String) throws(LedgerError) -> Statement {
        guard let db else { throw .invalid("no SQLite connection") }
        var result: Result<Statement, LedgerError> = .failure(.invalid("empty query"))
        sql.withCString { base in
            var stmt: OpaquePointer?
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v2(db.handle, base, -1, &stmt, &tail)
            if rc != SQLITE_OK {
                sqlite3_finalize(stmt)
                if let denial = sentry.denial {
                    result = .failure(.queryDenied(denial))
                } else {
                    result = .failure(db.error(rc, sql: sql))
                }
                return
            }
            guard let stmt else { result = .failure(.invalid("the query is empty")); return }
            let owned = Statement(handle: stmt, db: db.handle, sql: sql)
            // Anything after the first statement must be whitespace or comments.
            if let tail, tail.pointee != 0 {
                var next: OpaquePointer?
                let rc2 = sqlite3_prepare_v2(db.handle, tail, -1, &next, nil)
                sqlite3_finalize(next)
                if rc2 != SQLITE_OK || next != nil {
                    result = .failure(.queryDenied("one statement at a time: remove everything after the first ';'"))
                    return
                }
            }
            guard sqlite3_stmt_readonly(stmt) != 0 else {
                result = .failure(.queryDenied("the statement would write to the database"))
                return
            }
            result = .success(owned)
        }
        return try result.get()
    }

    private func bind(_ stmt: Statement, _ parameters: [String: String], sql: String) throws(LedgerError) {
        let count = sqlite3_bind_parameter_count(stmt.handle)
        var used = Set<String>()
        if count > 0 {
            for i in 1...count {
                guard let cname = sqlite3_bind_parameter_name(stmt.handle, i) else {
                    throw .invalid("positional parameters ('?') are not supported; use named ones like :name with --param name=value")
                }
                let full = String(cString: cname)
                let name = String(full.dropFirst())
                guard let raw = parameters[name] else { throw .invalid("the query uses \(full) but no --param \(name)=... was given") }
                used.insert(name)
                try stmt.bind(Self.parameterValue(raw), at: i)
            }
        }
        if let unused = parameters.keys.sorted().first(where: { !used.contains($0) }) {
            throw .invalid("--param \(unused) is not used by the query")
        }
    }

    /// How a `--param` value binds: a canonical integer as INTEGER, another finite number as
    /// REAL, anything else as TEXT.
    public static func parameterValue(_ raw: String) -> SQLValue {
        if let i = Int64(raw), String(i) == raw { return .integer(i) }
        if raw.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), raw.first.map({ $0.isNumber || $0 == "-" || $0 == "." }) == true,
           let d = Double(raw), d.isFinite { return .real(d) }
        return .text(raw)
    }

    static func uniqueNames(_ names: [String]) -> [String] {
        var seen: [String: Int] = [:]
        return names.map { n in
            let k = (seen[n] ?? 0) + 1
            seen[n] = k
            return k == 1 ? n : "\(n)_\(k)"
        }
    }
}

/// Authorizer and progress-handler state of one query connection.
final class QuerySentry {
    /// Why the last statement was refused.
    private(set) var denial: String?
    private var deadline = Date.distantFuture

    func reset(deadline: Date) { denial = nil; self.deadline = deadline }
    func expired() -> Bool { Date() > deadline }

    private func deny(_ why: String) -> Int32 {
        if denial == nil { denial = why }
        return SQLITE_DENY
    }

    func authorize(action: Int32, _ a1: String?, _ a2: String?) -> Int32 {
        switch action {
        case SQLITE_SELECT, SQLITE_READ, SQLITE_RECURSIVE:
            return SQLITE_OK
        case SQLITE_FUNCTION:
            let name = (a2 ?? "").lowercased()
            return LedgerQuery.deniedFunctions.contains(name) ? deny("the function \(name)() is not allowed") : SQLITE_OK
        case SQLITE_PRAGMA:
            let name = (a1 ?? "").lowercased()
            guard let takesArgument = LedgerQuery.allowedPragmas[name] else {
                return deny("PRAGMA \(name) is not allowed (only introspection PRAGMAs are)")
            }
            if a2 != nil && !takesArgument { return deny("PRAGMA \(name) may not be set") }
            return SQLITE_OK
        case SQLITE_INSERT, SQLITE_UPDATE, SQLITE_DELETE:
            let table = a1 ?? "?"
            if table.hasPrefix("sqlite_") { return deny("schema changes are not allowed") }
            let verb = action == SQLITE_INSERT ? "INSERT into" : action == SQLITE_UPDATE ? "UPDATE of" : "DELETE from"
            return deny("writes are not allowed (\(verb) \(table))")
        case SQLITE_ATTACH: return deny("ATTACH is not allowed")
        case SQLITE_DETACH: return deny("DETACH is not allowed")
        case SQLITE_TRANSACTION, SQLITE_SAVEPOINT: return deny("transaction control is not allowed")
        case SQLITE_ALTER_TABLE, SQLITE_REINDEX, SQLITE_ANALYZE,
             SQLITE_CREATE_INDEX, SQLITE_CREATE_TABLE, SQLITE_CREATE_TEMP_INDEX, SQLITE_CREATE_TEMP_TABLE,
             SQLITE_CREATE_TEMP_TRIGGER, SQLITE_CREATE_TEMP_VIEW, SQLITE_CREATE_TRIGGER, SQLITE_CREATE_VIEW,
             SQLITE_CREATE_VTABLE, SQLITE_DROP_INDEX, SQLITE_DROP_TABLE, SQLITE_DROP_TEMP_INDEX, SQLITE_DROP_TEMP_TABLE,
             SQLITE_DROP_TEMP_TRIGGER, SQLITE_DROP_TEMP_VIEW, SQLITE_DROP_TRIGGER, SQLITE_DROP_VIEW, SQLITE_DROP_VTABLE:
            return deny("schema changes are not allowed")
        default:
            return deny("this kind of statement is not allowed (authorizer action \(action))")
        }
    }
}
