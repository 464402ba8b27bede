import Foundation
import XCTest

final class StoreCLITests: XCTestCase {
    var dir: URL!
    let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("LetheStoreTests/Fixtures/torch_state_dict.safetensors").path

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-cli-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func lethe(_ args: String...) throws -> (status: Int32, out: String, err: String) { try runLethe(args, cwd: dir) }

    func json(_ s: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])
    }

    func testInitImportExportShowLogRefFsckGc() throws {
        XCTAssertEqual(try lethe("init").status, 0)
        XCTAssertEqual(try lethe("init").err, "Error: invalid input: a Lethe store already exists at \(dir.path)/.lethe\n")
        let imp = try lethe("import", fixture, "-m", "torch weights", "--json")
        XCTAssertEqual(imp.status, 0, imp.err)
        let version = try XCTUnwrap(try json(imp.out)["version"] as? String)
        XCTAssertEqual(try json(imp.out)["tensors"] as? Int, 16)
        let out = dir.appendingPathComponent("out.safetensors").path
        XCTAssertEqual(try lethe("export", String(version.prefix(8)), "-o", out).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: URL(fileURLWithPath: fixture)))
        let show = try json(try lethe("show", "main", "--json").out)
        XCTAssertEqual(show["message"] as? String, "torch weights")
        XCTAssertEqual((show["tensors"] as? [[String: Any]])?.first?["name"] as? String, "1.num_batches_tracked")
        XCTAssertEqual(try lethe("ref", "set", "prod", "main", "--reason", "release").out, "prod: (new) → \(version.prefix(12))\n")
        let history = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try lethe("ref", "history", "--json").out.utf8)) as? [[String: Any]])
        XCTAssertEqual(history.map { $0["reason"] as? String }, ["import torch_state_dict.safetensors", "release"])
        let log = try lethe("log", "prod")
        XCTAssertTrue(log.out.hasPrefix("version \(version)\n"), log.out)
        XCTAssertEqual(try lethe("fsck").out.split(separator: "\n").last, "checked 18 objects, 1 versions: ok")
        let diff = try json(try lethe("diff", "main", "prod", "--json").out)
        XCTAssertEqual((diff["tensors"] as? [[String: Any]])?.count, 16)
        let gc = try json(try lethe("gc", "--prune=now", "--dry-run", "--json").out)
        XCTAssertEqual(gc["swept"] as? [String], [])
        XCTAssertEqual(try lethe("gc", "--prune=soon").status, 64)
    }

    func testHostileInputGivesOneLineAndChangesNothing() throws {
        XCTAssertEqual(try lethe("init").status, 0)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture)))
        // A two-element F32 tensor whose second value is a NaN.
        let header = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        var nan: [UInt8] = []
        var n = UInt64(header.utf8.count)
        for _ in 0..<8 { nan.append(UInt8(n & 0xFF)); n >>= 8 }
        nan += Array(header.utf8) + [0, 0, 0x80, 0x3F, 0, 0, 0xC0, 0x7F]
        let bad = dir.appendingPathComponent("nan.safetensors")
        try Data(nan).write(to: bad)
        let r = try lethe("import", bad.path)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.err, "Error: invalid input: \(bad.path): tensor w has a non-finite value at element 1 (pass --allow-nonfinite to accept)\n")
        bytes[3] = 0x7F  // header length far too large
        let broken = dir.appendingPathComponent("broken.safetensors")
        try Data(bytes).write(to: broken)
        let r2 = try lethe("import", broken.path)
        XCTAssertEqual(r2.status, 1)
        XCTAssertEqual(r2.err.split(separator: "\n").count, 1)
        XCTAssertTrue(r2.err.contains("malformed safetensors"), r2.err)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/.lethe/objects"), [])
        XCTAssertEqual(try lethe("ref", "list").out, "")
        XCTAssertEqual(try lethe("import", bad.path, "--allow-nonfinite").status, 0)
        XCTAssertEqual(try lethe("show", "nope").status, 1)
    }

    func testFsckExitsNonZeroOnDamage() throws {
        XCTAssertEqual(try lethe("init").status, 0)
        XCTAssertEqual(try lethe("import", fixture).status, 0)
        let objects = dir.path + "/.lethe/objects"
        let sub = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: objects).sorted().first)
        let name = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: objects + "/" + sub).first)
        let path = objects + "/" + sub + "/" + name
        var d = try Data(contentsOf: URL(fileURLWithPath: path))
        d[d.count - 1] ^= 1
        try d.write(to: URL(fileURLWithPath: path))
        let r = try lethe("fsck", "--json")
        XCTAssertEqual(r.status, 1)
        let report = try json(r.out)
        XCTAssertEqual(report["ok"] as? Bool, false)
        XCTAssertEqual((report["corrupt"] as? [[String: Any]])?.first?["object"] as? String, sub + name)
    }
}
