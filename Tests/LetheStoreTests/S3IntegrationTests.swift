import Foundation
import LetheTensor
import XCTest
@testable import LetheStore

/// The environment file `tools/scaleout/start-rgw` writes (`KEY=VALUE` lines), named by
/// `LETHE_S3_TEST_ENV`; tests against a real S3 skip without it.
func s3TestEnvironment() throws -> [String: String] {
    guard let path = ProcessInfo.processInfo.environment["LETHE_S3_TEST_ENV"], !path.isEmpty else {
        throw XCTSkip("LETHE_S3_TEST_ENV is not set: no S3 server (tools/test starts Ceph RGW with tools/scaleout/start-rgw and sets it)")
    }
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw XCTSkip("LETHE_S3_TEST_ENV=\(path) cannot be read")
    }
    var env: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let eq = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
        env[String(line[..<eq])] = String(line[line.index(after: eq)...])
    }
    return env
}

/// A fresh bucket name for one test.
func uniqueBucket(_ label: String) -> String {
    "lethe-\(label)-\(UUID().uuidString.prefix(8).lowercased())"
}

/// The S3 backend and refs against a real server (Ceph RGW in CI).
final class S3IntegrationTests: XCTestCase {
    func client() throws -> S3Client {
        S3Client(config: try S3Config.fromEnvironment(try s3TestEnvironment()))
    }

    func testPutGetHasListPaginationDelete() throws {
        let client = try client()
        let bucket = uniqueBucket("objects")
        try client.createBucket(bucket)
        try client.createBucket(bucket)  // exists and is ours: success
        let backend = try S3Backend(client: client, location: S3Location(url: "s3://\(bucket)/p"), cacheDirectory: nil, pageSize: 7)
        var ids: [ObjectID] = []
        for i in 0..<30 {
            let payload = Array("object \(i)".utf8)
            let id = ObjectID.compute(kind: .blob, payload: payload)
            XCTAssertTrue(try backend.put(id, payload + [UInt8(i)]))
            ids.append(id)
        }
        // Write-once: a second put of the same id is "exists", and the bytes are unchanged.
        XCTAssertFalse(try backend.put(ids[0], [1, 2, 3]))
        XCTAssertEqual(try backend.get(ids[0]), Array("object 0".utf8) + [0])
        XCTAssertEqual(try backend.getPrefix(ids[3], count: 4), Array("obje".utf8))
        XCTAssertTrue(backend.has(ids[5]))
        let stat = try XCTUnwrap(backend.stat(ids[5]))
        XCTAssertEqual(stat.size, 9)
        XCTAssertLessThan(abs(stat.modified - Date().timeIntervalSince1970), 600)
        XCTAssertEqual(try backend.list(), ids.sorted())  // 30 keys in pages of 7
        try backend.delete(ids[5])
        try backend.delete(ids[5])  // absent: success
        XCTAssertFalse(backend.has(ids[5]))
        XCTAssertNil(backend.stat(ids[5]))
        XCTAssertThrowsError(try backend.get(ids[5])) { XCTAssertTrue("\($0)".contains("missing object"), "\($0)") }
        XCTAssertEqual(try backend.list().count, 29)
        // Freshening an existing object keeps its bytes.
        XCTAssertFalse(try backend.put(ids[6], []))
        XCTAssertEqual(try backend.get(ids[6]), Array("object 6".utf8) + [6])

        // Wrong keys: one line naming the key and the status, no retries.
        var bad = client.config
        bad.credentials.secretKey = "wrong"
        let denied = try S3Backend(client: S3Client(config: bad), location: S3Location(url: "s3://\(bucket)/p"), cacheDirectory: nil)
        XCTAssertThrowsError(try denied.get(ids[0])) { e in
            XCTAssertTrue("\(e)".hasPrefix("I/O error: S3 GET \(bucket)/\(backend.key(ids[0])): HTTP 403 SignatureDoesNotMatch"), "\(e)")
        }
    }

    /// Eight threads race to move one ref from the same old version: exactly one wins, and the
    /// history holds every move that happened, none twice.
    func testRefCompareAndSwapUnderConcurrency() throws {
        let client = try client()
        let bucket = uniqueBucket("refs")
        try client.createBucket(bucket)
        let refs = S3RefStore(client: client, location: try S3Location(url: "s3://\(bucket)/team"))
        let base = ObjectID.compute(kind: .version, payload: [0])
        try refs.set("prod", to: base, reason: "start", expected: .some(nil))
        let targets = (1...8).map { ObjectID.compute(kind: .version, payload: [UInt8($0)]) }
        let wins = LockedCounter(), unconditional = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            if i < 8 {
                if (try? refs.set("prod", to: targets[i], reason: "cas \(i)", expected: .some(base))) != nil { wins.add() }
            } else {
                if (try? refs.set("staging", to: targets[i - 8], reason: "set \(i)")) != nil { unconditional.add() }
            }
        }
        XCTAssertEqual(wins.value, 1)
        XCTAssertEqual(unconditional.value, 8)
        let history = try refs.history("prod")
        XCTAssertEqual(history.count, 2)
        XCTAssertEqual(try refs.get("prod"), history.last?.new)
        let staging = try refs.history("staging")
        XCTAssertEqual(staging.count, 8)
        XCTAssertEqual(Set(staging.map(\.new)), Set(targets))
        for (a, b) in zip(staging, staging.dropFirst()) { XCTAssertEqual(b.old, a.new) }  // a chain, no fork
        XCTAssertEqual(try refs.get("staging"), staging.last?.new)
        XCTAssertEqual(try refs.list().map(\.name), ["prod", "staging"])
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
