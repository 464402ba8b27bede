import XCTest
@testable import LetheCrypto

final class SHA256Tests: XCTestCase {
    /// FIPS 180-2 test vectors.
    func testKnownVectors() {
        XCTAssertEqual(SHA256.hash("").hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hash("abc").hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let h = SHA256()
        h.update("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
        XCTAssertEqual(h.finalize().hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testIncrementalEqualsOneShot() {
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let h = SHA256()
        h.update(Array(data[..<1234])); h.update(Array(data[1234...]))
        XCTAssertEqual(h.finalize(), SHA256.hash(data))
    }

    func testHexRoundTripAndRejects() {
        XCTAssertEqual(Hex.decode("00ff10Ab"), [0, 255, 16, 171])
        XCTAssertNil(Hex.decode("abc"))
        XCTAssertNil(Hex.decode("zz"))
        XCTAssertEqual(Hex.encode([0, 255, 16]), "00ff10")
        XCTAssertNil(Digest(hex: "00"))
    }
}
