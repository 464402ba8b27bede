import Foundation
import XCTest

/// Concurrency (issue 9, item 2): four processes against one store at once — forget requests on
/// two refs, imports with ref moves, and queries with verify and audit. Afterwards every request
/// is in the ledger exactly once and applied, the Merkle log verifies, the store is clean, store
/// and ledger agree on every ref, and no command failed (none saw a raw SQLITE_BUSY).
final class ReliabilityConcurrencyTests: XCTestCase {
    func testForgetsImportsRefMovesAndQueriesAtOnce() throws {
        let s = try EngineStore()
        let (_, bases) = try EngineStoryTests.prepare(s)
        try s.expect(0, ["ref", "set", "prod2", bases, "--reason", "second line of forgets"])
        let ids = EngineStoryTests.trainIDs
        let forgets = 3, perRequest = 15
        var files: [[String]] = [[], []]
        var named: [String: [Int]] = [:]
        for line in 0..<2 {
            for k in 0..<forgets {
                let start = (line * forgets + k) * perRequest
                let chunk = Array(ids[start..<(start + perRequest)])
                let f = try s.idFile("l\(line)-\(k).txt", chunk)
                files[line].append(f)
                named[f] = chunk
            }
        }
        var rng = SplitMix64(seed: 99)
        for k in 0..<3 {
            try Data(safetensorsFile([("w", 50_000 + k), ("b", 10)], rng: &rng)).write(to: s.root.appendingPathComponent("imp\(k).safetensors"))
        }
        let exe = productsDirectory.appendingPathComponent("lethe").path
        let forget = "\"$0\" --store \"$1\" forget --data digits --gamma 0.5 --max-epochs 40 --collapse-margin 0.03"
        func quoted(_ paths: [String]) -> String { paths.map { "'\($0)'" }.joined(separator: " ") }
        let scripts = [
            "for f in \(quoted(files[0])); do \(forget) --ref prod --samples \"$f\" >/dev/null || exit 1; done",
            "for f in \(quoted(files[1])); do \(forget) --ref prod2 --samples \"$f\" >/dev/null || exit 1; done",
            """
            for k in 0 1 2; do
              "$0" --store "$1" import "$1/imp$k.safetensors" --ref "imp$k" >/dev/null || exit 1
              "$0" --store "$1" ref set staging "imp$k" --reason "promote $k" >/dev/null || exit 1
              "$0" --store "$1" ref set staging prod --reason "back to prod" >/dev/null || exit 1
            done
            """,
            """
            for k in 1 2 3 4 5 6; do
              "$0" --store "$1" query "SELECT id, status FROM forget_requests" >/dev/null || exit 1
              "$0" --store "$1" verify >/dev/null || exit 1
              "$0" --store "$1" audit --format json >/dev/null || exit 1
            done
            """,
        ]
        var processes: [(Process, URL)] = []
        for (n, script) in scripts.enumerated() {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", script, exe, s.root.path]
            let log = s.root.appendingPathComponent("p\(n).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: log)
            p.standardOutput = FileHandle.nullDevice
            processes.append((p, log))
        }
        for (p, _) in processes { try p.run() }
        for (n, (p, log)) in processes.enumerated() {
            p.waitUntilExit()
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            XCTAssertEqual(p.terminationStatus, 0, "process \(n) failed: \(text)")
            for bad in ["database is locked", "SQLITE_BUSY", "busy", "moved concurrently", "disagree"] {
                XCTAssertFalse(text.contains(bad), "process \(n): \(text)")
            }
        }
        // One last engine command reconciles the store refs the import process moved.
        try s.expect(0, ["gc", "--dry-run"])
        XCTAssertNil(try s.integrityProblem())
        let requests = try s.query("SELECT id, status, ref, sample_count FROM forget_requests ORDER BY id")
        XCTAssertEqual(requests.count, 2 * forgets, "\(requests)")
        XCTAssertEqual(Set(requests.compactMap { $0["id"] as? String }).count, 2 * forgets, "distinct ids")
        XCTAssertEqual(requests.filter { $0["status"] as? String == "applied" }.count, 2 * forgets)
        XCTAssertEqual(requests.filter { $0["ref"] as? String == "prod" }.count, forgets)
        XCTAssertEqual(requests.filter { $0["ref"] as? String == "prod2" }.count, forgets)
        // Every file's samples were forgotten by exactly one request.
        let samples = try s.query("SELECT request, sample_id FROM forgotten_samples")
        var byRequest: [String: Set<Int>] = [:]
        for r in samples { if let q = r["request"] as? String, let id = (r["sample_id"] as? String).flatMap(Int.init) { byRequest[q, default: []].insert(id) } }
        for (f, chunk) in named {
            XCTAssertEqual(byRequest.values.filter { $0 == Set(chunk) }.count, 1, "\(f): forgotten by exactly one request")
        }
        XCTAssertEqual(samples.count, 2 * forgets * perRequest)
        // Store and ledger agree on every ref; each ref's ledger history has no duplicated move.
        for name in ["prod", "prod2", "staging", "imp0", "imp1", "imp2"] {
            XCTAssertEqual(try s.query("SELECT version FROM refs WHERE name = '\(name)'").first?["version"] as? String, s.storeRef(name), name)
        }
        let moves = try s.query("SELECT ref, old_version, new_version FROM ref_history ORDER BY move")
        var seen = Set<String>()
        for m in moves {
            let key = "\(m["ref"] ?? "") \(m["old_version"] ?? "nil") \(m["new_version"] ?? "")"
            XCTAssertTrue(seen.insert(key).inserted, "ledger move recorded twice: \(key)")
        }
        XCTAssertEqual(try s.run(["audit", "--format", "json"]).status, 0)
    }
}
