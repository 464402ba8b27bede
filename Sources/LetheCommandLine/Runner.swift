#if canImport(Glibc)
import Glibc
#endif

/// Parses, dispatches and runs a command tree, turning every failure into an exit status.
///
/// - usage errors: `Error: <one line>` + usage on stderr, status 64;
/// - `--help` / `help <subcommand>`: help on stdout, status 0;
/// - errors thrown by `run`: `Error: <one line>` on stderr (and `{"error": ...}` on
///   stdout under `--json`), status 1, or the status of a thrown `ExitCode`.
public enum CommandRunner {
    /// Runs `root` with `arguments` (program name excluded) and returns the exit status.
    public static func run(_ root: any ParsableCommand.Type, arguments: [String],
                           out: @escaping (String) -> Void, err: @escaping (String) -> Void) -> Int32 {
        var arguments = arguments
        // `lethe help [subcommand...]` is `lethe [subcommand...] --help`.
        if arguments.first == "help" { arguments = Array(arguments.dropFirst()) + ["--help"] }
        let matched: MatchedCommand
        do {
            matched = try CommandMatcher.match(root, arguments)
        } catch {
            switch error.error {
            case .helpRequested:
                out(HelpFormatter.help(for: error.path))
                return 0
            case .usage(let message):
                err(HelpFormatter.usageError(message, path: error.path))
                return ExitCode.usage.rawValue
            }
        }
        let json = matched.globals.flag("json")
        let type = matched.path[matched.path.count - 1]
        let command: any ParsableCommand
        do {
            command = try type.init(from: matched.values)
        } catch {
            if case .usage(let message) = error {
                err(HelpFormatter.usageError(message, path: matched.path))
                return ExitCode.usage.rawValue
            }
            out(HelpFormatter.help(for: matched.path))
            return 0
        }
        let context = CommandContext(json: json, globals: matched.globals, out: out, err: err)
        do {
            try command.run(context)
            return 0
        } catch let code as ExitCode {
            return code.rawValue
        } catch let error as CommandLineError {
            if case .usage(let message) = error {
                err(HelpFormatter.usageError(message, path: matched.path))
                return ExitCode.usage.rawValue
            }
            return 0
        } catch {
            let line = oneLine(error)
            err("Error: \(line)\n")
            if json { out(JSONValue.object(["error": .string(line)]).serialized(pretty: false) + "\n") }
            return ExitCode.failure.rawValue
        }
    }

    /// Runs with the process's arguments and standard streams, then exits.
    public static func main(_ root: any ParsableCommand.Type) -> Never {
        let status = run(root, arguments: Array(CommandLine.arguments.dropFirst()),
                         out: { StandardStream.write($0, fd: 1) },
                         err: { StandardStream.write($0, fd: 2) })
        exit(status)
    }

    /// An error as a single line (newlines folded).
    public static func oneLine(_ error: any Error) -> String {
        let text = (error as? CustomStringConvertible)?.description ?? String(describing: error)
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// Writes strings to file descriptors, unbuffered (`write(2)`), so stdout and stderr interleave in order.
public enum StandardStream {
    /// Writes all of `text` to descriptor `fd` (1 = stdout, 2 = stderr), retrying short writes.
    public static func write(_ text: String, fd: Int32) {
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, base + offset, raw.count - offset)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                offset += n
            }
        }
    }

    /// Whether standard error is a terminal (`isatty(2)`).
    public static var stderrIsTerminal: Bool { isatty(2) == 1 }
}
