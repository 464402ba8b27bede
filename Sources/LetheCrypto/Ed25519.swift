import CCrypto
import Foundation

/// An error from a libcrypto Ed25519 call, naming the call and carrying OpenSSL's reason.
public struct CryptoError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What failed, with libcrypto's error string when there is one.
    public let message: String
    /// An error.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }

    /// The error for a failed libcrypto `call`, draining OpenSSL's error queue (`ERR_get_error`).
    static func openssl(_ call: String) -> CryptoError {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            reasons.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return CryptoError(reasons.isEmpty ? "\(call) failed" : "\(call) failed: \(reasons.joined(separator: "; "))")
    }
}

/// Ed25519 signatures (RFC 8032) through libcrypto's `EVP_PKEY_ED25519` and `EVP_DigestSign`.
public enum Ed25519 {
    /// A 32-byte Ed25519 public key.
    public struct PublicKey: Sendable, Hashable {
        /// The raw 32 bytes (RFC 8032 encoding).
        public let raw: [UInt8]

        /// Wraps 32 raw bytes; nil for any other length.
        public init?(raw: [UInt8]) {
            guard raw.count == 32 else { return nil }
            self.raw = raw
        }

        /// Lowercase hex of the raw key.
        public var hex: String { Hex.encode(raw) }

        /// Checks `signature` over `message` (`EVP_DigestVerifyInit` + `EVP_DigestVerify`).
        public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
            guard signature.count == 64,
                  let pkey = raw.withUnsafeBufferPointer({ EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) })
            else { return false }
            defer { EVP_PKEY_free(pkey) }
            guard let ctx = EVP_MD_CTX_new() else { return false }
            defer { EVP_MD_CTX_free(ctx) }
            guard EVP_DigestVerifyInit(ctx, nil, nil, nil, pkey) == 1 else { ERR_clear_error(); return false }
            let rc = signature.withUnsafeBufferPointer { sig in
                message.withUnsafeBufferPointer { msg in
                    EVP_DigestVerify(ctx, sig.baseAddress, 64, msg.baseAddress ?? UnsafePointer(bitPattern: 1), msg.count)
                }
            }
            ERR_clear_error()
            return rc == 1
        }

        /// PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo) of this key (`PEM_write_bio_PUBKEY`).
        public func pem() throws(CryptoError) -> String {
            guard let pkey = raw.withUnsafeBufferPointer({ EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) })
            else { throw .openssl("EVP_PKEY_new_raw_public_key") }
            defer { EVP_PKEY_free(pkey) }
            return try withMemoryBIO { bio throws(CryptoError) in
                guard PEM_write_bio_PUBKEY(bio, pkey) == 1 else { throw .openssl("PEM_write_bio_PUBKEY") }
            }
        }

        /// Parses a PEM public key (`PEM_read_bio_PUBKEY`); it must be Ed25519.
        public init(pem: String) throws(CryptoError) {
            let pkey = try Ed25519.readPEM(pem, call: "PEM_read_bio_PUBKEY") { PEM_read_bio_PUBKEY($0, nil, nil, nil) }
            defer { EVP_PKEY_free(pkey) }
            self.raw = try Ed25519.rawPublic(pkey)
        }
    }

    /// An Ed25519 private key held by libcrypto (`EVP_PKEY*`, freed in `deinit`).
    public final class PrivateKey: @unchecked Sendable {
        // Immutable after init; libcrypto allows concurrent use of a const EVP_PKEY for signing.
        private let pkey: OpaquePointer

        private init(pkey: OpaquePointer) { self.pkey = pkey }
        deinit { EVP_PKEY_free(pkey) }

        /// A fresh random key (`EVP_PKEY_keygen` on an `EVP_PKEY_ED25519` context).
        public static func generate() throws(CryptoError) -> PrivateKey {
            guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nil) else { throw .openssl("EVP_PKEY_CTX_new_id") }
            defer { EVP_PKEY_CTX_free(ctx) }
            guard EVP_PKEY_keygen_init(ctx) == 1 else { throw .openssl("EVP_PKEY_keygen_init") }
            var out: OpaquePointer?
            guard EVP_PKEY_keygen(ctx, &out) == 1, let out else { throw .openssl("EVP_PKEY_keygen") }
            return PrivateKey(pkey: out)
        }

        /// The key with the given 32-byte RFC 8032 seed (`EVP_PKEY_new_raw_private_key`).
        public convenience init(seed: [UInt8]) throws(CryptoError) {
            guard seed.count == 32 else { throw CryptoError("an Ed25519 seed has 32 bytes, got \(seed.count)") }
            guard let p = seed.withUnsafeBufferPointer({ EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) })
            else { throw .openssl("EVP_PKEY_new_raw_private_key") }
            self.init(pkey: p)
        }

        /// Parses a PEM private key (`PEM_read_bio_PrivateKey`, PKCS#8); it must be Ed25519.
        public convenience init(pem: String) throws(CryptoError) {
            let p = try Ed25519.readPEM(pem, call: "PEM_read_bio_PrivateKey") { PEM_read_bio_PrivateKey($0, nil, nil, nil) }
            guard EVP_PKEY_get_base_id(p) == EVP_PKEY_ED25519 else {
                EVP_PKEY_free(p)
                throw CryptoError("the PEM key is not an Ed25519 key")
            }
            self.init(pkey: p)
        }

        /// Loads a PEM private key from a file.
        public static func load(path: String) throws(CryptoError) -> PrivateKey {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CryptoError("cannot read signing key \(path)")
            }
            do { return try PrivateKey(pem: String(decoding: data, as: UTF8.self)) } catch {
                throw CryptoError("\(path): \(error.message)")
            }
        }

        /// The matching public key (`EVP_PKEY_get_raw_public_key`).
        public var publicKey: PublicKey {
            // A valid Ed25519 EVP_PKEY always yields its 32-byte public key.
            (try? Ed25519.rawPublic(pkey)).flatMap { PublicKey(raw: $0) } ?? { fatalError("Ed25519 key without public half") }()
        }

        /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, `PEM_write_bio_PrivateKey`, unencrypted).
        public func pem() throws(CryptoError) -> String {
            try withMemoryBIO { bio throws(CryptoError) in
                guard PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil) == 1 else {
                    throw .openssl("PEM_write_bio_PrivateKey")
                }
            }
        }

        /// Writes the PEM to `path` with mode 0600, atomically (temp file, fsync, rename);
        /// refuses to overwrite an existing file.
        public func save(path: String) throws(CryptoError) {
            let text = try pem()
            if FileManager.default.fileExists(atPath: path) { throw CryptoError("refusing to overwrite signing key \(path)") }
            let tmp = path + ".tmp-\(getpid())"
            let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            guard fd >= 0 else { throw CryptoError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
            let bytes = Array(text.utf8)
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            let synced = fsync(fd)
            close(fd)
            guard written == bytes.count, synced == 0, rename(tmp, path) == 0 else {
                unlink(tmp)
                throw CryptoError("cannot write signing key \(path): \(String(cString: strerror(errno)))")
            }
        }

        /// The 64-byte Ed25519 signature of `message` (`EVP_DigestSignInit` + `EVP_DigestSign`).
        public func sign(_ message: [UInt8]) throws(CryptoError) -> [UInt8] {
            guard let ctx = EVP_MD_CTX_new() else { throw .openssl("EVP_MD_CTX_new") }
            defer { EVP_MD_CTX_free(ctx) }
            guard EVP_DigestSignInit(ctx, nil, nil, nil, pkey) == 1 else { throw .openssl("EVP_DigestSignInit") }
            var sig = [UInt8](repeating: 0, count: 64)
            var len = 64
            let rc = sig.withUnsafeMutableBufferPointer { s in
                message.withUnsafeBufferPointer { m in
                    EVP_DigestSign(ctx, s.baseAddress, &len, m.baseAddress ?? UnsafePointer(bitPattern: 1), m.count)
                }
            }
            guard rc == 1, len == 64 else { throw .openssl("EVP_DigestSign") }
            return sig
        }
    }

    static func rawPublic(_ pkey: OpaquePointer) throws(CryptoError) -> [UInt8] {
        guard EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 else { throw CryptoError("the PEM key is not an Ed25519 key") }
        var out = [UInt8](repeating: 0, count: 32)
        var len = 32
        guard out.withUnsafeMutableBufferPointer({ EVP_PKEY_get_raw_public_key(pkey, $0.baseAddress, &len) }) == 1, len == 32
        else { throw .openssl("EVP_PKEY_get_raw_public_key") }
        return out
    }

    static func readPEM(_ pem: String, call: String, _ read: (OpaquePointer) -> OpaquePointer?) throws(CryptoError) -> OpaquePointer {
        let bytes = Array(pem.utf8)
        let key: OpaquePointer? = bytes.withUnsafeBytes { buf in
            guard let bio = BIO_new_mem_buf(buf.baseAddress, Int32(buf.count)) else { return nil }
            defer { BIO_free(bio) }
            return read(bio)
        }
        guard let key else { throw .openssl(call) }
        return key
    }
}

/// Runs `body` with a memory BIO and returns what it wrote (`BIO_s_mem`, `BIO_read`).
private func withMemoryBIO(_ body: (OpaquePointer) throws(CryptoError) -> Void) throws(CryptoError) -> String {
    guard let bio = BIO_new(BIO_s_mem()) else { throw .openssl("BIO_new") }
    defer { BIO_free(bio) }
    try body(bio)
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1024)
    while true {
        let n = buf.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32($0.count)) }
        if n <= 0 { break }
        out.append(contentsOf: buf[0..<Int(n)])
    }
    return String(decoding: out, as: UTF8.self)
}
