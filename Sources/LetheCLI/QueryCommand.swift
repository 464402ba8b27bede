import Foundation
import Lethe
import LetheCommandLine
import LetheLedger

/// `lethe query`: read-only SQL over the ledger views.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Run a read-only SQL query over the ledger views.",
        discussion: """
            Views: versions, version_ancestry, tensors, refs, ref_history, datasets,
            forget_requests, forgotten_samples, layer_stats, request_metrics, phase_timings,
            rollbacks, gc_deletions, compliance_exceptions, ledger_entries, checkpoints
            (documented in schema/views.sql). Writes, ATTACH/DETACH, state-changing PRAGMAs
            and extensions are refused. Parameters (:name) are bound, never spliced.
            """,
        arguments: [ArgumentSpec("sql", help: "The SQL statement (or use --file).", optional: true)],
        options: [
            .option("file", value: "path", help: "Read the SQL statement from this file."),
            .option("param", value: "name=value", help: "Bind :name to value (repeatable).", repeating: true),
            .flag("csv", help: "Print RFC 4180 CSV instead of a table."),
            .option("limit", value: "rows", help: "Return at most this many rows.", default: "10000"),
            .flag("no-limit", help: "Return every row."),
            .option("timeout", value: "seconds", help: "Interrupt the statement after this long.", default: "10"),
        ])

    let sql: String?
    let file: String?
    let parameters: [String: String]
    let csv: Bool
    let limit: Int?
    let timeout: Double

    init(from values: ParsedValues) throws(CommandLineError) {
        sql = try values.argument("sql", as: String.self)
        file = try values.option("file", as: String.self)
        if sql != nil && file != nil { throw .usage("Give the SQL as an argument or with --file, not both") }
        if sql == nil && file == nil { throw .usage("Missing expected argument '<sql>' (or --file)") }
        var params: [String: String] = [:]
        for p in try values.options("param", as: String.self) {
            guard let eq = p.firstIndex(of: "="), eq != p.startIndex else {
                throw .usage("The value '\(p)' is invalid for '--param': expected name=value")
            }
            let name = String(p[..<eq])
            if params[name] != nil { throw .usage("--param \(name) is given twice") }
            params[name] = String(p[p.index(after: eq)...])
        }
        parameters = params
        csv = values.flag("csv")
        let noLimit = values.flag("no-limit")
        let n = try values.option("limit", default: 10_000)
        if n < 0 { throw .usage("The value '\(n)' is invalid for '--limit': expected a non-negative integer") }
        if noLimit && values.options["limit"] != nil { throw .usage("--limit and --no-limit cannot be combined") }
        limit = noLimit ? nil : n
        timeout = try values.option("timeout", default: 10.0)
        if timeout <= 0 { throw .usage("The value '\(timeout)' is invalid for '--timeout': expected a positive number") }
    }

    func run(_ context: CommandContext) throws {
        if csv && context.json { throw CommandLineError.usage("--csv and --json cannot be combined") }
        let location = try StoreLocation.find(explicit: try context.globals.option("store", as: String.self))
        var text = sql ?? ""
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw LedgerError.io(path: file, message: "cannot read the query file")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        let q = try location.openLedgerQuery()
        let result = try q.run(text, parameters: parameters, limit: limit, timeLimit: timeout)
        if context.json {
            context.out(QueryOutput.json(result))
        } else if csv {
            context.out(QueryOutput.csv(result))
        } else {
            context.out(QueryOutput.table(result))
        }
        if result.truncated {
            context.err("note: stopped after \(result.rows.count) rows; more rows matched (use --limit N or --no-limit)\n")
        }
    }
}
