import XCTest
@testable import LetheNN

/// Inputs found by the libFuzzer targets (tools/fuzz), kept as regression tests, and the cap that
/// keeps a gzip bomb in a dataset directory from exhausting memory.
final class NNFuzzRegressionTests: XCTestCase {
    /// tools/fuzz/corpus/idx/regress-shape-overflow: three extents whose product overflows Int
    /// trapped in `IDX.parse` (shape.reduce(1, *)); now a clear error.
    func testIDXShapeWhoseProductOverflowsIsRefused() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/fuzz/corpus/idx/regress-shape-overflow")
        let bytes = [UInt8](try Data(contentsOf: url))
        XCTAssertEqual(bytes.prefix(4), [0, 0, 8, 3])
        XCTAssertThrowsError(try IDX.parse(bytes, path: "x", expectedRank: 3)) { e in
            XCTAssertEqual(e as? NNError, .invalidDataset("x: IDX shape [838361670, 3397320704, 8] is too large"))
        }
        // The largest extents a header can hold, in every rank.
        let huge: [UInt8] = [0, 0, 8, 3] + [UInt8](repeating: 0xFF, count: 12) + [1, 2, 3]
        XCTAssertThrowsError(try IDX.parse(huge, path: "y", expectedRank: 3)) { e in
            XCTAssertEqual(e as? NNError, .invalidDataset("y: IDX shape [4294967295, 4294967295, 4294967295] is too large"))
        }
        XCTAssertThrowsError(try IDX.parse([0, 0, 8, 1, 0xFF, 0xFF, 0xFF, 0xFF], path: "z", expectedRank: 1)) { e in
            XCTAssertEqual(e as? NNError, .invalidDataset("z: truncated: header promises 4294967295 bytes of data for shape [4294967295], file has 0"))
        }
    }

    /// A gzip stream that decompresses past the cap (a decompression bomb) is refused.
    func testGzipBeyondTheCapIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-bomb-\(UUID().uuidString).gz").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Gzip.write([UInt8](repeating: 0, count: 3 << 20), to: path)
        XCTAssertEqual(try Gzip.read(path, maxBytes: 3 << 20).count, 3 << 20)
        XCTAssertThrowsError(try Gzip.read(path, maxBytes: (3 << 20) - 1)) { e in
            XCTAssertEqual(e as? NNError, .invalidDataset("\(path): decompresses to more than 3145727 bytes (refused)"))
        }
    }
}
