import Lethe
import LetheCommandLine
import LetheTensor

/// `lethe`: the root of the command tree.
struct LetheCommand: CommandGroup {
    static let configuration = CommandConfiguration(
        commandName: "lethe",
        abstract: "A model-artifact store with a versioned unlearning history.",
        subcommands: [VersionCommand.self, InitCommand.self, ImportCommand.self, ExportCommand.self, LogCommand.self,
                      ShowCommand.self, DiffCommand.self, RefCommand.self, FsckCommand.self, GcCommand.self,
                      TrainCommand.self, DatasetCommand.self, UnlearnCommand.self, BasesCommand.self, ForgetCommand.self,
                      ReplayCommand.self, RollbackCommand.self, AuditCommand.self, CheckpointCommand.self, ProofCommand.self,
                      VerifyCommand.self, QueryCommand.self, MigrateStoreCommand.self, DemoCommand.self],
        globalOptions: [
            .flag("json", help: "Print machine-readable JSON on standard output."),
            .option("store", value: "dir", help: "Use the store at this directory instead of searching upward for .lethe."),
        ])
}

/// `lethe version`.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the version of lethe.")

    init(from values: ParsedValues) throws(CommandLineError) {}

    func run(_ context: CommandContext) throws {
        let threads = BLASThreads.current
        if context.json {
            context.out(JSONValue.object([
                "version": .string(LetheInfo.version),
                "store_format": .int(LetheInfo.storeFormat),
                "blas_threads": .int(threads),
                "blas_kernel": .string(BLASKernel.current),
            ]).serialized() + "\n")
        } else {
            context.out("lethe \(LetheInfo.version) (store format \(LetheInfo.storeFormat), OpenBLAS threads \(threads), kernel \(BLASKernel.current))\n")
        }
    }
}
