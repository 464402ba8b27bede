#if canImport(Glibc)
import Glibc
#endif
import CCurl
import Synchronization

/// One HTTP request.
public struct HTTPRequest: Sendable {
    /// `GET`, `PUT`, `HEAD`, `DELETE`, ...
    public var method: String
    /// The full URL.
    public var url: String
    /// Headers sent as given (name, value).
    public var headers: [(String, String)]
    /// The body (empty for none).
    public var body: [UInt8]

    /// A request.
    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.method = method; self.url = url; self.headers = headers; self.body = body
    }
}

/// One HTTP response.
public struct HTTPResponse: Sendable, Equatable {
    /// The status code.
    public var status: Int
    /// Headers by lower-case name (the last value of a repeated header).
    public var headers: [String: String]
    /// The body (empty for HEAD).
    public var body: [UInt8]

    /// A response.
    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status; self.headers = headers; self.body = body
    }
}

/// A request that got no HTTP response (connection refused or reset, timeout, DNS): worth retrying.
public struct HTTPTransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed, e.g. `curl: Couldn't connect to server (7)`.
    public var message: String
    /// An error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Something that performs HTTP requests synchronously (libcurl here; a fake in tests).
public protocol HTTPTransport: Sendable {
    /// Sends `request` and returns the response, whatever its status.
    func send(_ request: HTTPRequest) throws(HTTPTransportError) -> HTTPResponse
}

/// HTTP through libcurl's easy interface (`curl_easy_perform`), synchronous on the calling thread.
///
/// Why libcurl rather than FoundationNetworking's URLSession: it keeps LetheStore free of
/// Foundation (as the rest of the module is), a blocking `curl_easy_perform` needs no
/// semaphore around a delegate queue, and its timeouts are explicit (connect and low-speed,
/// no overall limit for large objects). Easy handles are pooled, so connections are reused.
public final class CurlTransport: HTTPTransport {
    /// An idle easy handle (used by one thread at a time, moved between threads through the pool).
    private struct Handle: @unchecked Sendable { let raw: UnsafeMutableRawPointer }
    private let pool = Mutex<[Handle]>([])
    /// Seconds to establish a connection (`CURLOPT_CONNECTTIMEOUT`).
    public let connectTimeout: Int
    /// A transfer slower than 1 kB/s for this many seconds fails (`CURLOPT_LOW_SPEED_TIME`).
    public let stallTimeout: Int

    private static let global: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    /// A transport (`curl_global_init` once per process).
    public init(connectTimeout: Int = 10, stallTimeout: Int = 30) {
        _ = CurlTransport.global
        self.connectTimeout = connectTimeout; self.stallTimeout = stallTimeout
    }

    deinit {
        for h in pool.withLock({ $0 }) { curl_easy_cleanup(h.raw) }
    }

    /// Performs `request` with a pooled easy handle (`curl_easy_reset`, `curl_easy_setopt`, `curl_easy_perform`).
    public func send(_ request: HTTPRequest) throws(HTTPTransportError) -> HTTPResponse {
        guard let handle = pool.withLock({ $0.popLast()?.raw }) ?? curl_easy_init() else { throw HTTPTransportError("curl_easy_init failed") }
        var keep = true
        defer { if keep { let h = Handle(raw: handle); pool.withLock { $0.append(h) } } else { curl_easy_cleanup(handle) } }
        curl_easy_reset(handle)
        let box = CurlBox()
        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        // Curl adds these unless told not to; S3 must not see them.
        // "Name:" with no value removes a header curl would add (Expect: 100-continue, Accept,
        // the form Content-Type of POSTFIELDS).
        var lines = request.headers.map { "\($0.0): \($0.1)" } + ["Expect:", "Accept:"]
        if !request.headers.contains(where: { $0.0.lowercased() == "content-type" }) { lines.append("Content-Type:") }
        for line in lines { list = curl_slist_append(list, line) }
        let result: CURLcode = request.body.withUnsafeBytes { body in
            _ = lethe_curl_setopt_str(handle, CURLOPT_URL, request.url)
            _ = lethe_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
            _ = lethe_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            _ = lethe_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, connectTimeout)
            _ = lethe_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1024)
            _ = lethe_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, stallTimeout)
            _ = lethe_curl_setopt_long(handle, CURLOPT_TCP_NODELAY, 1)
            switch request.method {
            case "GET": _ = lethe_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
            case "HEAD": _ = lethe_curl_setopt_long(handle, CURLOPT_NOBODY, 1)
            default: _ = lethe_curl_setopt_str(handle, CURLOPT_CUSTOMREQUEST, request.method)
            }
            if request.method == "PUT" || request.method == "POST" {
                // The body from memory: POSTFIELDS with an explicit size, method overridden above.
                _ = lethe_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                // POSTFIELDS is not copied: it points into `body` (alive during perform) or a static byte.
                _ = lethe_curl_setopt_ptr(handle, CURLOPT_POSTFIELDS, body.count == 0 ? UnsafeRawPointer(curlEmptyBody) : body.baseAddress)
            }
            let user = Unmanaged.passUnretained(box).toOpaque()
            _ = lethe_curl_setopt_io(handle, CURLOPT_WRITEFUNCTION, curlWrite)
            _ = lethe_curl_setopt_ptr(handle, CURLOPT_WRITEDATA, user)
            _ = lethe_curl_setopt_io(handle, CURLOPT_HEADERFUNCTION, curlHeader)
            _ = lethe_curl_setopt_ptr(handle, CURLOPT_HEADERDATA, user)
            return curl_easy_perform(handle)
        }
        guard result == CURLE_OK else {
            keep = false
            throw HTTPTransportError("\(request.method) \(request.url): curl: \(String(cString: curl_easy_strerror(result))) (\(result.rawValue))")
        }
        var status = 0
        _ = lethe_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: box.headers, body: box.body)
    }
}

/// The body pointer for empty PUTs (curl needs a valid pointer; it reads 0 bytes).
nonisolated(unsafe) private let curlEmptyBody = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)

/// What curl's callbacks fill in.
private final class CurlBox {
    var body: [UInt8] = []
    var headers: [String: String] = [:]
}

private let curlWrite: lethe_curl_io_cb = { ptr, size, n, user in
    guard let ptr, let user else { return 0 }
    let box = Unmanaged<CurlBox>.fromOpaque(user).takeUnretainedValue()
    let count = size * n
    ptr.withMemoryRebound(to: UInt8.self, capacity: count) { box.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: count)) }
    return count
}

private let curlHeader: lethe_curl_io_cb = { ptr, size, n, user in
    guard let ptr, let user else { return 0 }
    let box = Unmanaged<CurlBox>.fromOpaque(user).takeUnretainedValue()
    let count = size * n
    let line = ptr.withMemoryRebound(to: UInt8.self, capacity: count) { String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self) }
    if line.hasPrefix("HTTP/") { box.headers = [:]; return count }  // a new response (after 100 Continue)
    if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        box.headers[name] = String(line[line.index(after: colon)...]).trimmingWhitespace()
    }
    return count
}
