import Foundation
import LetheCommandLine

/// `lethe demo`: the whole story in a fresh store, driven through the same commands a user types.
///
/// Every step runs a `lethe` command in this process (`CommandRunner.run` with `--json`), so the
/// demo exercises exactly the code paths of the CLI; progress goes to stderr, the auditor queries
/// and a summary table to stdout.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the end-to-end story in a fresh store: train, bases, two forget requests, verify, audit, refused rollback, replay, queries.",
        discussion: """
            The store is created in --dir (default: a new temporary directory). The default trains cnn on a
            stratified 8,000-sample subset of Fashion-MNIST for 2 epochs; --recompute also re-runs both requests
            bit for bit (about doubling the time); --data digits --arch mlp takes seconds.
            """,
        options: [
            .option("dir", value: "path", help: "Directory for the new store and the reports (must not hold a store)."),
            .option("data", value: "source", help: "Training data (SOURCE:N trains on N stratified samples of SOURCE).", default: "fashion-mnist:8000"),
            .option("arch", value: "name", help: "Model architecture.", default: "cnn"),
            .option("epochs", value: "n", help: "Training epochs.", default: "2"),
            .option("forget", value: "n", help: "Random training samples in the first forget request.", default: "300"),
            .option("class", value: "c", help: "Class forgotten whole by the second request.", default: "3"),
            .option("threads", value: "n", help: "OpenBLAS and worker threads.", default: "2"),
            .flag("recompute", help: "Also re-run every request and check the result is bit-identical."),
        ])

    var dir: String?, data: String, arch: String, epochs: Int, forget: Int, classLabel: Int, threads: Int, recompute: Bool

    init(from values: ParsedValues) throws(CommandLineError) {
        dir = try values.option("dir")
        data = try values.option("data", default: "fashion-mnist:8000")
        arch = try values.option("arch", default: "cnn")
        epochs = try values.option("epochs", default: 2)
        forget = try values.option("forget", default: 300)
        classLabel = try values.option("class", default: 3)
        threads = try values.option("threads", default: 2)
        recompute = values.flag("recompute")
        guard epochs >= 1 else { throw .usage("The value '\(epochs)' is invalid for '--epochs': expected a positive integer") }
        guard forget >= 1 else { throw .usage("The value '\(forget)' is invalid for '--forget': expected a positive integer") }
        guard threads >= 1 else { throw .usage("The value '\(threads)' is invalid for '--threads': expected a positive integer") }
    }

    func run(_ context: CommandContext) throws {
        let fm = FileManager.default
        let root: String
        if let dir {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            root = URL(fileURLWithPath: dir).standardizedFileURL.path
        } else {
            root = fm.temporaryDirectory.appendingPathComponent("lethe-demo-\(UUID().uuidString.prefix(8).lowercased())").path
            try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        }
        guard !fm.fileExists(atPath: root + "/.lethe") else { throw DemoError("\(root) already holds a store; give --dir a new directory") }
        var story = DemoStory(root: root, context: context)
        let t = String(threads)
        let demoStart = Date()

        try story.step("init", "lethe init \(root): object store, refs, SQLite ledger with an Ed25519 signing key",
                       ["init", root], store: false)
        let train = try story.step("train", "lethe train: \(arch) on \(data), \(epochs) epoch(s), stored as a version on ref prod",
                                   ["train", "--arch", arch, "--data", data, "--epochs", String(epochs), "--eval-every", String(epochs),
                                    "--threads", t, "--ref", "prod"])
        story.note("train", String(format: "test accuracy %.4f, %@ samples", train.number("test_accuracy") ?? .nan,
                                   String(Int(train.number("train_samples") ?? 0)) as NSString))
        let bases = try story.step("bases", "lethe bases: cached per-layer bases (U, sigma) from one pass over the training data",
                                   ["bases", "--ref", "prod", "--data", data, "--threads", t])
        let basesVersion = bases.string("version") ?? ""
        story.note("bases", "\(bases.array("layers")?.count ?? 0) layers, version \(basesVersion.prefix(12))")

        // R1: random samples, ids from `lethe dataset`.
        let ids = try story.capture("lethe dataset: \(forget) random training sample ids",
                                    ["dataset", "--data", data, "--ids", "--sample", String(forget), "--seed", "1"])
        let idsPath = root + "/r1-ids.txt"
        try Data(ids.utf8).write(to: URL(fileURLWithPath: idsPath))
        let r1 = try story.step("R1", "lethe forget R1: \(forget) random training samples (GDPR Art. 17(1)(a))",
                                ["forget", "--ref", "prod", "--data", data, "--samples", idsPath, "--request-id", "R1",
                                 "--requester", "subject-4711", "--ground", "GDPR Art. 17(1)(a)", "--threads", t])
        story.noteForget("R1", r1)
        let r2 = try story.step("R2", "lethe forget R2: every training sample of class \(classLabel)",
                                ["forget", "--ref", "prod", "--data", data, "--class", String(classLabel), "--request-id", "R2",
                                 "--requester", "subject-0815", "--threads", t])
        story.noteForget("R2", r2)

        let verify = try story.step("verify", "lethe verify: recompute the Merkle log from the ledger rows, check every signed checkpoint", ["verify"])
        story.note("verify", "\(verify.bool("ok") == true ? "ok" : "FAILED"): \(Int(verify.number("entries") ?? 0)) entries, \(Int(verify.number("checkpoints") ?? 0)) checkpoints")
        try story.step("audit", "lethe audit: JSON and self-contained HTML reports", ["audit", "-o", root + "/audit.json"], json: false)
        try story.step("audit", "", ["audit", "--format", "html", "-o", root + "/audit.html"], json: false)
        story.note("audit", "audit.json, audit.html")

        let rollback = try story.step("rollback", "lethe rollback prod \(basesVersion.prefix(12)): must be refused (it would bring forgotten samples back)",
                                      ["rollback", "prod", basesVersion], expectFailure: true)
        story.note("rollback", (rollback.string("error") ?? "refused (no reason given)"))

        let rebuild = try story.step("replay", "lethe replay: rebuild every version from the root through its deltas, hashes checked", ["replay", "prod"])
        story.note("replay", "\(rebuild.bool("ok") == true ? "ok" : "FAILED"): \(rebuild.array("versions")?.count ?? 0) versions rebuilt")
        if recompute {
            let again = try story.step("recompute", "lethe replay --recompute: re-run every recorded request and compare bit for bit",
                                       ["replay", "--recompute", "prod", "--data", data])
            story.note("recompute", again.bool("identical") == true ? "bit-identical" : "DIFFERS")
        }

        let queries = [
            ("Forget requests", "SELECT id, status, requester, received_at, deadline, sample_count FROM forget_requests ORDER BY received_at"),
            ("Orthogonality per request", "SELECT request, max(rho) AS max_rho, sum(k) AS k, sum(d) AS d FROM layer_stats GROUP BY request ORDER BY request"),
            ("History of prod", "SELECT move, moved_at, substr(old_version, 1, 12) AS old, substr(new_version, 1, 12) AS new, reason FROM ref_history WHERE ref = 'prod' ORDER BY move"),
        ]
        for (title, sql) in queries {
            let table = try story.capture("lethe query: \(title.lowercased())", ["query", sql], store: true)
            context.out("\(title) (lethe query \"\(sql)\")\n\(table)\n")
        }
        context.out(story.summary(totalSeconds: Date().timeIntervalSince(demoStart)))
        context.out("Store: \(root)/.lethe   reports: \(root)/audit.json, \(root)/audit.html   (lethe --store \(root) audit | query | log prod)\n")
    }
}

/// A failure of the demo itself (a step that did not do what the story needs).
struct DemoError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// A parsed `--json` result.
struct DemoResult {
    var object: [String: Any]
    func number(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
    func string(_ key: String) -> String? { object[key] as? String }
    func bool(_ key: String) -> Bool? { object[key] as? Bool }
    func array(_ key: String) -> [Any]? { object[key] as? [Any] }
}

/// Runs the demo's steps and collects what the summary shows.
struct DemoStory {
    let root: String
    let context: CommandContext
    private var rows: [(step: String, seconds: Double, result: String)] = []
    private var forgets: [(request: String, object: DemoResult)] = []

    init(root: String, context: CommandContext) { self.root = root; self.context = context }

    /// Runs `lethe [--store root] [--json] args` in-process; fails unless it exits 0 (or, with
    /// `expectFailure`, unless it exits non-zero).
    @discardableResult
    mutating func step(_ name: String, _ title: String, _ args: [String], store: Bool = true, json: Bool = true,
                       expectFailure: Bool = false) throws -> DemoResult {
        if !title.isEmpty { context.err("\n== \(title)\n") }
        let started = Date()
        let (status, out) = run(args, store: store, json: json)
        let seconds = Date().timeIntervalSince(started)
        if expectFailure {
            guard status != 0 else { throw DemoError("step \(name) was expected to be refused but succeeded") }
        } else {
            guard status == 0 else { throw DemoError("step \(name) failed (exit \(status)): lethe \(args.joined(separator: " "))") }
        }
        let object = json ? ((try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any] ?? [:]) : [:]
        if let i = rows.firstIndex(where: { $0.step == name }) { rows[i].seconds += seconds } else { rows.append((name, seconds, "")) }
        context.err(String(format: "   %@: %.1f s\n", name as NSString, seconds))
        return DemoResult(object: object)
    }

    /// Runs a command for its text output (human format).
    func capture(_ title: String, _ args: [String], store: Bool = true) throws -> String {
        context.err("\n== \(title)\n")
        let (status, out) = run(args, store: store, json: false)
        guard status == 0 else { throw DemoError("lethe \(args.joined(separator: " ")) failed (exit \(status))") }
        return out
    }

    private func run(_ args: [String], store: Bool, json: Bool) -> (Int32, String) {
        var full: [String] = []
        if store { full += ["--store", root] }
        if json { full.append("--json") }
        full += args
        var out = ""
        let status = CommandRunner.run(LetheCommand.self, arguments: full, out: { out += $0 }, err: { context.err($0) })
        return (status, out)
    }

    /// The result column of a step.
    mutating func note(_ name: String, _ text: String) {
        if let i = rows.firstIndex(where: { $0.step == name }) { rows[i].result = text }
    }

    /// Notes a forget request's outcome and keeps its metrics for the summary.
    mutating func noteForget(_ name: String, _ r: DemoResult) {
        let rho = (r.array("layers") ?? []).compactMap { ($0 as? [String: Any])?["rho"] as? NSNumber }.map(\.doubleValue).max() ?? 0
        let gamma = r.number("gamma").map { String(format: "%.4f", $0) } ?? "—"
        let trials = r.array("trials")?.count ?? 0
        note(name, "\(r.string("status") ?? "?"): \(Int(r.number("samples") ?? 0)) samples, gamma \(gamma) (\(trials) trial(s)), max rho \(String(format: "%.1e", rho))")
        forgets.append((name, r))
    }

    /// The summary table: every step's time and result, then each request's before/after metrics.
    func summary(totalSeconds: Double) -> String {
        var s = "\nSummary\n\n"
        let w = max(10, rows.map(\.step.count).max() ?? 0)
        s += "step".padding(toLength: w, withPad: " ", startingAt: 0) + "  seconds  result\n"
        for r in rows {
            s += r.step.padding(toLength: w, withPad: " ", startingAt: 0) + String(format: "  %7.1f  ", r.seconds) + r.result + "\n"
        }
        s += "total".padding(toLength: w, withPad: " ", startingAt: 0) + String(format: "  %7.1f\n\n", totalSeconds)
        let metrics: [(String, String)] = [
            ("forget_accuracy", "accuracy on the forgotten samples"), ("val_accuracy", "held-out (validation) accuracy"),
            ("test_accuracy", "test accuracy"), ("mia_entropy", "entropy MIA: forgotten predicted member"),
            ("mia_loss_auc", "loss MIA AUC (forgotten vs test)"),
        ]
        s += "request  metric                                     before    after\n"
        for (request, r) in forgets {
            let m = r.object["metrics"] as? [String: Any] ?? [:]
            for (key, label) in metrics {
                guard let values = m[key] as? [String: Any] else { continue }
                func f(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%8.4f", $0.doubleValue) } ?? "       —" }
                s += request.padding(toLength: 9, withPad: " ", startingAt: 0) + label.padding(toLength: 41, withPad: " ", startingAt: 0)
                    + " " + f(values["before"]) + " " + f(values["after"]) + "\n"
            }
        }
        return s + "\n"
    }
}
