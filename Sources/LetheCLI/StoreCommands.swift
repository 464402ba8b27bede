import Foundation
import Lethe
import LetheCommandLine
import LetheTensor

/// Opens the store named by `--store` / `LETHE_STORE` or found upward from the working directory.
func openStore(_ context: CommandContext) throws -> Store {
    let explicit = try context.globals.option("store", as: String.self)
    return try StoreLocation.find(explicit: explicit).openStore()
}

/// `1.2 MB`-style sizes (decimal units).
func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
    if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
    if d >= 1e3 { return String(format: "%.1f kB", d / 1e3) }
    return "\(n) B"
}

/// ISO 8601 UTC time.
func formatTime(_ seconds: Double) -> String {
    let f = ISO8601DateFormatter()
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: Date(timeIntervalSince1970: seconds))
}

/// The `--threads` option shared by import and export.
let threadsOption = OptionSpec.option("threads", value: "n", help: "Chunks encoded or decoded in parallel.", default: "1")

/// The value of `--threads`, or the default.
func threadCount(_ values: ParsedValues) throws(CommandLineError) -> Int {
    // One thread by default: on the shared 2-core benchmark machine two lanes were not faster
    // (BENCHMARKS.md); on an idle multi-core machine --threads 2 or more can help.
    guard let n: Int = try values.option("threads") else { return 1 }
    guard n >= 1, n <= 64 else { throw .usage("The value '\(n)' is invalid for '--threads': expected 1 to 64") }
    return n
}

/// A progress bar on stderr for long transfers (nil under --json or for small totals).
func progressBar(_ label: String, total: Int, context: CommandContext) -> ((Int, Int) -> Void)? {
    guard !context.json, total >= 256 << 20 else { return nil }
    let bar = ProgressBar(label, total: max(1, total >> 20))
    return { done, _ in bar.update(done >> 20, "MiB") }
}

/// `lethe init [<directory>]`.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an empty store (.lethe) with its ledger and signing key in a directory.",
        arguments: [ArgumentSpec("directory", help: "Where to create .lethe (default: the working directory).", optional: true)],
        options: [
            .option("origin", value: "text", help: "Origin line of the ledger's signed checkpoints (default: lethe/<host><path>)."),
            .option("objects", value: "s3://bucket/prefix",
                    help: "Keep objects and refs in S3-compatible storage (keys, region, endpoint from AWS_* variables; recorded in .lethe/remote.json)."),
            .option("ledger", value: "postgresql://...", help: "Keep the ledger in this PostgreSQL database (recorded in .lethe/remote.json)."),
            .option("signing-key", value: "pem", help: "Sign with this Ed25519 key (copied into .lethe); needed to join a shared ledger."),
        ])

    let directory: String?
    let origin: String?
    let objects: String?
    let ledger: String?
    let signingKey: String?
    init(from values: ParsedValues) throws(CommandLineError) {
        directory = try values.argument("directory")
        origin = try values.option("origin")
        objects = try values.option("objects")
        ledger = try values.option("ledger")
        signingKey = try values.option("signing-key")
        if let objects {
            do { _ = try S3Location(url: objects) } catch {
                throw .usage("The value '\(objects)' is invalid for '--objects': expected s3://BUCKET/PREFIX")
            }
        }
        if let ledger, !(ledger.hasPrefix("postgresql://") || ledger.hasPrefix("postgres://")) {
            throw .usage("The value '\(ledger)' is invalid for '--ledger': expected a postgresql:// URL")
        }
    }

    func run(_ context: CommandContext) throws {
        let parent = URL(fileURLWithPath: directory ?? FileManager.default.currentDirectoryPath)
        let repo = try Repository.initialize(in: parent, origin: origin, remote: RemoteConfig(objects: objects, ledger: ledger),
                                             signingKey: signingKey)
        let path = URL(fileURLWithPath: repo.store.directory).standardizedFileURL.path
        let ledgerLocation = try repo.location.ledgerDescription()
        if context.json {
            var fields: [String: JSONValue] = [
                "store": .string(path), "format": .int(Store.formatVersion), "ledger": .string(ledgerLocation),
                "origin": .string(repo.ledger.origin), "public_key": .string(repo.ledger.publicKey.hex),
            ]
            if let objects { fields["objects"] = .string(objects) }
            context.out(JSONValue.object(fields).serialized() + "\n")
        } else {
            context.out("Initialized empty Lethe store in \(path)\n")
            if let objects { context.out("objects and refs in \(objects)\n") }
            context.out("ledger \(ledgerLocation), signing key \(repo.location.signingKeyPath) (public key \(repo.ledger.publicKey.hex))\n")
        }
    }
}

/// `lethe import FILE.safetensors`.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a safetensors file as a new version.",
        discussion: "Without --spec the version holds tensors only: storable, exportable and diffable, not trainable until a spec is attached.",
        arguments: [ArgumentSpec("file", help: "The .safetensors file.")],
        options: [
            .option("spec", value: "spec.json", help: "Model spec (JSON) to record with the version."),
            .option("message", short: "m", value: "text", help: "Message recorded with the version.", default: "import"),
            .option("ref", value: "name", help: "Ref to point at the new version.", default: "main"),
            .option("parent", value: "revision", help: "Parent version (default: the ref's current version)."),
            .flag("no-parent", help: "Record no parent (no deltas)."),
            .option("author", value: "name", help: "Author recorded (default: $USER)."),
            .option("dataset-digest", value: "hex", help: "Digest of the training dataset."),
            .flag("allow-nonfinite", help: "Accept NaN and infinite weights."),
            threadsOption,
        ])

    let file: String, spec: String?, message: String, ref: String, parent: String?, noParent: Bool
    let author: String?, datasetDigest: String?, allowNonfinite: Bool, threads: Int

    init(from values: ParsedValues) throws(CommandLineError) {
        file = try values.required("file")
        spec = try values.option("spec")
        message = try values.option("message", default: "import")
        ref = try values.option("ref", default: "main")
        parent = try values.option("parent")
        noParent = values.flag("no-parent")
        author = try values.option("author")
        datasetDigest = try values.option("dataset-digest")
        allowNonfinite = values.flag("allow-nonfinite")
        threads = try threadCount(values)
        if noParent && parent != nil { throw .usage("--parent and --no-parent cannot be used together") }
        if !RefStore.isValidName(ref) { throw .usage("The value '\(ref)' is invalid for '--ref': expected a ref name (letters, digits, '.', '_', '-')") }
    }

    func run(_ context: CommandContext) throws {
        let store = try openStore(context)
        store.threads = threads
        var specBytes: [UInt8]?
        if let spec {
            do { specBytes = try FileBytes.read(spec) } catch { throw StoreError.invalidInput("cannot read spec \(spec): \(error)") }
        }
        if let specBytes { try checkImportSpec(specBytes, file: file) }
        let parentID: ObjectID? = noParent ? nil : try parent.map { try store.resolve($0) } ?? store.refs.get(ref)
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        let meta = VersionMetadata(author: author ?? ProcessInfo.processInfo.environment["USER"] ?? "lethe",
                                   message: message, datasetDigest: datasetDigest)
        let options = ImportOptions(spec: specBytes, parent: parentID, metadata: meta, allowNonfinite: allowNonfinite,
                                    ref: (ref, "import \(URL(fileURLWithPath: file).lastPathComponent)"),
                                    progress: progressBar("importing", total: size, context: context))
        let r = try store.importSafetensors(file, options: options)
        let tensors = try store.version(r.version).tensors.count
        if context.json {
            context.out(JSONValue.object([
                "version": .string(r.version.hex), "ref": .string(ref), "parent": parentID.map { .string($0.hex) } ?? .null,
                "tensors": .int(tensors), "payload_bytes": .int(r.stats.payloadBytes), "stored_bytes": .int(r.stats.storedBytes),
                "new_objects": .int(r.stats.newObjects), "deduplicated_objects": .int(r.stats.dedupedObjects),
                "codecs": .object(r.stats.codecs.mapValues { .int($0) }),
            ]).serialized() + "\n")
        } else {
            context.out("Imported \(file) as version \(r.version.short) (\(tensors) tensors, \(formatBytes(r.stats.payloadBytes)) → \(formatBytes(r.stats.storedBytes)) new, \(r.stats.newObjects) new objects, \(r.stats.dedupedObjects) deduplicated)\n")
            context.out("\(ref) → \(r.version.short)\n")
        }
    }
}

/// `lethe export VERSION|REF -o FILE`.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a version as a safetensors file.",
        arguments: [ArgumentSpec("revision", help: "A ref, version id or unique id prefix.")],
        options: [.option("output", short: "o", value: "file", help: "Output .safetensors file.", required: true),
                  .flag("sync", help: "fsync the file before renaming it into place (survives power loss)."),
                  threadsOption])

    let revision: String, output: String, sync: Bool, threads: Int
    init(from values: ParsedValues) throws(CommandLineError) {
        revision = try values.required("revision")
        sync = values.flag("sync")
        threads = try threadCount(values)
        guard let o: String = try values.option("output") else { throw .usage("Missing expected argument '--output <file>'") }
        output = o
    }

    func run(_ context: CommandContext) throws {
        let store = try openStore(context)
        store.threads = threads
        let id = try store.resolve(revision)
        let total = try store.version(id).tensors.reduce(0) { $0 + $1.byteCount }
        let r = try store.exportSafetensors(id, to: output, sync: sync, progress: progressBar("exporting", total: total, context: context))
        if context.json {
            context.out(JSONValue.object(["version": .string(id.hex), "file": .string(output), "bytes": .int(r.bytes),
                                          "original_header": .bool(r.originalHeader)]).serialized() + "\n")
        } else {
            context.out("Exported version \(id.short) to \(output) (\(formatBytes(r.bytes)))\n")
        }
    }
}

/// `lethe log [REVISION]`.
struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "List versions from a ref or version back through first parents.",
        arguments: [ArgumentSpec("revision", help: "A ref, version id or prefix (default: main).", optional: true)],
        options: [.option("max-count", short: "n", value: "n", help: "Show at most this many versions.")])

    let revision: String, limit: Int?
    init(from values: ParsedValues) throws(CommandLineError) {
        revision = try values.argument("revision") ?? "main"
        limit = try values.option("max-count")
    }

    func run(_ context: CommandContext) throws {
        let store = try openStore(context)
        let entries = try store.log(from: store.resolve(revision), limit: limit ?? Int.max)
        if context.json {
            context.out(JSONValue.array(entries.map { e in
                .object(["version": .string(e.id.hex), "parents": .array(e.version.parents.map { .string($0.hex) }),
                         "author": .string(e.version.metadata.author), "time": .string(formatTime(Double(e.version.metadata.time))),
                         "message": .string(e.version.metadata.message), "tensors": .int(e.version.tensors.count),
                         "bases": .int(e.version.bases.count), "spec": e.version.spec.map { .string($0.hex) } ?? .null])
            }).serialized() + "\n")
            return
        }
        for e in entries {
            context.out("version \(e.id.hex)\n")
            context.out("Author: \(e.version.metadata.author)\nDate:   \(formatTime(Double(e.version.metadata.time)))\n")
            context.out("\n    \(e.version.metadata.message)\n\n")
        }
    }
}

/// `lethe show VERSION`.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a version: metadata, tensors with sizes and codecs, bases.",
        arguments: [ArgumentSpec("revision", help: "A ref, version id or unique id prefix.")])

    let revision: String
    init(from values: ParsedValues) throws(CommandLineError) { revision = try values.required("revision") }

    func run(_ context: CommandContext) throws {
        let store = try openStore(context)
        let id = try store.resolve(revision)
        let v = try store.version(id)
        func describe(_ t: StoredTensor) throws -> (stored: Int, codecs: [String]) {
            var stored = 0
            var codecs: [String] = []
            for c in t.chunks {
                let h = try store.objects.header(c)
                stored += store.objects.backend.stat(c)?.size ?? 0
                if !codecs.contains(h.codec.name) { codecs.append(h.codec.name) }
            }
            return (stored, codecs)
        }
        var rows: [JSONValue] = []
        var lines: [String] = []
        var totalRaw = 0, totalStored = 0
        for t in v.tensors {
            let (stored, codecs) = try describe(t)
            totalRaw += t.byteCount; totalStored += stored
            rows.append(.object(["name": .string(t.name), "dtype": .string(t.dtype.rawValue), "shape": .array(t.shape.map { .int($0) }),
                                 "bytes": .int(t.byteCount), "stored_bytes": .int(stored), "chunks": .int(t.chunks.count),
                                 "codecs": .array(codecs.map { .string($0) })]))
            lines.append("  \(t.name)  \(t.dtype.rawValue) \(t.shape)  \(formatBytes(t.byteCount)) → \(formatBytes(stored))  \(codecs.joined(separator: ","))")
        }
        var bases: [JSONValue] = []
        var basisLines: [String] = []
        for b in v.bases {
            bases.append(.object(["layer": .string(b.layer), "d": .int(b.d), "k": b.k.map { .int($0) } ?? .null,
                                  "u_shape": .array(b.u.shape.map { .int($0) }), "sigma_count": .int(b.sigma.elementCount)]))
            basisLines.append("  \(b.layer)  d=\(b.d) k=\(b.k.map(String.init) ?? "-")  U \(b.u.shape)  σ [\(b.sigma.elementCount)]")
        }
        if context.json {
            context.out(JSONValue.object([
                "version": .string(id.hex), "parents": .array(v.parents.map { .string($0.hex) }),
                "spec": v.spec.map { .string($0.hex) } ?? .null, "author": .string(v.metadata.author),
                "time": .string(formatTime(Double(v.metadata.time))), "message": .string(v.metadata.message),
                "dataset_digest": v.metadata.datasetDigest.map { .string($0) } ?? .null,
                "tensors": .array(rows), "bases": .array(bases), "bytes": .int(totalRaw), "stored_bytes": .int(totalStored),
            ]).serialized() + "\n")
            return
        }
        var out = "version \(id.hex)\n"
        if !v.parents.isEmpty { out += "Parents: \(v.parents.map(\.short).joined(separator: " "))\n" }
        out += "Author:  \(v.metadata.author)\nDate:    \(formatTime(Double(v.metadata.time)))\n"
        out += "Spec:    \(v.spec?.short ?? "none (tensors only)")\n"
        if let d = v.metadata.datasetDigest { out += "Dataset: \(d)\n" }
        out += "\n    \(v.metadata.message)\n\n"
        out += "Tensors (\(v.tensors.count), \(formatBytes(totalRaw)) → \(formatBytes(totalStored)) stored):\n" + lines.joined(separator: "\n") + "\n"
        if !basisLines.isEmpty { out += "Bases (\(v.bases.count)):\n" + basisLines.joined(separator: "\n") + "\n" }
        context.out(out)
    }
}

/// `lethe diff V1 V2`.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two versions tensor by tensor (change norm, relative change, numerical rank).",
        arguments: [ArgumentSpec("from", help: "The first version."), ArgumentSpec("to", help: "The second version.")])

    let from: String, to: String
    init(from values: ParsedValues) throws(CommandLineError) {
        self.from = try values.required("from")
        to = try values.required("to")
    }

    func run(_ context: CommandContext) throws {
        let store = try openStore(context)
        let a = try store.resolve(from), b = try store.resolve(to)
        let diffs = try store.diff(a, b)
        if context.json {
            context.out(JSONValue.object([
                "from": .string(a.hex), "to": .string(b.hex),
                "tensors": .array(diffs.map { d in
                    .object(["name": .string(d.name), "status": .string(d.status.rawValue),
                             "l2": d.l2.map { .number($0) } ?? .null, "relative": d.relative.map { .number($0) } ?? .null,
                             "rank": d.rank.map { .int($0) } ?? .null])
                }),
            ]).serialized() + "\n")
            return
        }
        context.out("diff \(a.short) \(b.short)\n")
        for d in diffs {
            var line = "  \(d.status.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(d.name)"
            if d.status == .changed {
                if let l2 = d.l2 { line += String(format: "  ‖Δ‖=%.4g", l2) }
                if let r = d.relative { line += String(format: "  rel=%.3g", r) }
                line += "  rank=" + (d.rank.map(String.init) ?? "n/a")
            }
            context.out(line + "\n")
        }
        let changed = diffs.filter { $0.status != .unchanged }.count
        context.out("\(changed) of \(diffs.count) tensors differ\n")
    }
}
