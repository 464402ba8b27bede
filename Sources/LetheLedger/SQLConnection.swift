import CSQLite
import Foundation

/// Which SQL engine a connection talks to, where the ledger's statements must differ.
enum SQLDialect: Sendable { case sqlite, postgres }

/// A forward-only stream of result rows (an SQLite statement being stepped, or a PostgreSQL
/// cursor fetched in batches), for reads too large to hold at once (`verify`).
protocol RowCursor: AnyObject {
    /// The next row, or nil after the last one.
    func next() throws(LedgerError) -> [SQLValue]?
}

/// The SQL connection the ledger runs on: the embedded SQLite `Database` or a PostgreSQL
/// `PostgresConnection`. The Merkle log, checkpoints, proofs and `verify` are written once
/// against this protocol.
///
/// Statements use SQLite's numbered parameters `?1, ?2...`; the PostgreSQL connection rewrites
/// them to `$1, $2...`. Values are `SQLValue`s both ways, with the same storage classes on both
/// engines (INTEGER ↔ BIGINT, REAL ↔ DOUBLE PRECISION, TEXT ↔ TEXT, BLOB ↔ BYTEA), so the
/// canonical entry encoding of a row is the same whichever engine holds it.
protocol SQLConnection: AnyObject {
    /// The engine.
    var dialect: SQLDialect { get }
    /// Runs one or more statements without parameters.
    func execute(_ sql: String) throws(LedgerError)
    /// Runs a statement to completion with positional parameters.
    func run(_ sql: String, _ params: [SQLValue]) throws(LedgerError)
    /// All rows of a query with positional parameters.
    func rows(_ sql: String, _ params: [SQLValue]) throws(LedgerError) -> [[SQLValue]]
    /// The first column of the first row, or nil when there is no row.
    func scalar(_ sql: String, _ params: [SQLValue]) throws(LedgerError) -> SQLValue?
    /// Column names and rows of a statement that must only read (refused otherwise).
    func readOnlyQuery(_ sql: String, _ params: [SQLValue]) throws(LedgerError) -> (columns: [String], rows: [[SQLValue]])
    /// Streams the rows of a query; only valid inside `readTransaction` or `writeTransaction`.
    func cursor(_ sql: String) throws(LedgerError) -> RowCursor
    /// Whether a transaction is open on this connection.
    var isInTransaction: Bool { get }
    /// Runs `body` in a writing transaction that excludes every other writer of the ledger
    /// (from any process or host), committing when it returns `.commit`; transient conflicts
    /// re-run `body` after a backoff.
    func writeTransaction(_ body: () throws(LedgerError) -> TransactionCompletion) throws(LedgerError)
    /// Runs `body` in a read-only transaction over one snapshot.
    func readTransaction(_ body: () throws(LedgerError) -> TransactionCompletion) throws(LedgerError)
}

extension SQLConnection {
    /// `run` without parameters.
    func run(_ sql: String) throws(LedgerError) { try run(sql, []) }
    /// `rows` without parameters.
    func rows(_ sql: String) throws(LedgerError) -> [[SQLValue]] { try rows(sql, []) }
    /// `scalar` without parameters.
    func scalar(_ sql: String) throws(LedgerError) -> SQLValue? { try scalar(sql, []) }
}

extension Database: SQLConnection {
    var dialect: SQLDialect { .sqlite }

    func readOnlyQuery(_ sql: String, _ params: [SQLValue]) throws(LedgerError) -> (columns: [String], rows: [[SQLValue]]) {
        let s = try prepare(sql)
        guard sqlite3_stmt_readonly(s.handle) != 0 else { throw .queryDenied("Ledger.select runs read-only statements only") }
        try s.bind(params)
        let names = (0..<s.columnCount).map { s.columnName($0) }
        var out: [[SQLValue]] = []
        while try s.step() { out.append(s.row()) }
        return (names, out)
    }

    func cursor(_ sql: String) throws(LedgerError) -> RowCursor { SQLiteCursor(try prepare(sql)) }

    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    func writeTransaction(_ body: () throws(LedgerError) -> TransactionCompletion) throws(LedgerError) {
        try inTransaction(.immediate, body)
    }

    func readTransaction(_ body: () throws(LedgerError) -> TransactionCompletion) throws(LedgerError) {
        try inTransaction(.deferred, body)
    }
}

/// An SQLite statement stepped row by row (`sqlite3_step`).
final class SQLiteCursor: RowCursor {
    private let stmt: Statement
    init(_ stmt: Statement) { self.stmt = stmt }
    func next() throws(LedgerError) -> [SQLValue]? { try stmt.step() ? stmt.row() : nil }
}
