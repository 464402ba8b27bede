import Foundation
import XCTest
@testable import LetheLedger

/// Four hosts (each its own .lethe and read cache) sharing objects and refs in one S3 bucket and
/// the ledger in one PostgreSQL database, importing and reconciling concurrently. Needs both
/// LETHE_S3_TEST_ENV and LETHE_PG_TEST_URL (tools/test starts both servers).
final class ScaleOutCLITests: XCTestCase {
    func testFourHostsShareOneBucketAndOneLedger() throws {
        guard let envPath = ProcessInfo.processInfo.environment["LETHE_S3_TEST_ENV"], !envPath.isEmpty else {
            throw XCTSkip("LETHE_S3_TEST_ENV is not set: no S3 server (tools/test starts Ceph RGW with tools/scaleout/start-rgw and sets it)")
        }
        guard let server = ProcessInfo.processInfo.environment["LETHE_PG_TEST_URL"], !server.isEmpty else {
            throw XCTSkip("LETHE_PG_TEST_URL is not set: no PostgreSQL test server (tools/test starts one with tools/scaleout/start-postgres)")
        }
        var env: [String: String] = [:]
        for line in try String(contentsOfFile: envPath, encoding: .utf8).split(separator: "\n") {
            if let eq = line.firstIndex(of: "=") { env[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
        let name = "lethe_scale_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
        try PostgresConnection(url: server).execute("CREATE DATABASE \(name)")
        defer { try? PostgresConnection(url: server).execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        let slash = try XCTUnwrap(server.range(of: "/", options: .backwards))
        let url = server.replacingCharacters(in: slash.upperBound..<(server[slash.upperBound...].firstIndex(of: "?") ?? server.endIndex), with: name)
        let bucket = "s3://lethe-scale-\(UUID().uuidString.prefix(8).lowercased())/team"
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-scale-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }

        let hosts = (0..<4).map { root.appendingPathComponent("host\($0)") }
        for h in hosts { try FileManager.default.createDirectory(at: h, withIntermediateDirectories: true) }
        let first = try runLethe(["init", "--objects", bucket, "--ledger", url, "--origin", "lethe.test/scale"], cwd: hosts[0], env: env)
        XCTAssertEqual(first.status, 0, first.err)
        let key = hosts[0].appendingPathComponent(".lethe/signing-key.pem").path
        for h in hosts.dropFirst() {
            let r = try runLethe(["init", "--objects", bucket, "--ledger", url, "--signing-key", key], cwd: h, env: env)
            XCTAssertEqual(r.status, 0, r.err)
        }

        let each = 3
        let errors = LockedErrors()
        let environment = env
        DispatchQueue.concurrentPerform(iterations: hosts.count) { w in
            for i in 0..<each {
                let file = hosts[w].appendingPathComponent("w\(i).safetensors")
                do {
                    try PostgresCLITests.weights([Float(w), Float(i), 0.25], at: file)
                    for args in [["import", file.path, "--ref", "h\(w)"], ["gc", "--dry-run"]] {
                        let r = try runLethe(args, cwd: hosts[w], env: environment)
                        if r.status != 0 { errors.add("host \(w) \(args[0]): \(r.err)") }
                    }
                } catch { errors.add("host \(w): \(error)") }
            }
        }
        XCTAssertEqual(errors.all, [])
        XCTAssertEqual(try runLethe(["gc", "--dry-run"], cwd: hosts[0], env: env).status, 0)

        // Every version once in the one log; every ref where the shared bucket says; verified from any host.
        let counts = try runLethe(["query", "--csv", "SELECT subject, count(*) AS n FROM ledger_entries WHERE kind = 'version.recorded' GROUP BY subject"],
                                  cwd: hosts[3], env: env)
        let rows = counts.out.components(separatedBy: "\r\n").filter { !$0.isEmpty }.dropFirst()
        XCTAssertEqual(rows.count, hosts.count * each, counts.out + counts.err)
        XCTAssertTrue(rows.allSatisfy { $0.hasSuffix(",1") }, counts.out)
        for w in 0..<hosts.count {
            let ledger = try runLethe(["query", "--csv", "SELECT version FROM refs WHERE name = :r", "--param", "r=h\(w)"], cwd: hosts[(w + 1) % 4], env: env)
            let id = ledger.out.components(separatedBy: "\r\n").filter { !$0.isEmpty }.last ?? ""
            XCTAssertEqual(id.count, 64, ledger.out + ledger.err)
            let shown = try runLethe(["show", "h\(w)", "--json"], cwd: hosts[(w + 2) % 4], env: env)
            XCTAssertTrue(shown.out.contains(id), "ref h\(w): ledger \(id), store \(shown.out.prefix(200))")
        }
        for h in hosts {
            let v = try runLethe(["verify"], cwd: h, env: env)
            XCTAssertEqual(v.status, 0, v.out + v.err)
        }
    }
}
