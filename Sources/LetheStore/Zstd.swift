import CZstd

/// A zstd compression context (`ZSTD_CCtx`), freed in `deinit`. Not thread-safe: one per thread.
final class ZstdCompressor {
    private let cctx: OpaquePointer
    /// The compression level (`zstd -3` is 3).
    let level: Int32

    /// A compressor at `level`. With `entropyOnly`, match finding is all but disabled
    /// (`ZSTD_c_minMatch` 7, `ZSTD_c_hashLog` 6), so the frame is essentially Huffman-coded
    /// literals: on the exponent plane of float weights this comes within ~0.06 bit per
    /// symbol of the empirical entropy, where level 3 spends ~0.7 bit more on short matches.
    init(level: Int32 = 3, entropyOnly: Bool = false) {
        guard let c = ZSTD_createCCtx() else { fatalError("ZSTD_createCCtx failed: out of memory") }
        cctx = c
        self.level = entropyOnly ? 1 : level
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, self.level)
        if entropyOnly {
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_minMatch, 7)
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_hashLog, 6)
        }
    }

    deinit { ZSTD_freeCCtx(cctx) }

    /// Compresses `src` into one zstd frame (`ZSTD_compress2`) that records its content size.
    func compress(_ src: UnsafeRawBufferPointer) -> [UInt8] {
        let bound = ZSTD_compressBound(src.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { dst -> Int in
            ZSTD_compress2(cctx, dst.baseAddress, bound, src.baseAddress, src.count)
        }
        // Compression into a buffer of ZSTD_compressBound bytes cannot fail except on out-of-memory.
        precondition(ZSTD_isError(n) == 0, "ZSTD_compress2 failed: \(String(cString: ZSTD_getErrorName(n)))")
        out.removeLast(bound - n)
        return out
    }
}

/// A zstd decompression context (`ZSTD_DCtx`), freed in `deinit`.
final class ZstdDecompressor {
    private let dctx: OpaquePointer

    init() {
        guard let d = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx failed: out of memory") }
        dctx = d
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// Decompresses one frame into `dst`, which must be exactly the expected size.
    ///
    /// The frame's declared content size (`ZSTD_getFrameContentSize`) must equal `dst.count`;
    /// a frame declaring more (a decompression bomb), an unknown size or a different size is
    /// refused before any work, and `ZSTD_decompressDCtx` never writes past `dst`.
    func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, what: String) throws(StoreError) {
        let declared = ZSTD_getFrameContentSize(src.baseAddress, src.count)
        // ZSTD_CONTENTSIZE_UNKNOWN = 0ULL - 1, ZSTD_CONTENTSIZE_ERROR = 0ULL - 2.
        if declared == UInt64.max || declared == UInt64.max - 1 {
            throw .corruptObject("\(what): zstd frame without a valid content size")
        }
        guard declared == UInt64(dst.count) else {
            throw .corruptObject("\(what): zstd frame declares \(declared) bytes, expected \(dst.count) (refused)")
        }
        let n = ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
        if ZSTD_isError(n) != 0 {
            throw .corruptObject("\(what): ZSTD_decompressDCtx failed: \(String(cString: ZSTD_getErrorName(n)))")
        }
        guard n == dst.count else { throw .corruptObject("\(what): zstd frame decoded to \(n) bytes, expected \(dst.count)") }
    }
}
