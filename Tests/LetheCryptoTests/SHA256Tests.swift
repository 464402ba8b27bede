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

/// RFC 4231 test vectors for HMAC-SHA256.
final class HMACSHA256Tests: XCTestCase {
    func testRFC4231Case1And2() {
        XCTAssertEqual(Hex.encode(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), message: "Hi There")),
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        XCTAssertEqual(Hex.encode(HMACSHA256.mac(key: Array("Jefe".utf8), message: "what do ya want for nothing?")),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    func testRFC4231Case6KeyLongerThanBlock() {
        XCTAssertEqual(Hex.encode(HMACSHA256.mac(key: [UInt8](repeating: 0xaa, count: 131),
                                                 message: "Test Using Larger Than Block-Size Key - Hash Key First")),
                       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }
}
