import XCTest
@testable import Lethe

final class LetheInfoTests: XCTestCase {
    func testVersionIsSemantic() {
        XCTAssertEqual(LetheInfo.version.split(separator: ".").count, 3)
    }
}
