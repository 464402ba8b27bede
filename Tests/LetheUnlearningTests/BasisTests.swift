import XCTest
import LetheTensor
@testable import LetheUnlearning

func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64, lowRank: Int? = nil) -> Tensor<Float> {
    var rng = SeededGenerator(seed: seed)
    if let r = lowRank {
        var a = Tensor<Float>(zeros: [rows, r]), b = Tensor<Float>(zeros: [r, cols])
        a.scalars.withUnsafeMutableBufferPointer { rng.fillNormal($0) }
        b.scalars.withUnsafeMutableBufferPointer { rng.fillNormal($0) }
        return Tensor.matmul(a, b)
    }
    var t = Tensor<Float>(zeros: [rows, cols])
    t.scalars.withUnsafeMutableBufferPointer { rng.fillNormal($0) }
    return t
}

func gram(_ x: Tensor<Float>) -> GramAccumulator {
    var g = GramAccumulator(dimension: x.shape[1]); g.accumulate(x); return g
}

func rows(_ x: Tensor<Float>, _ range: Range<Int>) -> Tensor<Float> {
    let d = x.shape[1]
    return Tensor(shape: [range.count, d], scalars: Array(x.scalars[(range.lowerBound * d)..<(range.upperBound * d)]))
}

final class BasisTests: XCTestCase {
    func testDowndateEqualsDirectRetainedSpectrumAndSubspace() throws {
        // Anisotropic data so the spectrum has distinct, decaying values.
        let d = 12
        var x = randomMatrix(300, d, seed: 1)
        for i in 0..<300 { for j in 0..<d { x[i, j] *= Float(1.0 / Double(j + 1)) } }
        let full = gram(x), forget = gram(rows(x, 0..<40)), retained = gram(rows(x, 40..<300))
        let basis = try LayerBasis(layer: "fc1", gram: full.matrix, rowCount: full.rowCount)
        let down = try basis.downdated(removing: forget.matrix, forgetRows: forget.rowCount)
        let direct = try LayerBasis(layer: "fc1", gram: retained.matrix, rowCount: retained.rowCount)
        XCTAssertEqual(down.rowCount, 260)
        for i in 0..<d {
            XCTAssertEqual(down.sigma[i] * down.sigma[i], direct.sigma[i] * direct.sigma[i],
                           accuracy: 1e-6 * direct.sigma[i] * direct.sigma[i], "eigenvalue \(i)")
        }
        // Principal angles between top-k subspaces: singular values of U_kᵀ V_k are all ~1.
        let k = 5
        let overlap = Tensor.matmul(down.leadingColumns(k), transposeA: true, direct.leadingColumns(k))
        let cosines = try SymmetricEigen(Tensor.matmul(overlap, transposeA: true, overlap)).values.map { $0.squareRoot() }
        for c in cosines { XCTAssertEqual(c, 1, accuracy: 1e-9) }
    }

    func testTruncationDropsNullComponentsButKeepsTheGram() throws {
        let x = randomMatrix(50, 10, seed: 2, lowRank: 3)
        let basis = try LayerBasis(layer: "l", gram: gram(x).matrix, rowCount: 50)
        XCTAssertEqual(basis.rank, 10)
        let t = basis.truncated()
        XCTAssertEqual(t.rank, 3)
        let scale = basis.sigma[0] * basis.sigma[0]
        XCTAssertLessThan(t.gram().maxAbsDifference(basis.gram()), 1e-9 * scale)
    }

    /// ‖ΔW Xᵀ‖/‖W Xᵀ‖ from the basis alone equals the ratio computed on the rows themselves; an
    /// update outside the rows' span moves nothing.
    func testOutputShiftFromTheBasisEqualsTheShiftOnTheRows() throws {
        let x = randomMatrix(80, 10, seed: 4, lowRank: 6).toDouble()
        let basis = try LayerBasis(layer: "l", gram: gram(x.toFloat()).matrix, rowCount: 80)
        let w = randomMatrix(5, 10, seed: 5).toDouble(), dw = randomMatrix(5, 10, seed: 6).toDouble()
        let direct = Tensor.matmul(dw, x, transposeB: true).frobeniusNorm
            / Tensor.matmul(w, x, transposeB: true).frobeniusNorm
        XCTAssertEqual(basis.outputShift(update: dw, weights: w), direct, accuracy: 1e-4 * direct)
        // The part of dw outside the rows' 6-dimensional span: its shift is zero.
        let core = basis.leadingColumns(6)
        let inside = Tensor.matmul(Tensor.matmul(dw, core), core, transposeB: true)
        let outside = Tensor<Double>(shape: dw.shape, scalars: zip(dw.scalars, inside.scalars).map { $0 - $1 })
        XCTAssertGreaterThan(outside.frobeniusNorm, 0.5 * dw.frobeniusNorm)
        XCTAssertLessThan(basis.outputShift(update: outside, weights: w), 1e-6)
    }

    func testCoreRankRules() {
        let u = Tensor<Double>(zeros: [4, 4])
        let b = LayerBasis(layer: "l", dimension: 4, u: u, sigma: [4, 3, 2, 1], rowCount: 1)
        // σ shares: 0.4, 0.7, 0.9, 1.0
        XCTAssertEqual(b.coreRank(gamma: 0.95), 3)
        XCTAssertEqual(b.coreRank(gamma: 0.9), 3)
        XCTAssertEqual(b.coreRank(gamma: 0.5), 1)
        XCTAssertEqual(b.coreRank(gamma: 0.3), 0)
        XCTAssertEqual(b.coreRank(gamma: 1.0), 4)
        // σ² shares: 16/30 = 0.533, 25/30 = 0.833, 29/30 = 0.967, 1
        XCTAssertEqual(b.coreRank(gamma: 0.95, rule: .energy), 2)
        XCTAssertEqual(b.coreRank(gamma: 0.97, rule: .energy), 3)
    }

    func testDirectionCapWidensTheCoreOnlyWhereOneDirectionCarriesMoreThanOneMinusGamma() {
        let b = LayerBasis(layer: "l", dimension: 4, u: Tensor<Double>(zeros: [4, 4]), sigma: [4, 3, 2, 1], rowCount: 1)
        // σ shares 0.4, 0.3, 0.2, 0.1. γ 0.85: the rule keeps 2; the third direction (0.2 > 0.15)
        // joins, the fourth (0.1) does not.
        XCTAssertEqual(b.coreRank(gamma: 0.85), 2)
        XCTAssertEqual(b.coreRank(gamma: 0.85, capDirections: true), 3)
        // γ 0.95: the last direction (0.1 > 0.05) joins: the layer is left out (k = d).
        XCTAssertEqual(b.coreRank(gamma: 0.95, capDirections: true), 4)
        XCTAssertEqual(b.coreRank(gamma: 0.5, capDirections: true), 1, "0.3 ≤ 0.5: nothing added")
        // σ² shares 16/30, 9/30, 4/30, 1/30: γ 0.9 keeps 2 by the rule; 4/30 > 0.1 joins, 1/30 does not.
        XCTAssertEqual(b.coreRank(gamma: 0.9, rule: .energy, capDirections: true), 3)
        // A wide layer: 200 equal directions (0.005 each) never trip the cap.
        let wide = LayerBasis(layer: "w", dimension: 200, u: Tensor<Double>(zeros: [200, 200]), sigma: [Double](repeating: 1, count: 200), rowCount: 1)
        for gamma in [0.5, 0.9, 0.99] {
            XCTAssertEqual(wide.coreRank(gamma: gamma, capDirections: true), wide.coreRank(gamma: gamma))
        }
    }
}

final class ProjectionTests: XCTestCase {
    func testBothFormsRemoveTheCoreSpaceAndAgree() throws {
        let d = 16
        let basis = try LayerBasis(layer: "l", gram: gram(randomMatrix(100, d, seed: 3)).matrix, rowCount: 100)
        let g = randomMatrix(5, d, seed: 4)
        for k in [0, 3, 8, 9, 12, 16] {
            let p = try GradientProjector(basis: basis, k: k)
            XCTAssertEqual(p.form, k > d / 2 ? .keepComplement : .removeCore)
            let pg = p.projected(g)
            // Reference: g − g U_k U_kᵀ in Float64.
            let ref = p.removeCore64(g.toDouble())
            XCTAssertLessThan(pg.toDouble().maxAbsDifference(ref), 1e-5, "k = \(k)")
            XCTAssertLessThan(p.residual(pg.toDouble()), k == d ? 1 : 1e-5, "k = \(k)")
            if k > 0 && k < d {
                XCTAssertGreaterThan(p.residual(g.toDouble()), 0.1, "an unprojected gradient has a core component")
            }
        }
    }

    func testExactReprojectionReachesFloat64Floor() throws {
        let d = 20
        let basis = try LayerBasis(layer: "l", gram: gram(randomMatrix(200, d, seed: 5)).matrix, rowCount: 200)
        let p = try GradientProjector(basis: basis, k: 7)
        let delta = randomMatrix(4, d, seed: 6).toDouble()
        XCTAssertLessThan(p.residual(p.removeCore64(delta)), 1e-14)
    }

    /// Storing W + ΔW in Float32 puts rounding error into the CGS; `roundingFloor` predicts the ρ
    /// that error leaves, and ρ of an exactly orthogonal update stored in Float32 sits at it: near
    /// 1e-7 for an update the size of the weights, past the 1e-5 tolerance for one a thousandth.
    func testRhoOfAStoredUpdateSitsAtTheRoundingFloor() throws {
        let d = 64, rows = 64
        let basis = try LayerBasis(layer: "l", gram: gram(randomMatrix(400, d, seed: 8)).matrix, rowCount: 400)
        let p = try GradientProjector(basis: basis, k: 50)
        let w0 = randomMatrix(rows, d, seed: 9).scalars.map { $0 * 0.1 }
        let direction = p.removeCore64(randomMatrix(rows, d, seed: 10).toDouble())
        let weightNorm = w0.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        var rhos: [Double] = []
        for size in [1.0, 1e-3] {
            let delta = direction.scalars.map { $0 * size * weightNorm / direction.frobeniusNorm }
            let stored32 = zip(w0, delta).map { Float(Double($0) + $1) }
            let stored = Tensor<Double>(shape: [rows, d], scalars: zip(stored32, w0).map { Double($0) - Double($1) })
            let rho = p.residual(stored)
            let floor = try XCTUnwrap(p.roundingFloor(weights: stored32, updateNorm: stored.frobeniusNorm))
            XCTAssertEqual(rho / floor, 1, accuracy: 0.2, "size \(size): rho \(rho), floor \(floor)")
            rhos.append(rho)
        }
        XCTAssertLessThan(rhos[0], 1e-6)
        XCTAssertGreaterThan(rhos[1], 1e-5)
        XCTAssertNil(p.roundingFloor(weights: w0, updateNorm: 0))
    }

    func testTruncatedBasisComplementMatchesFull() throws {
        let d = 10
        let x = randomMatrix(80, d, seed: 7, lowRank: 8)
        let full = try LayerBasis(layer: "l", gram: gram(x).matrix, rowCount: 80)
        let trunc = full.truncated()
        XCTAssertEqual(trunc.rank, 8)
        let g = randomMatrix(3, d, seed: 8)
        let a = try GradientProjector(basis: full, k: 6).projected(g)
        let b = try GradientProjector(basis: trunc, k: 6).projected(g)
        XCTAssertLessThan(a.maxAbsDifference(b), 1e-5)
    }
}

final class MetricsTests: XCTestCase {
    func testAUC() {
        XCTAssertEqual(UnlearningMetrics.rocAUC(positive: [3, 4], negative: [1, 2]), 1)
        XCTAssertEqual(UnlearningMetrics.rocAUC(positive: [1, 2], negative: [3, 4]), 0)
        XCTAssertEqual(UnlearningMetrics.rocAUC(positive: [1, 3], negative: [2, 2]), 0.5)
        XCTAssertEqual(UnlearningMetrics.rocAUC(positive: [2], negative: [2]), 0.5)
    }

    func testEntropyAndJS() {
        let uniform = Tensor<Float>(repeating: 0.25, shape: [1, 4])
        XCTAssertEqual(UnlearningMetrics.entropies(uniform)[0], log(4.0), accuracy: 1e-6)
        let onehot = Tensor<Float>(shape: [1, 4], scalars: [1, 0, 0, 0])
        XCTAssertEqual(UnlearningMetrics.entropies(onehot)[0], 0)
        XCTAssertEqual(UnlearningMetrics.jsDivergence(uniform, uniform), 0, accuracy: 1e-12)
        let other = Tensor<Float>(shape: [1, 4], scalars: [0, 1, 0, 0])
        XCTAssertEqual(UnlearningMetrics.jsDivergence(onehot, other), log(2.0), accuracy: 1e-9)
        XCTAssertEqual(UnlearningMetrics.activationDistance(onehot, other), 2.0.squareRoot(), accuracy: 1e-9)
    }

    func testEntropyAttackSignalAndNoSignal() {
        // Members have low entropy, non-members high: forget samples with low entropy look like members.
        var rng = SeededGenerator(seed: 9)
        let members = (0..<200).map { _ in 0.1 + 0.05 * rng.normal() }
        let nonMembers = (0..<200).map { _ in 1.0 + 0.05 * rng.normal() }
        let forgetLikeMembers = (0..<50).map { _ in 0.1 + 0.05 * rng.normal() }
        XCTAssertEqual(MembershipInference.entropyAttack(retainEntropies: members, testEntropies: nonMembers,
                                                         forgetEntropies: forgetLikeMembers).value ?? -1, 1, accuracy: 0.02)
        let forgetLikeTest = (0..<50).map { _ in 1.0 + 0.05 * rng.normal() }
        XCTAssertEqual(MembershipInference.entropyAttack(retainEntropies: members, testEntropies: nonMembers,
                                                         forgetEntropies: forgetLikeTest).value ?? -1, 0, accuracy: 0.02)
        // Identical distributions: no signal.
        let same = (0..<200).map { _ in 0.5 }
        XCTAssertEqual(MembershipInference.entropyAttack(retainEntropies: same, testEntropies: same, forgetEntropies: [0.5]), .noSignal)
    }
}
