// libFuzzer target: the argument splitter and matcher never crash on any argv.
// Input bytes are split on NUL into arguments.
import LetheCommandLine
struct FuzzCopy: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "copy", abstract: "Copy.",
                             arguments: [ArgumentSpec("src", help: "From."), ArgumentSpec("rest", help: "More.", optional: true, repeating: true)],
                             options: [.option("count", short: "n", value: "n", help: "N."), .flag("verbose", short: "v", help: "V."),
                                       .option("tag", value: "t", help: "T.", repeating: true)])
    }
    init(from values: ParsedValues) throws(CommandLineError) { _ = try values.option("count", as: Int.self) }
    func run(_ context: CommandContext) throws {}
}

struct FuzzRoot: CommandGroup {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "tool", abstract: "Tool.", subcommands: [FuzzCopy.self],
                             globalOptions: [.flag("json", help: "JSON."), .option("store", value: "dir", help: "Store.")])
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let args = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    _ = ArgumentSplitter.split(args)
    _ = CommandRunner.run(FuzzRoot.self, arguments: args, out: { _ in }, err: { _ in })
    return 0
}
