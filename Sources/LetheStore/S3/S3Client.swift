#if canImport(Glibc)
import Glibc
#endif
import LetheCrypto

/// Where an S3-compatible service is and how to sign for it.
public struct S3Config: Sendable, Equatable {
    /// `scheme://host[:port]`, no trailing slash (`AWS_ENDPOINT_URL`; default `https://s3.<region>.amazonaws.com`).
    public var endpoint: String
    /// `AWS_DEFAULT_REGION` (or `AWS_REGION`; default `us-east-1`).
    public var region: String
    /// Keys (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`).
    public var credentials: S3Credentials

    /// A configuration.
    public init(endpoint: String, region: String, credentials: S3Credentials) {
        var e = endpoint
        while e.hasSuffix("/") { e.removeLast() }
        self.endpoint = e; self.region = region; self.credentials = credentials
    }

    /// From the standard AWS environment variables (`getenv` when `environment` is nil).
    public static func fromEnvironment(_ environment: [String: String]? = nil) throws(StoreError) -> S3Config {
        func value(_ name: String) -> String? {
            if let environment { return environment[name].flatMap { $0.isEmpty ? nil : $0 } }
            guard let p = getenv(name) else { return nil }
            let s = String(cString: p)
            return s.isEmpty ? nil : s
        }
        guard let key = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") else {
            throw .invalidInput("S3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
        }
        let region = value("AWS_DEFAULT_REGION") ?? value("AWS_REGION") ?? "us-east-1"
        let endpoint = value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL") ?? "https://s3.\(region).amazonaws.com"
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
            throw .invalidInput("AWS_ENDPOINT_URL \"\(endpoint)\" is not an http:// or https:// URL")
        }
        return S3Config(endpoint: endpoint, region: region,
                        credentials: S3Credentials(accessKey: key, secretKey: secret, sessionToken: value("AWS_SESSION_TOKEN")))
    }

    /// The `Host` header: the endpoint without scheme and path.
    public var host: String {
        var rest = Substring(endpoint)
        if let r = rest.range(of: "://") { rest = rest[r.upperBound...] }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        return String(rest)
    }
}

/// An `s3://bucket/prefix` location.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    /// The bucket.
    public var bucket: String
    /// The key prefix without leading or trailing `/` (may be empty).
    public var prefix: String

    /// Parses `s3://bucket[/prefix]`; the bucket must be a valid S3 bucket name (3–63 of `a-z 0-9 . -`).
    public init(url: String) throws(StoreError) {
        guard url.hasPrefix("s3://") else { throw .invalidInput("\"\(url)\" is not an s3://BUCKET/PREFIX location") }
        let rest = url.dropFirst(5)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let bucket = String(parts.first ?? "")
        let u = Array(bucket.utf8)
        guard u.count >= 3, u.count <= 63,
              u.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }),
              u.first != UInt8(ascii: "-"), u.first != UInt8(ascii: ".") else {
            throw .invalidInput("\"\(bucket)\" in \(url) is not a bucket name (3-63 of a-z, 0-9, '.', '-')")
        }
        var prefix = parts.count > 1 ? String(parts[1]) : ""
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard !prefix.hasPrefix("/"), !prefix.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) || prefix.isEmpty,
              !prefix.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw .invalidInput("\"\(prefix)\" in \(url) is not a key prefix (empty, '.' or '..' components)")
        }
        self.bucket = bucket; self.prefix = prefix
    }

    /// `prefix/rest`, or `rest` when the prefix is empty.
    public func key(_ rest: String) -> String { prefix.isEmpty ? rest : prefix + "/" + rest }

    public var description: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }
}

/// Exponential backoff with jitter for requests that failed without an answer or with a 5xx.
public struct RetryPolicy: Sendable {
    /// Attempts in all (1 = no retry).
    public var attempts: Int
    /// The first delay in seconds; each further delay doubles, up to `maxDelay`.
    public var baseDelay: Double
    /// The longest delay.
    public var maxDelay: Double

    /// A policy (defaults: 6 attempts, 0.2 s doubling to 5 s: about 10 s of retrying).
    public init(attempts: Int = 6, baseDelay: Double = 0.2, maxDelay: Double = 5) {
        self.attempts = max(1, attempts); self.baseDelay = baseDelay; self.maxDelay = maxDelay
    }

    /// The delay before retry number `retry` (1-based): `min(maxDelay, base * 2^(retry-1))`, scaled by `jitter` in [0.5, 1].
    public func delay(retry: Int, jitter: Double) -> Double {
        min(maxDelay, baseDelay * Double(1 << min(30, max(0, retry - 1)))) * (0.5 + 0.5 * min(1, max(0, jitter)))
    }

    /// Whether a response status is worth retrying (5xx, and 429 / 503 SlowDown).
    public static func isRetryable(status: Int) -> Bool { status >= 500 || status == 429 }
}

/// Signed S3 requests with path-style addressing (`endpoint/bucket/key`) and retries.
public final class S3Client: Sendable {
    /// Endpoint, region and keys.
    public let config: S3Config
    /// The HTTP transport (libcurl by default).
    public let transport: any HTTPTransport
    /// When to retry.
    public let retry: RetryPolicy
    private let sleep: @Sendable (Double) -> Void
    private let clock: @Sendable () -> Double

    /// A client. `sleep` and `clock` are injectable for tests (defaults: `nanosleep`, `Store.now`).
    public init(config: S3Config, transport: any HTTPTransport = CurlTransport(), retry: RetryPolicy = RetryPolicy(),
                sleep: @escaping @Sendable (Double) -> Void = { s in
                    var ts = timespec(tv_sec: Int(s), tv_nsec: Int((s - s.rounded(.down)) * 1e9))
                    nanosleep(&ts, nil)
                }, clock: @escaping @Sendable () -> Double = { Store.now() }) {
        self.config = config; self.transport = transport; self.retry = retry; self.sleep = sleep; self.clock = clock
    }

    /// The request path for `bucket` and `key` (path-style), not yet percent-encoded.
    public static func path(bucket: String, key: String?) -> String {
        guard let key else { return "/" + bucket }
        return "/" + bucket + "/" + key
    }

    /// The signed request (headers: host, x-amz-date, x-amz-content-sha256, the extras, authorization).
    public func signedRequest(_ method: String, bucket: String, key: String?, query: [(String, String)] = [],
                              headers extra: [(String, String)] = [], body: [UInt8] = [], at time: Double) -> HTTPRequest {
        let path = S3Client.path(bucket: bucket, key: key)
        let payloadHash = body.isEmpty ? SigV4.emptyPayloadHash : SHA256.hash(body).hex
        let date = SigV4.amzDate(time)
        var headers: [(String, String)] = [("host", config.host), ("x-amz-date", date), ("x-amz-content-sha256", payloadHash)]
        if let token = config.credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        headers += extra.map { ($0.0.lowercased(), $0.1) }
        let auth = SigV4.authorization(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash,
                                       amzDate: date, region: config.region, credentials: config.credentials)
        let q = SigV4.canonicalQuery(query)
        let url = config.endpoint + SigV4.uriEncode(path, keepSlash: true) + (q.isEmpty ? "" : "?" + q)
        return HTTPRequest(method: method, url: url, headers: headers + [("authorization", auth)], body: body)
    }

    /// Sends a signed request, retrying transport failures and 5xx/429 with backoff; returns the
    /// first other response (the caller interprets 404, 412, ...). After the last attempt: `.io`
    /// naming the method, bucket/key and the last status or error.
    public func send(_ method: String, bucket: String, key: String?, query: [(String, String)] = [],
                     headers: [(String, String)] = [], body: [UInt8] = []) throws(StoreError) -> HTTPResponse {
        var last = ""
        for attempt in 1...retry.attempts {
            if attempt > 1 { sleep(retry.delay(retry: attempt - 1, jitter: Double.random(in: 0...1))) }
            let request = signedRequest(method, bucket: bucket, key: key, query: query, headers: headers, body: body, at: clock())
            do {
                let response = try transport.send(request)
                if !RetryPolicy.isRetryable(status: response.status) { return response }
                last = S3Client.describe(response)
            } catch {
                last = error.message
            }
        }
        throw .io("S3 \(method) \(bucket)/\(key ?? ""): \(last) after \(retry.attempts) attempts")
    }

    /// `403 AccessDenied: message` from an S3 error response.
    public static func describe(_ response: HTTPResponse) -> String {
        let code = XML.firstText(response.body, "Code")
        let message = XML.firstText(response.body, "Message")
        var s = "HTTP \(response.status)"
        if let code, !code.isEmpty { s += " " + code }
        if let message, !message.isEmpty { s += ": " + message }
        return s
    }

    /// The one-line error for an unexpected response: `S3 PUT bucket/key: HTTP 403 AccessDenied: ...`.
    public static func failure(_ method: String, bucket: String, key: String?, _ response: HTTPResponse) -> StoreError {
        .io("S3 \(method) \(bucket)/\(key ?? ""): \(describe(response))")
    }

    // MARK: operations

    /// Creates `bucket` unless it exists and is ours (`PUT /bucket`; 409 BucketAlreadyOwnedByYou is success).
    public func createBucket(_ bucket: String) throws(StoreError) {
        let r = try send("PUT", bucket: bucket, key: nil)
        if r.status == 200 { return }
        if r.status == 409, XML.firstText(r.body, "Code") == "BucketAlreadyOwnedByYou" { return }
        throw S3Client.failure("PUT", bucket: bucket, key: nil, r)
    }

    /// One page of `ListObjectsV2` under `prefix` (with `delimiter`, the common prefixes too).
    public func listPage(bucket: String, prefix: String, delimiter: String? = nil, continuation: String?,
                         maxKeys: Int) throws(StoreError) -> ListPage {
        var query: [(String, String)] = [("list-type", "2"), ("prefix", prefix), ("max-keys", "\(maxKeys)")]
        if let delimiter { query.append(("delimiter", delimiter)) }
        if let continuation { query.append(("continuation-token", continuation)) }
        let r = try send("GET", bucket: bucket, key: nil, query: query)
        guard r.status == 200 else { throw S3Client.failure("GET (list \(prefix))", bucket: bucket, key: nil, r) }
        return try ListPage.parse(r.body)
    }

    /// Every key (with size and time) under `prefix`, following continuation tokens.
    public func listAll(bucket: String, prefix: String, delimiter: String? = nil, maxKeys: Int = 1000) throws(StoreError) -> ListPage {
        var all = ListPage()
        var token: String?
        repeat {
            let page = try listPage(bucket: bucket, prefix: prefix, delimiter: delimiter, continuation: token, maxKeys: maxKeys)
            all.objects += page.objects
            all.commonPrefixes += page.commonPrefixes
            token = page.isTruncated ? page.nextContinuationToken : nil
            if page.isTruncated && token == nil { throw .io("S3 list \(bucket)/\(prefix): truncated page without a continuation token") }
        } while token != nil
        return all
    }
}

/// One `ListObjectsV2` page.
public struct ListPage: Sendable, Equatable {
    /// A listed object.
    public struct Object: Sendable, Equatable {
        /// Its key.
        public var key: String
        /// Its size in bytes.
        public var size: Int
        /// Last modified, seconds since the epoch.
        public var modified: Double
    }
    /// Objects, in key order.
    public var objects: [Object] = []
    /// Common prefixes (with a delimiter).
    public var commonPrefixes: [String] = []
    /// Whether more pages follow.
    public var isTruncated = false
    /// The token for the next page.
    public var nextContinuationToken: String?

    /// Parses a `ListBucketResult` document.
    public static func parse(_ xml: [UInt8]) throws(StoreError) -> ListPage {
        let text = String(decoding: xml, as: UTF8.self)
        guard text.contains("<ListBucketResult") else { throw .io("S3 list: not a ListBucketResult: \(text.prefix(200))") }
        var page = ListPage()
        for contents in XML.elements(text, "Contents") {
            guard let key = XML.firstText(contents, "Key") else { throw .io("S3 list: <Contents> without <Key>") }
            let size = XML.firstText(contents, "Size").flatMap { Int($0) } ?? 0
            let modified = XML.firstText(contents, "LastModified").flatMap(S3Time.parseISO8601) ?? 0
            page.objects.append(Object(key: key, size: size, modified: modified))
        }
        for p in XML.elements(text, "CommonPrefixes") { if let v = XML.firstText(p, "Prefix") { page.commonPrefixes.append(v) } }
        page.isTruncated = XML.firstText(text, "IsTruncated") == "true"
        page.nextContinuationToken = XML.firstText(text, "NextContinuationToken")
        return page
    }
}

/// The few XML reads S3 responses need: the text of named elements (no attributes, no nesting
/// of the same name), entities decoded. S3's documents are flat enough for this.
enum XML {
    /// The inner text of every `<name>...</name>` in `text`, in order.
    static func elements(_ text: String, _ name: String) -> [String] {
        var out: [String] = []
        let open = "<\(name)>", close = "</\(name)>"
        var rest = Substring(text)
        while let a = rest.range(of: open), let b = rest[a.upperBound...].range(of: close) {
            out.append(String(rest[a.upperBound..<b.lowerBound]))
            rest = rest[b.upperBound...]
        }
        return out
    }

    /// The decoded text of the first `<name>` element (`<name/>` is the empty string).
    static func firstText(_ text: String, _ name: String) -> String? {
        if let e = elements(text, name).first { return decode(e) }
        return text.contains("<\(name)/>") ? "" : nil
    }

    static func firstText(_ bytes: [UInt8], _ name: String) -> String? { firstText(String(decoding: bytes, as: UTF8.self), name) }

    /// Replaces `&amp; &lt; &gt; &quot; &apos; &#N; &#xN;`.
    static func decode(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var rest = Substring(s)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";") else { break }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                var scalar: UInt32?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") { scalar = UInt32(entity.dropFirst(2), radix: 16) }
                else if entity.hasPrefix("#") { scalar = UInt32(entity.dropFirst()) }
                if let v = scalar, let u = Unicode.Scalar(v) { out.unicodeScalars.append(u) } else { out += "&\(entity);" }
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }
}

/// S3's time formats, without Foundation (`timegm`).
enum S3Time {
    /// `2026-11-27T16:55:01.123Z`.
    static func parseISO8601(_ s: String) -> Double? {
        let u = Array(s.utf8)
        guard u.count >= 20 else { return nil }
        func num(_ a: Int, _ n: Int) -> Int32? {
            var v: Int32 = 0
            for i in a..<(a + n) { guard u[i] >= 48 && u[i] <= 57 else { return nil }; v = v * 10 + Int32(u[i] - 48) }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let se = num(17, 2) else { return nil }
        var frac = 0.0
        if u[19] == UInt8(ascii: "."), let z = u.firstIndex(of: UInt8(ascii: "Z")), z > 20, let f = Double("0." + String(decoding: u[20..<z], as: UTF8.self)) { frac = f }
        return civil(y, mo, d, h, mi, se).map { $0 + frac }
    }

    /// `Fri, 27 Nov 2026 16:55:01 GMT` (RFC 7231 IMF-fixdate).
    static func parseHTTPDate(_ s: String) -> Double? {
        let parts = s.split(separator: " ")
        guard parts.count == 6, let d = Int32(parts[1]), let y = Int32(parts[3]) else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let mo = months.firstIndex(of: String(parts[2])) else { return nil }
        let t = parts[4].split(separator: ":")
        guard t.count == 3, let h = Int32(t[0]), let mi = Int32(t[1]), let se = Int32(t[2]) else { return nil }
        return civil(y, Int32(mo + 1), d, h, mi, se)
    }

    private static func civil(_ y: Int32, _ mo: Int32, _ d: Int32, _ h: Int32, _ mi: Int32, _ s: Int32) -> Double? {
        var tm = Glibc.tm()
        tm.tm_year = y - 1900; tm.tm_mon = mo - 1; tm.tm_mday = d; tm.tm_hour = h; tm.tm_min = mi; tm.tm_sec = s
        let t = timegm(&tm)
        return t == -1 ? nil : Double(t)
    }
}
