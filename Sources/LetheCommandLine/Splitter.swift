/// One element of a split command line.
public enum ArgumentToken: Equatable, Sendable {
    /// `--name` or `--name=value` (the value only when written with `=`).
    case long(name: String, value: String?)
    /// `-a` or each letter of a cluster `-abc`; `attached` is the rest of the cluster
    /// after this letter (`-ofile` gives `o` with attached `file`), for options that take a value.
    case short(Character, attached: String?)
    /// A positional value (including a lone `-`, which conventionally means stdin/stdout).
    case value(String)
    /// `--`: everything after it is a value.
    case terminator
}

/// Splits raw arguments into tokens, in the spirit of swift-argument-parser's `SplitArguments`.
///
/// `--k=v`, `--k v` (resolved later by the matcher, which knows whether `k` takes a value),
/// `-abc` (a cluster of short flags), `--` (terminator). Everything after `--` is a value.
public enum ArgumentSplitter {
    /// Tokenizes `arguments` (without the program name).
    public static func split(_ arguments: [String]) -> [ArgumentToken] {
        var tokens: [ArgumentToken] = []
        var afterTerminator = false
        for arg in arguments {
            if afterTerminator { tokens.append(.value(arg)); continue }
            if arg == "--" { tokens.append(.terminator); afterTerminator = true; continue }
            if arg.hasPrefix("--") {
                let body = arg.dropFirst(2)
                if let eq = body.firstIndex(of: "=") {
                    tokens.append(.long(name: String(body[..<eq]), value: String(body[body.index(after: eq)...])))
                } else {
                    tokens.append(.long(name: String(body), value: nil))
                }
                continue
            }
            if arg.hasPrefix("-"), arg.count > 1, !isNegativeNumber(arg) {
                let letters = Array(arg.dropFirst())
                for (i, c) in letters.enumerated() {
                    let rest = i + 1 < letters.count ? String(letters[(i + 1)...]) : nil
                    tokens.append(.short(c, attached: rest))
                }
                continue
            }
            tokens.append(.value(arg))
        }
        return tokens
    }

    /// `-1`, `-0.5`, `-1e-3` are values, not short options.
    static func isNegativeNumber(_ s: String) -> Bool {
        Double(s) != nil
    }
}
