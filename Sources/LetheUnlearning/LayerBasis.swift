import LetheTensor

/// The cached basis of one layer's input representations: the eigenvectors U and
/// singular values σ of its Gram matrix G = Σ x xᵀ = U diag(σ²) Uᵀ (Hoang et al.,
/// WACV 2024, §3: "representation matrix" of a layer, decomposed once per model).
///
/// A freshly computed basis keeps all d columns (its complement is then available for
/// projection); `truncated()` drops components whose σ² is at or below
/// `truncationTolerance · σ₁²` before storage, which keeps bases of wide layers (e.g. a
/// 3136-input Linear after ReLU/pooling) small without changing the Gram matrix they
/// describe beyond that tolerance. A downdate always returns a full basis again.
public struct LayerBasis: Sendable, Equatable {
    /// The layer's name prefix (`features.0`, `fc1`).
    public var layer: String
    /// Input dimension d (C_in·kh·kw for Conv2d, in_features for Linear).
    public var dimension: Int
    /// Eigenvectors as columns, d × rank, σ descending.
    public var u: Tensor<Double>
    /// Singular values σ (square roots of the Gram eigenvalues), descending, length rank.
    public var sigma: [Double]
    /// Number of input rows (samples × positions) the Gram matrix summed.
    public var rowCount: Int

    /// Relative eigenvalue threshold below which components are dropped.
    public static let truncationTolerance = 1e-13

    /// Number of columns kept.
    public var rank: Int { sigma.count }

    /// A basis from its parts.
    public init(layer: String, dimension: Int, u: Tensor<Double>, sigma: [Double], rowCount: Int) {
        precondition(u.shape == [dimension, sigma.count], "U must be [\(dimension), \(sigma.count)], got \(u.shape)")
        self.layer = layer; self.dimension = dimension; self.u = u; self.sigma = sigma; self.rowCount = rowCount
    }

    /// Decomposes a Gram matrix (`LAPACKE_dsyevd`), keeping all d components and clamping
    /// tiny negative eigenvalues (rounding) to zero.
    /// - Complexity: O(d³).
    public init(layer: String, gram: Tensor<Double>, rowCount: Int) throws(LinearAlgebraError) {
        let d = gram.shape[0]
        let eig = try SymmetricEigen(gram)
        self.init(layer: layer, dimension: d, u: eig.vectors,
                  sigma: eig.values.map { max($0, 0).squareRoot() }, rowCount: rowCount)
    }

    /// ‖ΔW Xᵀ‖_F / ‖W Xᵀ‖_F for the input rows X this basis describes, from the basis alone:
    /// ‖A Xᵀ‖²_F = tr(A G Aᵀ) = Σ_i σ_i² ‖A u_i‖². With the retained basis it is how far an update
    /// moves the layer's outputs on the retained data, relative to their size (0 for an update
    /// orthogonal to every retained input). Both matrices are out × d, row-major.
    /// - Complexity: two GEMMs of out × d × rank.
    public func outputShift(update: Tensor<Double>, weights: Tensor<Double>) -> Double {
        precondition(update.shape.count == 2 && update.shape[1] == dimension && weights.shape == update.shape,
                     "update and weights must be out × \(dimension)")
        func energy(_ a: Tensor<Double>) -> Double {
            let t = Tensor.matmul(a, u)   // out × rank
            var sum = 0.0
            t.scalars.withUnsafeBufferPointer { p in
                for r in 0..<a.shape[0] { for j in 0..<rank { let v = p[r * rank + j] * sigma[j]; sum += v * v } }
            }
            return sum
        }
        let base = energy(weights)
        return base > 0 ? (energy(update) / base).squareRoot() : 0
    }

    /// `outputShift` of the update from weights `w0` to `w1` (out × d, row-major Float32), in Float64.
    public func outputShift(from w0: [Float], to w1: [Float]) -> Double {
        let shape = [w0.count / dimension, dimension]
        return outputShift(update: Tensor(shape: shape, scalars: zip(w1, w0).map { Double($0) - Double($1) }),
                           weights: Tensor(shape: shape, scalars: w0.map(Double.init)))
    }

    /// The same basis without null components (σ² ≤ `truncationTolerance` · σ₁²), for storage.
    /// The Gram matrix it describes changes by at most that tolerance.
    public func truncated() -> LayerBasis {
        let top = (sigma.first ?? 0) * (sigma.first ?? 0)
        var r = 0
        while r < rank, sigma[r] * sigma[r] > LayerBasis.truncationTolerance * top { r += 1 }
        if r == rank { return self }
        return LayerBasis(layer: layer, dimension: dimension, u: leadingColumns(r), sigma: Array(sigma.prefix(r)), rowCount: rowCount)
    }

    /// Columns `range` of U (d × range.count).
    public func columns(_ range: Range<Int>) -> Tensor<Double> {
        precondition(range.lowerBound >= 0 && range.upperBound <= rank, "columns \(range) outside 0..<\(rank)")
        let d = dimension, r = rank, c = range.count
        var out = Tensor<Double>(zeros: [d, c])
        u.scalars.withUnsafeBufferPointer { src in
            out.scalars.withUnsafeMutableBufferPointer { dst in
                for i in 0..<d { for j in 0..<c { dst[i * c + j] = src[i * r + range.lowerBound + j] } }
            }
        }
        return out
    }

    /// The Gram matrix this basis describes, U diag(σ²) Uᵀ (d × d).
    /// - Complexity: O(d²·rank).
    public func gram() -> Tensor<Double> {
        let d = dimension, r = rank
        var scaled = u
        scaled.scalars.withUnsafeMutableBufferPointer { p in
            for i in 0..<d { for j in 0..<r { p[i * r + j] *= sigma[j] * sigma[j] } }
        }
        return Tensor.matmul(scaled, u, transposeB: true)
    }

    /// The retained basis after removing the forget set's rows: eigendecomposition of
    /// M = U diag(σ²) Uᵀ − G_f (PGU's retained representation, from the forget data alone).
    ///
    /// - Parameters:
    ///   - forgetGram: G_f = Σ x xᵀ over the forget set's input rows for this layer.
    ///   - forgetRows: how many rows G_f summed.
    /// - Complexity: O(d³).
    public func downdated(removing forgetGram: Tensor<Double>, forgetRows: Int) throws(LinearAlgebraError) -> LayerBasis {
        precondition(forgetGram.shape == [dimension, dimension], "G_f must be [\(dimension), \(dimension)], got \(forgetGram.shape)")
        var m = gram()
        m.scalars.withUnsafeMutableBufferPointer { pm in
            forgetGram.scalars.withUnsafeBufferPointer { pf in
                for i in 0..<pm.count { pm[i] -= pf[i] }
            }
        }
        return try LayerBasis(layer: layer, gram: m, rowCount: max(0, rowCount - forgetRows))
    }

    /// The number of leading columns forming the Core Gradient Space for threshold γ.
    ///
    /// `.singularValues` (the PGU reference code's rule): k = #{i : Σ_{j≤i} σ_j / Σ_j σ_j ≤ γ}.
    /// `.energy` (Gradient Projection Memory's rule): the same on σ².
    ///
    /// `capDirections`: k then grows while the next direction alone carries more than 1 − γ of the
    /// total, so that no direction left outside the CGS holds more of the retained data than the
    /// whole complement was meant to. It changes only layers of a few input dimensions: a first
    /// 3×3 convolution on one channel (d = 9) keeps k = 8 at γ 0.98 and 0.99 by the rule above, and
    /// its one free direction carries 2.2% of the σ total on Fashion-MNIST's patches; with the cap
    /// the layer is left out of the update (k = d).
    public func coreRank(gamma: Double, rule: CoreSpaceRule = .singularValues, capDirections: Bool = false) -> Int {
        let weights = rule == .energy ? sigma.map { $0 * $0 } : sigma
        let total = weights.reduce(0, +)
        guard total > 0 else { return 0 }
        var cumulative = 0.0, k = 0
        for w in weights {
            cumulative += w
            if cumulative / total <= gamma { k += 1 } else { break }
        }
        if capDirections {
            while k < weights.count && weights[k] / total > 1 - gamma { k += 1 }
        }
        return k
    }

    /// The first k columns of U (d × k).
    public func leadingColumns(_ k: Int) -> Tensor<Double> { columns(0..<k) }
}

/// How the Core Gradient Space's size k is chosen from a layer's spectrum.
public enum CoreSpaceRule: String, Sendable, Codable, CaseIterable {
    /// Cumulative share of singular values σ (the PGU reference code).
    case singularValues = "sigma"
    /// Cumulative share of energy σ² (Gradient Projection Memory).
    case energy
}
