import CPostgres
import Foundation
import LetheCrypto

/// One libpq connection (`PGconn*`) to a PostgreSQL server, closed in `deinit` (`PQfinish`).
///
/// The ledger's statements are prepared once per session (`PQprepare`) and run with
/// `PQexecPrepared`; user queries go through `PQexecParams`. Parameters are typed: text,
/// integers and doubles in text format, BLOBs as binary `bytea` (so any byte sequence
/// round-trips); results come back
/// in text format and are converted by column type (`PQftype`) to the same `SQLValue` storage
/// classes SQLite gives. SQLite-style `?N` placeholders are rewritten to `$N`.
///
/// Writers serialise on a transaction-level advisory lock (`pg_advisory_xact_lock`) taken first
/// in every write transaction, so appends from any number of processes and hosts form one
/// unforked log. Serialization failures, deadlocks and lost connections re-run the transaction
/// with exponential backoff (the connection is re-established with `PQreset`).
///
/// Not thread-safe: `Ledger` serializes access with a lock.
final class PostgresConnection {
    /// The raw handle.
    private let conn: OpaquePointer
    /// The connection URL with any password replaced by `***`, for messages.
    let redactedURL: String
    private var placeholderCache: [String: String] = [:]
    /// Named prepared statements of this session (`PQprepare`), by SQL; emptied on reconnect.
    private var prepared: [String: String] = [:]
    private var cursorCounter = 0
    /// True while a transaction body runs: a lost connection then fails the transaction (which
    /// `transaction` re-runs on a new session) instead of reconnecting under it, where the rest of
    /// the body would run outside any transaction.
    private var inTransactionBody = false

    /// The advisory-lock key every ledger writer takes (`pg_advisory_xact_lock`): "LETHE" in ASCII.
    static let writerLockKey: Int64 = 0x4C_45_54_48_45

    /// Connects (`PQconnectdb`) to a `postgresql://` or `postgres://` URL (any libpq connection
    /// string works; `connect_timeout=10` is added when the URL names none). Notices are not
    /// printed (`PQsetNoticeProcessor`).
    init(url: String) throws(LedgerError) {
        redactedURL = PostgresConnection.redact(url)
        var conninfo = url
        if !url.contains("connect_timeout") {
            if url.hasPrefix("postgresql://") || url.hasPrefix("postgres://") {
                conninfo += url.contains("?") ? "&connect_timeout=10" : "?connect_timeout=10"
            } else {
                conninfo += " connect_timeout=10"
            }
        }
        guard let c = PQconnectdb(conninfo) else {
            throw .postgres(sqlstate: "08001", message: "cannot allocate a libpq connection", sql: "PQconnectdb")
        }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = PostgresConnection.oneLine(String(cString: PQerrorMessage(c)))
            PQfinish(c)
            throw .postgres(sqlstate: "08001", message: "cannot connect to \(PostgresConnection.redact(url)): \(message)", sql: "PQconnectdb")
        }
        conn = c
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        try execute(PostgresConnection.sessionSettings)
    }

    deinit { PQfinish(conn) }

    /// The session settings every statement relies on.
    private static let sessionSettings = "SET client_encoding = 'UTF8'; SET extra_float_digits = 3; SET bytea_output = 'hex'"

    /// Re-establishes a lost connection (`PQreset`): prepared statements are gone with the old
    /// session and the session settings are applied again. A failure leaves it lost; the next
    /// statement reports it (class 08).
    private func reconnectIfLost() {
        guard PQstatus(conn) != CONNECTION_OK, !inTransactionBody else { return }
        PQreset(conn)
        prepared.removeAll()
        if PQstatus(conn) == CONNECTION_OK {
            let res = PQexec(conn, PostgresConnection.sessionSettings)
            PQclear(res)
        }
    }

    /// `postgresql://user:secret@host/db` → `postgresql://user:***@host/db`; a `password=`
    /// key/value is masked too.
    static func redact(_ url: String) -> String {
        var s = url
        if let scheme = s.range(of: "://"), let at = s[scheme.upperBound...].firstIndex(of: "@") {
            let userinfo = s[scheme.upperBound..<at]
            if let colon = userinfo.firstIndex(of: ":") { s.replaceSubrange(s.index(after: colon)..<at, with: "***") }
        }
        if let r = s.range(of: "password=") {
            let end = s[r.upperBound...].firstIndex(where: { $0 == "&" || $0 == " " }) ?? s.endIndex
            s.replaceSubrange(r.upperBound..<end, with: "***")
        }
        return s
    }

    static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: "; ")
    }

    // MARK: - Executing

    /// Rewrites `?N` placeholders to `$N`, leaving quoted strings, quoted identifiers and
    /// comments alone.
    static func rewritePlaceholders(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.utf8.count)
        let chars = Array(sql.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "'" || c == "\"" {
                let q = c
                out.unicodeScalars.append(c); i += 1
                while i < chars.count { out.unicodeScalars.append(chars[i]); i += 1; if chars[i - 1] == q { break } }
            } else if c == "-", i + 1 < chars.count, chars[i + 1] == "-" {
                while i < chars.count, chars[i] != "\n" { out.unicodeScalars.append(chars[i]); i += 1 }
            } else if c == "?", i + 1 < chars.count, ("0"..."9").contains(chars[i + 1]) {
                out.unicodeScalars.append("$"); i += 1
            } else {
                out.unicodeScalars.append(c); i += 1
            }
        }
        return out
    }

    /// The SQLSTATE of a failed result (`PQresultErrorField(PG_DIAG_SQLSTATE)`), with its primary
    /// message; a lost connection reports class 08.
    private func failure(_ res: OpaquePointer?, sql: String) -> LedgerError {
        if PQstatus(conn) != CONNECTION_OK {
            return .postgres(sqlstate: "08006", message: "connection lost: " + PostgresConnection.oneLine(String(cString: PQerrorMessage(conn))), sql: sql)
        }
        guard let res else {
            return .postgres(sqlstate: "58000", message: PostgresConnection.oneLine(String(cString: PQerrorMessage(conn))), sql: sql)
        }
        let state = PQresultErrorField(res, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "XX000"
        let message = PQresultErrorField(res, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
            ?? PostgresConnection.oneLine(String(cString: PQresultErrorMessage(res)))
        return .postgres(sqlstate: state, message: message, sql: sql)
    }

    /// Runs `sql` with `params` (`PQexecParams`) and hands the successful result to `body`.
    /// With `inferTypes` every parameter is sent as untyped text and the server infers its type
    /// from the statement (for user queries); otherwise they are typed (int8, float8, text, bytea).
    func withResult<T>(_ sql: String, _ params: [SQLValue], inferTypes: Bool = false,
                       _ body: (OpaquePointer) throws(LedgerError) -> T) throws(LedgerError) -> T {
        reconnectIfLost()
        let text: String
        if let cached = placeholderCache[sql] { text = cached } else {
            text = PostgresConnection.rewritePlaceholders(sql)
            placeholderCache[sql] = text
        }
        var types: [Oid] = [], formats: [Int32] = [], lengths: [Int32] = []
        var buffers: [UnsafeMutablePointer<CChar>?] = []
        defer { for b in buffers { b?.deallocate() } }
        func textParam(_ s: String, _ oid: Oid) {
            let u = Array(s.utf8)
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: u.count + 1)
            u.withUnsafeBufferPointer { src in
                for (k, b) in src.enumerated() { p[k] = CChar(bitPattern: b) }
            }
            p[u.count] = 0
            buffers.append(p); types.append(inferTypes ? 0 : oid); formats.append(0); lengths.append(Int32(u.count))
        }
        for v in params {
            switch v {
            case .null: buffers.append(nil); types.append(0); formats.append(0); lengths.append(0)
            case .integer(let i): textParam(String(i), 20)
            case .real(let d):
                // SQLite stores NaN as NULL; do the same so both engines encode the row alike.
                if d.isNaN { buffers.append(nil); types.append(0); formats.append(0); lengths.append(0) } else {
                    textParam(d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : "\(d)", 701)
                }
            case .text(let s): textParam(s, 25)
            case .blob(let b):
                let p = UnsafeMutablePointer<CChar>.allocate(capacity: max(b.count, 1))
                for (k, x) in b.enumerated() { p[k] = CChar(bitPattern: x) }
                buffers.append(p); types.append(17); formats.append(1); lengths.append(Int32(b.count))
            }
        }
        // The ledger's own statements are prepared once per session (`PQprepare`) and then only
        // executed (`PQexecPrepared`): parse and plan once. User queries are executed unprepared.
        var statement: String?
        if !inferTypes {
            if let name = prepared[sql] { statement = name } else {
                let name = "lethe_s\(prepared.count + 1)"
                let res = PQprepare(conn, name, text, Int32(params.count), types)
                defer { PQclear(res) }
                guard let res, PQresultStatus(res) == PGRES_COMMAND_OK else { throw failure(res, sql: sql) }
                prepared[sql] = name
                statement = name
            }
        }
        let res: OpaquePointer? = buffers.withUnsafeBufferPointer { bufs in
            bufs.withMemoryRebound(to: UnsafePointer<CChar>?.self) { values in
                if let statement {
                    return PQexecPrepared(conn, statement, Int32(params.count), values.baseAddress, lengths, formats, 0)
                }
                return PQexecParams(conn, text, Int32(params.count), types, values.baseAddress, lengths, formats, 0)
            }
        }
        defer { PQclear(res) }
        guard let res else { throw failure(nil, sql: sql) }
        let status = PQresultStatus(res)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { throw failure(res, sql: sql) }
        return try body(res)
    }

    /// Column `j` of row `i` of a text-format result, by the column's type.
    static func value(_ res: OpaquePointer, _ i: Int32, _ j: Int32) -> SQLValue {
        if PQgetisnull(res, i, j) != 0 { return .null }
        guard let p = PQgetvalue(res, i, j) else { return .null }
        let n = Int(PQgetlength(res, i, j))
        let s = String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
        switch PQftype(res, j) {
        case 20, 21, 23, 26: return Int64(s).map { .integer($0) } ?? .text(s)   // int8, int2, int4, oid
        case 700, 701: return Double(s).map { .real($0) } ?? .text(s)          // float4, float8
        case 1700:                                                             // numeric (sum, avg)
            if let i = Int64(s) { return .integer(i) }
            return Double(s).map { .real($0) } ?? .text(s)
        case 16: return .integer(s == "t" ? 1 : 0)                              // bool, as SQLite's 1/0
        case 17:                                                               // bytea, hex output
            guard s.hasPrefix("\\x"), let b = Hex.decode(String(s.dropFirst(2))) else { return .text(s) }
            return .blob(b)
        default: return .text(s)
        }
    }

    static func rows(_ res: OpaquePointer) -> [[SQLValue]] {
        let n = PQntuples(res), m = PQnfields(res)
        var out: [[SQLValue]] = []
        out.reserveCapacity(Int(n))
        for i in 0..<n { out.append((0..<m).map { value(res, i, $0) }) }
        return out
    }

    static func columns(_ res: OpaquePointer) -> [String] {
        (0..<PQnfields(res)).map { PQfname(res, $0).map { String(cString: $0) } ?? "column\($0 + 1)" }
    }

    /// Whether retrying the transaction can succeed: serialization failure (40001), deadlock
    /// (40P01), lock not available (55P03), a lost or refused connection (class 08) or a server
    /// shutting down (57P01-57P03).
    static func isTransient(_ e: LedgerError) -> Bool {
        guard case .postgres(let state, _, _) = e else { return false }
        return ["40001", "40P01", "55P03", "57P01", "57P02", "57P03"].contains(state) || state.hasPrefix("08")
    }

    /// Runs `body` in a transaction opened with `begin`; on a transient error (see
    /// `isTransient`) rolls back, re-establishes a lost connection (`PQreset`) and re-runs it
    /// with exponential backoff for up to `patience` seconds.
    private func transaction(begin: String, lock: Bool, patience: Double,
                             _ body: () throws(LedgerError) -> TransactionCompletion) throws(LedgerError) {
        let start = Date()
        var delay = 0.005
        while true {
            do throws(LedgerError) {
                try execute(begin)
                inTransactionBody = true
                defer { inTransactionBody = false }
                let completion: TransactionCompletion
                do throws(LedgerError) {
                    if lock { try run("SELECT pg_advisory_xact_lock(?1)", [.integer(PostgresConnection.writerLockKey)]) }
                    completion = try body()
                } catch {
                    if PQstatus(conn) == CONNECTION_OK { try? execute("ROLLBACK") }
                    throw error
                }
                switch completion {
                case .commit:
                    do throws(LedgerError) {
                        // COMMIT of an aborted transaction "succeeds" as a ROLLBACK: refuse it.
                        if PQtransactionStatus(conn) == PQTRANS_INERROR {
                            throw .postgres(sqlstate: "25P02", message: "the transaction was aborted by an earlier error; nothing was committed", sql: "COMMIT")
                        }
                        try execute("COMMIT")
                    } catch {
                        if PQstatus(conn) == CONNECTION_OK { try? execute("ROLLBACK") }
                        throw error
                    }
                case .rollback: try execute("ROLLBACK")
                }
                return
            } catch {
                guard PostgresConnection.isTransient(error), Date().timeIntervalSince(start) < patience else { throw error }
                Thread.sleep(forTimeInterval: delay * Double.random(in: 0.5...1.5))
                delay = min(delay * 2, 0.5)
                reconnectIfLost()
            }
        }
    }
}

extension PostgresConnection: SQLConnection {
    var dialect: SQLDialect { .postgres }

    /// Runs statements without parameters (`PQexec`; several separated by `;` are allowed).
    func execute(_ sql: String) throws(LedgerError) {
        reconnectIfLost()
        let res = PQexec(conn, sql)
        defer { PQclear(res) }
        guard let res else { throw failure(nil, sql: sql) }
        let status = PQresultStatus(res)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY else { throw failure(res, sql: sql) }
    }

    func run(_ sql: String, _ params: [SQLValue]) throws(LedgerError) {
        try withResult(sql, params) { _ throws(LedgerError) in }
    }

    func rows(_ sql: String, _ params: [SQLValue]) throws(LedgerError) -> [[SQLValue]] {
        try withResult(sql, params) { res throws(LedgerError) in PostgresConnection.rows(res) }
    }

    func scalar(_ sql: String, _ params: [SQLValue]) throws(LedgerError) -> SQLValue? {
        try withResult(sql, params) { res throws(LedgerError) -> SQLValue? in
            PQntuples(res) > 0 && PQnfields(res) > 0 ? PostgresConnection.value(res, 0, 0) : nil
        }
    }

    /// The engine's own reads: only statements starting with SELECT or WITH are accepted, and
    /// outside a transaction they run in a READ ONLY one.
    func readOnlyQuery(_ sql: String, _ params: [SQLValue]) throws(LedgerError) -> (columns: [String], rows: [[SQLValue]]) {
        let head = sql.trimmingCharacters(in: .whitespacesAndNewlines).prefix(6).uppercased()
        guard head.hasPrefix("SELECT") || head.hasPrefix("WITH") else {
            throw .queryDenied("Ledger.select runs read-only statements only")
        }
        var out: (columns: [String], rows: [[SQLValue]]) = ([], [])
        let body = { () throws(LedgerError) -> TransactionCompletion in
            out = try self.withResult(sql, params) { res throws(LedgerError) in (PostgresConnection.columns(res), PostgresConnection.rows(res)) }
            return .commit
        }
        if isInTransaction { _ = try body() } else { try readTransaction(body) }
        return out
    }

    /// A server-side cursor (`DECLARE ... NO SCROLL CURSOR`) fetched 1000 rows at a time.
    func cursor(_ sql: String) throws(LedgerError) -> RowCursor {
        cursorCounter += 1
        let name = "lethe_cursor_\(cursorCounter)"
        try execute("DECLARE \(name) NO SCROLL CURSOR FOR \(sql)")
        return PostgresCursor(connection: self, name: name)
    }

    /// `PQtransactionStatus` is in a transaction block (a lost connection's UNKNOWN is not).
    var isInTransaction: Bool {
        let status = PQtransactionStatus(conn)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE
    }

    /// READ COMMITTED plus the writers' advisory lock, taken before the first read, so every
    /// statement of the transaction sees every earlier writer's commit and no other writer runs.
    func writeTransaction(_ body: () throws(LedgerError) -> TransactionCompletion) throws(LedgerError) {
        try transaction(begin: "BEGIN", lock: true, patience: 60, body)
    }

    /// REPEATABLE READ READ ONLY: one snapshot for the whole body (proofs, verify).
    func readTransaction(_ body: () throws(LedgerError) -> TransactionCompletion) throws(LedgerError) {
        try transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", lock: false, patience: 60, body)
    }
}

/// Batches of a PostgreSQL cursor (`FETCH 1000`).
final class PostgresCursor: RowCursor {
    private let connection: PostgresConnection
    private let name: String
    private var buffer: [[SQLValue]] = []
    private var index = 0
    private var exhausted = false

    init(connection: PostgresConnection, name: String) { self.connection = connection; self.name = name }

    func next() throws(LedgerError) -> [SQLValue]? {
        if index == buffer.count {
            if exhausted { return nil }
            // Not prepared: every cursor has its own name.
            buffer = try connection.withResult("FETCH 1000 FROM \(name)", [], inferTypes: true) { res throws(LedgerError) in
                PostgresConnection.rows(res)
            }
            index = 0
            if buffer.count < 1000 { exhausted = true }
            if buffer.isEmpty { return nil }
        }
        index += 1
        return buffer[index - 1]
    }
}
