#if canImport(Glibc)
import Glibc
#endif
import LetheCrypto

/// Credentials and region for AWS Signature Version 4.
public struct S3Credentials: Sendable, Equatable {
    /// `AWS_ACCESS_KEY_ID`.
    public var accessKey: String
    /// `AWS_SECRET_ACCESS_KEY`.
    public var secretKey: String
    /// `AWS_SESSION_TOKEN` (temporary credentials), sent as `x-amz-security-token`.
    public var sessionToken: String?

    /// Credentials.
    public init(accessKey: String, secretKey: String, sessionToken: String? = nil) {
        self.accessKey = accessKey; self.secretKey = secretKey; self.sessionToken = sessionToken
    }
}

/// AWS Signature Version 4 for S3 requests (header-based, signed payload), HMAC-SHA256 through
/// libcrypto (`HMAC`), SHA-256 through `LetheCrypto.SHA256` (EVP).
///
/// See "Authenticating Requests: Using the Authorization Header (AWS Signature Version 4)";
/// `SigV4Tests` checks the documented GET-object example signature.
public enum SigV4 {
    /// SHA-256 of the empty payload, hex.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Percent-encodes `s` as SigV4 requires: every byte except `A-Z a-z 0-9 - _ . ~` (and `/`
    /// when `keepSlash`) becomes `%XX` with upper-case hex.
    public static func uriEncode(_ s: String, keepSlash: Bool) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in s.utf8 {
            let unreserved = (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: "~")
            if unreserved || (keepSlash && b == UInt8(ascii: "/")) { out.append(b) } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The canonical query string: pairs encoded, sorted by name then value, `name=value` joined by `&`.
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (uriEncode($0.0, keepSlash: false), uriEncode($0.1, keepSlash: false)) }
            .sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// The canonical request (method, encoded path, query, headers, signed header names, payload hash).
    /// `headers` must include `host`, `x-amz-date` and `x-amz-content-sha256`; every header given is signed.
    public static func canonicalRequest(method: String, path: String, query: [(String, String)],
                                        headers: [(String, String)], payloadHash: String) -> (request: String, signedHeaders: String) {
        let canon = headers.map { (name: $0.0.lowercased(), value: collapse($0.1)) }.sorted { $0.name < $1.name }
        let signed = canon.map(\.name).joined(separator: ";")
        let lines = canon.map { "\($0.name):\($0.value)\n" }.joined()
        let request = [method, uriEncode(path, keepSlash: true), canonicalQuery(query), lines, signed, payloadHash].joined(separator: "\n")
        return (request, signed)
    }

    /// The `Authorization` header value for a request made at `amzDate` (`yyyyMMdd'T'HHmmss'Z'`).
    public static func authorization(method: String, path: String, query: [(String, String)], headers: [(String, String)],
                                     payloadHash: String, amzDate: String, region: String, service: String = "s3",
                                     credentials: S3Credentials) -> String {
        let (request, signed) = canonicalRequest(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash)
        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(SHA256.hash(request).hex)"
        let signature = Hex.encode(HMACSHA256.mac(key: signingKey(secret: credentials.secretKey, day: day, region: region, service: service),
                                                  message: toSign))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKey)/\(scope),SignedHeaders=\(signed),Signature=\(signature)"
    }

    /// The derived signing key: HMAC chain over the day, region, service and `aws4_request`.
    public static func signingKey(secret: String, day: String, region: String, service: String) -> [UInt8] {
        let kDate = HMACSHA256.mac(key: Array(("AWS4" + secret).utf8), message: day)
        let kRegion = HMACSHA256.mac(key: kDate, message: region)
        let kService = HMACSHA256.mac(key: kRegion, message: service)
        return HMACSHA256.mac(key: kService, message: "aws4_request")
    }

    /// `yyyyMMdd'T'HHmmss'Z'` for `seconds` since the epoch (`gmtime_r`).
    public static func amzDate(_ seconds: Double) -> String {
        var t = time_t(seconds.rounded(.down))
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tm.tm_year + 1900)\(two(tm.tm_mon + 1))\(two(tm.tm_mday))T\(two(tm.tm_hour))\(two(tm.tm_min))\(two(tm.tm_sec))Z"
    }

    /// Trims a header value and collapses inner runs of spaces to one, as the canonical form requires.
    static func collapse(_ v: String) -> String {
        v.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ").trimmingWhitespace()
    }
}
