import XCTest
@testable import LetheNN

final class NNErrorTests: XCTestCase {
    func testMessagesNameTheProblem() {
        XCTAssertEqual(NNError.invalidSpec("unknown layer 'Conv3d'").description, "invalid model spec: unknown layer 'Conv3d'")
    }
}
