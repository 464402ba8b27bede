import XCTest
@testable import LetheLedger

final class LedgerErrorTests: XCTestCase {
    func testMessagesNameTheProblem() {
        XCTAssertEqual(LedgerError.schemaTooNew(found: 9, known: 1).description,
                       "ledger schema version 9 is newer than this binary supports (1)")
    }
}
