import Foundation
import LetheCrypto
@testable import LetheStore

/// An in-memory S3 for offline tests: path-style PUT (with If-None-Match / If-Match / copy),
/// GET (with Range), HEAD, DELETE and ListObjectsV2 (prefix, delimiter, max-keys, continuation
/// tokens). `failures` makes the next requests answer with the given statuses first (nil: a
/// transport error), and every request is recorded.
final class FakeS3: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var objects: [String: (body: [UInt8], etag: String, modified: Double)] = [:]
    var failures: [Int?] = []
    private(set) var requests: [HTTPRequest] = []
    /// Called before each request is served (tests use it to interleave a concurrent writer).
    var beforeServe: ((HTTPRequest) -> Void)?

    var requestCount: Int { lock.lock(); defer { lock.unlock() }; return requests.count }
    func keys() -> [String] { lock.lock(); defer { lock.unlock() }; return objects.keys.sorted() }
    func body(_ key: String) -> [UInt8]? { lock.lock(); defer { lock.unlock() }; return objects[key]?.body }
    func remove(_ key: String) { lock.lock(); objects[key] = nil; lock.unlock() }

    func send(_ request: HTTPRequest) throws(HTTPTransportError) -> HTTPResponse {
        beforeServe?(request)
        lock.lock(); defer { lock.unlock() }
        requests.append(request)
        if !failures.isEmpty {
            let f = failures.removeFirst()
            guard let status = f else { throw HTTPTransportError("fake: connection reset") }
            return HTTPResponse(status: status, body: Array("<Error><Code>InternalError</Code><Message>injected</Message></Error>".utf8))
        }
        guard let components = URLComponents(string: request.url) else { return HTTPResponse(status: 400) }
        let path = components.percentEncodedPath.removingPercentEncoding ?? components.path
        let parts = path.dropFirst().split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let key = parts.count > 1 ? String(parts[1]) : nil
        let h = Dictionary(request.headers.map { ($0.0.lowercased(), $0.1) }, uniquingKeysWith: { $1 })
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        switch (request.method, key) {
        case ("PUT", nil): return HTTPResponse(status: 200)
        case ("PUT", let k?):
            let existing = objects[k]
            if h["if-none-match"] == "*", existing != nil { return HTTPResponse(status: 412) }
            if let m = h["if-match"], existing?.etag != m { return HTTPResponse(status: 412) }
            if h["x-amz-copy-source"] != nil {
                guard let e = existing else { return HTTPResponse(status: 404) }
                objects[k] = (e.body, e.etag, Date().timeIntervalSince1970)
                return HTTPResponse(status: 200)
            }
            let etag = String(SHA256.hash(request.body).hex.prefix(32))
            objects[k] = (request.body, etag, Date().timeIntervalSince1970)
            return HTTPResponse(status: 200, headers: ["etag": "\"\(etag)\""])
        case ("GET", let k?), ("HEAD", let k?):
            guard let o = objects[k] else { return HTTPResponse(status: 404, body: Array("<Error><Code>NoSuchKey</Code></Error>".utf8)) }
            var body = o.body, status = 200
            if let range = h["range"], range.hasPrefix("bytes=0-"), let last = Int(range.dropFirst(8)) {
                if body.isEmpty { return HTTPResponse(status: 416) }
                body = Array(body.prefix(last + 1)); status = 206
            }
            let headers = ["etag": "\"\(o.etag)\"", "content-length": "\(body.count)", "last-modified": "Fri, 27 Nov 2026 16:55:01 GMT"]
            return HTTPResponse(status: status, headers: headers, body: request.method == "HEAD" ? [] : body)
        case ("DELETE", let k?):
            objects[k] = nil
            return HTTPResponse(status: 204)
        case ("GET", nil):
            return list(prefix: query["prefix"] ?? "", delimiter: query["delimiter"], maxKeys: Int(query["max-keys"] ?? "1000") ?? 1000,
                        after: query["continuation-token"])
        default:
            return HTTPResponse(status: 405)
        }
    }

    private func list(prefix: String, delimiter: String?, maxKeys: Int, after token: String?) -> HTTPResponse {
        var entries: [(key: String, isPrefix: Bool)] = []
        var seen = Set<String>()
        for k in objects.keys.sorted() where k.hasPrefix(prefix) {
            if let d = delimiter, let r = k.dropFirst(prefix.count).range(of: d) {
                let p = prefix + k.dropFirst(prefix.count)[..<r.upperBound]
                if seen.insert(String(p)).inserted { entries.append((String(p), true)) }
            } else {
                entries.append((k, false))
            }
        }
        // The token is the last key of the previous page, "&"-escaped to exercise entity decoding.
        let start = token.map { t in entries.firstIndex { $0.key > t } ?? entries.count } ?? 0
        let page = entries[start..<min(entries.count, start + maxKeys)]
        let truncated = start + maxKeys < entries.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name><Prefix>\(prefix)</Prefix>"
        xml += "<KeyCount>\(page.count)</KeyCount><MaxKeys>\(maxKeys)</MaxKeys><IsTruncated>\(truncated)</IsTruncated>"
        for e in page {
            if e.isPrefix { xml += "<CommonPrefixes><Prefix>\(e.key)</Prefix></CommonPrefixes>"; continue }
            let o = objects[e.key]
            xml += "<Contents><Key>\(e.key)</Key><LastModified>2026-11-27T16:55:01.250Z</LastModified><ETag>&quot;x&quot;</ETag>"
            xml += "<Size>\(o?.body.count ?? 0)</Size><StorageClass>STANDARD</StorageClass></Contents>"
        }
        if truncated, let last = page.last { xml += "<NextContinuationToken>\(last.key.replacingOccurrences(of: "&", with: "&amp;"))</NextContinuationToken>" }
        xml += "</ListBucketResult>"
        return HTTPResponse(status: 200, body: Array(xml.utf8))
    }
}
