import Foundation
import XCTest

/// `lethe bases --shard I/N` and `--reduce` through the binary: files in, bases out, refusals change nothing.
final class ShardedBasesCLITests: XCTestCase {
    let validator = LedgerSchemaValidator(directory: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schema"))

    func validate(_ text: String, _ schema: String) throws {
        let doc = try XCTUnwrap(JSONDoc.parse(text), "not JSON: \(text)")
        XCTAssertEqual(try validator.validate(doc, against: schema), [])
    }

    func testShardsThenReduceStoreBasesAndRefuseBadSets() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-shard-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func lethe(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try runLethe(args, cwd: dir) }
        XCTAssertEqual(try lethe(["init"]).status, 0)
        XCTAssertEqual(try lethe(["train", "--arch", "mlp", "--data", "digits", "--epochs", "2", "--threads", "1", "--ref", "prod"]).status, 0)
        func head() throws -> String { try lethe(["--json", "ref", "list"]).out }
        let before = try head()

        var files: [String] = []
        for i in 0..<3 {
            let r = try lethe(["--json", "bases", "--ref", "prod", "--data", "digits", "--shard", "\(i)/3", "-o", "p\(i).gram"])
            XCTAssertEqual(r.status, 0, r.err)
            try validate(r.out, "bases-shard.schema.json")
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
            XCTAssertEqual(json["shard"] as? Int, i)
            XCTAssertEqual(json["shards"] as? Int, 3)
            files.append("p\(i).gram")
        }
        XCTAssertEqual(try head(), before, "shard passes do not touch the store")

        // Usage errors exit 64; a set with a shard missing exits 1 with one line; nothing changes.
        XCTAssertEqual(try lethe(["bases", "--ref", "prod", "--data", "digits", "--shard", "3/3"]).status, 64)
        XCTAssertEqual(try lethe(["bases", "--ref", "prod", "--data", "digits", "--reduce"]).status, 64)
        XCTAssertEqual(try lethe(["bases", "--ref", "prod", "--data", "digits", "p0.gram"]).status, 64)
        let missing = try lethe(["bases", "--ref", "prod", "--data", "digits", "--reduce", "p0.gram", "p2.gram"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.err.split(separator: "\n").count, 1, missing.err)
        XCTAssertTrue(missing.err.contains("missing 1"), missing.err)
        let notAPartial = try lethe(["bases", "--ref", "prod", "--data", "digits", "--reduce", "p0.gram", "p1.gram", ".lethe/config"])
        XCTAssertEqual(notAPartial.status, 1, notAPartial.err)
        XCTAssertEqual(try head(), before)

        let reduced = try lethe(["--json", "bases", "--ref", "prod", "--data", "digits", "--reduce"] + files)
        XCTAssertEqual(reduced.status, 0, reduced.err)
        try validate(reduced.out, "bases.schema.json")
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(reduced.out.utf8)) as? [String: Any])
        XCTAssertEqual(json["samples"] as? Int, 1438)
        XCTAssertEqual((json["layers"] as? [[String: Any]])?.compactMap { $0["d"] as? Int }, [64, 256, 256])
        XCTAssertNotEqual(try head(), before)
        XCTAssertEqual(try lethe(["verify"]).status, 0)
        XCTAssertEqual(try lethe(["fsck"]).status, 0)
    }
}
