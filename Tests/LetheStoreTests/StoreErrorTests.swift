import XCTest
@testable import LetheStore

final class StoreErrorTests: XCTestCase {
    func testMessagesNameTheProblem() {
        XCTAssertEqual(StoreError.notAStore("no .lethe above /tmp").description, "not a Lethe store: no .lethe above /tmp")
    }
}
