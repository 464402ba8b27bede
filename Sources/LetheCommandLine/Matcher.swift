/// The result of matching a command line against a command tree.
public struct MatchedCommand {
    /// The chosen command, root first.
    public var path: [any ParsableCommand.Type]
    /// Values for the chosen (last) command.
    public var values: ParsedValues
    /// Values of the global options, wherever they appeared.
    public var globals: ParsedValues
}

/// A usage error that also knows which command's usage to print.
public struct UsageFailure: Error, @unchecked Sendable {
    /// The command path at the point of failure.
    public var path: [any ParsableCommand.Type]
    /// The error.
    public var error: CommandLineError
}

/// Matches tokens against a command tree: subcommand dispatch, options, positionals.
public enum CommandMatcher {
    /// The built-in help flag.
    public static let helpOption = OptionSpec.flag("help", short: "h", help: "Show help information.")

    /// Matches `arguments` (program name excluded) starting at `root`.
    public static func match(_ root: any ParsableCommand.Type, _ arguments: [String]) throws(UsageFailure) -> MatchedCommand {
        let tokens = ArgumentSplitter.split(arguments)
        let globalSpecs = root.configuration.globalOptions
        var path: [any ParsableCommand.Type] = [root]
        var values = ParsedValues()
        var globals = ParsedValues()
        var rawPositionals: [String] = []
        var i = 0
        var helpAsked = false

        func fail(_ message: String) -> UsageFailure { UsageFailure(path: path, error: .usage(message)) }

        while i < tokens.count {
            let config = path[path.count - 1].configuration
            let specs = config.options
            switch tokens[i] {
            case .terminator:
                i += 1
                while i < tokens.count {
                    if case .value(let v) = tokens[i] { rawPositionals.append(v) }
                    i += 1
                }
                continue
            case .value(let v):
                if rawPositionals.isEmpty, !config.subcommands.isEmpty {
                    if let sub = config.subcommands.first(where: { $0.configuration.commandName == v }) {
                        path.append(sub)
                        values = ParsedValues()
                        i += 1
                        continue
                    }
                    if config.arguments.isEmpty {
                        throw fail("Unknown subcommand '\(v)'\(suggestion(v, among: config.subcommands.map { $0.configuration.commandName }, prefix: ""))")
                    }
                }
                rawPositionals.append(v)
                i += 1
            case .long(let name, let attached):
                if name == helpOption.name { helpAsked = true; i += 1; continue }
                let isGlobal = !specs.contains { $0.name == name } && globalSpecs.contains { $0.name == name }
                guard let spec = specs.first(where: { $0.name == name }) ?? globalSpecs.first(where: { $0.name == name }) else {
                    let known = (specs + globalSpecs + [helpOption]).map(\.name)
                    throw fail("Unknown option '--\(name)'\(suggestion(name, among: known, prefix: "--"))")
                }
                i += 1
                if spec.isFlag {
                    if attached != nil { throw fail("The flag '--\(name)' does not take a value") }
                    if isGlobal { globals.flags.insert(name) } else { values.flags.insert(name) }
                    continue
                }
                var value = attached
                if value == nil, i < tokens.count, case .value(let v) = tokens[i] { value = v; i += 1 }
                guard let value else { throw fail("Missing value for '--\(name) <\(spec.valueName ?? "value")>'") }
                if !spec.repeating, (isGlobal ? globals : values).options[name] != nil {
                    throw fail("The option '--\(name)' was given more than once")
                }
                if isGlobal { globals.options[name, default: []].append(value) } else { values.options[name, default: []].append(value) }
            case .short(let c, let attached):
                if c == helpOption.short { helpAsked = true; i += 1; continue }
                let isGlobal = !specs.contains { $0.short == c } && globalSpecs.contains { $0.short == c }
                guard let spec = specs.first(where: { $0.short == c }) ?? globalSpecs.first(where: { $0.short == c }) else {
                    throw fail("Unknown option '-\(c)'")
                }
                i += 1
                if spec.isFlag {
                    if isGlobal { globals.flags.insert(spec.name) } else { values.flags.insert(spec.name) }
                    continue
                }
                var value: String?
                if let attached {
                    value = attached
                    i += attached.count   // skip the cluster letters the value consumed
                } else if i < tokens.count, case .value(let v) = tokens[i] {
                    value = v; i += 1
                }
                guard let value else { throw fail("Missing value for '-\(c) <\(spec.valueName ?? "value")>'") }
                if !spec.repeating, (isGlobal ? globals : values).options[spec.name] != nil {
                    throw fail("The option '--\(spec.name)' was given more than once")
                }
                if isGlobal { globals.options[spec.name, default: []].append(value) } else { values.options[spec.name, default: []].append(value) }
            }
        }

        if helpAsked { throw UsageFailure(path: path, error: .helpRequested) }

        let config = path[path.count - 1].configuration
        var remaining = rawPositionals[...]
        for arg in config.arguments {
            if arg.repeating {
                if remaining.isEmpty && !arg.optional { throw fail("Missing expected argument '<\(arg.name)>'") }
                values.positionals[arg.name] = Array(remaining)
                remaining = []
            } else if let v = remaining.first {
                values.positionals[arg.name] = [v]
                remaining = remaining.dropFirst()
            } else if !arg.optional {
                throw fail("Missing expected argument '<\(arg.name)>'")
            }
        }
        if let extra = remaining.first { throw fail("Unexpected argument '\(extra)'") }
        for spec in config.options where spec.required && values.options[spec.name] == nil {
            throw fail("Missing expected argument '--\(spec.name) <\(spec.valueName ?? "value")>'")
        }
        return MatchedCommand(path: path, values: values, globals: globals)
    }

    /// ". Did you mean '--json'?" when a known name is within edit distance 2.
    static func suggestion(_ word: String, among names: [String], prefix: String) -> String {
        let scored = names.map { ($0, editDistance(word, $0)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }
        guard let best = scored else { return "" }
        return ". Did you mean '\(prefix)\(best.0)'?"
    }

    /// Levenshtein distance.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        var cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}
