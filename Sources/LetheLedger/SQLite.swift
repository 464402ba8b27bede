import CSQLite
import Foundation
import LetheCrypto

/// A value stored in or read from SQLite (one of its five storage classes).
public enum SQLValue: Sendable, Hashable, CustomStringConvertible {
    /// SQL NULL.
    case null
    /// A 64-bit signed integer.
    case integer(Int64)
    /// An IEEE 754 double.
    case real(Double)
    /// UTF-8 text.
    case text(String)
    /// Raw bytes.
    case blob([UInt8])

    /// The integer value, or nil for any other storage class.
    public var int64: Int64? { if case .integer(let v) = self { return v }; return nil }
    /// The integer value as `Int`, or nil.
    public var int: Int? { int64.map { Int($0) } }
    /// The value as a double (integers converted), or nil.
    public var double: Double? {
        switch self {
        case .real(let d): return d
        case .integer(let i): return Double(i)
        default: return nil
        }
    }
    /// The text value, or nil for any other storage class.
    public var string: String? { if case .text(let s) = self { return s }; return nil }
    /// The blob value, or nil for any other storage class.
    public var bytes: [UInt8]? { if case .blob(let b) = self { return b }; return nil }
    /// Whether this is NULL.
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// Human-readable rendering (blobs as lowercase hex, NULL as empty).
    public var description: String {
        switch self {
        case .null: return ""
        case .integer(let i): return String(i)
        case .real(let d): return SQLValue.format(d)
        case .text(let s): return s
        case .blob(let b): return Hex.encode(b)
        }
    }

    /// Shortest round-tripping decimal rendering of a double (`1e-05`, `0.25`, `3`→`3.0`).
    static func format(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return "\(d)"
    }
}

/// How a transaction ends.
enum TransactionCompletion { case commit, rollback }

/// SQLite transaction kinds (`BEGIN DEFERRED|IMMEDIATE|EXCLUSIVE`).
enum TransactionKind: String { case deferred = "DEFERRED", immediate = "IMMEDIATE", exclusive = "EXCLUSIVE" }

/// One SQLite connection (`sqlite3*`), closed in `deinit` (`sqlite3_close_v2`).
///
/// Not thread-safe: a `Database` is used from one thread at a time (SQLite is opened
/// with `SQLITE_OPEN_NOMUTEX`); `Ledger` serializes access with a lock.
final class Database {
    /// The raw handle.
    let handle: OpaquePointer
    /// The file it was opened from.
    let path: String
    private var cache: [String: Statement] = [:]

    /// Opens (`sqlite3_open_v2`) `path` with `flags`.
    init(path: String, flags: Int32) throws(LedgerError) {
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            if let db { sqlite3_close_v2(db) }
            throw .sqlite(code: rc, message: "cannot open \(path): \(message)", sql: "sqlite3_open_v2")
        }
        handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    /// The error for result code `rc` from the statement `sql`, with SQLite's message.
    func error(_ rc: Int32, sql: String) -> LedgerError {
        .sqlite(code: rc, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more statements without parameters (`sqlite3_exec`).
    func execute(_ sql: String) throws(LedgerError) {
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let message = errmsg.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(errmsg)
            throw .sqlite(code: rc, message: message, sql: sql)
        }
    }

    /// Prepares one statement (`sqlite3_prepare_v2`); the caller owns it.
    func prepare(_ sql: String) throws(LedgerError) -> Statement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            if rc == SQLITE_OK { throw .sqlite(code: SQLITE_MISUSE, message: "empty statement", sql: sql) }
            throw error(rc, sql: sql)
        }
        return Statement(handle: stmt, db: handle, sql: sql)
    }

    /// A prepared statement kept for reuse (reset before it is handed out).
    func cached(_ sql: String) throws(LedgerError) -> Statement {
        if let s = cache[sql] { s.reset(); return s }
        let s = try prepare(sql)
        cache[sql] = s
        return s
    }

    /// Runs a statement to completion with positional parameters.
    func run(_ sql: String, _ params: [SQLValue] = []) throws(LedgerError) {
        let s = try cached(sql)
        defer { s.reset() }
        try s.bind(params)
        while try s.step() {}
    }

    /// All rows of a query with positional parameters.
    func rows(_ sql: String, _ params: [SQLValue] = []) throws(LedgerError) -> [[SQLValue]] {
        let s = try cached(sql)
        defer { s.reset() }
        try s.bind(params)
        var out: [[SQLValue]] = []
        while try s.step() { out.append(s.row()) }
        return out
    }

    /// The first column of the first row, or nil when there is no row.
    func scalar(_ sql: String, _ params: [SQLValue] = []) throws(LedgerError) -> SQLValue? {
        let s = try cached(sql)
        defer { s.reset() }
        try s.bind(params)
        return try s.step() ? s.column(0) : nil
    }

    /// The rowid of the last inserted row (`sqlite3_last_insert_rowid`).
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Whether an error is a lock conflict that retrying can resolve.
    static func isBusy(_ e: LedgerError) -> Bool {
        if case .sqlite(let code, _, _) = e { return code & 0xff == SQLITE_BUSY || code & 0xff == SQLITE_LOCKED }
        return false
    }

    /// Runs `body` in a transaction of `kind`: commits when it returns `.commit`, rolls back
    /// when it returns `.rollback` or throws. A lock conflict (SQLITE_BUSY/LOCKED, after the
    /// busy timeout) rolls back and re-runs `body` with exponential backoff, so concurrent
    /// processes never see a raw SQLITE_BUSY unless the lock is held for longer than `patience`.
    func inTransaction(_ kind: TransactionKind = .immediate, patience: Double = 60,
                       _ body: () throws(LedgerError) -> TransactionCompletion) throws(LedgerError) {
        let start = Date()
        var delay = 0.005
        while true {
            do throws(LedgerError) {
                try execute("BEGIN \(kind.rawValue)")
                let completion: TransactionCompletion
                do throws(LedgerError) {
                    completion = try body()
                } catch {
                    try? execute("ROLLBACK")
                    throw error
                }
                switch completion {
                case .commit:
                    do throws(LedgerError) { try execute("COMMIT") } catch { try? execute("ROLLBACK"); throw error }
                case .rollback:
                    try execute("ROLLBACK")
                }
                return
            } catch {
                guard Database.isBusy(error), Date().timeIntervalSince(start) < patience else { throw error }
                Thread.sleep(forTimeInterval: delay * Double.random(in: 0.5...1.5))
                delay = min(delay * 2, 0.5)
            }
        }
    }

    /// Retries a non-transactional operation (opening, PRAGMAs) on lock conflicts with backoff.
    func retryingBusy<T>(patience: Double = 60, _ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        let start = Date()
        var delay = 0.005
        while true {
            do throws(LedgerError) { return try body() } catch {
                guard Database.isBusy(error), Date().timeIntervalSince(start) < patience else { throw error }
                Thread.sleep(forTimeInterval: delay * Double.random(in: 0.5...1.5))
                delay = min(delay * 2, 0.5)
            }
        }
    }
}

/// A prepared statement (`sqlite3_stmt*`), finalized in `deinit` (`sqlite3_finalize`).
final class Statement {
    /// The raw handle.
    let handle: OpaquePointer
    private let db: OpaquePointer
    /// The SQL it was prepared from, for errors.
    let sql: String

    init(handle: OpaquePointer, db: OpaquePointer, sql: String) {
        self.handle = handle; self.db = db; self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    private func check(_ rc: Int32) throws(LedgerError) {
        if rc != SQLITE_OK { throw .sqlite(code: rc, message: String(cString: sqlite3_errmsg(db)), sql: sql) }
    }

    /// Number of result columns.
    var columnCount: Int { Int(sqlite3_column_count(handle)) }

    /// Name of result column `i`.
    func columnName(_ i: Int) -> String {
        guard let p = sqlite3_column_name(handle, Int32(i)) else { return "column\(i + 1)" }
        return String(cString: p)
    }

    /// Binds positional parameters 1...n (`sqlite3_bind_*`).
    func bind(_ values: [SQLValue]) throws(LedgerError) {
        for (i, v) in values.enumerated() { try bind(v, at: Int32(i + 1)) }
    }

    /// Binds one parameter by 1-based index.
    func bind(_ value: SQLValue, at index: Int32) throws(LedgerError) {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(handle, index)
        case .integer(let i): rc = sqlite3_bind_int64(handle, index, i)
        case .real(let d): rc = sqlite3_bind_double(handle, index, d)
        case .text(let s):
            var s = s
            rc = s.withUTF8 { buf -> Int32 in
                let empty: StaticString = ""
                let p = UnsafeRawPointer(buf.baseAddress ?? empty.utf8Start).assumingMemoryBound(to: CChar.self)
                return sqlite3_bind_text(handle, index, p, Int32(buf.count), lethe_sqlite3_transient())
            }
        case .blob(let b):
            if b.isEmpty { rc = sqlite3_bind_zeroblob(handle, index, 0) } else {
                rc = b.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), lethe_sqlite3_transient()) }
            }
        }
        try check(rc)
    }

    /// Advances: true when a row is available, false when done (`sqlite3_step`).
    func step() throws(LedgerError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let e = LedgerError.sqlite(code: rc, message: String(cString: sqlite3_errmsg(db)), sql: sql)
        sqlite3_reset(handle)
        throw e
    }

    /// Resets for re-execution and clears bindings.
    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Column `i` of the current row.
    func column(_ i: Int) -> SQLValue {
        let i = Int32(i)
        switch sqlite3_column_type(handle, i) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, i))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(handle, i))
        case SQLITE_TEXT:
            let n = Int(sqlite3_column_bytes(handle, i))
            guard let p = sqlite3_column_text(handle, i) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(handle, i))
            guard n > 0, let p = sqlite3_column_blob(handle, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default: return .null
        }
    }

    /// The whole current row.
    func row() -> [SQLValue] { (0..<columnCount).map { column($0) } }
}
