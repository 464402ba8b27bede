import Foundation
import XCTest
import LetheCrypto
import LetheTensor
@testable import LetheStore

final class StoreTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws { root = try temporaryDirectory("store") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func makeStore(chunkBytes: Int = 64 << 10) throws -> Store {
        let s = try Store.initialize(at: root.appendingPathComponent(".lethe").path)
        s.chunkBytes = chunkBytes
        return s
    }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let p = root.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func meta(_ m: String) -> VersionMetadata { VersionMetadata(author: "test", time: 1_700_000_000, message: m) }

    func testInitializeCreatesLayoutAndRefusesTwice() throws {
        let s = try makeStore()
        for sub in ["objects", "refs", "config"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: s.directory + "/" + sub), sub)
        }
        XCTAssertEqual(try String(contentsOfFile: s.directory + "/config", encoding: .utf8), "{\"format\":1}\n")
        XCTAssertThrowsError(try Store.initialize(at: s.directory)) { XCTAssertTrue("\($0)".contains("already exists")) }
        XCTAssertThrowsError(try Store(directory: root.path)) { XCTAssertTrue("\($0)".contains("not a Lethe store")) }
    }

    /// A file written by PyTorch's safetensors imports and exports byte-identical, and our
    /// reference-order writer reproduces it from the tensors alone.
    func testPyTorchFileRoundTripsByteIdentical() throws {
        let s = try makeStore()
        let fixture = fixtures.appendingPathComponent("torch_state_dict.safetensors").path
        let original = try FileBytes.read(fixture)
        XCTAssertEqual(SHA256.hash(original).hex, "6cf2e2034685c4b1ad3f4dd0267c03b3c21612d79382f719977a8a84714bd195")
        let (_, tensors) = try Safetensors.decode(original)
        XCTAssertEqual(Set(tensors.map(\.dtype)), [.f32, .f16, .bf16, .f64, .i64, .i32, .u8, .bool])
        XCTAssertEqual(Safetensors.encode(tensors, metadata: [("format", "pt")]), original, "reference writer order and padding")

        let r = try s.importSafetensors(fixture, options: ImportOptions(metadata: meta("torch"), ref: ("main", "import")))
        XCTAssertEqual(try s.refs.get("main"), r.version)
        let out = root.appendingPathComponent("out.safetensors").path
        let e = try s.exportSafetensors(r.version, to: out)
        XCTAssertTrue(e.originalHeader)
        XCTAssertEqual(SHA256.hash(try FileBytes.read(out)), SHA256.hash(original))
        // Without the original header, export falls back to the reference writer: same bytes but the metadata.
        var v = try s.version(r.version)
        v.safetensorsHeader = nil
        let bare = try s.objects.put(kind: .version, payload: v.encoded()).id
        _ = try s.exportSafetensors(bare, to: out)
        XCTAssertEqual(try FileBytes.read(out), Safetensors.encode(tensors))
        // Re-import of the same file stores nothing new but the (identical) version.
        let again = try s.importSafetensors(fixture, options: ImportOptions(metadata: meta("torch"))).stats
        XCTAssertEqual(again.newObjects, 0)
    }

    func testMultiChunkImportDedupesUnchangedChunksAndStoresDeltas() throws {
        let s = try makeStore(chunkBytes: 64 << 10)
        s.threads = 3  // batches of 3 chunks encoded and decoded in parallel
        let n = 300_000  // 1.2 MB: 19 chunks of 64 KiB
        var w = normalFloatBytes(n, seed: 11)
        let small = NamedTensor(name: "fc.bias", dtype: .f32, shape: [10], data: normalFloatBytes(10, seed: 12))
        let f0 = try write(Safetensors.encode([NamedTensor(name: "fc.weight", dtype: .f32, shape: [600, 500], data: w), small],
                                              metadata: [("format", "pt")]), "v0.safetensors")
        let v0 = try s.importSafetensors(f0, options: ImportOptions(metadata: meta("v0"), ref: ("main", "first")))
        XCTAssertEqual(try s.version(v0.version).tensor("fc.weight")?.chunks.count, 19)
        // Change the low mantissa byte of 1000 weights inside chunk 3 only.
        for i in 0..<1000 { w[3 * (64 << 10) + 4 * i] ^= 0x5A }
        let f1 = try write(Safetensors.encode([NamedTensor(name: "fc.weight", dtype: .f32, shape: [600, 500], data: w), small],
                                              metadata: [("format", "pt")]), "v1.safetensors")
        let v1 = try s.importSafetensors(f1, options: ImportOptions(parent: v0.version, metadata: meta("v1"), ref: ("main", "second")))
        XCTAssertEqual(v1.stats.codecs, ["xor-delta-grouped-zstd": 1])
        XCTAssertEqual(v1.stats.newObjects, 2, "the changed chunk and the version; the header blob is shared")
        XCTAssertLessThan(v1.stats.storedBytes, 8 << 10)
        for (v, f) in [(v0.version, f0), (v1.version, f1)] {
            let out = root.appendingPathComponent("x.safetensors").path
            _ = try s.exportSafetensors(v, to: out)
            XCTAssertEqual(try FileBytes.read(out), try FileBytes.read(f))
        }
        XCTAssertEqual(try s.log(from: s.resolve("main")).map(\.id), [v1.version, v0.version])
        let history = try s.refs.history("main")
        XCTAssertEqual(history.map(\.old), [nil, v0.version])
        XCTAssertEqual(history.map(\.new), [v0.version, v1.version])
        XCTAssertEqual(history.map(\.reason), ["first", "second"])
        let d = try s.diff(v0.version, v1.version)
        XCTAssertEqual(d.map(\.status), [.unchanged, .changed], "file order: the reference writer sorts fc.bias first")
        XCTAssertNotNil(d.last?.rank)
        XCTAssertTrue(try s.fsck().isClean)
    }

    func testWriteVersionWithBasesSpecAndLowRankDiff() throws {
        let s = try makeStore(chunkBytes: 4096)
        let a = NamedTensor(name: "features.0.weight", dtype: .f32, shape: [40, 30], data: normalFloatBytes(1200, seed: 1))
        let b = NamedTensor(name: "classifier.weight", dtype: .f32, shape: [10, 40], data: normalFloatBytes(400, seed: 2))
        let spec = Array(#"{"layers":[{"type":"linear"}]}"#.utf8)
        let v0 = try s.writeVersion(parent: nil, changed: [a, b], spec: spec, metadata: meta("trained"), ref: ("prod", "train"))
        // A rank-2 update to one tensor, plus bases.
        var wa = a.floats() ?? []
        for i in 0..<40 { for j in 0..<30 { wa[i * 30 + j] += 1e-3 * Float(i + 1) * Float(j % 3) - 2e-3 * Float(i % 5) * Float(j) } }
        let a1 = NamedTensor(name: a.name, dtype: .f32, shape: a.shape, data: wa.withUnsafeBytes { Array($0) })
        let u = Tensor<Double>(shape: [30, 2], scalars: (0..<60).map { Double($0) / 7 })
        let basis = BasisInput(layer: "features.0", u: u, sigma: [3.5, 0.25], d: 30, k: 2)
        let v1 = try s.writeVersion(parent: v0.version, changed: [a1], bases: [basis], metadata: meta("forget R1"), ref: ("prod", "forget R1"))
        XCTAssertEqual(try s.spec(of: v1.version), spec)
        XCTAssertEqual(try s.version(v1.version).parents, [v0.version])
        XCTAssertEqual(try s.version(v1.version).tensors.map(\.name), [a.name, b.name])
        let bases = try s.bases(of: v1.version)
        XCTAssertEqual(bases.count, 1)
        XCTAssertEqual(bases.first?.u.scalars, u.scalars)
        XCTAssertEqual(bases.first?.sigma, [3.5, 0.25])
        XCTAssertEqual(bases.first?.k, 2)
        XCTAssertEqual(try s.tensors(of: v1.version).first, a1)
        let d = try s.diff(v0.version, v1.version)
        XCTAssertEqual(d.map(\.status), [.changed, .unchanged])
        XCTAssertEqual(d.first?.rank, 2)
        XCTAssertGreaterThan(d.first?.l2 ?? 0, 0)
        // Prefix resolution.
        XCTAssertEqual(try s.resolve(String(v1.version.hex.prefix(10))), v1.version)
        XCTAssertEqual(try s.resolve("prod"), v1.version)
        XCTAssertThrowsError(try s.resolve("nope")) { XCTAssertTrue("\($0)".contains("unknown revision")) }
        XCTAssertThrowsError(try s.resolve(String(a.data.count))) // "4800": no such prefix
        XCTAssertThrowsError(try s.writeVersion(parent: nil, changed: [NamedTensor(name: "../x", dtype: .u8, shape: [1], data: [1])], metadata: meta("x")))
    }

    func testHostileImportsAreRefusedAndWriteNothing() throws {
        let s = try makeStore()
        var nan = normalFloatBytes(100, seed: 4)
        nan[4 * 57 + 3] = 0x7F; nan[4 * 57 + 2] = 0xC0
        var late = normalFloatBytes(50_000, seed: 6)  // 4 chunks; +inf in the last one
        late[4 * 49_999 + 3] = 0x7F; late[4 * 49_999 + 2] = 0x80; late[4 * 49_999 + 1] = 0; late[4 * 49_999] = 0
        let cases: [(String, [UInt8], String)] = [
            ("nan", Safetensors.encode([NamedTensor(name: "w", dtype: .f32, shape: [100], data: nan)]), "non-finite value at element 57"),
            ("late-inf", Safetensors.encode([NamedTensor(name: "a", dtype: .f32, shape: [1000], data: normalFloatBytes(1000, seed: 1)),
                                             NamedTensor(name: "b", dtype: .f32, shape: [50_000], data: late)]), "tensor b has a non-finite value at element 49999"),
            ("traversal", Safetensors.encode([NamedTensor(name: "../../etc/passwd", dtype: .u8, shape: [1], data: [0])]), "path traversal"),
            ("hole", header(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8), "hole"),
            ("huge", [0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0, 0, 0, 0x7B], "exceeds"),
            ("overlap", header(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, data: 6), "overlaps"),
            ("dtype", header(#"{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}"#, data: 1), "unknown dtype"),
            ("notjson", header("{nope", data: 0), "not JSON"),
        ]
        for (name, bytes, fragment) in cases {
            let f = try write(bytes, name + ".safetensors")
            XCTAssertThrowsError(try s.importSafetensors(f, options: ImportOptions(metadata: meta(name), ref: ("main", "x"))), name) {
                XCTAssertTrue("\($0)".contains(fragment), "\(name): \($0)")
                XCTAssertFalse("\($0)".contains("\n"))
            }
            XCTAssertEqual(try s.objects.backend.list(), [], name)
            let files = FileManager.default.enumerator(atPath: s.directory + "/objects")?.compactMap { $0 as? String } ?? []
            XCTAssertEqual(files.filter { $0.contains(".tmp-") }, [], "no temp files left: \(name)")
            XCTAssertNil(try s.refs.get("main"))
        }
        let f = try write(cases[0].1, "nan-ok.safetensors")
        let ok = try s.importSafetensors(f, options: ImportOptions(metadata: meta("ok"), allowNonfinite: true))
        XCTAssertEqual(try s.tensors(of: ok.version).first?.data, nan)
        XCTAssertThrowsError(try s.importSafetensors(root.path, options: ImportOptions(metadata: meta("dir"))))
        XCTAssertThrowsError(try s.refs.set("../evil", to: ok.version, reason: "x"))
    }

    func header(_ json: String, data: Int) -> [UInt8] {
        var out: [UInt8] = []
        appendLE(&out, UInt64(json.utf8.count))
        return out + Array(json.utf8) + [UInt8](repeating: 0, count: data)
    }

    /// Three versions sharing chunks and delta bases; flip bytes in random objects and check
    /// fsck reports exactly those objects and the versions and refs they affect.
    func testFsckReportsExactlyTheFlippedObjectsAndAffectedVersions() throws {
        let s = try makeStore(chunkBytes: 8192)
        s.threads = 2
        var w = normalFloatBytes(20_000, seed: 21)
        let bias = NamedTensor(name: "b", dtype: .f32, shape: [16], data: normalFloatBytes(16, seed: 22))
        var versions: [ObjectID] = []
        var parent: ObjectID?
        for k in 0..<3 {
            if k > 0 { for i in stride(from: k * 8192, to: k * 8192 + 2000, by: 4) { w[i] ^= 0x33 } }
            let t = NamedTensor(name: "w", dtype: .f32, shape: [20_000], data: w)
            let r = try s.writeVersion(parent: parent, changed: [t, bias], metadata: meta("v\(k)"), ref: ("v\(k)", "test"))
            versions.append(r.version); parent = r.version
        }
        XCTAssertTrue(try s.fsck().isClean)
        let all = try s.objects.backend.list()
        var headers: [ObjectID: ObjectHeader] = [:]
        for id in all { headers[id] = try s.objects.header(id) }
        XCTAssertTrue(headers.values.contains { $0.codec == .deltaGrouped }, "the scenario includes delta chunks")
        var rng = SeededGenerator(seed: 77)
        for trial in 0..<4 {
            let flipped = Set(rng.permutation(all.count).prefix(1 + trial % 3).map { all[$0] })
            var saved: [ObjectID: Data] = [:]
            for id in flipped {
                let url = URL(fileURLWithPath: s.directory + "/objects/" + id.hex.prefix(2) + "/" + id.hex.dropFirst(2))
                var d = try Data(contentsOf: url)
                saved[id] = d
                let at = ObjectHeader.maxSize + rng.uniformInt(below: max(1, d.count - ObjectHeader.maxSize))
                d[min(at, d.count - 1)] ^= 0x10
                try d.write(to: url)
            }
            // Expected: versions referencing a flipped object directly or through a delta base.
            var expected = Set<ObjectID>()
            for v in versions where !flipped.contains(v) {
                let ver = try Version.decode(try s.objects.get(v), what: v.hex)
                for r in ver.references {
                    var c: ObjectID? = r
                    while let x = c { if flipped.contains(x) { expected.insert(v) }; c = headers[x]?.base }
                }
            }
            let report = try s.fsck()
            XCTAssertEqual(Set(report.corrupt.map(\.id)), flipped, "trial \(trial)")
            XCTAssertEqual(Set(report.affectedVersions), expected, "trial \(trial)")
            let badVersions = expected.union(flipped.filter { versions.contains($0) })
            XCTAssertEqual(Set(report.affectedRefs), Set(versions.enumerated().filter { badVersions.contains($0.element) }.map { "v\($0.offset)" }))
            XCTAssertEqual(report.missing.count, 0)
            // Export of an affected version fails and leaves no file.
            if let v = badVersions.first {
                let out = root.appendingPathComponent("bad.safetensors").path
                XCTAssertThrowsError(try s.exportSafetensors(v, to: out))
                XCTAssertFalse(FileManager.default.fileExists(atPath: out))
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.contains("lethe-tmp") }, [])
            }
            for (id, d) in saved {
                try d.write(to: URL(fileURLWithPath: s.directory + "/objects/" + id.hex.prefix(2) + "/" + id.hex.dropFirst(2)))
            }
        }
        // A deleted chunk is reported missing, in quick mode too, with its versions.
        let chunk = try s.version(versions[0]).tensor("b")?.chunks.first
        let victim = try XCTUnwrap(chunk)
        try FileManager.default.removeItem(atPath: s.directory + "/objects/" + victim.hex.prefix(2) + "/" + victim.hex.dropFirst(2))
        let quick = try s.fsck(quick: true)
        XCTAssertEqual(quick.missing.map(\.id), [victim])
        XCTAssertEqual(Set(quick.affectedVersions), Set(versions))
        XCTAssertEqual(quick.affectedRefs, ["v0", "v1", "v2"])
    }

    func testGCSweepsOnlyUnreachableObjectsAfterGrace() throws {
        let s = try makeStore(chunkBytes: 8192)
        let t0 = NamedTensor(name: "w", dtype: .f32, shape: [5000], data: normalFloatBytes(5000, seed: 31))
        let t1 = NamedTensor(name: "w", dtype: .f32, shape: [5000], data: normalFloatBytes(5000, seed: 32))
        let t2 = NamedTensor(name: "w", dtype: .f32, shape: [5000], data: normalFloatBytes(5000, seed: 33))
        let v0 = try s.writeVersion(parent: nil, changed: [t0], metadata: meta("v0"), ref: ("main", "a"))
        let v1 = try s.writeVersion(parent: v0.version, changed: [t1], metadata: meta("v1"), ref: ("main", "b"))
        let orphan = try s.writeVersion(parent: nil, changed: [t2], metadata: meta("orphan"))
        let ledgerKept = try s.writeVersion(parent: nil, changed: [t2, NamedTensor(name: "x", dtype: .u8, shape: [1], data: [9])], metadata: meta("ledger"))
        let before = try s.objects.backend.list()
        let young = try s.gc(extraRoots: [ledgerKept.version], grace: 3600, dryRun: false)
        XCTAssertEqual(young.swept, [])
        XCTAssertEqual(young.keptYoung, 1, "only the orphan version object is unreachable (its chunks are shared with the ledger's version)")
        let dry = try s.gc(extraRoots: [ledgerKept.version], grace: 0, dryRun: true)
        XCTAssertEqual(dry.swept, [orphan.version])
        XCTAssertEqual(try s.objects.backend.list(), before)
        let ledgerRefs = try s.version(ledgerKept.version).references
        let real = try s.gc(grace: 0, dryRun: false)
        XCTAssertEqual(Set(real.swept), Set([orphan.version, ledgerKept.version] + ledgerRefs))
        XCTAssertGreaterThan(real.bytesFreed, 0)
        XCTAssertEqual(try s.tensors(of: v1.version), [t1], "reachable through the ref")
        XCTAssertEqual(try s.tensors(of: v0.version), [t0], "reachable as a parent")
        XCTAssertTrue(try s.fsck().isClean)
    }
}
