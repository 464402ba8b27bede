import CBLAS

/// Matrix products through OpenBLAS GEMM.
extension Tensor {
    /// `C = alpha · op(A) · op(B) + beta · C` for row-major matrices, through `cblas_?gemm`.
    ///
    /// `op(X)` is `X` or `Xᵀ`. C must already have shape (m, n).
    /// - Complexity: O(m·n·k) flops in OpenBLAS.
    public static func gemm(
        _ a: Tensor, transposeA: Bool = false, _ b: Tensor, transposeB: Bool = false,
        alpha: Scalar = 1, beta: Scalar = 0, into c: inout Tensor
    ) {
        precondition(a.rank == 2 && b.rank == 2 && c.rank == 2, "gemm needs matrices: \(a.shape) \(b.shape) \(c.shape)")
        let m = transposeA ? a.shape[1] : a.shape[0]
        let k = transposeA ? a.shape[0] : a.shape[1]
        let kb = transposeB ? b.shape[1] : b.shape[0]
        let n = transposeB ? b.shape[0] : b.shape[1]
        precondition(k == kb, "gemm inner dimensions differ: op(A) is \(m)x\(k), op(B) is \(kb)x\(n)")
        precondition(c.shape == [m, n], "gemm output must be [\(m), \(n)], got \(c.shape)")
        if m == 0 || n == 0 { return }
        a.scalars.withUnsafeBufferPointer { pa in
            b.scalars.withUnsafeBufferPointer { pb in
                c.scalars.withUnsafeMutableBufferPointer { pc in
                    gemmRaw(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: alpha,
                            a: pa.baseAddress, lda: a.shape[1], b: pb.baseAddress, ldb: b.shape[1],
                            beta: beta, c: pc.baseAddress, ldc: n)
                }
            }
        }
    }

    /// `op(A) · op(B)` as a new matrix.
    public static func matmul(_ a: Tensor, transposeA: Bool = false, _ b: Tensor, transposeB: Bool = false) -> Tensor {
        let m = transposeA ? a.shape[1] : a.shape[0]
        let n = transposeB ? b.shape[0] : b.shape[1]
        var c = Tensor(zeros: [m, n])
        gemm(a, transposeA: transposeA, b, transposeB: transposeB, into: &c)
        return c
    }

    /// GEMM on raw row-major pointers, for kernels that work on views of larger buffers.
    ///
    /// A k of zero scales C by beta (BLAS may skip that, so it is done here).
    @inlinable
    public static func gemmRaw(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Scalar,
        a: UnsafePointer<Scalar>?, lda: Int, b: UnsafePointer<Scalar>?, ldb: Int,
        beta: Scalar, c: UnsafeMutablePointer<Scalar>?, ldc: Int
    ) {
        guard m > 0, n > 0, let c else { return }
        guard k > 0, let a, let b else {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : c[i * ldc + j] * beta } }
            return
        }
        Scalar.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                    a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
}

/// Controls the thread count of OpenBLAS (`openblas_set_num_threads`).
public enum BLASThreads {
    /// Sets the number of threads OpenBLAS uses for every following call.
    public static func set(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    /// The number of threads OpenBLAS currently uses.
    public static var current: Int { Int(openblas_get_num_threads()) }
}
