import Foundation
import XCTest
@testable import LetheLedger

/// Four hosts (each its own .lethe and read cache) sharing objects and refs in one S3 bucket and
/// the ledger in one PostgreSQL database, importing and reconciling concurrently. Needs both
/// LETHE_S3_TEST_ENV and LETHE_PG_TEST_URL (tools/test starts both servers).
final class ScaleOutCLITests: XCTestCase {
    /// Four hosts initialised on one new bucket and one new database (host 0 creates the ledger,
    /// the others join with its key); the cleanup closure drops the database and directories.
    private func fourHosts() throws -> (env: [String: String], hosts: [URL], cleanup: () -> Void) {
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
        let slash = try XCTUnwrap(server.range(of: "/", options: .backwards))
        let url = server.replacingCharacters(in: slash.upperBound..<(server[slash.upperBound...].firstIndex(of: "?") ?? server.endIndex), with: name)
        let bucket = "s3://lethe-scale-\(UUID().uuidString.prefix(8).lowercased())/team"
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-scale-\(UUID().uuidString)")

        let hosts = (0..<4).map { root.appendingPathComponent("host\($0)") }
        for h in hosts { try FileManager.default.createDirectory(at: h, withIntermediateDirectories: true) }
        let first = try runLethe(["init", "--objects", bucket, "--ledger", url, "--origin", "lethe.test/scale"], cwd: hosts[0], env: env)
        XCTAssertEqual(first.status, 0, first.err)
        let key = hosts[0].appendingPathComponent(".lethe/signing-key.pem").path
        for h in hosts.dropFirst() {
            let r = try runLethe(["init", "--objects", bucket, "--ledger", url, "--signing-key", key], cwd: h, env: env)
            XCTAssertEqual(r.status, 0, r.err)
        }

        let cleanup = {
            try? FileManager.default.removeItem(at: root)
            try? PostgresConnection(url: server).execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        }
        return (env, hosts, cleanup)
    }

    func testFourHostsShareOneBucketAndOneLedger() throws {
        let (env, hosts, cleanup) = try fourHosts()
        defer { cleanup() }
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

    func testFourHostsForgetConcurrentlyOnOneBucketAndOneLedger() throws {
        let (env, hosts, cleanup) = try fourHosts()
        defer { cleanup() }
        func lethe(_ h: URL, _ args: [String]) throws -> (status: Int32, out: String, err: String) { try runLethe(args, cwd: h, env: env) }
        XCTAssertEqual(try lethe(hosts[0], ["train", "--arch", "mlp", "--data", "digits", "--epochs", "3", "--batch-size", "32", "--seed", "1",
                                            "--ref", "prod"]).status, 0)
        let bases = try lethe(hosts[1], ["--json", "bases", "--ref", "prod", "--data", "digits"])
        XCTAssertEqual(bases.status, 0, bases.err)
        let basesVersion = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(bases.out.utf8)) as? [String: Any])?["version"] as? String)
        for w in 0..<4 { XCTAssertEqual(try lethe(hosts[2], ["ref", "set", "p\(w)", "prod", "--reason", "fork"]).status, 0) }
        let ids = try lethe(hosts[3], ["dataset", "--data", "digits", "--ids"]).out.split(separator: "\n").prefix(120).map(String.init)
        for w in 0..<4 {
            try (ids[(w * 30)..<(w * 30 + 30)].joined(separator: "\n") + "\n").write(to: hosts[w].appendingPathComponent("f.txt"), atomically: true, encoding: .utf8)
        }
        let errors = LockedErrors()
        DispatchQueue.concurrentPerform(iterations: 4) { w in
            do {
                let r = try runLethe(["forget", "--ref", "p\(w)", "--data", "digits", "--samples", hosts[w].appendingPathComponent("f.txt").path,
                                      "--max-epochs", "30", "--collapse-margin", "0.03", "--requester", "host-\(w)", "--json"], cwd: hosts[w], env: env)
                if r.status != 0 || !r.out.contains(#""status": "applied""#) { errors.add("host \(w): \(r.status) \(r.err.suffix(300))") }
            } catch { errors.add("host \(w): \(error)") }
        }
        XCTAssertEqual(errors.all, [])
        let requests = try lethe(hosts[0], ["query", "--csv", "SELECT id, requester, status FROM forget_requests ORDER BY id"])
        let rows = requests.out.components(separatedBy: "\r\n").filter { !$0.isEmpty }.dropFirst()
        XCTAssertEqual(rows.map { String($0.split(separator: ",")[0]) }, ["R1", "R2", "R3", "R4"], requests.out + requests.err)
        XCTAssertEqual(Set(rows.map { String($0.split(separator: ",")[1]) }), ["host-0", "host-1", "host-2", "host-3"])
        XCTAssertTrue(rows.allSatisfy { $0.hasSuffix(",applied") }, requests.out)
        for w in 0..<4 {
            // Every host sees every forgotten version through the shared bucket, and the same verified log.
            let v = try lethe(hosts[(w + 1) % 4], ["replay", "p\(w)"])
            XCTAssertEqual(v.status, 0, v.out + v.err)
            let verified = try lethe(hosts[w], ["verify"])
            XCTAssertEqual(verified.status, 0, verified.out + verified.err)
        }
        // The rest of the story across hosts: a rollback past R1 refused, R1 recomputed bit for bit
        // on another host, the audit naming all four requests.
        let refused = try lethe(hosts[3], ["rollback", "p0", basesVersion])
        XCTAssertEqual(refused.status, 1, refused.out)
        XCTAssertTrue(refused.err.contains("refused"), refused.err)
        let recomputed = try lethe(hosts[1], ["replay", "--recompute", "p0", "--data", "digits"])
        XCTAssertEqual(recomputed.status, 0, recomputed.out + recomputed.err)
        let auditPath = hosts[2].appendingPathComponent("audit.json")
        let audit = try lethe(hosts[2], ["audit", "-o", auditPath.path])
        XCTAssertEqual(audit.status, 0, audit.err)
        let report = try String(contentsOf: auditPath, encoding: .utf8)
        for r in ["R1", "R2", "R3", "R4"] { XCTAssertTrue(report.contains("\"\(r)\""), "audit lacks \(r)") }
    }
}
