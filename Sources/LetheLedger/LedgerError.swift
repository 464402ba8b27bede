/// Errors of the ledger, carrying the SQLite code, message and SQL where relevant.
public enum LedgerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A failed SQLite call.
    case sqlite(code: Int32, message: String, sql: String)
    /// The database was written by a newer schema than this binary knows.
    case schemaTooNew(found: Int, known: Int)
    /// The log or a checkpoint does not verify.
    case tampered(String)

    public var description: String {
        switch self {
        case .sqlite(let code, let message, let sql): return "SQLite error \(code): \(message) (SQL: \(sql))"
        case .schemaTooNew(let found, let known): return "ledger schema version \(found) is newer than this binary supports (\(known))"
        case .tampered(let m): return "ledger verification failed: \(m)"
        }
    }
}
