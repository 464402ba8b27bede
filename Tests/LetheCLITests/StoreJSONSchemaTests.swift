import Foundation
import XCTest

/// Every store command's `--json` output validates against its schema in schema/.
final class StoreJSONSchemaTests: XCTestCase {
    func testStoreCommandsMatchTheirSchemas() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(_ args: [String], schema: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
            let r = try runLethe(["--json", "--store", dir.path] + args)
            XCTAssertEqual(r.status, 0, "\(args): \(r.err)", file: file, line: line)
            let doc = try XCTUnwrap(JSONDoc.parse(r.out), "\(args): not JSON: \(r.out)", file: file, line: line)
            XCTAssertEqual(try schemaValidator.validate(doc, against: schema), [], "\(args)", file: file, line: line)
            return r.out
        }
        _ = try run(["init", dir.path], schema: "init.schema.json")
        let trained = try run(["train", "--arch", "mlp", "--data", "digits", "--epochs", "2", "--ref", "prod"], schema: "train.schema.json")
        let first = try XCTUnwrap(trained.split(separator: "\"").drop { $0 != "version" }.dropFirst(2).first.map(String.init))
        let file = dir.appendingPathComponent("m.safetensors").path
        _ = try run(["export", "prod", "-o", file], schema: "export.schema.json")
        _ = try run(["import", file, "--ref", "staging", "-m", "again"], schema: "import.schema.json")
        _ = try run(["log", "prod"], schema: "log.schema.json")
        _ = try run(["show", "prod"], schema: "show.schema.json")
        _ = try run(["diff", String(first.prefix(8)), "staging"], schema: "diff.schema.json")
        _ = try run(["ref", "set", "candidate", "prod", "--reason", "review"], schema: "ref-set.schema.json")
        _ = try run(["ref", "list"], schema: "ref-list.schema.json")
        _ = try run(["ref", "history"], schema: "ref-history.schema.json")
        _ = try run(["fsck"], schema: "fsck.schema.json")
        _ = try run(["gc", "--dry-run"], schema: "gc.schema.json")
    }
}
