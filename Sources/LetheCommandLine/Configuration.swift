/// A named option of a command: `--name VALUE`, or a flag `--name`.
public struct OptionSpec: Sendable, Equatable {
    /// Long name without dashes.
    public var name: String
    /// Optional one-letter alias (`-o`).
    public var short: Character?
    /// Placeholder shown in help (`<file>`); nil for flags.
    public var valueName: String?
    /// One-line help.
    public var help: String
    /// Shown as `(default: ...)` in help.
    public var defaultValue: String?
    /// Whether the option may be given several times.
    public var repeating: Bool
    /// Whether the command requires it.
    public var required: Bool

    /// An option that takes a value.
    public static func option(_ name: String, short: Character? = nil, value: String = "value", help: String,
                              default defaultValue: String? = nil, repeating: Bool = false,
                              required: Bool = false) -> OptionSpec {
        OptionSpec(name: name, short: short, valueName: value, help: help, defaultValue: defaultValue,
                   repeating: repeating, required: required)
    }

    /// A boolean flag.
    public static func flag(_ name: String, short: Character? = nil, help: String) -> OptionSpec {
        OptionSpec(name: name, short: short, valueName: nil, help: help, defaultValue: nil, repeating: false, required: false)
    }

    /// True for flags (no value).
    public var isFlag: Bool { valueName == nil }
}

/// A positional argument.
public struct ArgumentSpec: Sendable, Equatable {
    /// Name shown as `<name>`.
    public var name: String
    /// One-line help.
    public var help: String
    /// Whether it may be omitted.
    public var optional: Bool
    /// Whether it takes all remaining values.
    public var repeating: Bool

    /// A positional argument.
    public init(_ name: String, help: String, optional: Bool = false, repeating: Bool = false) {
        self.name = name; self.help = help; self.optional = optional; self.repeating = repeating
    }
}

/// Static description of a command, as in swift-argument-parser's `CommandConfiguration`.
public struct CommandConfiguration: @unchecked Sendable {
    /// The word that selects it.
    public var commandName: String
    /// One-line summary (OVERVIEW and the parent's SUBCOMMANDS list).
    public var abstract: String
    /// Longer text shown after OVERVIEW.
    public var discussion: String
    /// Positional arguments, in order.
    public var arguments: [ArgumentSpec]
    /// Options and flags specific to this command.
    public var options: [OptionSpec]
    /// Child commands.
    public var subcommands: [any ParsableCommand.Type]
    /// Options accepted by this command and every descendant (root only in practice).
    public var globalOptions: [OptionSpec]

    /// A configuration.
    public init(commandName: String, abstract: String, discussion: String = "",
                arguments: [ArgumentSpec] = [], options: [OptionSpec] = [],
                subcommands: [any ParsableCommand.Type] = [], globalOptions: [OptionSpec] = []) {
        self.commandName = commandName; self.abstract = abstract; self.discussion = discussion
        self.arguments = arguments; self.options = options; self.subcommands = subcommands
        self.globalOptions = globalOptions
    }
}

/// Where a command writes and what the global flags said.
public final class CommandContext: @unchecked Sendable {
    /// `--json` was given: print machine-readable output only.
    public let json: Bool
    /// Every global option value given (e.g. `store`).
    public let globals: ParsedValues
    /// Standard output sink.
    public let out: (String) -> Void
    /// Standard error sink.
    public let err: (String) -> Void

    /// A context.
    public init(json: Bool, globals: ParsedValues, out: @escaping (String) -> Void, err: @escaping (String) -> Void) {
        self.json = json; self.globals = globals; self.out = out; self.err = err
    }
}

/// A command: static configuration, `init(from:)` reads and validates values, `run` acts.
public protocol ParsableCommand {
    /// Name, help, arguments, options and subcommands.
    static var configuration: CommandConfiguration { get }
    /// Reads typed values; throws `CommandLineError.usage` on invalid input (exit 64).
    init(from values: ParsedValues) throws(CommandLineError)
    /// Performs the command. Any thrown error prints one `Error:` line and exits 1
    /// (or the code of a thrown `ExitCode`).
    func run(_ context: CommandContext) throws
}

/// A command that only groups subcommands: running it prints its help.
public protocol CommandGroup: ParsableCommand {
    /// Groups carry no values.
    init()
}

extension CommandGroup {
    public init(from values: ParsedValues) throws(CommandLineError) { self.init() }
    public func run(_ context: CommandContext) throws {
        context.out(HelpFormatter.help(for: [Self.self]))
    }
}
