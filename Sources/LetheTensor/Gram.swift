import CBLAS

/// Accumulates a Gram matrix `G = Σ x xᵀ` in Float64 over batches of Float32 rows.
///
/// Each batch X (n × d, one sample per row) is widened to Float64 and added with
/// `cblas_dsyrk` (`G += Xᵀ X`, upper triangle); `matrix` mirrors it to the full
/// symmetric matrix. Gram matrices are additive, so shards can be summed with `add(_:)`.
/// - Complexity: O(n·d²) per batch.
public struct GramAccumulator: Sendable {
    /// Dimension d of each row.
    public let dimension: Int
    /// Number of rows accumulated so far.
    public private(set) var rowCount: Int = 0
    private var upper: [Double]
    private var scratch: [Double] = []

    /// An empty d × d accumulator.
    public init(dimension: Int) {
        self.dimension = dimension
        self.upper = [Double](repeating: 0, count: dimension * dimension)
    }

    /// An accumulator holding a saved Gram matrix (d × d, symmetric; e.g. one shard's partial sum).
    public init(matrix: Tensor<Double>, rowCount: Int) {
        precondition(matrix.rank == 2 && matrix.shape[0] == matrix.shape[1], "a Gram matrix must be square, got \(matrix.shape)")
        self.dimension = matrix.shape[0]
        self.upper = matrix.scalars  // the full symmetric matrix holds its upper triangle
        self.rowCount = rowCount
    }

    /// Adds `rows` rows of length d stored contiguously at `x` (row-major).
    public mutating func accumulate(rows: Int, _ x: UnsafeBufferPointer<Float>) {
        precondition(x.count >= rows * dimension, "Gram batch holds \(x.count) scalars, need \(rows * dimension)")
        guard rows > 0 else { return }
        let d = dimension
        if scratch.count < rows * d { scratch = [Double](repeating: 0, count: rows * d) }
        scratch.withUnsafeMutableBufferPointer { s in
            for i in 0..<(rows * d) { s[i] = Double(x[i]) }
            upper.withUnsafeMutableBufferPointer { g in
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(rows),
                            1.0, s.baseAddress, Int32(d), 1.0, g.baseAddress, Int32(d))
            }
        }
        rowCount += rows
    }

    /// Adds the rows of an (n × d) Float32 matrix.
    public mutating func accumulate(_ x: Tensor<Float>) {
        precondition(x.rank == 2 && x.shape[1] == dimension, "Gram batch must be [n, \(dimension)], got \(x.shape)")
        x.scalars.withUnsafeBufferPointer { accumulate(rows: x.shape[0], $0) }
    }

    /// Adds another accumulator of the same dimension (sharded accumulation).
    public mutating func add(_ other: GramAccumulator) {
        precondition(other.dimension == dimension, "Gram dimensions differ: \(dimension) vs \(other.dimension)")
        for i in 0..<upper.count { upper[i] += other.upper[i] }
        rowCount += other.rowCount
    }

    /// The full symmetric Gram matrix (d × d, Float64).
    public var matrix: Tensor<Double> {
        let d = dimension
        var full = upper
        for i in 0..<d { for j in 0..<i { full[i * d + j] = full[j * d + i] } }
        return Tensor(shape: [d, d], scalars: full)
    }
}
