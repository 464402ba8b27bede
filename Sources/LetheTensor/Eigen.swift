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
    ///
    /// Coordinates whose row in the upper triangle is exactly zero (a Gram matrix's input
    /// features that are 0 on every row — e.g. a dead ReLU channel before a Linear layer)
    /// decouple: each contributes eigenvalue 0 with a unit eigenvector, and only the block of
    /// the other coordinates is decomposed. The result is the same decomposition at a fraction
    /// of the O(d³) cost (a cnn's 3136-input Linear typically has hundreds of such features).
    /// - Complexity: O(m³) for m coupled coordinates.
    public init(_ matrix: Tensor<Double>) throws(LinearAlgebraError) {
        precondition(matrix.rank == 2 && matrix.shape[0] == matrix.shape[1], "eigendecomposition needs a square matrix, got \(matrix.shape)")
        let d = matrix.shape[0]
        guard d > 0 else { self.values = []; self.vectors = Tensor(zeros: [0, 0]); return }
        // Row i of the symmetric matrix is its upper-triangle row i plus column i above the diagonal.
        var coupled = [Bool](repeating: false, count: d)
        matrix.scalars.withUnsafeBufferPointer { p in
            for i in 0..<d {
                for j in i..<d where p[i * d + j] != 0 { coupled[i] = true; coupled[j] = true }
            }
        }
        let live = (0..<d).filter { coupled[$0] }
        if live.count == d {
            (values, vectors) = try SymmetricEigen.dense(matrix.scalars, d)
            return
        }
        let m = live.count
        var block = [Double](repeating: 0, count: m * m)
        matrix.scalars.withUnsafeBufferPointer { p in
            for (a, i) in live.enumerated() { for (b, j) in live.enumerated() { block[a * m + b] = p[i * d + j] } }
        }
        let (w, v) = try SymmetricEigen.dense(block, m)
        // Block eigenvalues ≥ 0, then the decoupled zeros (unit vectors, by coordinate), then the negative ones.
        let nonNegative = w.prefix { $0 >= 0 }.count
        let dead = (0..<d).filter { !coupled[$0] }
        var values = [Double](repeating: 0, count: d)
        var out = [Double](repeating: 0, count: d * d)
        v.scalars.withUnsafeBufferPointer { src in
            for c in 0..<m {
                let column = c < nonNegative ? c : c + dead.count
                values[column] = w[c]
                for (a, i) in live.enumerated() { out[i * d + column] = src[a * m + c] }
            }
        }
        for (t, i) in dead.enumerated() { out[i * d + nonNegative + t] = 1 }
        self.values = values
        self.vectors = Tensor(shape: [d, d], scalars: out)
    }

    /// `LAPACKE_dsyevd` on a row-major n × n matrix: eigenvalues descending, eigenvectors as columns in that order.
    private static func dense(_ matrix: [Double], _ n: Int) throws(LinearAlgebraError) -> ([Double], Tensor<Double>) {
        var a = matrix
        var w = [Double](repeating: 0, count: n)
        guard n > 0 else { return ([], Tensor(zeros: [0, 0])) }
        let info = a.withUnsafeMutableBufferPointer { pa in
            w.withUnsafeMutableBufferPointer { pw in
                LAPACKE_dsyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "U")),
                               Int32(n), pa.baseAddress, Int32(n), pw.baseAddress)
            }
        }
        guard info == 0 else { throw LinearAlgebraError(call: "LAPACKE_dsyevd", info: Int(info)) }
        // Reverse column order: column j of the result is column n-1-j of LAPACK's.
        var v = [Double](repeating: 0, count: n * n)
        a.withUnsafeBufferPointer { src in
            v.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n { for j in 0..<n { dst[i * n + j] = src[i * n + (n - 1 - j)] } }
            }
        }
        return (w.reversed(), Tensor(shape: [n, n], scalars: v))
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
