import Foundation
import XCTest

/// Validates command output against schema/*.schema.json.
let schemaValidator = LedgerSchemaValidator(directory: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schema"))

/// `lethe train` + `lethe unlearn` on digits, through the real binary.
final class UnlearnCLITests: XCTestCase {
    func testUnlearnClassOnDigitsAndBadInput() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-unlearn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("m.safetensors").path
        let out = dir.appendingPathComponent("m2.safetensors").path
        let train = try runLethe(["train", "--arch", "mlp", "--data", "digits", "--epochs", "20", "-o", model])
        XCTAssertEqual(train.status, 0, train.err)

        let r = try runLethe(["unlearn", "-m", model, "--data", "digits", "--class", "3", "-o", out, "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try schemaValidator.validate(try XCTUnwrap(JSONDoc.parse(r.out)), against: "unlearn.schema.json"), [])
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        XCTAssertEqual(obj["method"] as? String, "pgu")
        XCTAssertLessThanOrEqual(try XCTUnwrap(obj["max_rho"] as? Double), 1e-5)
        let metrics = try XCTUnwrap(obj["metrics"] as? [[String: Any]])
        let forget = try XCTUnwrap(metrics.first { $0["name"] as? String == "forget accuracy" })
        XCTAssertLessThanOrEqual(try XCTUnwrap(forget["after"] as? Double), 0.15, "class 3 forgotten (chance is 0.1)")
        XCTAssertGreaterThan(try XCTUnwrap(forget["before"] as? Double), 0.9)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))

        // Sample ids listed by `lethe dataset` are accepted by --samples.
        let info = try runLethe(["dataset", "--data", "digits", "--json"])
        XCTAssertEqual(info.status, 0, info.err)
        XCTAssertEqual(try schemaValidator.validate(try XCTUnwrap(JSONDoc.parse(info.out)), against: "dataset.schema.json"), [])
        let listed = try runLethe(["dataset", "--data", "digits", "--ids", "--sample", "40", "--seed", "3"])
        XCTAssertEqual(listed.out.split(separator: "\n").count, 40)
        let idFile = dir.appendingPathComponent("forget.txt").path
        try listed.out.write(toFile: idFile, atomically: true, encoding: .utf8)
        let bySamples = try runLethe(["unlearn", "-m", model, "--data", "digits", "--samples", idFile, "--max-epochs", "30",
                                      "-o", dir.appendingPathComponent("m3.safetensors").path, "--json"])
        if bySamples.status == 0 {
            XCTAssertEqual(try schemaValidator.validate(try XCTUnwrap(JSONDoc.parse(bySamples.out)), against: "unlearn.schema.json"), [])
            XCTAssertTrue(bySamples.out.contains("\"samples\": 40"), bySamples.out)
        } else {
            // A run that cannot meet the stopping rule is refused with one line, never written.
            XCTAssertEqual(bySamples.status, 1)
            XCTAssertTrue(bySamples.err.hasPrefix("Error: PGU did not commit: "), bySamples.err)
        }

        // Usage errors exit 64, failures exit 1; nothing is written.
        let both = try runLethe(["unlearn", "-m", model, "--data", "digits", "--class", "3", "--samples", "x", "-o", out + "x"])
        XCTAssertEqual(both.status, 64)
        XCTAssertEqual(both.err.split(separator: "\n").first, "Error: Give exactly one of --samples FILE or --class C")
        let gamma = try runLethe(["unlearn", "-m", model, "--data", "digits", "--class", "3", "--gamma", "1.5", "-o", out + "x"])
        XCTAssertEqual(gamma.status, 64)
        XCTAssertEqual(gamma.err.split(separator: "\n").first, "Error: The value '1.5' is invalid for '--gamma': expected auto or a number in (0, 1]")
        for bad in ["0.5", "inf", "x"] {
            let cap = try runLethe(["unlearn", "-m", model, "--data", "digits", "--class", "3", "--scale-cap", bad, "-o", out + "x"])
            XCTAssertEqual(cap.status, 64, bad)
            XCTAssertEqual(cap.err.split(separator: "\n").first.map(String.init),
                           "Error: The value '\(bad)' is invalid for '--scale-cap': expected none or a number of at least 1")
        }
        let ids = dir.appendingPathComponent("ids.txt").path
        try "5000\n".write(toFile: ids, atomically: true, encoding: .utf8)
        let unknown = try runLethe(["unlearn", "-m", model, "--data", "digits", "--samples", ids, "-o", out + "x", "--json"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertEqual(try schemaValidator.validate(try XCTUnwrap(JSONDoc.parse(unknown.out)), against: "error.schema.json"), [])
        XCTAssertEqual(unknown.err, "Error: sample ids not in the training split of digits: 5000\n")
        try "7\n7\n".write(toFile: ids, atomically: true, encoding: .utf8)
        let dup = try runLethe(["unlearn", "-m", model, "--data", "digits", "--samples", ids, "-o", out + "x"])
        XCTAssertEqual(dup.status, 1)
        XCTAssertTrue(dup.err.hasSuffix("ids.txt: sample id 7 is listed more than once\n"), dup.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "x"))

        // NegGrad+ on a class with its own epochs and learning rate: stopped at the class target.
        let ng = try runLethe(["unlearn", "-m", model, "--data", "digits", "--class", "3", "--method", "neggrad+",
                               "--baseline-epochs", "20", "--baseline-lr", "0.05", "-o", out + "ng", "--json"])
        XCTAssertEqual(ng.status, 0, ng.err)
        let ngMetrics = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(ng.out.utf8)) as? [String: Any])?["metrics"] as? [[String: Any]])
        func after(_ name: String) throws -> Double { try XCTUnwrap(ngMetrics.first { $0["name"] as? String == name }?["after"] as? Double) }
        XCTAssertLessThanOrEqual(try after("forget accuracy"), 0.02)
        XCTAssertGreaterThan(try after("test accuracy"), 0.6, "stopped before the ascent took the other classes with it")
        // A baseline that overflows the weights is an error and writes nothing; a bad rate is a usage error.
        let diverged = try runLethe(["unlearn", "-m", model, "--data", "digits", "--samples", idFile, "--method", "neggrad+",
                                     "--baseline-epochs", "5", "--baseline-lr", "100000", "-o", out + "x"])
        XCTAssertEqual(diverged.status, 1)
        let lines = diverged.err.split(separator: "\n")
        XCTAssertEqual(lines.first, "forgetting 40 of 1438 training samples with neggrad+")
        XCTAssertEqual(lines.count, 2, diverged.err)
        XCTAssertTrue(lines.last?.hasPrefix("Error: diverged: neggrad+ left non-finite values in ") == true, diverged.err)
        let zero = try runLethe(["unlearn", "-m", model, "--data", "digits", "--class", "3", "--method", "finetune", "--baseline-lr", "0", "-o", out + "x"])
        XCTAssertEqual(zero.status, 64)
        XCTAssertEqual(zero.err.split(separator: "\n").first, "Error: The value '0.0' is invalid for '--baseline-lr': expected a positive number")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "x"))
    }
}
