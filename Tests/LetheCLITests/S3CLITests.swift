import Foundation
import XCTest

/// `lethe` on a store whose objects and refs live in S3 (Ceph RGW in CI), several hosts
/// simulated by separate `.lethe` directories (separate caches and ledgers) on one bucket.
/// Skipped without `LETHE_S3_TEST_ENV` (the env file `tools/scaleout/start-rgw` writes).
final class S3CLITests: XCTestCase {
    var env: [String: String] = [:]
    var root: URL!
    var remote = ""

    override func setUpWithError() throws {
        guard let path = ProcessInfo.processInfo.environment["LETHE_S3_TEST_ENV"], !path.isEmpty else {
            throw XCTSkip("LETHE_S3_TEST_ENV is not set: no S3 server (tools/test starts Ceph RGW with tools/scaleout/start-rgw and sets it)")
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for line in text.split(separator: "\n") {
            if let eq = line.firstIndex(of: "=") { env[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
        root = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-s3cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        remote = "s3://lethe-cli-\(UUID().uuidString.prefix(8).lowercased())/team"
    }

    override func tearDown() { if let root { try? FileManager.default.removeItem(at: root) } }

    /// A host: its own directory with `.lethe` pointing at the shared remote.
    func host(_ name: String) throws -> URL {
        let dir = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let r = try runLethe(["init", "--objects", remote], cwd: dir, env: env)
        XCTAssertEqual(r.status, 0, r.err)
        return dir
    }

    @discardableResult
    func lethe(_ dir: URL, _ args: String..., status: Int32 = 0) throws -> String {
        let r = try runLethe(args, cwd: dir, env: env)
        XCTAssertEqual(r.status, status, "lethe \(args.joined(separator: " ")): \(r.err)")
        return r.out
    }

    /// A safetensors file: a tensor common to every model (deduplicated across hosts) and one of its own.
    func model(_ seed: UInt64, floats: Int = 200_000) throws -> URL {
        func values(_ n: Int, _ seed: UInt64) -> [Float] {
            var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
            return (0..<n).map { _ in
                s = s &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int32(truncatingIfNeeded: s >> 32)) / Float(Int32.max) * 0.05
            }
        }
        let common = values(floats, 1), own = values(floats, seed + 100)
        let data = Data(safetensorsBytes([("common", common), ("own", own)]))
        let url = root.appendingPathComponent("model-\(seed).safetensors")
        try data.write(to: url)
        return url
    }

    func testImportExportAcrossHostsOnS3() throws {
        let a = try host("a"), b = try host("b")
        XCTAssertEqual(try String(contentsOf: a.appendingPathComponent(".lethe/remote.json"), encoding: .utf8), "{\"objects\": \"\(remote)\"}\n")
        let file = try model(1)
        try lethe(a, "import", file.path, "--ref", "prod", "-m", "from a")
        // Host b sees the ref and reads the same bytes through its own cache.
        XCTAssertTrue(try lethe(b, "ref", "list").contains("prod"))
        let out = root.appendingPathComponent("out.safetensors")
        try lethe(b, "export", "prod", "-o", out.path)
        XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: file))
        let cached = try FileManager.default.subpathsOfDirectory(atPath: b.appendingPathComponent(".lethe/cache/objects").path)
            .filter { !$0.contains("/.tmp") && $0.count == 65 }
        XCTAssertGreaterThanOrEqual(cached.count, 3)
        // Nothing local: b's objects/ and refs/ directories stay empty.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: b.appendingPathComponent(".lethe/objects").path), [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: a.appendingPathComponent(".lethe/refs").path), [])
        XCTAssertTrue(try lethe(b, "fsck").contains("ok"))
        // gc on b (through the engine) adopts the S3 ref into b's ledger and keeps everything prod reaches.
        try lethe(b, "gc", "--prune=now")
        try lethe(b, "verify")
        let recorded = try lethe(b, "query", "SELECT ref, new_version FROM ref_history")
        XCTAssertTrue(recorded.contains("prod"), recorded)
        try lethe(a, "export", "prod", "-o", out.path)
        XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: file))
    }

    /// Four processes, four hosts (separate caches), one bucket: all import at once to their own
    /// ref and to one shared ref. Every version lands whole, the shared ref's history is one
    /// chain of four moves (none lost), and fsck is clean.
    func testFourConcurrentImportersOnOneBucket() throws {
        let hosts = try (0..<4).map { try host("h\($0)") }
        let files = try (0..<4).map { try model(UInt64($0) + 10) }
        let exe = productsDirectory.appendingPathComponent("lethe")
        func start(_ i: Int, _ ref: String) throws -> Process {
            let p = Process()
            p.executableURL = exe
            p.arguments = ["import", files[i].path, "--ref", ref, "--no-parent", "-m", "host \(i)"]
            p.currentDirectoryURL = hosts[i]
            p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        for round in ["own", "shared"] {
            let ps = try (0..<4).map { try start($0, round == "own" ? "r\($0)" : "shared") }
            for p in ps { p.waitUntilExit(); XCTAssertEqual(p.terminationStatus, 0) }
        }
        let h = hosts[0]
        let list = try lethe(h, "ref", "list")
        for i in 0..<4 { XCTAssertTrue(list.contains("r\(i)"), list) }
        for i in 0..<4 {
            let out = root.appendingPathComponent("check-\(i).safetensors")
            try lethe(hosts[(i + 1) % 4], "export", "r\(i)", "-o", out.path)
            XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: files[i]), "r\(i)")
        }
        let history = try lethe(h, "ref", "history", "shared", "--json")
        let moves = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(history.utf8)) as? [[String: Any]])
        XCTAssertEqual(moves.count, 4, history)
        for (x, y) in zip(moves, moves.dropFirst()) { XCTAssertEqual(y["old"] as? String, x["new"] as? String, history) }
        XCTAssertEqual(Set(moves.compactMap { $0["reason"] as? String }).count, 4)
        XCTAssertTrue(try lethe(h, "fsck").contains("ok"))
    }

    /// The engine's story with objects and refs on S3 (ledger local): train, bases, a forget
    /// request, a refused rollback, a bit-identical replay, audit and verify; the ref history on
    /// S3 holds each engine move, and another host reads the unlearned version.
    func testEngineStoryOnS3() throws {
        let h = try host("engine")
        let train = try lethe(h, "train", "--arch", "mlp", "--data", "digits", "--epochs", "3", "--batch-size", "32", "--seed", "1",
                              "--ref", "prod", "--json")
        let trained = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(train.utf8)) as? [String: Any])?["version"] as? String)
        try lethe(h, "bases", "--ref", "prod", "--data", "digits")
        let ids = try lethe(h, "dataset", "--data", "digits", "--ids", "--sample", "40")
        let idFile = root.appendingPathComponent("forget.txt")
        try ids.write(to: idFile, atomically: true, encoding: .utf8)
        let forget = try lethe(h, "forget", "--ref", "prod", "--data", "digits", "--samples", idFile.path, "--max-epochs", "30",
                               "--collapse-margin", "0.03", "--requester", "subject-1", "--json")
        let f = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(forget.utf8)) as? [String: Any])
        XCTAssertEqual(f["status"] as? String, "applied")
        let after = try XCTUnwrap(f["version_after"] as? String)
        // Rolling back past the request would resurface the samples: refused, nothing moves.
        let rollback = try runLethe(["rollback", "prod", String(trained.prefix(12))], cwd: h, env: env)
        XCTAssertEqual(rollback.status, 1, rollback.err)
        XCTAssertTrue(try lethe(h, "replay", "--recompute", "prod", "--data", "digits").contains("bit-identical"))
        try lethe(h, "audit", "--format", "json", "-o", root.appendingPathComponent("audit.json").path)
        try lethe(h, "verify")
        XCTAssertTrue(try lethe(h, "fsck").contains("ok"))
        let history = try lethe(h, "ref", "history", "prod", "--json")
        let moves = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(history.utf8)) as? [[String: Any]])
        XCTAssertEqual(moves.compactMap { $0["new"] as? String }.last, after)
        XCTAssertEqual(moves.count, 3, history)  // train, bases, forget
        let other = try host("reader")
        let a = root.appendingPathComponent("a.safetensors"), b = root.appendingPathComponent("b.safetensors")
        try lethe(h, "export", "prod", "-o", a.path)
        try lethe(other, "export", "prod", "-o", b.path)
        XCTAssertEqual(try Data(contentsOf: a), try Data(contentsOf: b))
    }

    /// A local store with history moves to S3: objects and refs (times and reasons kept) are
    /// copied and verified, remote.json switches, and the store keeps working (and its ledger
    /// keeps verifying) from the bucket; a second run refuses.
    func testMigrateStoreCopiesVerifiesAndSwitches() throws {
        let dir = root.appendingPathComponent("local")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try lethe(dir, "init")
        let f1 = try model(21), f2 = try model(22)
        try lethe(dir, "import", f1.path, "--ref", "prod", "-m", "v1")
        try lethe(dir, "import", f2.path, "--ref", "prod", "-m", "v2")
        try lethe(dir, "import", f1.path, "--ref", "staging", "--no-parent")
        try lethe(dir, "gc", "--dry-run")  // the engine records the refs in the ledger
        let before = try lethe(dir, "ref", "history", "--json")
        let out = try lethe(dir, "migrate-store", "--objects", remote, "--json")
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        XCTAssertEqual(report["ref_moves"] as? Int, 3)
        XCTAssertEqual(report["copied"] as? Int, report["source_objects"] as? Int)
        XCTAssertEqual(report["verified_objects"] as? Int, report["source_objects"] as? Int)
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent(".lethe/remote.json"), encoding: .utf8), "{\"objects\": \"\(remote)\"}\n")
        // The same history, read from S3 now.
        XCTAssertEqual(try lethe(dir, "ref", "history", "--json"), before)
        // A fresh host on the bucket exports what the local store held.
        let other = try host("after-migrate")
        let exported = root.appendingPathComponent("m.safetensors")
        try lethe(other, "export", "prod", "-o", exported.path)
        XCTAssertEqual(try Data(contentsOf: exported), try Data(contentsOf: f2))
        // The migrated store keeps working; its ledger and the S3 refs agree.
        try lethe(dir, "import", f1.path, "--ref", "prod", "-m", "v3")
        try lethe(dir, "gc", "--dry-run")
        try lethe(dir, "verify")
        XCTAssertTrue(try lethe(dir, "fsck").contains("ok"))
        let again = try runLethe(["migrate-store", "--objects", remote], cwd: dir, env: env)
        XCTAssertEqual(again.status, 1)
        XCTAssertEqual(again.err, "Error: invalid input: objects already live in \(remote)\n")
    }

    /// A process killed at seeded moments during an import into S3: the ref exists only when
    /// its version is complete, and fsck stays clean.
    func testKilledImportLeavesNoPartialVersion() throws {
        let h = try host("k")
        let file = try model(7, floats: 3 << 20)  // 24 MiB: a few chunks, seconds of upload
        let exe = productsDirectory.appendingPathComponent("lethe")
        var rng: UInt64 = 7
        var interrupted = 0
        for round in 0..<3 {
            let p = Process()
            p.executableURL = exe
            p.arguments = ["import", file.path, "--ref", "k\(round)", "--no-parent"]
            p.currentDirectoryURL = h
            p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            rng = rng &* 6364136223846793005 &+ 1
            usleep(useconds_t(50_000 + Int(rng >> 33) % 450_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTAssertTrue(try lethe(h, "fsck").contains("ok"), "round \(round)")
            if try lethe(h, "ref", "list").contains("k\(round)") {
                let out = root.appendingPathComponent("k.safetensors")
                try lethe(h, "export", "k\(round)", "-o", out.path)
                XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: file))
            } else {
                interrupted += 1
            }
        }
        XCTAssertGreaterThan(interrupted, 0, "every import finished before its kill: the test did not interrupt an upload")
        try lethe(h, "import", file.path, "--ref", "final")
        XCTAssertTrue(try lethe(h, "fsck").contains("ok"))
    }
}

/// `lethe init --objects` input errors, offline: one line, nothing created.
final class S3InitCLITests: XCTestCase {
    func testBadObjectsLocationOrMissingKeysCreateNothing() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-s3init-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = try runLethe(["init", "--objects", "http://bucket/x"], cwd: dir)
        XCTAssertEqual(bad.status, 64)
        XCTAssertEqual(bad.err.split(separator: "\n").first, "Error: The value 'http://bucket/x' is invalid for '--objects': expected s3://BUCKET/PREFIX")
        let noKeys = try runLethe(["init", "--objects", "s3://bucket/x"], cwd: dir,
                                  env: ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""])
        XCTAssertEqual(noKeys.status, 1)
        XCTAssertEqual(noKeys.err, "Error: invalid input: S3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment\n")
        let unreachable = try runLethe(["init", "--objects", "s3://bucket/x"], cwd: dir,
                                       env: ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"])
        XCTAssertEqual(unreachable.status, 1)
        XCTAssertTrue(unreachable.err.hasPrefix("Error: I/O error: S3 PUT bucket/: PUT http://127.0.0.1:1/bucket: curl: "), unreachable.err)
        XCTAssertEqual(unreachable.err.filter { $0 == "\n" }.count, 1)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
        let migrate = try runLethe(["migrate-store"], cwd: dir)
        XCTAssertEqual(migrate.status, 64)
    }
}
