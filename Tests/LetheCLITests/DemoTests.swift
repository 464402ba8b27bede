import Foundation
import XCTest

/// `lethe demo` (the README's main job) on digits: the whole story runs, the summary shows what the
/// story promises, and the store it leaves passes fsck and verify.
final class DemoTests: XCTestCase {
    func testDemoOnDigitsTellsTheWholeStory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-demo-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runLethe(["demo", "--dir", dir.path, "--data", "digits", "--arch", "mlp", "--epochs", "20",
                              "--forget", "60", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.err)
        // Steps in order on stderr.
        let steps = ["lethe init", "lethe train", "lethe bases", "lethe forget R1", "lethe forget R2", "lethe verify",
                     "lethe audit", "lethe rollback", "lethe replay", "lethe query"]
        var cursor = r.err.startIndex
        for s in steps {
            let found = try XCTUnwrap(r.err.range(of: "== " + s, range: cursor..<r.err.endIndex), "step \(s) missing or out of order")
            cursor = found.upperBound
        }
        // The summary: both requests applied, rollback refused, verify ok, replay ok.
        let all = r.out.split(separator: "\n").map(String.init)
        let lines = Array(all.drop { $0 != "Summary" })
        XCTAssertFalse(lines.isEmpty, "no summary")
        func row(_ name: String) -> String { lines.first { $0.hasPrefix(name + " ") } ?? "" }
        XCTAssertTrue(row("R1").contains("applied: 60 samples"), row("R1"))
        XCTAssertTrue(row("R2").contains("applied"), row("R2"))
        XCTAssertTrue(row("rollback").contains("refused"), row("rollback"))
        XCTAssertTrue(row("verify").contains("ok:"), row("verify"))
        XCTAssertTrue(row("replay").contains("ok: 4 versions"), row("replay"))
        // Metrics: R2's class falls to the class target; R1's forget accuracy does not rise.
        func metric(_ request: String, _ label: String) -> (Double, Double)? {
            guard let l = lines.first(where: { $0.hasPrefix(request) && $0.contains(label) }) else { return nil }
            let nums = l.split(separator: " ").compactMap { Double($0) }
            return nums.count >= 2 ? (nums[nums.count - 2], nums[nums.count - 1]) : nil
        }
        let r2 = try XCTUnwrap(metric("R2", "accuracy on the forgotten samples"))
        XCTAssertGreaterThan(r2.0, 0.9)
        XCTAssertLessThanOrEqual(r2.1, 0.05)
        let r1 = try XCTUnwrap(metric("R1", "accuracy on the forgotten samples"))
        XCTAssertLessThanOrEqual(r1.1, r1.0)
        // Reports exist and the store is consistent.
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("audit.html").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("audit.json").path))
        XCTAssertTrue(lines.last?.hasPrefix("Store: \(dir.path)/.lethe") ?? false, lines.last ?? "")
        XCTAssertEqual(try runLethe(["--store", dir.path, "fsck"]).status, 0)
        XCTAssertEqual(try runLethe(["--store", dir.path, "verify"]).status, 0)
        // A second demo into the same directory is refused before anything changes.
        let again = try runLethe(["demo", "--dir", dir.path, "--data", "digits", "--arch", "mlp"])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.err.contains("already holds a store"), again.err)
    }
}
