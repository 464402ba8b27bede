import Foundation
import Lethe
import LetheCommandLine

/// `lethe migrate-store --objects s3://BUCKET/PREFIX`.
struct MigrateStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-store",
        abstract: "Copy the store's objects and refs (with history) to S3, verify the copy, then use it.",
        discussion: "Objects are written once and re-read, decoded and hash-checked by a full fsck of the copy; refs must then agree. Only after that is .lethe/remote.json updated. The local objects stay in place. The ledger stays where it is.",
        options: [.option("objects", value: "s3://bucket/prefix", help: "Where objects and refs go (keys, region, endpoint from AWS_* variables).")])

    let objects: String
    init(from values: ParsedValues) throws(CommandLineError) {
        guard let o: String = try values.option("objects") else { throw .usage("Missing expected option '--objects <s3://bucket/prefix>'") }
        do { _ = try S3Location(url: o) } catch { throw .usage("The value '\(o)' is invalid for '--objects': expected s3://BUCKET/PREFIX") }
        objects = o
    }

    func run(_ context: CommandContext) throws {
        let explicit = try context.globals.option("store", as: String.self)
        let location = try StoreLocation.find(explicit: explicit)
        let r = try location.migrateObjects(to: objects)
        if context.json {
            context.out(JSONValue.object([
                "objects": .string(objects), "source_objects": .int(r.objects), "copied": .int(r.copied),
                "already_present": .int(r.alreadyPresent), "bytes_copied": .int(r.bytesCopied), "ref_moves": .int(r.refMoves),
                "verified_objects": .int(r.verifiedObjects), "refs": .array(r.refs.map { .string($0) }),
            ]).serialized() + "\n")
        } else {
            context.out("Copied \(r.copied) of \(r.objects) objects (\(formatBytes(r.bytesCopied)); \(r.alreadyPresent) already there) and \(r.refMoves) ref moves to \(objects)\n")
            context.out("verified: \(r.verifiedObjects) objects read back and re-hashed, \(r.refs.count) refs agree; the store now uses \(objects)\n")
        }
    }
}
