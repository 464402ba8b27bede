import Foundation
import Lethe
import LetheCommandLine
import LetheTensor

/// `lethe audit [--request ID] [--format json|html] [-o FILE]`.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Report, per forget request, what was done and whether it held.",
        discussion: """
            Per request: timeline and deadline, metrics before and after, k/d and rho per layer, the
            inclusion proof of its latest log entry against the latest signed checkpoint, and every
            later ref move that reintroduced its samples. JSON (schema/audit.schema.json) or one
            self-contained HTML page with inline SVG charts. Exits 1 when the log does not verify,
            a proof fails or forgotten samples were reintroduced.
            """,
        options: [
            .option("request", value: "id", help: "Only this request."),
            .option("format", value: "json|html", help: "Output format.", default: "json"),
            .option("out", short: "o", value: "file", help: "Write to this file instead of standard output."),
        ])

    let request: String?, format: String, out: String?

    init(from values: ParsedValues) throws(CommandLineError) {
        request = try values.option("request")
        format = try values.option("format", default: "json")
        out = try values.option("out")
        guard format == "json" || format == "html" else { throw .usage("The value '\(format)' is invalid for '--format': expected json or html") }
    }

    func run(_ context: CommandContext) throws {
        let repo = try openRepository(context)
        let report = try repo.audit(request: request)
        let text: String
        if format == "html" {
            text = report.html()
        } else {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            text = String(decoding: try e.encode(report), as: UTF8.self) + "\n"
        }
        if let out {
            try FileBytes.writeAtomically(Array(text.utf8), to: out)
            let bad = report.requests.filter { !$0.reintroductions.isEmpty }.count
            context.err("wrote \(out): \(report.requests.count) request(s), log \(report.log.verified ? "verified" : "NOT verified"), \(bad) with reintroduced samples\n")
        } else {
            context.out(text)
        }
        let proofsOK = report.requests.allSatisfy { $0.inclusionProof?.verified ?? false }
        if !report.log.verified || !proofsOK || report.requests.contains(where: { !$0.reintroductions.isEmpty }) { throw ExitCode.failure }
    }
}
