import Foundation
import XCTest
import LetheTensor

/// Runs the built `lethe` binary as a child process.
func runLethe(_ args: [String], cwd: URL? = nil, env: [String: String] = [:], unsetting: [String] = []) throws -> (status: Int32, out: String, err: String) {
    let exe = productsDirectory.appendingPathComponent("lethe")
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    if let cwd { p.currentDirectoryURL = cwd }
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    for k in unsetting { environment[k] = nil }
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

    /// Without OPENBLAS_CORETYPE, lethe never runs on a generic (pre-AVX2) OpenBLAS kernel when
    /// the CPU has AVX2 (it restarts itself with a better one); a kernel the user names is kept.
    func testLetheRunsOnTheBestOpenBLASKernelUnlessTheUserChoseOne() throws {
        let flags = BLASKernel.cpuFlags(cpuinfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
        let auto = try runLethe(["version", "--json"], unsetting: ["OPENBLAS_CORETYPE"])
        XCTAssertEqual(auto.status, 0, auto.err)
        let kernel = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(auto.out.utf8)) as? [String: Any])?["blas_kernel"] as? String)
        if BLASKernel.preferred(cpuFlags: flags) != nil {
            XCTAssertFalse(BLASKernel.generic.contains(kernel), "lethe ran on OpenBLAS's generic \(kernel) kernel on a CPU with AVX2")
        }
        let chosen = try runLethe(["version"], env: ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(chosen.status, 0, chosen.err)
        XCTAssertTrue(chosen.out.hasSuffix("kernel Prescott)\n"), chosen.out)
    }

    func testRootHelpListsSubcommands() throws {
        let r = try runLethe(["--help"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.out.hasPrefix("OVERVIEW: A model-artifact store with a versioned unlearning history.\n\nUSAGE: lethe <subcommand>\n"))
        XCTAssertTrue(r.out.contains("\nSUBCOMMANDS:\n"))
        XCTAssertTrue(r.out.contains("  version                 Print the version of lethe.\n"))
    }
}
