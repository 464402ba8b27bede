import XCTest
@testable import LetheUnlearning

final class UnlearningErrorTests: XCTestCase {
    func testMessagesNameTheProblem() {
        XCTAssertEqual(UnlearningError.invalidParameter("gamma 1.5 outside (0, 1]").description, "invalid parameter: gamma 1.5 outside (0, 1]")
    }
}
