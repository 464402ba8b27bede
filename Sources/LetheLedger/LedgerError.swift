/// Errors of the ledger, carrying the SQLite code or PostgreSQL SQLSTATE, message and SQL where relevant.
public enum LedgerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A failed SQLite call.
    case sqlite(code: Int32, message: String, sql: String)
    /// A failed PostgreSQL call: the SQLSTATE (class 08 for connection problems), the server's
    /// primary message and the SQL.
    case postgres(sqlstate: String, message: String, sql: String)
    /// The database was written by a newer schema than this binary knows.
    case schemaTooNew(found: Int, known: Int)
    /// The log or a checkpoint does not verify.
    case tampered(String)
    /// The caller passed a value the ledger cannot record (empty id, bad JSON, unknown request...).
    case invalid(String)
    /// A record that was asked for does not exist.
    case notFound(String)
    /// A signing-key or signature operation failed (libcrypto), or no key is available.
    case crypto(String)
    /// A file could not be read or written.
    case io(path: String, message: String)
    /// `lethe query` refused a statement (a write, ATTACH, a state-changing PRAGMA...).
    case queryDenied(String)
    /// A query ran longer than its time limit.
    case queryTimeout(seconds: Double, sql: String)

    /// One line naming the problem, for the CLI's `Error:` line.
    public var description: String {
        switch self {
        case .sqlite(let code, let message, let sql): return "SQLite error \(code): \(message) (SQL: \(sql))"
        case .postgres(let state, let message, let sql):
            return "PostgreSQL error SQLSTATE \(state): \(message) (SQL: \(sql.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")))"
        case .schemaTooNew(let found, let known): return "ledger schema version \(found) is newer than this binary supports (\(known))"
        case .tampered(let m): return "ledger verification failed: \(m)"
        case .invalid(let m): return "invalid ledger record: \(m)"
        case .notFound(let m): return "not found: \(m)"
        case .crypto(let m): return "signing: \(m)"
        case .io(let path, let m): return "\(path): \(m)"
        case .queryDenied(let m): return "query refused: \(m)"
        case .queryTimeout(let s, let sql): return "query interrupted after its time limit of \(s) s (SQL: \(sql))"
        }
    }
}
