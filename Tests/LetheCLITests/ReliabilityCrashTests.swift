import Foundation
import XCTest

/// Crash safety (issue 9, item 1): `lethe import`, `lethe forget` and `lethe gc` run as child
/// processes and are SIGKILLed at seeded moments (`ReliabilitySettings.kills` landed kills per
/// command: 10 in CI, 50+ with tools/reliability/crash). After every kill `lethe fsck` and
/// `lethe verify` pass, no half-visible version or ref exists, and re-running the command succeeds.
final class ReliabilityCrashTests: XCTestCase {
    /// Prints one summary line the long-variant script collects for RELIABILITY.md.
    func summary(_ command: String, kills: Int, rounds: Int, seconds: Double) {
        print("reliability-crash \(command): \(kills) kills landed in \(rounds) rounds, \(String(format: "%.1f", seconds)) s, seed \(ReliabilitySettings.seed)")
    }

    /// Import of a 4 MB + 256 kB file onto ref `m`, each round a different file whose
    /// parent is the ref's version (so deltas are written too). After a kill `m` is either where it
    /// was or at a complete version that exports byte-identically to the file.
    func testKilledImportsLeaveNoHalfVisibleVersion() throws {
        let s = try EngineStore()
        try s.expect(0, ["init"])
        var rng = SplitMix64(seed: ReliabilitySettings.seed)
        var base = safetensorsFile([("a", 1_000_000), ("b", 65_536)], rng: &rng)
        let input = s.root.appendingPathComponent("w.safetensors")
        let exported = s.root.appendingPathComponent("check.safetensors").path
        let target = ReliabilitySettings.kills
        var kills = 0, rounds = 0
        try Data(base).write(to: input)
        var duration = try timed { try s.expect(0, ["import", input.path, "--ref", "m", "-m", "round 0"]) }
        let t0 = Date()
        while kills < target && rounds < 4 * target {
            rounds += 1
            // A new file: change one float in every 64 kB (in both tensors), so every chunk is new.
            // (The lowest byte of a float: never makes a NaN.)
            let dataStart = 8 + Int(base[0]) + Int(base[1]) << 8
            for at in stride(from: dataStart + rounds % 64 * 4, to: base.count - 4, by: 65_536) { base[at] ^= UInt8(truncatingIfNeeded: rounds | 1) }
            try Data(base).write(to: input)
            let before = s.storeRef("m")
            let delay = Killer.moment(&rng, duration: duration)
            if try Killer.run(["--store", s.root.path, "import", input.path, "--ref", "m", "-m", "round \(rounds)"], cwd: s.root, after: delay) {
                kills += 1
            }
            if let problem = try s.integrityProblem() { return XCTFail("round \(rounds), kill at \(delay) s: \(problem)") }
            let after = s.storeRef("m")
            if after != before {
                // The move happened: the version it names is complete.
                try s.expect(0, ["export", "m", "-o", exported])
                XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: exported)), Data(base), "round \(rounds): ref moved to an incomplete version")
            }
            // Re-running succeeds and lands the file.
            duration = try timed { try s.expect(0, ["import", input.path, "--ref", "m", "-m", "round \(rounds) again"]) }
            try s.expect(0, ["export", "m", "-o", exported])
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: exported)), Data(base), "round \(rounds): re-run")
        }
        XCTAssertGreaterThanOrEqual(kills, target, "kills that landed")
        // The engine adopts every import into the ledger; gc removes what the killed imports left.
        try s.expect(0, ["gc", "--prune=now"])
        XCTAssertNil(try s.integrityProblem())
        XCTAssertEqual(try s.query("SELECT version FROM refs WHERE name = 'm'").first?["version"] as? String, s.storeRef("m"))
        summary("import", kills: kills, rounds: rounds, seconds: Date().timeIntervalSince(t0))
    }

    /// Forget requests of 6 digits samples each on `prod`. After a kill (and the reconcile that
    /// opening the repository does) the request is either absent from the ledger with `prod`
    /// unchanged in store and ledger, or recorded with its outcome: applied with `prod` at its
    /// version in both, or failed (PGU's guards stopped it) with `prod` unchanged. Re-running the
    /// same request then applies it, or reports every sample already forgotten (exit 0, nothing
    /// changes), so each set of samples is forgotten by exactly one applied request. (After
    /// hundreds of samples a run may fail its collapse guard: then it is recorded as failed and
    /// `prod` stays, which the test accepts for at most a quarter of the rounds.)
    func testKilledForgetsApplyFullyOrNotAtAll() throws {
        let s = try EngineStore()
        _ = try EngineStoryTests.prepare(s)
        var rng = SplitMix64(seed: ReliabilitySettings.seed ^ 0xF0)
        let ids = EngineStoryTests.trainIDs
        let target = ReliabilitySettings.kills
        let perRequest = 6
        let args = ["forget", "--ref", "prod", "--data", "digits", "--gamma", "0.5", "--max-epochs", "40", "--collapse-margin", "0.03"]
        var kills = 0, rounds = 0, appliedByKilled = 0, failedRuns = 0
        var duration = 1.0
        let t0 = Date()
        func appliedCount() throws -> Int { try s.query("SELECT id FROM forget_requests WHERE status = 'applied'").count }
        while kills < target && rounds < 3 * target && (rounds + 1) * perRequest <= ids.count {
            let samples = Array(ids[(rounds * perRequest)..<((rounds + 1) * perRequest)])
            let file = try s.idFile("r\(rounds).txt", samples)
            rounds += 1
            let before = try XCTUnwrap(s.storeRef("prod"))
            let count = try s.query("SELECT id FROM forget_requests").count
            let appliedBefore = try appliedCount()
            let delay = Killer.moment(&rng, duration: duration)
            if try Killer.run(["--store", s.root.path] + args + ["--samples", file], cwd: s.root, after: delay) { kills += 1 }
            if let problem = try s.integrityProblem() { return XCTFail("round \(rounds), kill at \(delay) s: \(problem)") }
            // Opening the repository reconciles a kill between the ledger commit and the store's ref move.
            try s.expect(0, ["gc", "--dry-run"])
            let requests = try s.query("SELECT id, status, version_after FROM forget_requests ORDER BY rowid")
            let ledgerRef = try s.query("SELECT version FROM refs WHERE name = 'prod'").first?["version"] as? String
            let storeRef = s.storeRef("prod")
            XCTAssertEqual(ledgerRef, storeRef, "round \(rounds): store and ledger agree on prod")
            var applied = false
            switch requests.count {
            case count:
                XCTAssertEqual(storeRef, before, "round \(rounds): nothing recorded, so prod must not move")
            case count + 1:
                let status = requests.last?["status"] as? String
                if status == "applied" {
                    applied = true
                    appliedByKilled += 1
                    XCTAssertEqual(requests.last?["version_after"] as? String, storeRef, "round \(rounds): prod is at the request's version")
                } else {
                    failedRuns += 1
                    XCTAssertEqual(status, "failed", "round \(rounds): a recorded request has its outcome")
                    XCTAssertEqual(storeRef, before, "round \(rounds): a failed request leaves prod")
                }
            default:
                return XCTFail("round \(rounds): \(requests.count - count) requests recorded by one command")
            }
            let started = Date()
            let r = try s.run(args + ["--samples", file, "--json"])
            let took = Date().timeIntervalSince(started)
            let status = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])?["status"] as? String
            if applied {
                XCTAssertEqual(r.status, 0, r.err)
                XCTAssertEqual(status, "already_forgotten", "round \(rounds): re-run")
            } else if r.status == 1 && status == "failed" {
                failedRuns += 1
                XCTAssertEqual(s.storeRef("prod"), before, "round \(rounds): a failed request leaves prod")
            } else {
                XCTAssertEqual(r.status, 0, r.err)
                XCTAssertEqual(status, "applied", "round \(rounds): re-run")
            }
            if status == "applied" { duration = took }  // a whole run: the next kill moment is drawn over it
            let landed = applied || status == "applied"
            XCTAssertEqual(try appliedCount(), appliedBefore + (landed ? 1 : 0), "round \(rounds): the samples are forgotten by one applied request")
            XCTAssertEqual(try s.query("SELECT DISTINCT request FROM forgotten_samples WHERE status = 'applied' AND sample_id = '\(samples[0])'").count,
                           landed ? 1 : 0, "round \(rounds)")
        }
        XCTAssertGreaterThanOrEqual(kills, target, "kills that landed")
        XCTAssertLessThanOrEqual(failedRuns * 4, rounds, "most requests must commit for the test to mean something")
        XCTAssertNil(try s.integrityProblem())
        let audit = try s.run(["audit", "--format", "json"])
        XCTAssertEqual(audit.status, 0, audit.err)
        summary("forget", kills: kills, rounds: rounds, seconds: Date().timeIntervalSince(t0))
        print("reliability-crash forget: \(appliedByKilled) killed requests had committed before the kill, \(failedRuns) runs recorded as failed by PGU's guards")
    }

    /// `gc --prune=now` sweeping ~300 unreachable objects (copied in from another store each
    /// round). After a kill every reachable object is intact (fsck, export), the ledger verifies,
    /// and re-running gc sweeps the rest and records its deletions.
    func testKilledGCsNeverLoseReachableObjects() throws {
        let s = try EngineStore(), side = try EngineStore()
        try s.expect(0, ["init"])
        try side.expect(0, ["init"])
        var rng = SplitMix64(seed: ReliabilitySettings.seed ^ 0x6C)
        let keep = s.root.appendingPathComponent("keep.safetensors")
        let keepBytes = safetensorsFile([("w", 40_000), ("b", 100)], rng: &rng)
        try Data(keepBytes).write(to: keep)
        try s.expect(0, ["import", keep.path, "--ref", "main"])
        let garbage = side.root.appendingPathComponent("g.safetensors")
        try Data(safetensorsFile((0..<300).map { ("t\($0)", 256) }, rng: &rng)).write(to: garbage)
        try side.expect(0, ["import", garbage.path, "--ref", "g"])
        let reachable = s.objectFiles()
        let garbageFiles = side.objectFiles()
        XCTAssertEqual(garbageFiles.count, 302)
        let objects = s.storeDir.appendingPathComponent("objects")
        func plant() throws {
            for f in garbageFiles {
                let to = objects.appendingPathComponent(f)
                try? FileManager.default.createDirectory(at: to.deletingLastPathComponent(), withIntermediateDirectories: true)
                if !FileManager.default.fileExists(atPath: to.path) {
                    try FileManager.default.copyItem(at: side.storeDir.appendingPathComponent("objects").appendingPathComponent(f), to: to)
                }
            }
        }
        try plant()
        var duration = try timed { try s.expect(0, ["gc", "--prune=now"]) }
        XCTAssertEqual(s.objectFiles(), reachable)
        let exported = s.root.appendingPathComponent("check.safetensors").path
        let target = ReliabilitySettings.kills
        var kills = 0, rounds = 0
        let t0 = Date()
        while kills < target && rounds < 4 * target {
            rounds += 1
            try plant()
            let delay = Killer.moment(&rng, duration: duration)
            if try Killer.run(["--store", s.root.path, "gc", "--prune=now"], cwd: s.root, after: delay) { kills += 1 }
            if let problem = try s.integrityProblem() { return XCTFail("round \(rounds), kill at \(delay) s: \(problem)") }
            XCTAssertTrue(Set(s.objectFiles()).isSuperset(of: reachable), "round \(rounds): a reachable object was deleted")
            try s.expect(0, ["export", "main", "-o", exported])
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: exported)), Data(keepBytes))
            duration = try timed { try s.expect(0, ["gc", "--prune=now"]) }
            XCTAssertEqual(s.objectFiles(), reachable, "round \(rounds): the re-run swept the rest")
        }
        XCTAssertGreaterThanOrEqual(kills, target, "kills that landed")
        XCTAssertNil(try s.integrityProblem())
        let recorded = try s.query("SELECT count(*) AS n FROM gc_deletions").first?["n"] as? Int ?? 0
        XCTAssertGreaterThanOrEqual(recorded, 302 * (rounds + 1) / 2, "deletions are recorded (those of killed runs may be lost)")
        XCTAssertLessThanOrEqual(recorded, 302 * (rounds + 1))
        summary("gc", kills: kills, rounds: rounds, seconds: Date().timeIntervalSince(t0))
    }
}
