import CBLAS

/// Errors from the LAPACK-backed linear algebra.
public struct LinearAlgebraError: Error, CustomStringConvertible, Sendable {
    /// The LAPACKE routine that failed.
    public let call: String
    /// Its `info` return value.
    public let info: Int
    public var description: String { "\(call) failed with info = \(info)" }
}

/// Eigenpairs of a symmetric matrix, largest eigenvalue first.
public struct SymmetricEigen: Sendable {
    /// Eigenvalues in descending order.
    public var values: [Double]
    /// Eigenvectors as the columns of a d × d row-major matrix, in the order of `values`.
    public var vectors: Tensor<Double>

    /// Decomposes a symmetric matrix with `LAPACKE_dsyevd` (divide and conquer).
    ///
    /// Only the upper triangle is read. LAPACK returns ascending order; it is
    /// reversed here so `values[0]` is the largest.
    /// - Complexity: O(d³).
    public init(_ matrix: Tensor<Double>) throws(LinearAlgebraError) {
        precondition(matrix.rank == 2 && matrix.shape[0] == matrix.shape[1], "eigendecomposition needs a square matrix, got \(matrix.shape)")
        let d = matrix.shape[0]
        var a = matrix.scalars
        var w = [Double](repeating: 0, count: d)
        guard d > 0 else { self.values = []; self.vectors = Tensor(zeros: [0, 0]); return }
        let info = a.withUnsafeMutableBufferPointer { pa in
            w.withUnsafeMutableBufferPointer { pw in
                LAPACKE_dsyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "U")),
                               Int32(d), pa.baseAddress, Int32(d), pw.baseAddress)
            }
        }
        guard info == 0 else { throw LinearAlgebraError(call: "LAPACKE_dsyevd", info: Int(info)) }
        // Reverse column order: column j of the result is column d-1-j of LAPACK's.
        var v = [Double](repeating: 0, count: d * d)
        a.withUnsafeBufferPointer { src in
            v.withUnsafeMutableBufferPointer { dst in
                for i in 0..<d { for j in 0..<d { dst[i * d + j] = src[i * d + (d - 1 - j)] } }
            }
        }
        self.values = w.reversed()
        self.vectors = Tensor(shape: [d, d], scalars: v)
    }

    /// The first `k` eigenvector columns as a d × k matrix.
    public func leadingVectors(_ k: Int) -> Tensor<Double> {
        let d = vectors.shape[0]
        precondition(k >= 0 && k <= d, "k = \(k) outside 0...\(d)")
        var out = Tensor<Double>(zeros: [d, k])
        vectors.scalars.withUnsafeBufferPointer { src in
            out.scalars.withUnsafeMutableBufferPointer { dst in
                for i in 0..<d { for j in 0..<k { dst[i * k + j] = src[i * d + j] } }
            }
        }
        return out
    }
}
