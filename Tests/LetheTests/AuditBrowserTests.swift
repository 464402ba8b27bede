import Foundation
import XCTest
@testable import Lethe

/// Renders the HTML audit report in a real headless browser (Debian's chromium).
final class AuditBrowserTests: XCTestCase {
    func chromium() throws -> String {
        for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] where FileManager.default.isExecutableFile(atPath: p) { return p }
        throw XCTSkip("chromium is not installed (tools/install-deps --test installs it)")
    }

    func run(_ exe: String, _ args: [String]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testReportRendersWithChartsAndNoScriptErrors() throws {
        let exe = try chromium()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-audit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let page = dir.appendingPathComponent("audit.html")
        try sampleReport().html().write(to: page, atomically: true, encoding: .utf8)
        let common = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                      "--user-data-dir=\(dir.appendingPathComponent("profile").path)", "--enable-logging=stderr", "--v=0"]
        // The DOM after the browser parsed and laid out the page.
        let (domStatus, dom, domLog) = try run(exe, common + ["--dump-dom", page.absoluteString])
        XCTAssertEqual(domStatus, 0, domLog)
        XCTAssertEqual(dom.components(separatedBy: "<svg").count - 1, 8, "every chart is in the rendered DOM")
        XCTAssertTrue(dom.contains("<rect"), "bars are rendered")
        for line in domLog.split(separator: "\n") where line.contains("CONSOLE") || line.contains("Uncaught") {
            XCTFail("browser console: \(line)")
        }
        // A screenshot of the page.
        let shot = dir.appendingPathComponent("audit.png")
        let (status, _, log) = try run(exe, common + ["--window-size=1280,2400", "--screenshot=\(shot.path)", page.absoluteString])
        XCTAssertEqual(status, 0, log)
        let png = try Data(contentsOf: shot)
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG screenshot")
        XCTAssertGreaterThan(png.count, 20_000, "a page with charts is not blank")
        for line in log.split(separator: "\n") where line.contains("Uncaught") { XCTFail("script error: \(line)") }
        if let keep = ProcessInfo.processInfo.environment["LETHE_KEEP_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: shot, to: URL(fileURLWithPath: keep))
        }
    }
}
