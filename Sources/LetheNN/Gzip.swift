import CZlib

/// Reading and writing gzip files through zlib (`gzopen`, `gzread`, `gzwrite`).
public enum Gzip {
    /// The decompressed contents of a gzip file (a plain file is returned as is, as `gzread` does).
    ///
    /// - Throws: `NNError.io` when the file cannot be opened, and `NNError.invalidDataset` when the
    ///   stream is corrupt or truncated (zlib's `gzerror` message is included) or decompresses to
    ///   more than `maxBytes` (a decompression bomb; default 1 GiB, 20× Fashion-MNIST's largest file).
    public static func read(_ path: String, maxBytes: Int = 1 << 30) throws(NNError) -> [UInt8] {
        guard let file = gzopen(path, "rb") else { throw .io("gzopen(\(path)) failed: cannot open file") }
        defer { gzclose(file) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown error"
                throw .invalidDataset("\(path): gzip stream is corrupt (gzread: \(message))")
            }
            if n == 0 { break }
            guard out.count + Int(n) <= maxBytes else {
                throw .invalidDataset("\(path): decompresses to more than \(maxBytes) bytes (refused)")
            }
            out.append(contentsOf: chunk[0..<Int(n)])
        }
        var code: Int32 = 0
        let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
        if code != Z_OK && code != Z_STREAM_END {
            throw .invalidDataset("\(path): gzip stream is truncated or corrupt (\(message))")
        }
        return out
    }

    /// Writes `bytes` gzip-compressed to `path` (for fixtures and exports).
    public static func write(_ bytes: [UInt8], to path: String) throws(NNError) {
        guard let file = gzopen(path, "wb") else { throw .io("gzopen(\(path), wb) failed") }
        let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        let closed = gzclose(file)
        guard Int(written) == bytes.count || bytes.isEmpty, closed == Z_OK else { throw .io("gzwrite(\(path)) failed") }
    }
}
