import CCrypto

/// HMAC-SHA256 (RFC 2104) through libcrypto.
public enum HMACSHA256 {
    /// The 32-byte MAC of `message` under `key` (libcrypto's one-shot `HMAC(EVP_sha256(), ...)`).
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in
                out.withUnsafeMutableBufferPointer { o in
                    // HMAC() fails only on allocation failure or a NULL digest; both are programmer errors.
                    let r = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), m.baseAddress, m.count, o.baseAddress, &length)
                    precondition(r != nil && length == 32, "HMAC(EVP_sha256()) failed")
                }
            }
        }
        return out
    }

    /// The MAC of a UTF-8 string under `key`.
    public static func mac(key: [UInt8], message: String) -> [UInt8] { mac(key: key, message: Array(message.utf8)) }
}
