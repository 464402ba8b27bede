import Foundation
import LetheCrypto
import LetheTensor
import XCTest
@testable import LetheStore

/// Offline tests of the S3 backend: signing, URLs and keys, list parsing and pagination,
/// retries, error messages, and the backend and refs against an in-memory S3.
final class S3Tests: XCTestCase {
    static let exampleCredentials = S3Credentials(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")

    /// The documented GET-object example ("Authenticating Requests: Using the Authorization
    /// Header", Example: GET Object) with its published canonical request and signature.
    func testSigV4DocumentedGetObjectExample() {
        let headers = [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
                       ("x-amz-content-sha256", SigV4.emptyPayloadHash), ("x-amz-date", "20130524T000000Z")]
        let (canonical, signed) = SigV4.canonicalRequest(method: "GET", path: "/test.txt", query: [], headers: headers,
                                                         payloadHash: SigV4.emptyPayloadHash)
        XCTAssertEqual(canonical, """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        XCTAssertEqual(signed, "host;range;x-amz-content-sha256;x-amz-date")
        XCTAssertEqual(SHA256.hash(canonical).hex, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
        let auth = SigV4.authorization(method: "GET", path: "/test.txt", query: [], headers: headers, payloadHash: SigV4.emptyPayloadHash,
                                       amzDate: "20130524T000000Z", region: "us-east-1", credentials: S3Tests.exampleCredentials)
        XCTAssertEqual(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                       + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                       + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        // One changed header byte changes the signature.
        let other = SigV4.authorization(method: "GET", path: "/test.txt", query: [], headers: [headers[0], ("Range", "bytes=0-8"), headers[2], headers[3]],
                                        payloadHash: SigV4.emptyPayloadHash, amzDate: "20130524T000000Z", region: "us-east-1",
                                        credentials: S3Tests.exampleCredentials)
        XCTAssertNotEqual(auth, other)
    }

    func testSigV4EncodingAndDates() {
        XCTAssertEqual(SigV4.uriEncode("a b/c~d+e=f&ü", keepSlash: true), "a%20b/c~d%2Be%3Df%26%C3%BC")
        XCTAssertEqual(SigV4.uriEncode("a/b", keepSlash: false), "a%2Fb")
        XCTAssertEqual(SigV4.canonicalQuery([("prefix", "J"), ("max-keys", "2"), ("list-type", "2")]), "list-type=2&max-keys=2&prefix=J")
        XCTAssertEqual(SigV4.canonicalQuery([("continuation-token", "a/b=c"), ("delimiter", "/")]), "continuation-token=a%2Fb%3Dc&delimiter=%2F")
        XCTAssertEqual(SigV4.amzDate(1_369_353_600), "20130524T000000Z")
        XCTAssertEqual(SigV4.amzDate(1_795_798_501.9), "20261127T165501Z")
        XCTAssertEqual(S3Time.parseISO8601("2026-11-27T16:55:01.250Z"), 1_795_798_501.25)
        XCTAssertEqual(S3Time.parseHTTPDate("Fri, 27 Nov 2026 16:55:01 GMT"), 1_795_798_501)
        XCTAssertNil(S3Time.parseHTTPDate("yesterday"))
    }

    func testConfigLocationURLsAndKeys() throws {
        let env = ["AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_DEFAULT_REGION": "eu-west-1",
                   "AWS_ENDPOINT_URL": "http://127.0.0.1:7480/"]
        let config = try S3Config.fromEnvironment(env)
        XCTAssertEqual(config.endpoint, "http://127.0.0.1:7480")
        XCTAssertEqual(config.host, "127.0.0.1:7480")
        XCTAssertEqual(config.region, "eu-west-1")
        XCTAssertEqual(try S3Config.fromEnvironment(["AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"]).endpoint,
                       "https://s3.us-east-1.amazonaws.com")
        XCTAssertThrowsError(try S3Config.fromEnvironment(["AWS_ACCESS_KEY_ID": "AK"])) {
            XCTAssertTrue("\($0)".contains("AWS_SECRET_ACCESS_KEY"), "\($0)")
        }
        XCTAssertThrowsError(try S3Config.fromEnvironment(env.merging(["AWS_ENDPOINT_URL": "127.0.0.1:7480"]) { $1 }))

        let loc = try S3Location(url: "s3://models-1/team/a/")
        XCTAssertEqual(loc.bucket, "models-1")
        XCTAssertEqual(loc.prefix, "team/a")
        XCTAssertEqual(loc.description, "s3://models-1/team/a")
        XCTAssertEqual(try S3Location(url: "s3://bucket").key("objects/ab"), "objects/ab")
        for bad in ["s3://", "s3://Bad_Bucket/x", "s3://ab/x", "https://b/x", "s3://bucket/a//b", "s3://bucket/../x"] {
            XCTAssertThrowsError(try S3Location(url: bad), bad)
        }

        let client = S3Client(config: config, transport: FakeS3())
        let id = ObjectID.compute(kind: .blob, payload: Array("x".utf8))
        let backend = try S3Backend(client: client, location: loc, cacheDirectory: nil)
        XCTAssertEqual(backend.key(id), "team/a/objects/\(id.hex.prefix(2))/\(id.hex.dropFirst(2))")
        let r = client.signedRequest("GET", bucket: "models-1", key: "team/a b", query: [("max-keys", "5")], at: 1_369_353_600)
        XCTAssertEqual(r.url, "http://127.0.0.1:7480/models-1/team/a%20b?max-keys=5")
        let headers = Dictionary(r.headers, uniquingKeysWith: { $1 })
        XCTAssertEqual(headers["host"], "127.0.0.1:7480")
        XCTAssertEqual(headers["x-amz-date"], "20130524T000000Z")
        XCTAssertEqual(headers["x-amz-content-sha256"], SigV4.emptyPayloadHash)
        XCTAssertTrue(headers["authorization"]?.hasPrefix("AWS4-HMAC-SHA256 Credential=AK/20130524/eu-west-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=") ?? false)
    }

    func testListParsingAndPagination() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
            <IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&amp;x</NextContinuationToken>
            <Contents><Key>p/a&amp;b</Key><LastModified>2026-11-27T16:55:01.250Z</LastModified><Size>42</Size></Contents>
            <Contents><Key>p/c</Key><LastModified>2026-11-27T16:55:02.000Z</LastModified><Size>7</Size></Contents>
            <CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes>
            </ListBucketResult>
            """
        let page = try ListPage.parse(Array(xml.utf8))
        XCTAssertEqual(page.objects, [.init(key: "p/a&b", size: 42, modified: 1_795_798_501.25), .init(key: "p/c", size: 7, modified: 1_795_798_502)])
        XCTAssertEqual(page.commonPrefixes, ["p/d/"])
        XCTAssertTrue(page.isTruncated)
        XCTAssertEqual(page.nextContinuationToken, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&x")
        XCTAssertThrowsError(try ListPage.parse(Array("<Error><Code>NoSuchBucket</Code></Error>".utf8)))

        // 25 objects in pages of 4: 7 requests, every key once, in order, tokens passed on.
        let fake = FakeS3()
        let backend = try S3Backend(client: S3Client(config: S3Tests.config, transport: fake), location: S3Location(url: "s3://bucket/p"),
                                    cacheDirectory: nil, pageSize: 4)
        var ids: [ObjectID] = []
        for i in 0..<25 {
            let id = ObjectID.compute(kind: .blob, payload: Array("object \(i)".utf8))
            XCTAssertTrue(try backend.put(id, Array("bytes \(i)".utf8)))
            ids.append(id)
        }
        _ = try fake.send(HTTPRequest(method: "PUT", url: "http://h/bucket/p/objects-not/x", body: [1]))  // outside the objects prefix
        let before = fake.requestCount
        XCTAssertEqual(try backend.list(), ids.sorted())
        let listRequests = fake.requests[before...]
        XCTAssertEqual(listRequests.count, 7)
        XCTAssertEqual(listRequests.filter { $0.url.contains("continuation-token=") }.count, 6)
    }

    static let config = S3Config(endpoint: "http://127.0.0.1:9", region: "us-east-1", credentials: S3Credentials(accessKey: "AK", secretKey: "SK"))

    final class Sleeps: @unchecked Sendable {
        let lock = NSLock()
        var values: [Double] = []
        func add(_ s: Double) { lock.lock(); values.append(s); lock.unlock() }
    }

    func testRetriesWithBackoffThenSuccess() throws {
        let fake = FakeS3()
        let sleeps = Sleeps()
        let client = S3Client(config: S3Tests.config, transport: fake, retry: RetryPolicy(attempts: 4, baseDelay: 0.2, maxDelay: 5),
                              sleep: { sleeps.add($0) })
        let backend = try S3Backend(client: client, location: S3Location(url: "s3://bucket/p"), cacheDirectory: nil)
        let id = ObjectID.compute(kind: .blob, payload: [1, 2, 3])
        fake.failures = [500, nil]  // a 500, then a connection error, then the real answer
        XCTAssertTrue(try backend.put(id, [9, 9]))
        XCTAssertEqual(fake.requestCount, 3)
        XCTAssertEqual(sleeps.values.count, 2)
        XCTAssertTrue((0.1...0.2).contains(sleeps.values[0]), "\(sleeps.values)")
        XCTAssertTrue((0.2...0.4).contains(sleeps.values[1]), "\(sleeps.values)")
        XCTAssertEqual(fake.body("p/objects/\(id.hex.prefix(2))/\(id.hex.dropFirst(2))"), [9, 9])

        // Always 503: gives up after 4 attempts with one line naming the key and the status.
        fake.failures = [503, 503, 503, 503]
        XCTAssertThrowsError(try backend.get(id)) { e in
            XCTAssertEqual("\(e)", "I/O error: S3 GET bucket/\(backend.key(id)): HTTP 503 InternalError: injected after 4 attempts")
        }
        let policy = RetryPolicy(attempts: 10, baseDelay: 0.2, maxDelay: 5)
        XCTAssertEqual(policy.delay(retry: 1, jitter: 1), 0.2)
        XCTAssertEqual(policy.delay(retry: 4, jitter: 1), 1.6)
        XCTAssertEqual(policy.delay(retry: 9, jitter: 1), 5)
        XCTAssertEqual(policy.delay(retry: 3, jitter: 0), 0.4)
        XCTAssertFalse(RetryPolicy.isRetryable(status: 404))
        XCTAssertTrue(RetryPolicy.isRetryable(status: 429))
    }

    func testClientErrorIsOneLineNamingKeyAndStatusWithoutRetry() throws {
        let fake = FakeS3()
        let sleeps = Sleeps()
        let backend = try S3Backend(client: S3Client(config: S3Tests.config, transport: fake, sleep: { sleeps.add($0) }),
                                    location: S3Location(url: "s3://bucket/p"), cacheDirectory: nil)
        let id = ObjectID.compute(kind: .blob, payload: [1])
        fake.failures = [403]
        XCTAssertThrowsError(try backend.put(id, [1])) { e in
            XCTAssertEqual("\(e)", "I/O error: S3 PUT bucket/\(backend.key(id)): HTTP 403 InternalError: injected")
            XCTAssertFalse("\(e)".contains("\n"))
        }
        XCTAssertEqual(sleeps.values, [])
        XCTAssertThrowsError(try backend.get(id)) { XCTAssertEqual($0 as? StoreError, .missingObject("\(id.hex) (bucket/\(backend.key(id)))")) }
    }

    /// The backend under a real `Store` (import, export, fsck, gc) against the fake, with the
    /// read cache: a second export reads nothing from the network.
    func testStoreOnFakeS3WithReadCache() throws {
        let dir = try temporaryDirectory("s3fake")
        defer { try? FileManager.default.removeItem(at: dir) }
        let lethe = dir.appendingPathComponent(".lethe").path
        _ = try Store.initialize(at: lethe)
        let fake = FakeS3()
        let client = S3Client(config: S3Tests.config, transport: fake)
        let loc = try S3Location(url: "s3://bucket/team")
        let cache = dir.appendingPathComponent("cache").path
        let store = try Store(directory: lethe, backend: S3Backend(client: client, location: loc, cacheDirectory: cache),
                              refs: S3RefStore(client: client, location: loc))
        let file = dir.appendingPathComponent("m.safetensors").path
        try FileBytes.writeAtomically(Safetensors.encode([NamedTensor(name: "w", dtype: .f32, shape: [70_000], data: normalFloatBytes(70_000, seed: 3))]), to: file)
        store.chunkBytes = 64 << 10
        let r = try store.importSafetensors(file, options: ImportOptions(metadata: VersionMetadata(author: "t", time: 1_700_000_000, message: "m"), ref: ("main", "import")))
        XCTAssertEqual(try store.refs.get("main"), r.version)
        XCTAssertTrue(fake.keys().contains("team/refs/main"))
        XCTAssertTrue(fake.keys().contains("team/reflog/main/000000000001"))
        XCTAssertEqual(try store.refs.history("main").map(\.new), [r.version])
        let out1 = dir.appendingPathComponent("o1.safetensors").path
        try store.exportSafetensors(r.version, to: out1)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out1)), try Data(contentsOf: URL(fileURLWithPath: file)))
        // Everything read is cached: exporting again makes no GET.
        let before = fake.requests.count
        try store.exportSafetensors(r.version, to: dir.appendingPathComponent("o2.safetensors").path)
        XCTAssertEqual(fake.requests[before...].filter { $0.method == "GET" && !$0.url.contains("/refs/") && !$0.url.contains("/reflog/") }.count, 0)
        XCTAssertTrue(try store.fsck().isClean)

        // A damaged cache entry is caught by the hash check, dropped, and the object fetched again.
        let chunk = try store.version(r.version).tensors[0].chunks[0]
        let entry = cache + "/\(chunk.hex.prefix(2))/\(chunk.hex.dropFirst(2))"
        var cached = try FileBytes.read(entry)
        cached[cached.count - 3] ^= 0x10
        try FileManager.default.removeItem(atPath: entry)
        try Data(cached).write(to: URL(fileURLWithPath: entry))
        let gets = fake.requests.filter { $0.method == "GET" }.count
        XCTAssertEqual(try store.objects.get(chunk, kind: .chunk).count, 64 << 10)
        XCTAssertEqual(fake.requests.filter { $0.method == "GET" }.count, gets + 2)  // the header (Range), then the object
        XCTAssertEqual(try FileBytes.read(entry), fake.body("team/objects/\(chunk.hex.prefix(2))/\(chunk.hex.dropFirst(2))"))

        // Re-importing (same metadata, so the same version object) deduplicates: objects are verified (from the cache) and freshened, none written.
        let again = try store.importSafetensors(file, options: ImportOptions(metadata: VersionMetadata(author: "t", time: 1_700_000_000, message: "m"), ref: ("main", "again")))
        XCTAssertEqual(again.stats.newObjects, 0)
        XCTAssertGreaterThan(again.stats.dedupedObjects, 1)

        // A damaged remote object that the cache does not hold is caught on read.
        let victim = try store.version(r.version).tensors[0].chunks[1]
        let key = "team/objects/\(victim.hex.prefix(2))/\(victim.hex.dropFirst(2))"
        var bytes = try XCTUnwrap(fake.body(key))
        bytes[bytes.count - 1] ^= 1
        fake.remove(key)
        _ = try fake.send(HTTPRequest(method: "PUT", url: "http://h/bucket/\(key)", body: bytes))
        let cold = try Store(directory: lethe, backend: S3Backend(client: client, location: loc, cacheDirectory: nil),
                             refs: S3RefStore(client: client, location: loc))
        XCTAssertThrowsError(try cold.objects.get(victim, kind: .chunk)) { XCTAssertTrue("\($0)".contains("corrupt"), "\($0)") }
    }

    func testRefsCompareAndSwapHistoryAndRollForward() throws {
        let fake = FakeS3()
        let client = S3Client(config: S3Tests.config, transport: fake)
        let refs = S3RefStore(client: client, location: try S3Location(url: "s3://bucket/x"))
        let a = ObjectID.compute(kind: .version, payload: [1]), b = ObjectID.compute(kind: .version, payload: [2])
        let c = ObjectID.compute(kind: .version, payload: [3])
        XCTAssertNil(try refs.get("prod"))
        try refs.set("prod", to: a, reason: "first", expected: .some(nil))
        XCTAssertThrowsError(try refs.set("prod", to: b, reason: "stale", expected: .some(nil))) { XCTAssertTrue("\($0)".contains("moved concurrently"), "\($0)") }
        try refs.set("prod", to: b, reason: "second", expected: .some(a))
        XCTAssertThrowsError(try refs.set("prod", to: c, reason: "stale", expected: .some(a)))
        XCTAssertEqual(try refs.get("prod"), b)
        try refs.set("staging", to: c, reason: "other")
        XCTAssertEqual(try refs.list().map(\.name), ["prod", "staging"])
        XCTAssertEqual(try refs.history("prod").map(\.reason), ["first", "second"])
        XCTAssertEqual(try refs.history("prod").map(\.old), [nil, a])
        XCTAssertEqual(try refs.history().count, 3)
        // The pointer is replaced only with If-Match on its unquoted ETag.
        let puts = fake.requests.filter { $0.method == "PUT" && $0.url.hasSuffix("/x/refs/prod") }
        XCTAssertEqual(puts.count, 2)
        XCTAssertTrue(puts[0].headers.contains { $0 == ("if-none-match", "*") })
        XCTAssertTrue(puts[1].headers.contains { $0.0 == "if-match" && !$0.1.contains("\"") && $0.1.count == 32 })

        // A mover killed after its log entry but before the pointer: readers roll forward.
        let move = RefMove(time: 1, ref: "prod", old: b, new: c, reason: "crashed mover")
        _ = try fake.send(HTTPRequest(method: "PUT", url: "http://h/bucket/x/reflog/prod/000000000003", body: Array(move.jsonLine.utf8)))
        XCTAssertEqual(try refs.get("prod"), c)
        XCTAssertEqual(String(decoding: try XCTUnwrap(fake.body("x/refs/prod")), as: UTF8.self), "{\"move\":3,\"version\":\"\(c.hex)\"}\n")
        XCTAssertThrowsError(try refs.set("prod", to: a, reason: "stale", expected: .some(b)))
        try refs.set("prod", to: a, reason: "fourth", expected: .some(c))
        XCTAssertEqual(try refs.history("prod").map(\.reason), ["first", "second", "crashed mover", "fourth"])

        // A concurrent mover takes the next number between our read and our write: an
        // expected-old set fails, an unconditional one re-reads and lands after it.
        var injected = false
        fake.beforeServe = { req in
            guard !injected, req.method == "PUT", req.url.hasSuffix("/x/reflog/prod/000000000005") else { return }
            injected = true
            let m = RefMove(time: 2, ref: "prod", old: a, new: b, reason: "racer")
            _ = try? fake.send(HTTPRequest(method: "PUT", url: "http://h/bucket/x/reflog/prod/000000000005",
                                           headers: [("if-none-match", "*")], body: Array(m.jsonLine.utf8)))
        }
        try refs.set("prod", to: c, reason: "unconditional")
        XCTAssertEqual(try refs.get("prod"), c)
        XCTAssertEqual(try refs.history("prod").suffix(2).map(\.reason), ["racer", "unconditional"])
        XCTAssertEqual(try refs.history("prod").suffix(2).map(\.old), [a, b])
    }
}
