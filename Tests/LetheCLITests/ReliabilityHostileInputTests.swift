import Foundation
import XCTest
import LetheNN
import LetheStore
import LetheTensor

/// Hostile input (issue 9, item 5), through the command line and table-driven: every case gets
/// one clear `Error:` line, a non-zero exit (1, or 64 for usage errors), and leaves the store and
/// ledger byte-identical (`EngineStore.stateHash`: every file of `.lethe` plus every ledger row).
final class ReliabilityHostileInputTests: XCTestCase {
    /// A safetensors file from a header text and a data buffer.
    func raw(_ header: String, data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var n = UInt64(header.utf8.count)
        for _ in 0..<8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
        return out + Array(header.utf8) + data
    }

    func f32(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    /// IDX bytes: magic 00 00 08 rank, big-endian extents, data.
    func idx(_ dims: [Int], data: [UInt8], magic: [UInt8]? = nil) -> [UInt8] {
        var out = magic ?? [0, 0, 8, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return out + data
    }

    /// A directory of the four gzip IDX files, with one of them replaced.
    func idxDirectory(_ root: URL, _ name: String, replace file: String, with bytes: [UInt8]) throws -> String {
        let dir = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let files: [String: [UInt8]] = [
            "train-images-idx3-ubyte.gz": idx([12, 4, 4], data: (0..<192).map { UInt8($0 % 251) }),
            "train-labels-idx1-ubyte.gz": idx([12], data: (0..<12).map { UInt8($0 % 3) }),
            "t10k-images-idx3-ubyte.gz": idx([6, 4, 4], data: (0..<96).map { UInt8($0 * 7 % 256) }),
            "t10k-labels-idx1-ubyte.gz": idx([6], data: (0..<6).map { UInt8($0 % 3) }),
        ]
        for (n, b) in files { try Gzip.write(n == file ? bytes : b, to: dir.appendingPathComponent(n).path) }
        return dir.path
    }

    func testHostileInputsGetOneLineAndChangeNothing() throws {
        let s = try EngineStore()
        _ = try EngineStoryTests.prepare(s)
        let ids = EngineStoryTests.trainIDs
        let forgotten = try s.idFile("forgotten.txt", Array(ids[0..<12]))
        try s.expect(0, ["forget", "--ref", "prod", "--data", "digits", "--samples", forgotten, "--gamma", "0.5", "--max-epochs", "40",
                         "--collapse-margin", "0.03"])
        // A tensors-only version whose spec does not fit its weights (for `bases`).
        let good = s.root.appendingPathComponent("good.safetensors")
        try Data(Safetensors.encode([NamedTensor(name: "w", dtype: .f32, shape: [2], data: f32([1, 2]))])).write(to: good)
        let mlpSpec = s.root.appendingPathComponent("mlp.json")
        try #"{"arch":"mlp"}"#.write(to: mlpSpec, atomically: true, encoding: .utf8)
        try s.expect(0, ["import", good.path, "--ref", "odd", "--spec", mlpSpec.path, "--dataset-digest",
                         try XCTUnwrap(s.query("SELECT dataset_digest FROM versions LIMIT 1").first?["dataset_digest"] as? String)])
        try s.expect(0, ["gc", "--dry-run"])  // the engine adopts the import into the ledger now, not during a case

        func file(_ name: String, _ bytes: [UInt8]) throws -> String {
            let url = s.root.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            return url.path
        }
        func text(_ name: String, _ content: String) throws -> String {
            let url = s.root.appendingPathComponent(name)
            try content.write(to: url, atomically: true, encoding: .utf8)
            return url.path
        }
        let tensor = #"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        var hugeHeader = [UInt8](repeating: 0, count: 16)
        hugeHeader[0] = 0xFF; hugeHeader[1] = 0xFF; hugeHeader[2] = 0xFF; hugeHeader[3] = 0x7F
        let mismatchSpec = #"{"arch":"mlp","hidden":[3],"input":[1,2,2],"classes":2}"#
        let linearOnly = Safetensors.encode([NamedTensor(name: "classifier.1.weight", dtype: .f32, shape: [3, 4], data: f32(Array(repeating: 0.1, count: 12))),
                                             NamedTensor(name: "classifier.1.bias", dtype: .f32, shape: [3], data: f32([0, 0, 0])),
                                             NamedTensor(name: "classifier.3.weight", dtype: .f32, shape: [2, 5], data: f32(Array(repeating: 0.1, count: 10))),
                                             NamedTensor(name: "classifier.3.bias", dtype: .f32, shape: [2], data: f32([0, 0]))])
        let linearFile = try file("linear.safetensors", linearOnly)
        let forget = ["forget", "--ref", "prod", "--data", "digits"]

        // (category, arguments, exit status, fragment of the one error line)
        let cases: [(String, [String], Int32, String)] = [
            // Malformed safetensors.
            ("safetensors", ["import", try file("huge.safetensors", hugeHeader)], 1, "header length 2147483647 exceeds 100000000 bytes"),
            ("safetensors", ["import", try file("past.safetensors", Array(raw(#"{"a":1}"#, data: []).prefix(12)))], 1, "runs past the end of the file"),
            ("safetensors", ["import", try file("short.safetensors", [1, 2, 3])], 1, "shorter than the 8-byte header length"),
            ("safetensors", ["import", try file("notjson.safetensors", raw("{\"a\":", data: []))], 1, "header is not JSON"),
            ("safetensors", ["import", try file("array.safetensors", raw("[1]", data: []))], 1, "does not start with '{'"),
            ("safetensors", ["import", try file("overlap.safetensors", raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: [UInt8](repeating: 0, count: 12)))], 1, "overlaps the previous tensor"),
            ("safetensors", ["import", try file("hole.safetensors", raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [UInt8](repeating: 0, count: 8)))], 1, "hole in the data buffer"),
            ("safetensors", ["import", try file("pastend.safetensors", raw("{\"a\":\(tensor)}", data: [0, 0, 0, 0]))], 1, "reach byte 8 but the data buffer has 4 bytes"),
            ("safetensors", ["import", try file("trailing.safetensors", raw("{\"a\":\(tensor)}", data: [UInt8](repeating: 0, count: 12)))], 1, "4 trailing bytes"),
            ("safetensors", ["import", try file("dtype.safetensors", raw(#"{"a":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}}"#, data: [0]))], 1, "unknown dtype \"F8_E9\""),
            ("safetensors", ["import", try file("size.safetensors", raw(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))], 1, "needs 12 bytes but data_offsets span 8"),
            ("safetensors", ["import", try file("overflow.safetensors", raw(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))], 1, "overflows"),
            ("safetensors", ["import", try file("dup.safetensors", raw("{\"a\":\(tensor),\"a\":\(tensor)}", data: [UInt8](repeating: 0, count: 8)))], 1, "duplicate key"),
            ("safetensors", ["import", try file("negative.safetensors", raw(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))], 1, "invalid shape"),
            ("safetensors", ["import", s.root.path], 1, "is not a regular file"),
            ("safetensors", ["import", s.root.appendingPathComponent("absent.safetensors").path], 1, "cannot open"),
            // Non-finite weights.
            ("nonfinite", ["import", try file("nan.safetensors", Safetensors.encode([NamedTensor(name: "w", dtype: .f32, shape: [3], data: f32([1, .nan, 2]))]))], 1, "tensor w has a non-finite value at element 1 (pass --allow-nonfinite to accept)"),
            ("nonfinite", ["import", try file("inf.safetensors", Safetensors.encode([NamedTensor(name: "w", dtype: .f32, shape: [3], data: f32([1, 2, -.infinity]))]))], 1, "tensor w has a non-finite value at element 2"),
            ("nonfinite", ["import", try file("inf16.safetensors", Safetensors.encode([NamedTensor(name: "h", dtype: .f16, shape: [2], data: [0, 0x3C, 0, 0x7C])]))], 1, "tensor h has a non-finite value at element 1"),
            // Names that try to leave their directory.
            ("names", ["import", try file("dotdot.safetensors", Safetensors.encode([NamedTensor(name: "../../etc/passwd", dtype: .u8, shape: [1], data: [0])]))], 1, "looks like a path traversal"),
            ("names", ["import", try file("abs.safetensors", Safetensors.encode([NamedTensor(name: "/etc/passwd", dtype: .u8, shape: [1], data: [0])]))], 1, "looks like a path traversal"),
            ("names", ["import", try file("mid.safetensors", Safetensors.encode([NamedTensor(name: "a/../../b", dtype: .u8, shape: [1], data: [0])]))], 1, "looks like a path traversal"),
            ("names", ["import", try file("bs.safetensors", Safetensors.encode([NamedTensor(name: "a\\..\\b", dtype: .u8, shape: [1], data: [0])]))], 1, "contains a control character or backslash"),
            ("names", ["import", try file("nl.safetensors", Safetensors.encode([NamedTensor(name: "a\nb", dtype: .u8, shape: [1], data: [0])]))], 1, "contains a control character or backslash"),
            ("names", ["import", good.path, "--ref", "../evil"], 64, "is invalid for '--ref'"),
            ("names", ["ref", "set", "../../evil", "prod"], 64, "is invalid for '<name>'"),
            ("names", ["ref", "set", "x.tmp.123", "prod"], 64, "is invalid for '<name>'"),
            ("names", ["train", "--arch", "mlp", "--data", "digits", "--epochs", "1", "--ref", "../x"], 1, "invalid ref name"),
            ("train", ["train", "--arch", "mlp", "--data", "digits", "--epochs", "1", "--eval-every", "0", "--ref", "x"], 64, "is invalid for '--eval-every': expected a positive integer"),
            // IDX datasets (lethe train --ref reads the dataset before anything is written).
            ("idx", ["train", "--arch", "mlp", "--epochs", "1", "--ref", "idx", "--data",
                     try idxDirectory(s.root, "magic", replace: "train-images-idx3-ubyte.gz", with: idx([12, 4, 4], data: [UInt8](repeating: 0, count: 192), magic: [0x1F, 0x8B, 8, 3]))], 1, "bad IDX magic number"),
            ("idx", ["train", "--arch", "mlp", "--epochs", "1", "--ref", "idx", "--data",
                     try idxDirectory(s.root, "type", replace: "train-images-idx3-ubyte.gz", with: idx([12, 4, 4], data: [UInt8](repeating: 0, count: 192), magic: [0, 0, 0x0D, 3]))], 1, "is not unsigned byte"),
            ("idx", ["train", "--arch", "mlp", "--epochs", "1", "--ref", "idx", "--data",
                     try idxDirectory(s.root, "truncated", replace: "train-images-idx3-ubyte.gz", with: idx([12, 4, 4], data: [UInt8](repeating: 0, count: 150)))], 1, "truncated: header promises 192 bytes"),
            ("idx", ["train", "--arch", "mlp", "--epochs", "1", "--ref", "idx", "--data",
                     try idxDirectory(s.root, "overflow", replace: "t10k-images-idx3-ubyte.gz", with: [0, 0, 8, 3] + [UInt8](repeating: 0xFF, count: 12))], 1, "is too large"),
            ("idx", ["train", "--arch", "mlp", "--epochs", "1", "--ref", "idx", "--data",
                     try idxDirectory(s.root, "counts", replace: "train-labels-idx1-ubyte.gz", with: idx([11], data: [UInt8](repeating: 1, count: 11)))], 1, "holds 12 images but"),
            ("idx", ["train", "--arch", "mlp", "--epochs", "1", "--ref", "idx", "--data",
                     try idxDirectory(s.root, "rank", replace: "train-labels-idx1-ubyte.gz", with: idx([12, 1], data: [UInt8](repeating: 1, count: 12)))], 1, "IDX rank 2, expected 1"),
            // Model specs.
            ("spec", ["train", "--data", "digits", "--epochs", "1", "--ref", "spec", "--spec", try text("unknown-layer.json", #"{"layers":[{"type":"flatten"},{"type":"transformer"}]}"#)], 1, "unknown type \"transformer\""),
            ("spec", ["train", "--data", "digits", "--epochs", "1", "--ref", "spec", "--spec", try text("unknown-arch.json", #"{"arch":"vgg"}"#)], 1, "unknown arch \"vgg\""),
            ("spec", ["train", "--data", "digits", "--epochs", "1", "--ref", "spec", "--spec", try text("noflatten.json", #"{"layers":[{"type":"linear","out":10}]}"#)], 1, "add a flatten layer first"),
            ("spec", ["train", "--data", "digits", "--epochs", "1", "--ref", "spec", "--spec", try text("conv-flat.json", #"{"layers":[{"type":"flatten"},{"type":"conv2d","out":4,"kernel":3}]}"#)], 1, "needs [C, H, W] input"),
            ("spec", ["train", "--data", "digits", "--epochs", "1", "--ref", "spec", "--spec", try text("classes.json", #"{"layers":[{"type":"flatten"},{"type":"linear","out":7}]}"#)], 1, "expected [10] logits"),
            ("spec", ["train", "--data", "digits", "--epochs", "1", "--ref", "spec", "--spec", try text("kernel.json", #"{"layers":[{"type":"conv2d","out":4,"kernel":30},{"type":"flatten"},{"type":"linear"}]}"#)], 1, "invalid model spec"),
            ("spec", ["import", good.path, "--ref", "spec", "--spec", try text("imp-unknown.json", #"{"layers":[{"type":"flatten"},{"type":"attention","out":3}]}"#)], 1, "unknown type \"attention\""),
            ("spec", ["import", good.path, "--ref", "spec", "--spec", try text("imp-arch.json", #"{"arch":"gpt"}"#)], 1, "unknown arch \"gpt\""),
            ("spec", ["import", good.path, "--ref", "spec", "--spec", try text("imp-notspec.json", #"{"arch":7}"#)], 1, "invalid model spec"),
            ("spec", ["import", linearFile, "--ref", "spec", "--spec", try text("imp-shapes.json", mismatchSpec)], 1, "classifier.3.weight has shape [2, 5], the spec needs [2, 3]"),
            ("spec", ["import", good.path, "--ref", "spec", "--spec", try text("imp-names.json", mismatchSpec)], 1, "the spec does not match the tensors: missing classifier.1.weight"),
            ("spec", ["bases", "--ref", "odd", "--data", "digits"], 1, "invalid state_dict: missing classifier.1.weight"),
            // Forget requests.
            ("forget", forget + ["--samples", try s.idFile("unknown.txt", [ids[20], 999_999, -3])], 1, "2 unknown sample ids (not in the training set of 1438): 999999, -3"),
            ("forget", forget + ["--samples", try s.idFile("dup.txt", [ids[20], ids[21], ids[20]])], 1, "sample id \(ids[20]) named more than once"),
            ("forget", forget + ["--samples", try s.idFile("partly.txt", [ids[0], ids[30]])], 1, "1 of the 2 samples were already forgotten in the history of prod"),
            ("forget", forget + ["--samples", try text("junk.txt", "\(ids[40])\n4e2\n")], 1, "'4e2' is not a sample id"),
            ("forget", forget + ["--samples", try text("empty.txt", "# nothing\n")], 1, "names no sample ids"),
            ("forget", forget + ["--samples", s.root.appendingPathComponent("absent.txt").path], 1, "cannot read sample id file"),
            ("forget", forget + ["--class", "10"], 1, "class 10 outside 0..<10"),
            ("forget", forget + ["--class", "-1"], 1, "class -1 outside 0..<10"),
            ("forget", forget + ["--samples", forgotten, "--class", "1"], 64, "Give exactly one of"),
            ("forget", ["forget", "--ref", "odd", "--data", "digits", "--class", "1"], 1, "invalid state_dict"),
            // γ outside (0, 1].
            ("gamma", forget + ["--class", "1", "--gamma", "0"], 64, "is invalid for '--gamma': expected auto or a number in (0, 1]"),
            ("gamma", forget + ["--class", "1", "--gamma", "-0.5"], 64, "is invalid for '--gamma'"),
            ("gamma", forget + ["--class", "1", "--gamma", "1.0001"], 64, "is invalid for '--gamma'"),
            ("gamma", forget + ["--class", "1", "--gamma", "nan"], 64, "is invalid for '--gamma'"),
            ("gamma", forget + ["--class", "1", "--gamma", "inf"], 64, "is invalid for '--gamma'"),
            ("gamma", forget + ["--class", "1", "--gamma", "high"], 64, "is invalid for '--gamma'"),
        ]
        let before = try s.stateHash()
        var tried: [String: Int] = [:]
        for (category, args, status, fragment) in cases {
            let r = try s.run(args)
            let label = "\(category): lethe \(args.joined(separator: " "))"
            XCTAssertEqual(r.status, status, "\(label): \(r.err)")
            // One error line (the first line of a usage error, followed by the usage). Commands that
            // report progress on stderr (train: "loaded digits: ...") print it before the error.
            let lines = r.err.split(separator: "\n")
            let errors = lines.filter { $0.hasPrefix("Error: ") }
            XCTAssertEqual(errors.count, 1, "\(label): \(r.err)")
            if status == 1 { XCTAssertEqual(lines.last, errors.first, "\(label): the error is the last line: \(r.err)") }
            if status == 1 && args[0] != "train" { XCTAssertEqual(lines.count, 1, "\(label): one line: \(r.err)") }
            XCTAssertTrue(errors.first?.contains(fragment) == true, "\(label): expected '\(fragment)' in \(r.err)")
            XCTAssertEqual(try s.stateHash(), before, "\(label) changed the store or ledger")
            tried[category, default: 0] += 1
        }
        // Forgetting samples that are all forgotten already is not an error: it says so and changes nothing.
        let again = try s.expect(0, forget + ["--samples", forgotten, "--json"]).out
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(again.utf8)) as? [String: Any])?["status"] as? String, "already_forgotten")
        XCTAssertEqual(try s.stateHash(), before)
        // --allow-nonfinite accepts the NaN file (and only then does the store change).
        try s.expect(0, ["import", s.root.appendingPathComponent("nan.safetensors").path, "--ref", "nan", "--allow-nonfinite"])
        XCTAssertNotEqual(try s.stateHash(), before)
        XCTAssertNil(try s.integrityProblem())
        print("reliability-hostile: \(cases.count) cases: " + tried.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }

    /// A zstd frame declaring a huge size (decompression bomb) in a stored object, and a header
    /// declaring a payload above the cap: reads refuse them with one line before allocating.
    func testDecompressionBombsInTheStoreAreRefused() throws {
        let s = try EngineStore()
        try s.expect(0, ["init"])
        var rng = SplitMix64(seed: 5)
        let f = s.root.appendingPathComponent("w.safetensors")
        try Data(safetensorsFile([("w", 4096)], rng: &rng)).write(to: f)
        try s.expect(0, ["import", f.path, "--ref", "m"])
        let store = try Store(directory: s.storeDir.path)
        let version = try store.version(try XCTUnwrap(store.refs.get("m")))
        let chunk = try XCTUnwrap(version.tensor("w")?.chunks.first)
        let path = s.storeDir.appendingPathComponent("objects/\(chunk.hex.prefix(2))/\(chunk.hex.dropFirst(2))").path
        // One zstd frame (single segment, 8-byte content size 2^40, one RLE block of 16 bytes).
        var frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xE0]
        for k in 0..<8 { frame.append(UInt8(truncatingIfNeeded: (UInt64(1) << 40) >> (8 * UInt64(k)))) }
        let block = UInt32(16 << 3 | 1 << 1 | 1)
        frame += [UInt8(block & 0xFF), UInt8(block >> 8 & 0xFF), UInt8(block >> 16 & 0xFF), 0x42]
        let honest = ObjectHeader(kind: .chunk, codec: .zstd, elementSize: 1, depth: 0, payloadLength: 4096 * 4, bodyLength: frame.count, base: nil)
        var capped = ObjectHeader(kind: .chunk, codec: .zstd, elementSize: 1, depth: 0, payloadLength: 4096 * 4, bodyLength: frame.count, base: nil).serialized()
        for k in 0..<8 { capped[16 + k] = UInt8(truncatingIfNeeded: (UInt64(1) << 40) >> (8 * UInt64(k))) }
        for (name, bytes, fragment) in [("frame", honest.serialized() + frame, "zstd frame declares 1099511627776 bytes, expected 16384 (refused)"),
                                        ("header", capped + frame, "declares 1099511627776 payload bytes, above the 67108864-byte cap for a chunk (refused)")] {
            try? FileManager.default.removeItem(atPath: path)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let out = s.root.appendingPathComponent("out-\(name).safetensors").path
            let r = try s.run(["export", "m", "-o", out])
            XCTAssertEqual(r.status, 1, name)
            XCTAssertEqual(r.err.split(separator: "\n").count, 1, r.err)
            XCTAssertTrue(r.err.contains(fragment), "\(name): \(r.err)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
            let fsck = try s.run(["fsck", "--json"])
            XCTAssertEqual(fsck.status, 1)
            XCTAssertTrue(fsck.out.contains(chunk.hex) && fsck.out.contains("refused"), fsck.out)
        }
    }
}
