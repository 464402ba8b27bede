import LetheTensor

/// How one tensor differs between two versions.
public struct TensorDiff: Sendable, Equatable {
    /// What happened to the tensor.
    public enum Status: String, Sendable {
        case unchanged, changed, added, removed
        /// Same name, different dtype or shape.
        case reshaped
    }
    /// Tensor name.
    public var name: String
    /// Status.
    public var status: Status
    /// ‖B − A‖₂ (Frobenius) for changed numeric tensors.
    public var l2: Double?
    /// ‖B − A‖ / ‖A‖ (nil when ‖A‖ = 0).
    public var relative: Double?
    /// Numerical rank of B − A viewed as a (shape[0] × rest) matrix: singular values above
    /// σ_max · max(m, n) · ε_f32 (NumPy's `matrix_rank` rule); nil when too large to compute.
    public var rank: Int?
}

extension Store {
    /// The largest min(m, n) for which `diff` computes the numerical rank of a change.
    public static let maxRankDimension = 4096

    /// Compares every tensor of versions `a` and `b` (in `b`'s order, then removed ones).
    /// Unchanged chunks are recognized by id without decoding.
    public func diff(_ a: ObjectID, _ b: ObjectID) throws(StoreError) -> [TensorDiff] {
        let va = try version(a), vb = try version(b)
        var out: [TensorDiff] = []
        for tb in vb.tensors {
            guard let ta = va.tensor(tb.name) else { out.append(TensorDiff(name: tb.name, status: .added)); continue }
            if ta.dtype != tb.dtype || ta.shape != tb.shape {
                out.append(TensorDiff(name: tb.name, status: .reshaped)); continue
            }
            if ta.chunks == tb.chunks && ta.chunkBytes == tb.chunkBytes {
                out.append(TensorDiff(name: tb.name, status: .unchanged, l2: 0, relative: 0, rank: 0)); continue
            }
            let xa = try read(ta), xb = try read(tb)
            if xa.data == xb.data { out.append(TensorDiff(name: tb.name, status: .unchanged, l2: 0, relative: 0, rank: 0)); continue }
            guard let fa = xa.floats(), let fb = xb.floats() else {
                out.append(TensorDiff(name: tb.name, status: .changed)); continue
            }
            var delta = [Float](repeating: 0, count: fa.count)
            var dd = 0.0, aa = 0.0
            for i in 0..<fa.count {
                let d = Double(fb[i]) - Double(fa[i])
                delta[i] = Float(d)
                dd += d * d; aa += Double(fa[i]) * Double(fa[i])
            }
            let l2 = dd.squareRoot()
            out.append(TensorDiff(name: tb.name, status: .changed, l2: l2, relative: aa > 0 ? l2 / aa.squareRoot() : nil,
                                  rank: Store.numericalRank(delta, shape: tb.shape)))
        }
        for ta in va.tensors where vb.tensor(ta.name) == nil { out.append(TensorDiff(name: ta.name, status: .removed)) }
        return out
    }

    /// Numerical rank of `values` viewed as (shape[0] × rest), via the eigenvalues of the
    /// smaller Gram matrix in Float64 (`cblas_dsyrk`, `LAPACKE_dsyevd`).
    public static func numericalRank(_ values: [Float], shape: [Int]) -> Int? {
        let m = shape.first ?? 1, n = max(1, values.count / max(m, 1))
        guard m > 0, values.count > 0 else { return 0 }
        guard min(m, n) <= maxRankDimension else { return nil }
        var g: GramAccumulator
        if n <= m {
            g = GramAccumulator(dimension: n)
            values.withUnsafeBufferPointer { g.accumulate(rows: m, $0) }
        } else {
            var t = [Float](repeating: 0, count: values.count)
            for i in 0..<m { for j in 0..<n { t[j * m + i] = values[i * n + j] } }
            g = GramAccumulator(dimension: m)
            t.withUnsafeBufferPointer { g.accumulate(rows: n, $0) }
        }
        guard let eig = try? SymmetricEigen(g.matrix) else { return nil }
        let sigmas = eig.values.map { max($0, 0).squareRoot() }
        guard let top = sigmas.first, top > 0 else { return 0 }
        let tol = top * Double(max(m, n)) * Double(Float.ulpOfOne)
        return sigmas.filter { $0 > tol }.count
    }
}
