/// Renders help and usage text in swift-argument-parser's layout.
public enum HelpFormatter {
    static let labelWidth = 24

    /// The command path as words (`lethe ref set`).
    public static func commandName(_ path: [any ParsableCommand.Type]) -> String {
        path.map { $0.configuration.commandName }.joined(separator: " ")
    }

    /// The one-line usage (`lethe import <file> [--spec <spec>]`).
    public static func usage(for path: [any ParsableCommand.Type]) -> String {
        let config = path[path.count - 1].configuration
        var parts = [commandName(path)]
        if !config.subcommands.isEmpty && config.arguments.isEmpty { parts.append("<subcommand>") }
        for arg in config.arguments {
            var s = "<\(arg.name)>"
            if arg.repeating { s += " ..." }
            parts.append(arg.optional ? "[\(s)]" : s)
        }
        for opt in config.options {
            var s = "--\(opt.name)"
            if let v = opt.valueName { s += " <\(v)>" }
            if opt.repeating { s += " ..." }
            parts.append(opt.required ? s : "[\(s)]")
        }
        return parts.joined(separator: " ")
    }

    /// The full help page: OVERVIEW, USAGE, ARGUMENTS, OPTIONS, SUBCOMMANDS.
    public static func help(for path: [any ParsableCommand.Type]) -> String {
        let root = path[0].configuration
        let config = path[path.count - 1].configuration
        var lines: [String] = []
        lines.append("OVERVIEW: \(config.abstract)")
        if !config.discussion.isEmpty { lines.append(""); lines.append(config.discussion) }
        lines.append("")
        lines.append("USAGE: \(usage(for: path))")
        if !config.arguments.isEmpty {
            lines.append("")
            lines.append("ARGUMENTS:")
            for arg in config.arguments { lines.append(contentsOf: row("<\(arg.name)>", arg.help)) }
        }
        lines.append("")
        lines.append("OPTIONS:")
        for opt in config.options + root.globalOptions + [CommandMatcher.helpOption] {
            var label = opt.short.map { "-\($0), " } ?? ""
            label += "--\(opt.name)"
            if let v = opt.valueName { label += " <\(v)>" }
            var text = opt.help
            if let d = opt.defaultValue { text += " (default: \(d))" }
            lines.append(contentsOf: row(label, text))
        }
        if !config.subcommands.isEmpty {
            lines.append("")
            lines.append("SUBCOMMANDS:")
            for sub in config.subcommands {
                lines.append(contentsOf: row(sub.configuration.commandName, sub.configuration.abstract))
            }
            lines.append("")
            lines.append("  See '\(root.commandName) help <subcommand>' for detailed help.")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The text printed for a usage error: one `Error:` line, usage, and a pointer to help.
    public static func usageError(_ message: String, path: [any ParsableCommand.Type]) -> String {
        "Error: \(message)\nUsage: \(usage(for: path))\n  See '\(commandName(path)) --help' for more information.\n"
    }

    static func row(_ label: String, _ text: String) -> [String] {
        let padded = "  " + label
        if label.count <= labelWidth - 2 {
            return [padded + String(repeating: " ", count: labelWidth + 2 - padded.count) + text]
        }
        return [padded, String(repeating: " ", count: labelWidth + 2) + text]
    }
}
