import Foundation
import XCTest

/// SIGKILL during `lethe import` at seeded moments: the store must stay consistent.
final class StoreCrashTests: XCTestCase {
    func testKilledImportsLeaveAConsistentStore() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(try runLethe(["init"], cwd: dir).status, 0)
        // 24 MiB of float32 in two tensors (two chunks each way), written with the safetensors layout.
        let n = 3 << 20
        var values = [Float](repeating: 0, count: n)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<n {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            values[i] = Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max) * 0.05
        }
        let file = Data(safetensorsBytes([("a", Array(values[..<(n / 2)])), ("b", Array(values[(n / 2)...]))]))
        let input = dir.appendingPathComponent("w.safetensors")
        try file.write(to: input)

        let exe = productsDirectory.appendingPathComponent("lethe")
        var rng: UInt64 = 42
        for round in 0..<6 {
            let p = Process()
            p.executableURL = exe
            p.arguments = ["import", input.path, "--ref", "r\(round)", "--no-parent"]
            p.currentDirectoryURL = dir
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            rng = rng &* 6364136223846793005 &+ 1
            usleep(useconds_t(20_000 + Int(rng >> 33) % 600_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let fsck = try runLethe(["fsck"], cwd: dir)
            XCTAssertEqual(fsck.status, 0, "round \(round): \(fsck.out)\(fsck.err)")
            // The ref exists only if the version it names is complete.
            let refs = try runLethe(["ref", "list"], cwd: dir).out
            if refs.contains("r\(round)") {
                let out = dir.appendingPathComponent("check.safetensors").path
                XCTAssertEqual(try runLethe(["export", "r\(round)", "-o", out], cwd: dir).status, 0)
                XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), file)
            }
        }
        let again = try runLethe(["import", input.path, "--ref", "final"], cwd: dir)
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertEqual(try runLethe(["fsck"], cwd: dir).status, 0)
        XCTAssertEqual(try runLethe(["gc", "--prune=now"], cwd: dir).status, 0)
        XCTAssertEqual(try runLethe(["fsck"], cwd: dir).status, 0)
    }
}

/// Several processes importing into one store at once.
final class StoreConcurrencyTests: XCTestCase {
    func testConcurrentImportsAndRefMovesAllLand() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-conc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(try runLethe(["init"], cwd: dir).status, 0)
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("LetheStoreTests/Fixtures/torch_state_dict.safetensors")
        let exe = productsDirectory.appendingPathComponent("lethe")
        // Four importers of the same file (shared chunks race to be written), each moving its own ref and `shared`.
        var procs: [Process] = []
        for k in 0..<4 {
            let p = Process()
            p.executableURL = exe
            p.currentDirectoryURL = dir
            p.arguments = ["import", fixture.path, "--ref", "r\(k)", "-m", "import \(k)", "--no-parent"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            procs.append(p)
        }
        for p in procs { p.waitUntilExit(); XCTAssertEqual(p.terminationStatus, 0) }
        let refs = try runLethe(["ref", "list", "--json"], cwd: dir)
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(refs.out.utf8)) as? [[String: Any]])
        XCTAssertEqual(list.compactMap { $0["ref"] as? String }, ["r0", "r1", "r2", "r3"])
        XCTAssertEqual(try runLethe(["fsck"], cwd: dir).status, 0)
        let history = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try runLethe(["ref", "history", "--json"], cwd: dir).out.utf8)) as? [[String: Any]])
        XCTAssertEqual(history.count, 4, "every move recorded once")
        let out = dir.appendingPathComponent("o.safetensors").path
        for k in 0..<4 {
            XCTAssertEqual(try runLethe(["export", "r\(k)", "-o", out], cwd: dir).status, 0)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: fixture))
        }
    }
}
