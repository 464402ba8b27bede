import XCTest
@testable import LetheTensor

final class SafetensorsTests: XCTestCase {
    func sample() -> [NamedTensor] {
        [NamedTensor(name: "fc.weight", Tensor<Float>(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])),
         NamedTensor(name: "bn.num_batches_tracked", int64: [7], shape: []),
         NamedTensor(name: "a.bias", Tensor<Float>(shape: [2], scalars: [-0.0, .infinity]))]
    }

    func testRoundTripAndReferenceOrder() throws {
        let bytes = Safetensors.encode(sample(), metadata: [("format", "pt")])
        let (header, tensors) = try Safetensors.decode(bytes)
        // I64 sorts before F32; F32 names ascending.
        XCTAssertEqual(header.entries.map(\.name), ["bn.num_batches_tracked", "a.bias", "fc.weight"])
        XCTAssertEqual(header.metadata?.first?.0, "format")
        XCTAssertEqual(header.rawJSON.count % 8, 0)
        XCTAssertEqual(Set(tensors.map(\.name)), Set(sample().map(\.name)))
        XCTAssertEqual(tensors.first { $0.name == "fc.weight" }?.floats(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(tensors.first { $0.name == "bn.num_batches_tracked" }?.int64s(), [7])
        XCTAssertEqual(String(decoding: header.rawJSON, as: UTF8.self).trimmingTrailingSpaces(),
                       #"{"__metadata__":{"format":"pt"},"bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"a.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"fc.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[16,40]}}"#)
        // Re-encoding the decoded tensors with the stored header is byte-identical.
        XCTAssertEqual(Safetensors.encode(tensors, header: header.rawJSON), bytes)
    }

    func file(_ json: String, data: Int) -> [UInt8] {
        var h = Array(json.utf8)
        var out = [UInt8]()
        var n = UInt64(h.count)
        for _ in 0..<8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
        out += h; h = []
        return out + [UInt8](repeating: 0, count: data)
    }

    func expectError(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Safetensors.decode(bytes), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(fragment), "\(error) does not mention \(fragment)", file: file, line: line)
        }
    }

    func testHostileHeadersAreRejected() {
        var huge = [UInt8](repeating: 0, count: 16)
        huge[0] = 0xFF; huge[1] = 0xFF; huge[2] = 0xFF; huge[3] = 0xFF; huge[4] = 0x01
        expectError(huge, "exceeds")
        expectError([1, 2, 3], "shorter")
        expectError(file("[1]", data: 0), "does not start with '{'")
        expectError(file("{\"a\":", data: 0), "not JSON")
        expectError(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8), "duplicate key")
        expectError(file(#"{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}"#, data: 4), "unknown dtype")
        expectError(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: 4), "needs 8 bytes")
        expectError(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, data: 6), "overlaps")
        expectError(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8), "hole")
        expectError(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: 2), "reach byte 4")
        expectError(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: 9), "trailing")
        expectError(file(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: 4), "invalid shape")
        expectError(file("{\"a\":1}  ", data: 0) + [], "not an object")
    }

    func testJSONParserBasics() throws {
        let v = try OrderedJSONParser.parse(Array(#" {"b": [1, -2.5e3, true, null], "a": "\u00e9\n"} "#.utf8))
        guard case .object(let m) = v else { return XCTFail("not an object") }
        XCTAssertEqual(m.map(\.0), ["b", "a"])
        XCTAssertEqual(v["a"], .string("é\n"))
        XCTAssertThrowsError(try OrderedJSONParser.parse(Array("01".utf8)))
        XCTAssertThrowsError(try OrderedJSONParser.parse(Array("[1,]".utf8)))
        XCTAssertThrowsError(try OrderedJSONParser.parse(Array(String(repeating: "[", count: 100).utf8)))
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.hasSuffix(" ") { s.removeLast() }
        return s
    }
}
