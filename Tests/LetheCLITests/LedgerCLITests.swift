import CSQLite
import Foundation
import XCTest
import LetheCrypto
import LetheLedger

/// A store directory with a ledger built through the library (until `lethe init` is wired).
final class LedgerCLIStore {
    let root: URL
    var storeDir: URL { root.appendingPathComponent(".lethe") }
    var dbPath: String { storeDir.appendingPathComponent("ledger.sqlite").path }
    static let dataset = String(repeating: "a", count: 64)

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-cli-ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent(".lethe"), withIntermediateDirectories: true)
        let l = try Ledger.create(path: dbPath, keyPath: storeDir.appendingPathComponent("signing-key.pem").path, origin: "lethe.test/cli")
        let t0 = Date(timeIntervalSince1970: 1_780_000_000)
        func sample(_ i: Int) -> ForgottenSample {
            ForgottenSample(datasetDigest: Self.dataset, sampleID: String(i), sampleHash: SHA256.hash("s\(i)"))
        }
        try l.recordDataset(DatasetRecord(digest: Self.dataset, name: "digits", sampleCount: 100, source: "test", recordedAt: t0))
        try l.write { w throws(LedgerError) in
            try w.recordVersion(VersionRecord(id: "v0", createdAt: t0, author: "a", message: "train", datasetDigest: Self.dataset,
                                              bytesStored: 10, bytesLogical: 40,
                                              tensors: [TensorRecord(name: "w", dtype: "F32", shape: [2, 5], bytesLogical: 40,
                                                                     bytesStored: 10, codec: "zstd", chunkCount: 1)]))
            try w.moveRef(RefMove(ref: "prod", oldVersion: nil, newVersion: "v0", reason: "train", movedAt: t0))
        }
        try l.receiveRequest(ForgetRequest(id: "R1", requester: "u1", legalGround: "GDPR Art. 17", receivedAt: t0,
                                           datasetDigest: Self.dataset, samples: [sample(123), sample(4)]))
        try l.write { w throws(LedgerError) in
            try w.recordVersion(VersionRecord(id: "v1", parents: ["v0"], createdAt: t0, author: "lethe", message: "forget R1",
                                              datasetDigest: Self.dataset, bytesStored: 3, bytesLogical: 40))
            try w.recordOutcome(RequestOutcome(requestID: "R1", status: .applied, decidedAt: t0, versionBefore: "v0", versionAfter: "v1",
                                               method: "pgu", layers: [LayerStat(layer: "fc", d: 5, k: 2, gamma: 0.9, rho: 1e-7)]))
            try w.moveRef(RefMove(ref: "prod", oldVersion: "v0", newVersion: "v1", reason: "forget R1", movedAt: t0))
        }
        try l.receiveRequest(ForgetRequest(id: "R2", requester: "u2", legalGround: "GDPR Art. 17", receivedAt: Date(timeIntervalSince1970: 1_600_000_000),
                                           datasetDigest: Self.dataset, samples: [sample(9)]))
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        try runLethe(["--store", root.path] + args)
    }

    func sql(_ statement: String) {
        var db: OpaquePointer?
        guard sqlite3_open_v2(dbPath, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else { return }
        sqlite3_exec(db, statement, nil, nil, nil)
        sqlite3_close(db)
    }

    func fileHash() -> String {
        let h = SHA256()
        for p in [dbPath, dbPath + "-wal"] { if let d = FileManager.default.contents(atPath: p) { h.update([UInt8](d)) } }
        return h.finalize().hex
    }
}

final class LedgerCLITests: XCTestCase {
    let validator = LedgerSchemaValidator(directory: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schema"))

    private func json(_ text: String, schema: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSONDoc {
        let doc = try XCTUnwrap(JSONDoc.parse(text), "not JSON: \(text)", file: file, line: line)
        XCTAssertEqual(try validator.validate(doc, against: schema), [], file: file, line: line)
        return doc
    }

    private func hex(_ d: JSONDoc?) -> Digest? { if case .string(let s)? = d { return Digest(hex: s) }; return nil }
    private func int(_ d: JSONDoc?) -> Int? { if case .integer(let i)? = d { return Int(i) }; return nil }

    func testCheckpointPrintsSignedNoteAndJSON() throws {
        let s = try LedgerCLIStore()
        let r = try s.run(["checkpoint"])
        XCTAssertEqual(r.status, 0, r.err)
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines[0], "lethe.test/cli")
        XCTAssertEqual(lines[1], "8")
        XCTAssertEqual(lines[3], "")
        XCTAssertTrue(lines[4].hasPrefix("\u{2014} lethe.test/cli "))
        let j = try json(try s.run(["checkpoint", "--json"]).out, schema: "checkpoint.schema.json")
        XCTAssertEqual(int(j["tree_size"]), 8)
    }

    /// A third party checks the JSON proof with nothing but SHA-256 and RFC 9162's algorithm.
    func testInclusionProofOfRequestVerifiesFromJSONAlone() throws {
        let s = try LedgerCLIStore()
        let r = try s.run(["proof", "inclusion", "R1", "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        let j = try json(r.out, schema: "proof-inclusion.schema.json")
        guard case .array(let proofs)? = j["proofs"] else { return XCTFail("no proofs") }
        XCTAssertEqual(proofs.compactMap { int($0["entry"]) }, [3, 5])
        for p in proofs {
            guard case .string(let bytesHex)? = p["entry_bytes"], let bytes = Hex.decode(bytesHex),
                  case .array(let pathDocs)? = p["path"], let root = hex(p["root"]),
                  let index = int(p["leaf_index"]), let size = int(p["tree_size"]) else { return XCTFail("malformed \(p)") }
            let leaf = Merkle.leafHash(bytes)
            XCTAssertEqual(leaf, hex(p["leaf_hash"]))
            XCTAssertTrue(Merkle.verifyInclusion(leafHash: leaf, index: index, treeSize: size, proof: pathDocs.compactMap(hex), root: root))
            XCTAssertEqual(hex(p["checkpoint"]?["root"]), root)
        }
        let text = try s.run(["proof", "inclusion", "3"])
        XCTAssertEqual(text.status, 0)
        XCTAssertTrue(text.out.hasPrefix("lethe inclusion proof v1\norigin: lethe.test/cli\nentry: 3 request.received R1\ntree-size: 8\nleaf-index: 3\n"))
        let missing = try s.run(["proof", "inclusion", "R9"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.err, "Error: not found: forget request R9\n")
    }

    func testConsistencyProofVerifies() throws {
        let s = try LedgerCLIStore()
        let r = try s.run(["proof", "consistency", "3", "8", "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        let j = try json(r.out, schema: "proof-consistency.schema.json")
        guard case .array(let path)? = j["path"], let o = hex(j["old_root"]), let n = hex(j["new_root"]) else { return XCTFail() }
        XCTAssertTrue(Merkle.verifyConsistency(oldSize: 3, newSize: 8, oldRoot: o, newRoot: n, proof: path.compactMap(hex)))
        XCTAssertEqual(hex(j["old_checkpoint"]?["root"]), o)
        let text = try s.run(["proof", "consistency", "3"])
        XCTAssertTrue(text.out.hasPrefix("lethe consistency proof v1\norigin: lethe.test/cli\nold-size: 3\nnew-size: 8\n"))
        XCTAssertEqual(try s.run(["proof", "consistency", "9"]).status, 1)
    }

    func testVerifyPassesThenNamesTheEditedEntry() throws {
        let s = try LedgerCLIStore()
        let ok = try s.run(["verify"])
        XCTAssertEqual(ok.status, 0, ok.err)
        XCTAssertTrue(ok.out.hasPrefix("ledger ok: 8 entries, 6 checkpoints verified, root "))
        _ = try json(try s.run(["verify", "--json"]).out, schema: "verify.schema.json")

        s.sql("UPDATE ledger_layer_stats SET rho = 1e-9 WHERE request_id = 'R1'")
        let bad = try s.run(["verify"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.err.split(separator: "\n").first,
                       "Error: ledger verification failed: first bad entry 5: entry 5 (request.applied R1): its rows do not hash to the recorded leaf (a row was edited, inserted, deleted or moved)")
        let badJSON = try s.run(["verify", "--json"])
        XCTAssertEqual(badJSON.status, 1)
        let j = try json(badJSON.out, schema: "verify.schema.json")
        XCTAssertEqual(j["ok"], .bool(false))
        XCTAssertEqual(int(j["first_bad_entry"]), 5)
    }

    func testVerifyChecksASavedCheckpoint() throws {
        let s = try LedgerCLIStore()
        let saved = s.root.appendingPathComponent("saved.note")
        try s.run(["checkpoint"]).out.write(to: saved, atomically: true, encoding: .utf8)
        let ok = try s.run(["verify", "--checkpoint", saved.path])
        XCTAssertEqual(ok.status, 0, ok.err)
        XCTAssertTrue(ok.out.hasPrefix("ledger ok: 8 entries, 8 checkpoints verified"), ok.out)
        s.sql("UPDATE ledger_versions SET message = 'edited' WHERE id = 'v0'")
        let bad = try s.run(["verify", "--checkpoint", saved.path])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.err.contains("\n  also: \(saved.path): saved checkpoint (tree size 8): the log's recomputed root at that size differs"), bad.err)
    }

    func testVerifyAgainstAnotherPublicKeyFails() throws {
        let s = try LedgerCLIStore()
        let other = try Ed25519.PrivateKey.generate()
        let pem = s.root.appendingPathComponent("other.pub.pem")
        try other.publicKey.pem().write(to: pem, atomically: true, encoding: .utf8)
        let r = try s.run(["verify", "--public-key", pem.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.hasPrefix("Error: ledger verification failed: first bad entry 0: entries 0..<8 are not covered by any signed checkpoint"), r.err)
        XCTAssertTrue(r.err.contains("\n  also: checkpoint #1 (tree size 0) is not signed by the store's key \(other.publicKey.hex)\n"), r.err)
    }

    func testQueryFormatsParametersAndLimits() throws {
        let s = try LedgerCLIStore()
        let table = try s.run(["query", "SELECT id, status, sample_count FROM forget_requests ORDER BY id"])
        XCTAssertEqual(table.status, 0, table.err)
        XCTAssertEqual(table.out, """
            id  status    sample_count
            --  --------  ------------
            R1  applied              2
            R2  received             1
            (2 rows)

            """)
        let j = try s.run(["--json", "query", "SELECT id, sample_count, merkle_root IS NULL AS missing FROM forget_requests WHERE id = :id", "--param", "id=R1"])
        XCTAssertEqual(j.status, 0, j.err)
        let doc = try json(j.out, schema: "query.schema.json")
        XCTAssertEqual(doc, .array([.object([("id", .string("R1")), ("sample_count", .integer(2)), ("missing", .integer(0))])]))
        let csv = try s.run(["query", "--csv", "SELECT name, version FROM refs"])
        XCTAssertEqual(csv.out, "name,version\r\nprod,v1\r\n")
        let file = s.root.appendingPathComponent("overdue.sql")
        try "SELECT id FROM forget_requests WHERE status = 'received' AND deadline < strftime('%Y-%m-%dT%H:%M:%fZ', 'now');\n"
            .write(to: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try s.run(["query", "--csv", "--file", file.path]).out, "id\r\nR2\r\n")
        let limited = try s.run(["query", "--limit", "1", "SELECT seq FROM ledger_entries ORDER BY seq"])
        XCTAssertEqual(limited.out, "seq\n---\n  0\n(1 row)\n")
        XCTAssertEqual(limited.err, "note: stopped after 1 rows; more rows matched (use --limit N or --no-limit)\n")
        XCTAssertEqual(try s.run(["query", "--no-limit", "--csv", "SELECT count(*) AS n FROM ledger_entries"]).out, "n\r\n8\r\n")
        XCTAssertEqual(try s.run(["query"]).status, 64)
        XCTAssertEqual(try s.run(["query", "SELECT 1", "--param", "novalue"]).status, 64)
    }

    func testQueryRefusesWritesAndLeavesTheDatabaseUnchanged() throws {
        let s = try LedgerCLIStore()
        let before = s.fileHash()
        for (sql, message) in [
            ("DELETE FROM log_entries", "Error: query refused: writes are not allowed (DELETE from log_entries)\n"),
            ("ATTACH DATABASE 'x.db' AS x", "Error: query refused: ATTACH is not allowed\n"),
            ("PRAGMA journal_mode = DELETE", "Error: query refused: PRAGMA journal_mode is not allowed (only introspection PRAGMAs are)\n"),
            ("DROP VIEW versions", "Error: query refused: schema changes are not allowed\n"),
        ] {
            let r = try s.run(["query", sql])
            XCTAssertEqual(r.status, 1, sql)
            XCTAssertEqual(r.err, message, sql)
        }
        XCTAssertEqual(s.fileHash(), before)
        XCTAssertEqual(try s.run(["verify"]).status, 0)
    }
}

final class LedgerCLIConcurrencyTests: XCTestCase {
    /// Several processes sign checkpoints, verify and query one ledger at once: none fails
    /// (no raw SQLITE_BUSY), every checkpoint lands, and the log still verifies.
    func testConcurrentProcessesNeverSeeBusy() throws {
        let s = try LedgerCLIStore()
        let before = try Ledger.open(path: s.dbPath).checkpoints().count
        let exe = productsDirectory.appendingPathComponent("lethe").path
        let commands = [
            "for i in 1 2 3 4 5; do \"$0\" --store \"$1\" checkpoint >/dev/null || exit 1; done",
            "for i in 1 2 3 4 5; do \"$0\" --store \"$1\" checkpoint >/dev/null || exit 1; done",
            "for i in 1 2 3 4 5; do \"$0\" --store \"$1\" checkpoint >/dev/null || exit 1; done",
            "for i in 1 2 3 4 5; do \"$0\" --store \"$1\" verify >/dev/null || exit 1; done",
            "for i in 1 2 3 4 5; do \"$0\" --store \"$1\" query 'SELECT count(*) FROM checkpoints' >/dev/null || exit 1; done",
        ]
        var processes: [(Process, Pipe)] = []
        for c in commands {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", c, exe, s.root.path]
            let err = Pipe()
            p.standardError = err
            try p.run()
            processes.append((p, err))
        }
        for (p, err) in processes {
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, text)
            XCTAssertFalse(text.contains("database is locked"), text)
        }
        XCTAssertEqual(try Ledger.open(path: s.dbPath).checkpoints().count, before + 15)
        XCTAssertEqual(try s.run(["verify"]).status, 0)
    }
}

/// The proofs check with an implementation that shares no code with Lethe
/// (tools/ledger/verify_proof.py: Python hashlib + the openssl command line).
final class LedgerIndependentVerifierTests: XCTestCase {
    func testPythonVerifierAcceptsRealProofsAndRejectsAlteredOnes() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = repo.appendingPathComponent("tools/ledger/verify_proof.py").path
        for tool in ["/usr/bin/env"] where !FileManager.default.isExecutableFile(atPath: tool) { throw XCTSkip("no \(tool)") }
        func python(_ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", script] + args
            let out = Pipe(); p.standardOutput = out; p.standardError = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        guard (try? python(["--help"]))?.0 == 0 else { throw XCTSkip("python3 is not available") }
        let s = try LedgerCLIStore()
        let key = try Ledger.open(path: s.dbPath).publicKey.hex
        let inclusion = s.root.appendingPathComponent("r1.proof")
        try s.run(["proof", "inclusion", "R1"]).out.write(to: inclusion, atomically: true, encoding: .utf8)
        let ok = try python([inclusion.path, "--public-key", key])
        XCTAssertEqual(ok.0, 0, ok.1)
        XCTAssertEqual(ok.1, "ok   entry 3 request.received R1\nok   entry 5 request.applied R1\n")

        let other = try Ed25519.PrivateKey.generate().publicKey.hex
        let wrongKey = try python([inclusion.path, "--public-key", other])
        XCTAssertEqual(wrongKey.0, 1)
        XCTAssertEqual(wrongKey.1, "FAIL entry 3 request.received R1: the signature line does not name this key\nFAIL entry 5 request.applied R1: the signature line does not name this key\n")

        // A signature line naming the right key but carrying a damaged signature.
        let good = try String(contentsOf: inclusion, encoding: .utf8)
        let forged = good.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.hasPrefix("\u{2014} "), let blob = line.split(separator: " ").last,
                  var raw = Data(base64Encoded: String(blob)) else { return String(line) }
            raw[raw.count - 1] ^= 1
            return line.dropLast(blob.count) + raw.base64EncodedString()
        }.joined(separator: "\n")
        try forged.write(to: inclusion, atomically: true, encoding: .utf8)
        let badSig = try python([inclusion.path, "--public-key", key])
        XCTAssertEqual(badSig.0, 1)
        XCTAssertTrue(badSig.1.hasPrefix("FAIL entry 3 request.received R1: the checkpoint signature does not verify\n"), badSig.1)
        try good.write(to: inclusion, atomically: true, encoding: .utf8)

        // Flip one byte of the entry (say, a sample id): the leaf no longer matches.
        var text = try String(contentsOf: inclusion, encoding: .utf8)
        let marker = "entry-bytes: "
        if let r = text.range(of: marker) {
            let at = text.index(r.upperBound, offsetBy: 40)
            text.replaceSubrange(at...at, with: text[at] == "0" ? "1" : "0")
        }
        try text.write(to: inclusion, atomically: true, encoding: .utf8)
        let altered = try python([inclusion.path, "--public-key", key])
        XCTAssertEqual(altered.0, 1)
        XCTAssertTrue(altered.1.hasPrefix("FAIL entry 3 request.received R1: leaf-hash is not SHA-256(0x00 || entry-bytes)\n"), altered.1)

        let consistency = s.root.appendingPathComponent("c.proof")
        try s.run(["proof", "consistency", "3", "8"]).out.write(to: consistency, atomically: true, encoding: .utf8)
        let cps = try Ledger.open(path: s.dbPath).checkpoints()
        let old = try XCTUnwrap(cps.first { $0.treeSize == 3 }).root.hex, new = try XCTUnwrap(cps.last).root.hex
        let c = try python([consistency.path, "--old-root", old, "--new-root", new])
        XCTAssertEqual(c.0, 0, c.1)
        XCTAssertEqual(c.1, "ok   sizes 3 -> 8\n")
        let wrong = try python([consistency.path, "--old-root", new, "--new-root", new])
        XCTAssertEqual(wrong.0, 1)
    }
}
