import Foundation
import XCTest
import LetheCrypto
@testable import LetheLedger

/// Pins the documented canonical entry encoding, so a third party can rebuild leaves from rows.
final class EncodingTests: XCTestCase {
    private func u32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    private func u64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(v >> UInt64(56 - 8 * $0) & 0xff) } }
    private func str(_ s: String) -> [UInt8] { u32(s.utf8.count) + Array(s.utf8) }
    private func text(_ s: String) -> [UInt8] { [3] + str(s) }

    func testDatasetEntryBytesFollowTheDocumentedFormat() throws {
        let t = try TestStore()
        try t.populate()
        let at = LedgerTime.string(TestStore.t0)
        XCTAssertEqual(at, "2026-05-28T20:26:40.000Z")
        var expected = Array("lethe-entry-v1\n".utf8)
        expected += u64(0) + str("dataset.recorded") + str(TestStore.dataset) + str(try t.ledger.entry(0).createdAt)
        expected += u32(1)                                   // one table with rows
        expected += str("ledger_datasets") + u32(1)          // one row
        expected += u32(5)                                   // five columns
        expected += text(TestStore.dataset) + text("digits") + [1] + u64(1797) + text("sklearn digits") + text(at)
        let bytes = try t.ledger.entryBytes(0)
        XCTAssertEqual(Hex.encode(bytes), Hex.encode(expected))
        XCTAssertEqual(Merkle.leafHash(bytes), try t.ledger.entry(0).leafHash)
    }

    func testValuesEncodeByStorageClass() {
        var out: [UInt8] = []
        EntryEncoding.appendValue(&out, .null)
        EntryEncoding.appendValue(&out, .integer(-1))
        EntryEncoding.appendValue(&out, .real(0.5))
        EntryEncoding.appendValue(&out, .blob([0xab]))
        XCTAssertEqual(Hex.encode(out), "00" + "01ffffffffffffffff" + "023fe0000000000000" + "0400000001ab")
    }

    func testLedgerTimeRoundTrips() {
        let d = Date(timeIntervalSince1970: 1_780_000_123.456)
        XCTAssertEqual(LedgerTime.string(d), "2026-05-28T20:28:43.456Z")
        XCTAssertEqual(LedgerTime.date("2026-05-28T20:28:43.456Z")?.timeIntervalSince1970 ?? 0, 1_780_000_123.456, accuracy: 1e-6)
        XCTAssertNil(LedgerTime.date("2026-05-28 20:28:43"))
        XCTAssertEqual(LedgerTime.string(Date(timeIntervalSince1970: -0.5)), "1969-12-31T23:59:59.500Z")
    }

    func testSampleCommitmentIsAnRFC6962Root() {
        let a = TestStore.sample(1), b = TestStore.sample(2)
        let leaf = { (s: ForgottenSample) in Merkle.leafHash(self.u32(s.sampleID.utf8.count) + Array(s.sampleID.utf8) + s.sampleHash.bytes) }
        XCTAssertEqual(ForgottenSample.merkleRoot([a, b]), Merkle.nodeHash(leaf(a), leaf(b)))
        XCTAssertNotEqual(ForgottenSample.merkleRoot([a, b]), ForgottenSample.merkleRoot([b, a]))
    }
}
