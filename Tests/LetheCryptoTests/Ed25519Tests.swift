import Foundation
import XCTest
@testable import LetheCrypto

final class Ed25519Tests: XCTestCase {
    /// RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
    func testRFC8032Vectors() throws {
        let key1 = try Ed25519.PrivateKey(seed: try XCTUnwrap(Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")))
        XCTAssertEqual(key1.publicKey.hex, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        XCTAssertEqual(Hex.encode(try key1.sign([])),
                       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        let key2 = try Ed25519.PrivateKey(seed: try XCTUnwrap(Hex.decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")))
        XCTAssertEqual(key2.publicKey.hex, "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        let sig2 = try key2.sign([0x72])
        XCTAssertEqual(Hex.encode(sig2),
                       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
        XCTAssertTrue(key2.publicKey.isValidSignature(sig2, for: [0x72]))
        XCTAssertFalse(key2.publicKey.isValidSignature(sig2, for: [0x73]))
        XCTAssertFalse(key1.publicKey.isValidSignature(sig2, for: [0x72]))
        var bad = sig2; bad[10] ^= 1
        XCTAssertFalse(key2.publicKey.isValidSignature(bad, for: [0x72]))
        XCTAssertFalse(key2.publicKey.isValidSignature(Array(sig2.prefix(63)), for: [0x72]))
    }

    func testGeneratePEMRoundTripAndFileMode() throws {
        let key = try Ed25519.PrivateKey.generate()
        let pem = try key.pem()
        XCTAssertTrue(pem.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let again = try Ed25519.PrivateKey(pem: pem)
        XCTAssertEqual(again.publicKey, key.publicKey)
        let msg = Array("checkpoint".utf8)
        XCTAssertTrue(key.publicKey.isValidSignature(try again.sign(msg), for: msg))

        let pub = try Ed25519.PublicKey(pem: try key.publicKey.pem())
        XCTAssertEqual(pub, key.publicKey)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ed25519-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("key.pem").path
        try key.save(path: path)
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        XCTAssertEqual((attrs[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        XCTAssertEqual(try Ed25519.PrivateKey.load(path: path).publicKey, key.publicKey)
        XCTAssertThrowsError(try key.save(path: path))
    }

    func testRejectsGarbageAndNonEd25519Keys() {
        XCTAssertThrowsError(try Ed25519.PrivateKey(pem: "not a key"))
        XCTAssertThrowsError(try Ed25519.PrivateKey(seed: [1, 2, 3]))
        XCTAssertNil(Ed25519.PublicKey(raw: [0]))
        XCTAssertThrowsError(try Ed25519.PrivateKey.load(path: "/nonexistent/key.pem"))
    }
}
