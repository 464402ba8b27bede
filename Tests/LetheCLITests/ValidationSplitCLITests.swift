import Foundation
import XCTest
import LetheNN

/// `SOURCE:N+V`: training-distribution samples held out of training become the stopping rule's
/// held-out set, recorded in the request's recipe, and a recompute needs the same split.
final class ValidationSplitCLITests: XCTestCase {
    let validator = LedgerSchemaValidator(directory: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schema"))

    func num(_ d: JSONDoc?) -> Double? {
        switch d { case .integer(let i)?: return Double(i); case .number(let x)?: return x; default: return nil }
    }
    func str(_ d: JSONDoc?) -> String? { if case .string(let s)? = d { return s }; return nil }

    func testForgetUsesTheValidationSplitAndRecomputeNeedsIt() throws {
        let data = "digits:1000+300"
        let splits = try DatasetLoader.load(data)
        let validation = try XCTUnwrap(splits.validation)
        let s = try EngineStore()
        try s.expect(0, ["init", "--origin", "lethe.test/validation"])

        let info = try XCTUnwrap(JSONDoc.parse(try s.expect(0, ["dataset", "--data", data, "--json"]).out))
        XCTAssertEqual(try validator.validate(info, against: "dataset.schema.json"), [])
        XCTAssertEqual(num(info["validation"]), Double(validation.count))
        XCTAssertEqual(num(info["train"]), Double(splits.train.count))
        XCTAssertNil(JSONDoc.parse(try s.expect(0, ["dataset", "--data", "digits", "--json"]).out)?["validation"])

        try s.expect(0, ["train", "--arch", "mlp", "--data", data, "--epochs", "8", "--batch-size", "32", "--seed", "1", "--ref", "prod"])
        try s.expect(0, ["bases", "--ref", "prod", "--data", data])
        let ids = Array(splits.train.ids[0..<40])
        let out = try s.expect(0, ["forget", "--ref", "prod", "--data", data, "--samples", try s.idFile("r1.txt", ids),
                                   "--collapse-margin", "0.03", "--max-epochs", "30", "--json"]).out
        let f = try XCTUnwrap(JSONDoc.parse(out))
        XCTAssertEqual(try validator.validate(f, against: "forget.schema.json"), [])
        XCTAssertEqual(str(f["status"]), "applied")
        let version = try XCTUnwrap(str(f["version_after"]))

        // The held-out accuracy the request measured is the model's accuracy on the validation split.
        let valBefore = try XCTUnwrap(num(f["metrics"]?["val_accuracy"]?["before"]))
        XCTAssertEqual(valBefore * Double(validation.count), (valBefore * Double(validation.count)).rounded(), accuracy: 1e-6,
                       "val accuracy is a fraction of the \(validation.count) validation samples")
        XCTAssertNotEqual((valBefore * 180).rounded(), valBefore * 180, "not a fraction of the 180-sample test half")
        let hp = try s.expect(0, ["query", "--csv", "SELECT hyperparameters FROM forget_requests WHERE id = 'R1'"]).out
        XCTAssertTrue(hp.contains("\"\"heldOut\"\":\"\"validation\"\""), hp)

        // Recompute with the same data reproduces the version bit for bit.
        let replay = try XCTUnwrap(JSONDoc.parse(try s.expect(0, ["replay", "--recompute", version, "--data", data, "--json"]).out))
        XCTAssertEqual(try validator.validate(replay, against: "replay.schema.json"), [])
        if case .bool(let identical)? = replay["identical"] { XCTAssertTrue(identical, "\(replay)") } else { XCTFail("\(replay)") }

        // Another validation split (or none) is another training split: refused by its digest, nothing changes.
        let before = try s.stateHash()
        for otherData in ["digits:1000+250", "digits:1000"] {
            let other = try s.run(["replay", "--recompute", version, "--data", otherData])
            XCTAssertEqual(other.status, 1, other.out)
            XCTAssertTrue(other.err.hasPrefix("Error: request R1 was made against dataset "), other.err)
            XCTAssertEqual(other.err.split(separator: "\n").count, 1, other.err)
        }
        XCTAssertEqual(try s.stateHash(), before)

        for bad in ["digits:1000+0", "digits:1000+x", "digits:+300", "digits:1300+300", "digits:1000+300+1"] {
            let r = try s.run(["dataset", "--data", bad])
            XCTAssertEqual(r.status, 1, bad)
            XCTAssertEqual(r.err.split(separator: "\n").count, 1, "\(bad): \(r.err)")
        }
    }
}
