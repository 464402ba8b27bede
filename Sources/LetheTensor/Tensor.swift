import CBLAS

/// A scalar type that OpenBLAS can multiply: `Float` (`cblas_sgemm`) or `Double` (`cblas_dgemm`).
public protocol BLASScalar: BinaryFloatingPoint, Sendable where Self.RawSignificand: FixedWidthInteger {
    /// Wraps `cblas_sgemm` / `cblas_dgemm` on row-major operands.
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
}

extension Float: BLASScalar {
    /// `cblas_sgemm` in row-major order.
    @inlinable
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Double: BLASScalar {
    /// `cblas_dgemm` in row-major order.
    @inlinable
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// A dense, contiguous, row-major tensor.
///
/// Storage is a Swift array (copy-on-write); hot loops go through
/// `withUnsafeBufferPointer` / `withUnsafeMutableBufferPointer`.
public struct Tensor<Scalar: BLASScalar>: Sendable, Equatable {
    /// Extent of each dimension, outermost first (PyTorch order, e.g. NCHW).
    public private(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.product`.
    public var scalars: [Scalar]

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in \(shape)")
        self.shape = shape
        self.scalars = [Scalar](repeating: 0, count: shape.reduce(1, *))
    }

    /// A tensor filled with `value`.
    public init(repeating value: Scalar, shape: [Int]) {
        self.shape = shape
        self.scalars = [Scalar](repeating: value, count: shape.reduce(1, *))
    }

    /// A tensor over existing scalars; the count must match the shape.
    public init(shape: [Int], scalars: [Scalar]) {
        precondition(shape.reduce(1, *) == scalars.count,
                     "shape \(shape) holds \(shape.reduce(1, *)) scalars, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// Number of elements.
    @inlinable public var count: Int { scalars.count }
    /// Number of dimensions.
    @inlinable public var rank: Int { shape.count }

    /// The same scalars seen with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }

    /// Changes the shape in place (element count must stay the same).
    public mutating func reshape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) == scalars.count, "cannot reshape \(shape) to \(newShape)")
        shape = newShape
    }

    /// Element at a multi-index (slow; for tests and small code paths).
    public subscript(_ index: Int...) -> Scalar {
        get { scalars[flatIndex(index)] }
        set { scalars[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) for shape \(shape)")
        var flat = 0
        for (i, n) in zip(index, shape) {
            precondition(i >= 0 && i < n, "index \(index) out of range for shape \(shape)")
            flat = flat * n + i
        }
        return flat
    }

    /// Transpose of a rank-2 tensor.
    public func transposed() -> Tensor {
        precondition(rank == 2, "transposed() needs a matrix, got shape \(shape)")
        let (r, c) = (shape[0], shape[1])
        var out = Tensor(zeros: [c, r])
        scalars.withUnsafeBufferPointer { src in
            out.scalars.withUnsafeMutableBufferPointer { dst in
                for i in 0..<r { for j in 0..<c { dst[j * r + i] = src[i * c + j] } }
            }
        }
        return out
    }

    /// Frobenius norm, accumulated in Double.
    public var frobeniusNorm: Double {
        scalars.withUnsafeBufferPointer { p in
            var s = 0.0
            for v in p { let d = Double(v); s += d * d }
            return s.squareRoot()
        }
    }
}

extension Tensor where Scalar == Float {
    /// Widens to Float64.
    public func toDouble() -> Tensor<Double> {
        Tensor<Double>(shape: shape, scalars: scalars.map { Double($0) })
    }
}

extension Tensor where Scalar == Double {
    /// Rounds to Float32 (round-to-nearest-even).
    public func toFloat() -> Tensor<Float> {
        Tensor<Float>(shape: shape, scalars: scalars.map { Float($0) })
    }
}

extension Tensor {
    /// `true` when every element is within `relativeTolerance · max(|a|, |b|, 1)`.
    public func isApproximatelyEqual(to other: Tensor, relativeTolerance: Scalar) -> Bool {
        guard shape == other.shape else { return false }
        for (a, b) in zip(scalars, other.scalars) {
            let scale = Swift.max(Swift.max(abs(a), abs(b)), 1)
            if !(abs(a - b) <= relativeTolerance * scale) { return false }
        }
        return true
    }

    /// Largest absolute elementwise difference (`.infinity` on shape mismatch).
    public func maxAbsDifference(_ other: Tensor) -> Scalar {
        guard shape == other.shape else { return .infinity }
        var m: Scalar = 0
        for (a, b) in zip(scalars, other.scalars) { m = Swift.max(m, abs(a - b)) }
        return m
    }
}
