import LetheTensor

/// Projects weight gradients orthogonally to a layer's Core Gradient Space (CGS).
///
/// For a weight W reshaped to (out × d) and an orthonormal CGS basis U_k (d × k), the
/// projected gradient is g − (g U_k) U_kᵀ (Hoang et al., WACV 2024, Eq. 6), computed with
/// two thin GEMMs. When k > d/2 the orthogonal complement U_c (d × (d−k)) is thinner and
/// the same result is (g U_c) U_cᵀ. A d × d projector is never formed.
public struct GradientProjector: Sendable {
    /// Which form is applied.
    public enum Form: Sendable, Equatable {
        /// g − (g U_k) U_kᵀ with the CGS basis.
        case removeCore
        /// (g U_c) U_cᵀ with the complement basis.
        case keepComplement
    }

    /// Input dimension d.
    public let dimension: Int
    /// CGS size k.
    public let k: Int
    /// The form used.
    public let form: Form
    /// The basis used by `form` in Float32 (d × k or d × (d−k)).
    public let basis32: Tensor<Float>
    /// The same in Float64 (for exact re-projection and residuals).
    public let basis64: Tensor<Double>
    /// The CGS basis U_k in Float64 (d × k), for residuals.
    public let core64: Tensor<Double>

    /// A projector for CGS size k of a basis.
    ///
    /// The complement form takes columns k..<d of a full basis; for a truncated basis the
    /// complement is completed from the eigenvectors of I − U_k U_kᵀ.
    public init(basis: LayerBasis, k: Int) throws(LinearAlgebraError) {
        let d = basis.dimension
        self.dimension = d
        self.k = k
        let core = basis.leadingColumns(k)
        self.core64 = core
        if k > d / 2 {
            self.form = .keepComplement
            if basis.rank == d {
                self.basis64 = basis.columns(k..<d)
            } else {
                // A truncated basis: complete the complement from I − U_k U_kᵀ (eigenvalue ~1).
                var p = Tensor<Double>(zeros: [d, d])
                Tensor.gemm(core, core, transposeB: true, alpha: -1, beta: 0, into: &p)
                for i in 0..<d { p[i, i] += 1 }
                self.basis64 = try SymmetricEigen(p).leadingVectors(d - k)
            }
        } else {
            self.form = .removeCore
            self.basis64 = core
        }
        self.basis32 = basis64.toFloat()
    }

    /// Projects `g` (rows × d, row-major Float32) in place; `scratch` must hold rows × basis columns.
    public func project(_ g: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        let c = basis32.shape[1]
        guard c > 0 else {
            if form == .keepComplement { g.update(repeating: 0, count: rows * dimension) }
            return
        }
        basis32.scalars.withUnsafeBufferPointer { pu in
            // T = g U   (rows × d) · (d × c)
            Tensor<Float>.gemmRaw(transA: false, transB: false, m: rows, n: c, k: dimension, alpha: 1,
                                  a: UnsafePointer(g), lda: dimension, b: pu.baseAddress, ldb: c,
                                  beta: 0, c: scratch, ldc: c)
            // removeCore: g ← g − T Uᵀ ; keepComplement: g ← T Uᵀ
            Tensor<Float>.gemmRaw(transA: false, transB: true, m: rows, n: dimension, k: c,
                                  alpha: form == .removeCore ? -1 : 1,
                                  a: UnsafePointer(scratch), lda: c, b: pu.baseAddress, ldb: c,
                                  beta: form == .removeCore ? 1 : 0, c: g, ldc: dimension)
        }
    }

    /// Projects a Float32 gradient matrix (rows × d) and returns it.
    public func projected(_ g: Tensor<Float>) -> Tensor<Float> {
        precondition(g.count % dimension == 0, "gradient of \(g.count) scalars is not rows × \(dimension)")
        let rows = g.count / dimension
        var out = g
        var scratch = [Float](repeating: 0, count: rows * max(basis32.shape[1], 1))
        out.scalars.withUnsafeMutableBufferPointer { po in
            scratch.withUnsafeMutableBufferPointer { ps in
                guard let o = po.baseAddress, let s = ps.baseAddress else { return }
                project(o, rows: rows, scratch: s)
            }
        }
        return out
    }

    /// Removes the CGS component of ΔW exactly in Float64: ΔW − (ΔW U_k) U_kᵀ.
    public func removeCore64(_ delta: Tensor<Double>) -> Tensor<Double> {
        let rows = delta.count / dimension
        let dw = delta.reshaped([rows, dimension])
        guard k > 0 else { return delta }
        let t = Tensor.matmul(dw, core64)
        var out = dw
        Tensor.gemm(t, core64, transposeB: true, alpha: -1, beta: 1, into: &out)
        return out.reshaped(delta.shape)
    }

    /// The ρ that rounding `weights` (rows × d, the stored Float32 weights after an update of
    /// Frobenius norm `updateNorm`) alone is expected to leave: each element's error uniform over
    /// ±ulp/2 (variance ulp²/12), weighted by the squared norm of U_k's row for its input.
    /// Nil for a zero update.
    public func roundingFloor(weights: [Float], updateNorm: Double) -> Double? {
        guard updateNorm > 0 else { return nil }
        guard k > 0 else { return 0 }
        let u = core64.scalars
        var leverage = [Double](repeating: 0, count: dimension)
        for i in 0..<dimension { for j in 0..<k { leverage[i] += u[i * k + j] * u[i * k + j] } }
        var variance = 0.0
        for (n, w) in weights.enumerated() {
            let ulp = Double(w.ulp)
            variance += ulp * ulp / 12 * leverage[n % dimension]
        }
        return variance.squareRoot() / updateNorm
    }

    /// The orthogonality residual ρ = ‖ΔW U_k‖_F / ‖ΔW‖_F (Float64); 0 for a zero update.
    public func residual(_ delta: Tensor<Double>) -> Double {
        let norm = delta.frobeniusNorm
        guard norm > 0, k > 0 else { return 0 }
        let rows = delta.count / dimension
        return Tensor.matmul(delta.reshaped([rows, dimension]), core64).frobeniusNorm / norm
    }
}
