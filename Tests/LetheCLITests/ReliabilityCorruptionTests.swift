import Foundation
import XCTest
import LetheStore

/// Corruption (issue 9, item 3): flipping a byte of, truncating or deleting a random object file
/// is reported by `lethe fsck` with exactly that object and every version it affects; `export` of
/// an affected version fails with one clear line and writes no output file (an existing file at
/// the output path stays as it was); unaffected versions still export byte for byte.
final class ReliabilityCorruptionTests: XCTestCase {
    enum Damage: CaseIterable { case flip, truncate, delete }

    func testFlippedTruncatedAndDeletedObjectsAreReportedAndNeverExported() throws {
        let s = try EngineStore()
        try s.expect(0, ["init"])
        var rng = SplitMix64(seed: 0xC0FFEE)
        // Three versions on a parent chain (children stored as XOR deltas), each on its own ref.
        var files: [[UInt8]] = []
        var bytes = safetensorsFile([("a", 20_000), ("b", 300), ("c", 40)], rng: &rng)
        let dataStart = 8 + Int(bytes[0]) + Int(bytes[1]) << 8
        for k in 0..<3 {
            if k > 0 { for i in stride(from: dataStart + 4 * k, to: dataStart + 4000, by: 40) { bytes[i] ^= 0x21 } }
            files.append(bytes)
            let f = s.root.appendingPathComponent("v\(k).safetensors")
            try Data(bytes).write(to: f)
            try s.expect(0, ["import", f.path, "--ref", "m", "-m", "v\(k)"])
            try s.expect(0, ["ref", "set", "r\(k)", "m"])
        }
        let versions = (0..<3).compactMap { s.storeRef("r\($0)") }
        XCTAssertEqual(Set(versions).count, 3)

        // What each version needs, from the store itself: its objects, its parents, delta bases below its chunks.
        let store = try Store(directory: s.storeDir.path)
        let all = try store.objects.backend.list()
        // `data`: what an export reads (chunks with their delta bases, the header blob); fsck also
        // counts a version affected when a parent version object is damaged (its history is).
        var needs: [String: Set<ObjectID>] = [:], data: [String: Set<ObjectID>] = [:]
        var deltas = 0
        for v in versions {
            let id = try XCTUnwrap(ObjectID(hex: v))
            let version = try store.version(id)
            var set = Set<ObjectID>()
            for r in version.references where !version.parents.contains(r) {
                var c: ObjectID? = r
                while let x = c { set.insert(x); c = try store.objects.header(x).base; if c != nil { deltas += 1 } }
            }
            data[v] = set
            needs[v] = set.union(version.parents)
        }
        XCTAssertGreaterThan(deltas, 0, "the scenario includes delta chunks")
        XCTAssertEqual(Set(needs.values.flatMap { $0 }).union(versions.compactMap(ObjectID.init(hex:))), Set(all), "every object is needed")

        let out = s.root.appendingPathComponent("out.safetensors")
        var trials = 0, refused = 0, exported = 0, affected = 0
        for damage in Damage.allCases {
            for _ in 0..<5 {
                trials += 1
                let victim = all[Int(rng.next() % UInt64(all.count))]
                let path = s.storeDir.appendingPathComponent("objects/\(victim.hex.prefix(2))/\(victim.hex.dropFirst(2))").path
                let original = try Data(contentsOf: URL(fileURLWithPath: path))
                try FileManager.default.removeItem(atPath: path)
                var flipped = -1
                switch damage {
                case .flip:
                    var d = original
                    flipped = Int(rng.next() % UInt64(d.count))
                    d[flipped] ^= UInt8(1 + rng.next() % 255)
                    try d.write(to: URL(fileURLWithPath: path))
                case .truncate:
                    try original.prefix(Int(rng.next() % UInt64(original.count))).write(to: URL(fileURLWithPath: path))
                case .delete:
                    break
                }
                let label = "trial \(trials) (\(damage) \(victim.short))"
                let fsck = try s.run(["fsck", "--json"])
                XCTAssertEqual(fsck.status, 1, label)
                let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(fsck.out.utf8)) as? [String: Any], label)
                let corrupt = (report["corrupt"] as? [[String: Any]] ?? []).compactMap { $0["object"] as? String }
                let missing = (report["missing"] as? [[String: Any]] ?? []).compactMap { $0["object"] as? String }
                let missingBy = (report["missing"] as? [[String: Any]] ?? []).flatMap { $0["referenced_by"] as? [String] ?? [] }
                if damage == .delete {
                    XCTAssertEqual(missing, [victim.hex], label)
                    XCTAssertEqual(corrupt, [], label)
                } else if corrupt.isEmpty, missing.count == 1, missingBy.contains("chunk \(victim.hex)") {
                    // The flip hit the base id in a delta's header: fsck names the damaged chunk (and
                    // any delta stored on it) as referencing a base that does not exist.
                    XCTAssertEqual(damage, .flip, label)
                    XCTAssertTrue((64..<96).contains(flipped), "\(label): byte \(flipped)")
                } else {
                    XCTAssertEqual(corrupt, [victim.hex], "\(label): \(fsck.out)")
                    XCTAssertEqual(missing, [], label)
                }
                let expected = versions.filter { $0 != victim.hex && needs[$0]?.contains(victim) == true }
                XCTAssertEqual(Set(report["affected_versions"] as? [String] ?? []), Set(expected), label)
                affected += expected.count
                let badVersions = expected + (versions.contains(victim.hex) ? [victim.hex] : [])
                XCTAssertEqual(Set(report["affected_refs"] as? [String] ?? []),
                               Set((0..<3).filter { badVersions.contains(versions[$0]) }.map { "r\($0)" } + (badVersions.contains(versions[2]) ? ["m"] : [])), label)
                let text = try s.run(["fsck"])
                XCTAssertEqual(text.status, 1)
                for v in expected { XCTAssertTrue(text.out.contains("affected version \(v)"), "\(label): \(text.out)") }
                XCTAssertEqual(text.err, "Error: the store is damaged (see above)\n")

                // Export fails exactly when it needs the damaged object (a version whose parent
                // is damaged still has all its weights).
                let unexportable = versions.filter { $0 == victim.hex || data[$0]?.contains(victim) == true }
                for (k, v) in versions.enumerated() {
                    try Data("previous contents".utf8).write(to: out)
                    let r = try s.run(["export", v, "-o", out.path])
                    if unexportable.contains(v) {
                        refused += 1
                        XCTAssertEqual(r.status, 1, "\(label): export of affected \(v.prefix(12))")
                        XCTAssertEqual(r.err.split(separator: "\n").count, 1, r.err)
                        XCTAssertTrue(r.err.hasPrefix("Error: "), r.err)
                        XCTAssertTrue(([victim.hex] + missing).contains { r.err.contains($0.prefix(12)) } || r.err.contains("unknown revision"),
                                      "\(label): \(r.err)")
                        XCTAssertEqual(try Data(contentsOf: out), Data("previous contents".utf8), "\(label): the old file was replaced")
                    } else {
                        exported += 1
                        XCTAssertEqual(r.status, 0, "\(label): \(r.err)")
                        XCTAssertEqual(try Data(contentsOf: out), Data(files[k]), label)
                    }
                    let leftovers = try FileManager.default.contentsOfDirectory(atPath: s.root.path).filter { $0.contains("lethe-tmp") }
                    XCTAssertEqual(leftovers, [], "\(label): no partial output")
                }
                // A failed export to a new path creates nothing.
                if let v = unexportable.first {
                    let fresh = s.root.appendingPathComponent("fresh-\(trials).safetensors").path
                    XCTAssertEqual(try s.run(["export", v, "-o", fresh]).status, 1)
                    XCTAssertFalse(FileManager.default.fileExists(atPath: fresh), label)
                }
                if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
                try original.write(to: URL(fileURLWithPath: path))
                XCTAssertEqual(try s.run(["fsck"]).status, 0, "\(label): repaired")
            }
        }
        XCTAssertEqual(trials, 15)
        print("reliability-corruption: \(trials) damaged objects, \(affected) affected versions reported, \(refused) exports refused, \(exported) unaffected exports byte-identical")
    }
}
