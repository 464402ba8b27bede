import Foundation
import XCTest
@testable import Lethe

final class StoreLocationTests: XCTestCase {
    func testFindsStoreUpwardAndExplicit() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-loc-\(UUID().uuidString)")
        let deep = root.appendingPathComponent("a/b/c")
        try FileManager.default.createDirectory(at: deep, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent(".lethe"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let found = try StoreLocation.find(explicit: nil, from: deep)
        XCTAssertEqual(found.directory.standardizedFileURL.path, root.appendingPathComponent(".lethe").standardizedFileURL.path)
        XCTAssertEqual(try StoreLocation.find(explicit: root.path).directory.lastPathComponent, ".lethe")
        XCTAssertThrowsError(try StoreLocation.find(explicit: deep.path))
    }
}
