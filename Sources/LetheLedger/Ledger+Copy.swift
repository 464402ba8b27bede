import CSQLite
import Foundation

/// The outcome of copying a ledger to another backend.
public struct LedgerCopyReport: Sendable, Equatable {
    /// Rows copied per table, in copy order.
    public let rows: [(table: String, count: Int)]
    /// `verify` of the source before the copy.
    public let source: VerifyReport
    /// `verify` of the copy.
    public let copy: VerifyReport

    /// Equal tables, counts and reports.
    public static func == (a: LedgerCopyReport, b: LedgerCopyReport) -> Bool {
        a.source == b.source && a.copy == b.copy && a.rows.map(\.table) == b.rows.map(\.table) && a.rows.map(\.count) == b.rows.map(\.count)
    }
}

extension Ledger {
    /// Tables in the order a copy inserts them (every row's references come earlier).
    static let copyOrder = ["log_entries", "log_frontier", "log_nodes", "log_checkpoints"] + EntryEncoding.tables.map(\.name)

    /// Copies every row of the SQLite ledger at `sqlitePath` into an empty PostgreSQL database
    /// at `url` (one transaction holding the writers' lock): log entries with their leaf hashes,
    /// tree nodes, frontier and signed checkpoints keep their ids and bytes, so every inclusion
    /// and consistency proof and every saved checkpoint issued by the SQLite ledger stays valid.
    /// Then verifies the copy and requires the same answer as the source (entries, root,
    /// checkpoints, no failure); a source that does not verify is not copied.
    ///
    /// The source's write lock is held during the copy; run it while no other process uses the
    /// store (one that already opened the SQLite ledger would keep writing there).
    ///
    /// Returns the copied row counts and both verify reports. On any error the PostgreSQL
    /// transaction rolls back and the database is left with the empty schema only.
    public static func copy(sqlite sqlitePath: String, toPostgres url: String, keyPath: String?) throws(LedgerError) -> LedgerCopyReport {
        let source = try Ledger.open(path: sqlitePath)
        let sourceReport = try source.verify()
        guard sourceReport.isValid else {
            throw .tampered("the source ledger does not verify (\(sourceReport.failures.first?.message ?? "?")); not copying it")
        }
        let pg = try PostgresConnection(url: url)
        try migratePostgres(pg)
        let hasOrigin = try pg.scalar("SELECT 1 FROM ledger_meta WHERE key = 'origin'") != nil
        let hasEntries = try pg.scalar("SELECT 1 FROM log_entries LIMIT 1") != nil
        if hasOrigin || hasEntries {
            throw .io(path: pg.redactedURL, message: "the target database already holds a ledger; a copy needs an empty one")
        }
        var counts: [(String, Int)] = []
        // Holding the source's write lock: no writer can slip an entry in while it is copied.
        try source.db.writeTransaction { () throws(LedgerError) -> TransactionCompletion in
            try pg.writeTransaction { () throws(LedgerError) -> TransactionCompletion in
                // ledger_meta: origin, public key, creation time; the views hash and key note are PostgreSQL's own.
                var meta = 0
                for r in try source.db.rows("SELECT key, value FROM ledger_meta ORDER BY key", []) {
                    guard let k = r[0].string, k != "views_sha256" else { continue }
                    let v = k == signingKeyMeta ? SQLValue.text(postgresKeyNote) : r[1]
                    try pg.run("INSERT INTO ledger_meta(key, value) VALUES (?1, ?2)", [.text(k), v])
                    meta += 1
                }
                counts.append(("ledger_meta", meta))
                for table in copyOrder {
                    let columns = try source.db.rows("SELECT name FROM pragma_table_info(?1) ORDER BY cid", [.text(table)]).compactMap { $0[0].string }
                    guard !columns.isEmpty else { throw .invalid("the source ledger has no table \(table)") }
                    let placeholders = (1...columns.count).map { "?\($0)" }.joined(separator: ", ")
                    let insert = "INSERT INTO \(table)(\(columns.joined(separator: ", "))) VALUES (\(placeholders))"
                    let cursor = try source.db.cursor("SELECT \(columns.joined(separator: ", ")) FROM \(table)")
                    var n = 0
                    while let row = try cursor.next() {
                        try pg.run(insert, row)
                        n += 1
                    }
                    counts.append((table, n))
                }
                return .commit
            }
            return .rollback
        }
        let copy = try Ledger.open(postgres: url, keyPath: keyPath)
        let copyReport = try copy.verify(trustedKey: source.publicKey)
        guard copyReport == sourceReport else {
            throw .tampered("the PostgreSQL copy verifies differently from the source: \(copyReport.failures.first?.message ?? "root \(copyReport.root.hex) vs \(sourceReport.root.hex)")")
        }
        return LedgerCopyReport(rows: counts, source: sourceReport, copy: copyReport)
    }
}
