import XCTest
@testable import LetheTensor

/// Naive triple-loop reference for op(A)·op(B).
func naiveMatmul<S: BLASScalar>(_ a: Tensor<S>, _ ta: Bool, _ b: Tensor<S>, _ tb: Bool) -> Tensor<S> {
    let opA = ta ? a.transposed() : a
    let opB = tb ? b.transposed() : b
    let (m, k, n) = (opA.shape[0], opA.shape[1], opB.shape[1])
    var c = Tensor<S>(zeros: [m, n])
    for i in 0..<m { for j in 0..<n {
        var s: S = 0
        for p in 0..<k { s += opA[i, p] * opB[p, j] }
        c[i, j] = s
    } }
    return c
}

func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor<Float> {
    var rng = SeededGenerator(seed: seed)
    var t = Tensor<Float>(zeros: shape)
    t.scalars.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
    return t
}

final class MatMulTests: XCTestCase {
    func testAllFourTransposeCombinationsFloat() {
        let (m, k, n) = (7, 5, 3)
        for ta in [false, true] { for tb in [false, true] {
            let a = randomTensor(ta ? [k, m] : [m, k], seed: 1)
            let b = randomTensor(tb ? [n, k] : [k, n], seed: 2)
            let c = Tensor.matmul(a, transposeA: ta, b, transposeB: tb)
            let ref = naiveMatmul(a, ta, b, tb)
            XCTAssertEqual(c.shape, [m, n])
            XCTAssertLessThan(c.maxAbsDifference(ref), 1e-5, "transA=\(ta) transB=\(tb)")
        } }
    }

    func testAllFourTransposeCombinationsDouble() {
        let (m, k, n) = (4, 6, 5)
        for ta in [false, true] { for tb in [false, true] {
            let a = randomTensor(ta ? [k, m] : [m, k], seed: 3).toDouble()
            let b = randomTensor(tb ? [n, k] : [k, n], seed: 4).toDouble()
            let c = Tensor.matmul(a, transposeA: ta, b, transposeB: tb)
            XCTAssertLessThan(c.maxAbsDifference(naiveMatmul(a, ta, b, tb)), 1e-12)
        } }
    }

    func testAlphaBetaAccumulate() {
        let a = randomTensor([3, 4], seed: 5), b = randomTensor([4, 2], seed: 6)
        var c = Tensor<Float>(repeating: 1, shape: [3, 2])
        Tensor.gemm(a, b, alpha: 2, beta: 0.5, into: &c)
        let ref = naiveMatmul(a, false, b, false)
        for i in 0..<6 { XCTAssertEqual(c.scalars[i], 2 * ref.scalars[i] + 0.5, accuracy: 1e-5) }
    }

    func testEmptyInnerDimensionScalesByBeta() {
        let a = Tensor<Float>(zeros: [2, 0]), b = Tensor<Float>(zeros: [0, 3])
        var c = Tensor<Float>(repeating: 4, shape: [2, 3])
        Tensor.gemm(a, b, beta: 0.5, into: &c)
        XCTAssertEqual(c.scalars, [Float](repeating: 2, count: 6))
    }
}

final class GramTests: XCTestCase {
    func testGramMatchesNaiveAcrossBatchesAndShards() {
        let d = 6
        let x1 = randomTensor([10, d], seed: 7), x2 = randomTensor([3, d], seed: 8)
        var g = GramAccumulator(dimension: d)
        g.accumulate(x1); g.accumulate(x2)
        var naive = Tensor<Double>(zeros: [d, d])
        for x in [x1, x2] { for r in 0..<x.shape[0] { for i in 0..<d { for j in 0..<d {
            naive[i, j] += Double(x[r, i]) * Double(x[r, j])
        } } } }
        XCTAssertEqual(g.rowCount, 13)
        XCTAssertLessThan(g.matrix.maxAbsDifference(naive), 1e-12)
        // Sharded sum equals one pass.
        var a = GramAccumulator(dimension: d), b = GramAccumulator(dimension: d)
        a.accumulate(x1); b.accumulate(x2); a.add(b)
        XCTAssertLessThan(a.matrix.maxAbsDifference(g.matrix), 1e-12)
        XCTAssertEqual(g.matrix, g.matrix.transposed(), "Gram must be symmetric")
    }
}

final class EigenTests: XCTestCase {
    func testDescendingOrthonormalReconstruction() throws {
        let d = 8
        let x = randomTensor([20, d], seed: 9).toDouble()
        let m = Tensor.matmul(x, transposeA: true, x)
        let e = try SymmetricEigen(m)
        for i in 1..<d { XCTAssertGreaterThanOrEqual(e.values[i - 1], e.values[i]) }
        let v = e.vectors
        let vtv = Tensor.matmul(v, transposeA: true, v)
        for i in 0..<d { for j in 0..<d { XCTAssertEqual(vtv[i, j], i == j ? 1 : 0, accuracy: 1e-10) } }
        // V diag(λ) Vᵀ == M
        var vl = v
        for i in 0..<d { for j in 0..<d { vl[i, j] *= e.values[j] } }
        let rec = Tensor.matmul(vl, v, transposeB: true)
        XCTAssertLessThan(rec.maxAbsDifference(m), 1e-9)
        // M v_0 = λ_0 v_0 for the leading column.
        let top = e.leadingVectors(1)
        let mv = Tensor.matmul(m, top)
        for i in 0..<d { XCTAssertEqual(mv[i, 0], e.values[0] * top[i, 0], accuracy: 1e-9) }
    }

    /// Zero rows (dead input features of a Gram matrix) decouple: the block of the other
    /// coordinates is decomposed alone and each zero row gets eigenvalue 0 and a unit vector,
    /// placed after the non-negative eigenvalues and before the negative ones.
    func testZeroRowsDecoupleWithUnitVectorsInDescendingOrder() throws {
        let d = 9, dead = [1, 4, 8]
        let live = (0..<d).filter { !dead.contains($0) }
        // An indefinite 6 × 6 block (Gram minus a shifted identity), embedded at the live coordinates.
        let x = randomTensor([10, live.count], seed: 3).toDouble()
        var block = Tensor.matmul(x, transposeA: true, x)
        for i in 0..<live.count { block[i, i] -= 1.5 }
        var m = Tensor<Double>(zeros: [d, d])
        for (a, i) in live.enumerated() { for (b, j) in live.enumerated() { m[i, j] = block[a, b] } }
        let e = try SymmetricEigen(m)
        let reference = try SymmetricEigen(block).values
        XCTAssertTrue(reference.contains { $0 < 0 } && reference.contains { $0 > 0 }, "the block must be indefinite")
        let expected = (reference + [0, 0, 0]).sorted(by: >)
        for i in 0..<d { XCTAssertEqual(e.values[i], expected[i], accuracy: 1e-10) }
        // The zeros' eigenvectors are exactly the unit vectors of the dead coordinates.
        let firstZero = reference.filter { $0 >= 0 }.count
        for (t, i) in dead.enumerated() {
            for r in 0..<d { XCTAssertEqual(e.vectors[r, firstZero + t], r == i ? 1 : 0) }
        }
        // Every other eigenvector is exactly 0 at the dead coordinates; V is orthonormal and V Λ Vᵀ = M.
        for c in 0..<d where !(firstZero..<firstZero + 3).contains(c) { for i in dead { XCTAssertEqual(e.vectors[i, c], 0) } }
        let v = e.vectors
        let vtv = Tensor.matmul(v, transposeA: true, v)
        for i in 0..<d { for j in 0..<d { XCTAssertEqual(vtv[i, j], i == j ? 1 : 0, accuracy: 1e-10) } }
        var vl = v
        for i in 0..<d { for j in 0..<d { vl[i, j] *= e.values[j] } }
        XCTAssertLessThan(Tensor.matmul(vl, v, transposeB: true).maxAbsDifference(m), 1e-9)
        // All rows zero: eigenvalues 0, identity vectors.
        let z = try SymmetricEigen(Tensor<Double>(zeros: [3, 3]))
        XCTAssertEqual(z.values, [0, 0, 0])
        XCTAssertEqual(z.vectors.scalars, [1, 0, 0, 0, 1, 0, 0, 0, 1])
    }

    func testKnownSpectrum() throws {
        let m = Tensor<Double>(shape: [2, 2], scalars: [2, 1, 1, 2])
        let e = try SymmetricEigen(m)
        XCTAssertEqual(e.values[0], 3, accuracy: 1e-12)
        XCTAssertEqual(e.values[1], 1, accuracy: 1e-12)
        XCTAssertEqual(abs(e.vectors[0, 0]), 1 / 2.0.squareRoot(), accuracy: 1e-12)
    }
}
