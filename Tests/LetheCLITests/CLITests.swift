import Foundation
import XCTest

/// Runs the built `lethe` binary as a child process.
func runLethe(_ args: [String], cwd: URL? = nil, env: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let exe = productsDirectory.appendingPathComponent("lethe")
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    if let cwd { p.currentDirectoryURL = cwd }
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let outPipe = Pipe(), errPipe = Pipe()
    p.standardOutput = outPipe; p.standardError = errPipe
    try p.run()
    let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
    let errData = errPipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// The directory holding the built products (`.build/debug`).
var productsDirectory: URL {
    Bundle.main.bundleURL.lastPathComponent.hasSuffix(".xctest")
        ? Bundle.main.bundleURL.deletingLastPathComponent()
        : URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
}

final class CLITests: XCTestCase {
    func testMisspelledOptionExits64WithOneClearLine() throws {
        let r = try runLethe(["version", "--jsn"])
        XCTAssertEqual(r.status, 64)
        XCTAssertEqual(r.out, "")
        XCTAssertEqual(r.err.split(separator: "\n").first, "Error: Unknown option '--jsn'. Did you mean '--json'?")
    }

    func testVersionJSON() throws {
        let r = try runLethe(["version", "--json"])
        XCTAssertEqual(r.status, 0)
        let obj = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
        XCTAssertEqual(obj?["version"] as? String, "0.1.0")
        XCTAssertEqual(try schemaValidator.validate(try XCTUnwrap(JSONDoc.parse(r.out)), against: "version.schema.json"), [])
    }

    func testRootHelpListsSubcommands() throws {
        let r = try runLethe(["--help"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.out.hasPrefix("OVERVIEW: A model-artifact store with a versioned unlearning history.\n\nUSAGE: lethe <subcommand>\n"))
        XCTAssertTrue(r.out.contains("\nSUBCOMMANDS:\n"))
        XCTAssertTrue(r.out.contains("  version                 Print the version of lethe.\n"))
    }
}
