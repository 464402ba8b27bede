/// Errors of the command line, each printed as one clear line.
public enum CommandLineError: Error, Equatable, Sendable {
    /// Bad usage (unknown option, missing value, invalid value): exit 64 with usage.
    case usage(String)
    /// `--help` was asked for: print help, exit 0.
    case helpRequested
}

/// An exit code a command may throw to end with a specific status and no message.
public struct ExitCode: Error, Sendable, Equatable {
    /// The process status.
    public let rawValue: Int32
    /// An exit code.
    public init(_ rawValue: Int32) { self.rawValue = rawValue }
    /// 0.
    public static let success = ExitCode(0)
    /// 1: the command ran and failed.
    public static let failure = ExitCode(1)
    /// 64 (EX_USAGE): the command line was wrong.
    public static let usage = ExitCode(64)
}

/// A value that can be parsed from one command-line word, with a description for errors.
public protocol ExpressibleByArgument {
    /// Parses the word or returns nil.
    init?(argument: String)
    /// What was expected, for the error line ("an integer").
    static var expectation: String { get }
}

extension Int: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public static var expectation: String { "an integer" }
}
extension UInt64: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public static var expectation: String { "a non-negative integer" }
}
extension Double: ExpressibleByArgument {
    public init?(argument: String) {
        guard let v = Double(argument), v.isFinite else { return nil }
        self = v
    }
    public static var expectation: String { "a number" }
}
extension Float: ExpressibleByArgument {
    public init?(argument: String) {
        guard let v = Float(argument), v.isFinite else { return nil }
        self = v
    }
    public static var expectation: String { "a number" }
}
extension String: ExpressibleByArgument {
    public init?(argument: String) { self = argument }
    public static var expectation: String { "a string" }
}

/// The values matched for one command (plus the global options seen anywhere).
public struct ParsedValues: Sendable {
    /// Option values by long name, in command-line order.
    public internal(set) var options: [String: [String]] = [:]
    /// Flags given, by long name.
    public internal(set) var flags: Set<String> = []
    /// Positional values by argument name (repeating arguments collect several).
    public internal(set) var positionals: [String: [String]] = [:]

    /// An empty set of values.
    public init() {}

    /// Whether a flag was given.
    public func flag(_ name: String) -> Bool { flags.contains(name) }

    /// The last value of an option, parsed, or nil when absent.
    public func option<T: ExpressibleByArgument>(_ name: String, as type: T.Type = T.self) throws(CommandLineError) -> T? {
        guard let raw = options[name]?.last else { return nil }
        return try parse(raw, as: T.self, label: "--\(name)")
    }

    /// The value of an option or a default.
    public func option<T: ExpressibleByArgument>(_ name: String, default value: T) throws(CommandLineError) -> T {
        try option(name, as: T.self) ?? value
    }

    /// Every value of a repeating option, parsed.
    public func options<T: ExpressibleByArgument>(_ name: String, as type: T.Type = T.self) throws(CommandLineError) -> [T] {
        var out: [T] = []
        for raw in options[name] ?? [] { out.append(try parse(raw, as: T.self, label: "--\(name)")) }
        return out
    }

    /// A positional argument's value, parsed, or nil when absent.
    public func argument<T: ExpressibleByArgument>(_ name: String, as type: T.Type = T.self) throws(CommandLineError) -> T? {
        guard let raw = positionals[name]?.first else { return nil }
        return try parse(raw, as: T.self, label: "<\(name)>")
    }

    /// All values of a repeating positional argument.
    public func arguments<T: ExpressibleByArgument>(_ name: String, as type: T.Type = T.self) throws(CommandLineError) -> [T] {
        var out: [T] = []
        for raw in positionals[name] ?? [] { out.append(try parse(raw, as: T.self, label: "<\(name)>")) }
        return out
    }

    /// A required positional argument (the matcher already checked presence).
    public func required<T: ExpressibleByArgument>(_ name: String, as type: T.Type = T.self) throws(CommandLineError) -> T {
        guard let v = try argument(name, as: T.self) else { throw .usage("Missing expected argument '<\(name)>'") }
        return v
    }

    private func parse<T: ExpressibleByArgument>(_ raw: String, as: T.Type, label: String) throws(CommandLineError) -> T {
        guard let v = T(argument: raw) else {
            throw .usage("The value '\(raw)' is invalid for '\(label)': expected \(T.expectation)")
        }
        return v
    }
}
