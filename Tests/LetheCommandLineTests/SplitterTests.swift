import XCTest
@testable import LetheCommandLine

final class SplitterTests: XCTestCase {
    func testForms() {
        XCTAssertEqual(ArgumentSplitter.split(["--k=v", "--k", "v", "-ab", "x", "--", "--y", "-z"]), [
            .long(name: "k", value: "v"), .long(name: "k", value: nil), .value("v"),
            .short("a", attached: "b"), .short("b", attached: nil), .value("x"),
            .terminator, .value("--y"), .value("-z"),
        ])
    }

    func testNegativeNumbersAndDashAreValues() {
        XCTAssertEqual(ArgumentSplitter.split(["-1", "-0.5", "-"]), [.value("-1"), .value("-0.5"), .value("-")])
    }

    func testEmptyValueWithEquals() {
        XCTAssertEqual(ArgumentSplitter.split(["--m="]), [.long(name: "m", value: "")])
    }
}

/// A small command tree for matcher and help tests.
struct Root: CommandGroup {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "tool", abstract: "A test tool.",
                             subcommands: [Copy.self, Group.self],
                             globalOptions: [.flag("json", help: "Print JSON.")])
    }
}

struct Group: CommandGroup {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "group", abstract: "A group.", subcommands: [Copy.self])
    }
}

struct Copy: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "copy", abstract: "Copy files.",
            arguments: [ArgumentSpec("source", help: "Where from."), ArgumentSpec("extra", help: "More.", optional: true, repeating: true)],
            options: [.option("count", short: "n", value: "n", help: "How many.", default: "1"),
                      .option("out", short: "o", value: "file", help: "Where to.", required: true),
                      .flag("verbose", short: "v", help: "Talk more."),
                      .option("tag", value: "tag", help: "A tag, repeatable.", repeating: true)])
    }
    var source: String, extra: [String], count: Int, out: String, verbose: Bool, tags: [String]
    init(from values: ParsedValues) throws(CommandLineError) {
        source = try values.required("source")
        extra = try values.arguments("extra")
        count = try values.option("count", default: 1)
        out = try values.option("out") ?? ""
        verbose = values.flag("verbose")
        tags = try values.options("tag")
        if count < 1 { throw .usage("--count must be at least 1, got \(count)") }
    }
    func run(_ context: CommandContext) throws {
        context.out("copy \(source) \(extra) n=\(count) out=\(out) v=\(verbose) tags=\(tags) json=\(context.json)\n")
        if source == "fail" { throw Failure() }
    }
    struct Failure: Error, CustomStringConvertible { var description: String { "the copy failed\nsecond line" } }
}

final class RunnerTests: XCTestCase {
    func run(_ args: [String]) -> (Int32, String, String) {
        var out = "", err = ""
        let code = CommandRunner.run(Root.self, arguments: args, out: { out += $0 }, err: { err += $0 })
        return (code, out, err)
    }

    func testDispatchAndTypedValues() {
        let (code, out, err) = run(["copy", "a", "b", "c", "-vn", "3", "--out=x", "--tag", "t1", "--tag=t2", "--json"])
        XCTAssertEqual(code, 0, err)
        XCTAssertEqual(out, "copy a [\"b\", \"c\"] n=3 out=x v=true tags=[\"t1\", \"t2\"] json=true\n")
    }

    func testAttachedShortValue() {
        let (code, out, _) = run(["copy", "a", "-ofile", "-n2"])
        XCTAssertEqual(code, 0)
        XCTAssertEqual(out, "copy a [] n=2 out=file v=false tags=[] json=false\n")
    }

    func testNestedSubcommand() {
        let (code, out, _) = run(["group", "copy", "s", "-o", "d"])
        XCTAssertEqual(code, 0)
        XCTAssertTrue(out.hasPrefix("copy s"))
    }

    func testUnknownOptionIsUsageErrorWithSuggestion() {
        let (code, out, err) = run(["copy", "a", "-o", "x", "--verbse"])
        XCTAssertEqual(code, 64)
        XCTAssertEqual(out, "")
        XCTAssertEqual(err, """
            Error: Unknown option '--verbse'. Did you mean '--verbose'?
            Usage: tool copy <source> [<extra> ...] [--count <n>] --out <file> [--verbose] [--tag <tag> ...]
              See 'tool copy --help' for more information.

            """)
    }

    func testInvalidValueMissingValueMissingArgumentValidation() {
        XCTAssertEqual(run(["copy", "a", "-o", "x", "--count", "many"]).2.split(separator: "\n").first,
                       "Error: The value 'many' is invalid for '--count': expected an integer")
        XCTAssertEqual(run(["copy", "a", "--out"]).2.split(separator: "\n").first, "Error: Missing value for '--out <file>'")
        XCTAssertEqual(run(["copy", "-o", "x"]).2.split(separator: "\n").first, "Error: Missing expected argument '<source>'")
        XCTAssertEqual(run(["copy", "a"]).2.split(separator: "\n").first, "Error: Missing expected argument '--out <file>'")
        XCTAssertEqual(run(["copy", "a", "-o", "x", "-n", "0"]).2.split(separator: "\n").first, "Error: --count must be at least 1, got 0")
        XCTAssertEqual(run(["copy", "a", "-o", "x", "-o", "y"]).2.split(separator: "\n").first, "Error: The option '--out' was given more than once")
        XCTAssertEqual(run(["copy", "a", "-o", "x", "--verbose=yes"]).2.split(separator: "\n").first, "Error: The flag '--verbose' does not take a value")
        XCTAssertEqual(run(["cpy"]).2.split(separator: "\n").first, "Error: Unknown subcommand 'cpy'. Did you mean 'copy'?")
        XCTAssertEqual(run(["copy", "a", "-o", "x", "-q"]).0, 64)
    }

    func testRunFailureIsOneLineExit1AndJSON() {
        let (code, out, err) = run(["copy", "fail", "-o", "x", "--json"])
        XCTAssertEqual(code, 1)
        XCTAssertEqual(err, "Error: the copy failed second line\n")
        XCTAssertTrue(out.hasSuffix("{\"error\":\"the copy failed second line\"}\n"))
    }

    func testHelpGolden() {
        let (code, out, _) = run(["copy", "--help"])
        XCTAssertEqual(code, 0)
        XCTAssertEqual(out, """
            OVERVIEW: Copy files.

            USAGE: tool copy <source> [<extra> ...] [--count <n>] --out <file> [--verbose] [--tag <tag> ...]

            ARGUMENTS:
              <source>                Where from.
              <extra>                 More.

            OPTIONS:
              -n, --count <n>         How many. (default: 1)
              -o, --out <file>        Where to.
              -v, --verbose           Talk more.
              --tag <tag>             A tag, repeatable.
              --json                  Print JSON.
              -h, --help              Show help information.

            """)
        XCTAssertEqual(run(["help", "copy"]).1, out)
        XCTAssertEqual(run(["copy", "-h"]).1, out)
    }

    func testGroupHelpListsSubcommands() {
        let (code, out, _) = run([])
        XCTAssertEqual(code, 0)
        XCTAssertEqual(out, """
            OVERVIEW: A test tool.

            USAGE: tool <subcommand>

            OPTIONS:
              --json                  Print JSON.
              -h, --help              Show help information.

            SUBCOMMANDS:
              copy                    Copy files.
              group                   A group.

              See 'tool help <subcommand>' for detailed help.

            """)
    }

    func testJSONSerializationIsSortedAndEscaped() {
        let v = JSONValue.object(["b": .array([.int(1), .number(0.5), .null]), "a": .string("q\"\n\u{1}")])
        XCTAssertEqual(v.serialized(pretty: false), "{\"a\":\"q\\\"\\n\\u0001\",\"b\":[1,0.5,null]}")
    }

    func testProgressPlainLinesWhenNotATerminal() {
        var lines = ""
        let bar = ProgressBar("train", total: 4, interval: 1000, isTerminal: false, sink: { lines += $0 })
        for i in 1...4 { bar.update(i) }
        XCTAssertEqual(lines, "train: 1/4 (25%)\ntrain: 4/4 (100%)\n")
    }
}
