import LetheTensor

/// Evaluation statistics shared by the CLI, the audit report and the evaluation tool.
public enum UnlearningMetrics {
    /// Softmax entropy −Σ p log p of each row of an (n × classes) probability matrix.
    public static func entropies(_ probabilities: Tensor<Float>) -> [Double] {
        let (n, c) = (probabilities.shape[0], probabilities.shape[1])
        return probabilities.scalars.withUnsafeBufferPointer { p in
            (0..<n).map { i in
                var h = 0.0
                for j in 0..<c { let v = Double(p[i * c + j]); if v > 0 { h -= v * log(v) } }
                return h
            }
        }
    }

    /// Area under the ROC curve for scores where `positive` should score higher
    /// (Mann–Whitney U with ties counted as ½).
    /// - Complexity: O((m + n) log(m + n)).
    public static func rocAUC(positive: [Double], negative: [Double]) -> Double {
        guard !positive.isEmpty, !negative.isEmpty else { return .nan }
        let all = positive.map { ($0, true) } + negative.map { ($0, false) }
        let sorted = all.sorted { $0.0 < $1.0 }
        // Average ranks over ties.
        var rankSumPositive = 0.0
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1].0 == sorted[i].0 { j += 1 }
            let avgRank = Double(i + j) / 2 + 1
            for t in i...j where sorted[t].1 { rankSumPositive += avgRank }
            i = j + 1
        }
        let m = Double(positive.count), n = Double(negative.count)
        return (rankSumPositive - m * (m + 1) / 2) / (m * n)
    }

    /// Mean Jensen–Shannon divergence (natural log, in [0, ln 2]) between matching rows of two
    /// probability matrices.
    public static func jsDivergence(_ p: Tensor<Float>, _ q: Tensor<Float>) -> Double {
        precondition(p.shape == q.shape, "JS divergence needs equal shapes: \(p.shape) vs \(q.shape)")
        let (n, c) = (p.shape[0], p.shape[1])
        guard n > 0 else { return 0 }
        var total = 0.0
        for i in 0..<n {
            var js = 0.0
            for j in 0..<c {
                let a = Double(p.scalars[i * c + j]), b = Double(q.scalars[i * c + j]), m = (a + b) / 2
                if a > 0 { js += 0.5 * a * log(a / m) }
                if b > 0 { js += 0.5 * b * log(b / m) }
            }
            total += js
        }
        return total / Double(n)
    }

    /// Mean L2 distance between matching rows of two matrices (the "activation distance"
    /// of softmax outputs).
    public static func activationDistance(_ p: Tensor<Float>, _ q: Tensor<Float>) -> Double {
        precondition(p.shape == q.shape, "activation distance needs equal shapes: \(p.shape) vs \(q.shape)")
        let (n, c) = (p.shape[0], p.shape[1])
        guard n > 0 else { return 0 }
        var total = 0.0
        for i in 0..<n {
            var s = 0.0
            for j in 0..<c { let d = Double(p.scalars[i * c + j]) - Double(q.scalars[i * c + j]); s += d * d }
            total += s.squareRoot()
        }
        return total / Double(n)
    }

    /// L2 distance between two parameter sets, over the names they share.
    public static func weightDistance(_ a: [String: Tensor<Float>], _ b: [String: Tensor<Float>]) -> Double {
        var s = 0.0
        for (name, ta) in a {
            guard let tb = b[name], tb.shape == ta.shape else { continue }
            for (x, y) in zip(ta.scalars, tb.scalars) { let d = Double(x) - Double(y); s += d * d }
        }
        return s.squareRoot()
    }
}

/// A logistic regression on one feature, fitted by Newton's method (IRLS) with a small
/// L2 penalty — the membership-inference attack's classifier.
public struct LogisticRegression1D: Sendable, Equatable {
    /// Intercept.
    public var bias: Double
    /// Coefficient on the standardized feature.
    public var coefficient: Double
    /// Mean and standard deviation used to standardize the feature.
    public var mean: Double, scale: Double

    /// Fits P(member | x) on members (label 1) and non-members (label 0).
    /// Members and non-members are weighted to equal total weight (balanced classes).
    public init(members: [Double], nonMembers: [Double], l2: Double = 1e-4, iterations: Int = 50) {
        let xs = members + nonMembers
        let n = Double(xs.count)
        let mean = xs.reduce(0, +) / max(n, 1)
        let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / max(n, 1)
        let scale = variance > 0 ? variance.squareRoot() : 1
        let wPos = members.isEmpty ? 0 : 0.5 / Double(members.count)
        let wNeg = nonMembers.isEmpty ? 0 : 0.5 / Double(nonMembers.count)
        var b = 0.0, w = 0.0
        for _ in 0..<iterations {
            var gb = 0.0, gw = l2 * w, hbb = 0.0, hbw = 0.0, hww = l2
            for (idx, raw) in xs.enumerated() {
                let x = (raw - mean) / scale
                let y = idx < members.count ? 1.0 : 0.0
                let weight = idx < members.count ? wPos : wNeg
                let p = 1 / (1 + exp(-(b + w * x)))
                let r = p * (1 - p) * weight
                gb += (p - y) * weight; gw += (p - y) * x * weight
                hbb += r; hbw += r * x; hww += r * x * x
            }
            let det = hbb * hww - hbw * hbw
            guard det > 1e-18 else { break }
            let db = (hww * gb - hbw * gw) / det, dw = (hbb * gw - hbw * gb) / det
            b -= db; w -= dw
            if abs(db) + abs(dw) < 1e-10 { break }
        }
        self.bias = b; self.coefficient = w; self.mean = mean; self.scale = scale
    }

    /// P(member | x).
    public func probability(_ x: Double) -> Double { 1 / (1 + exp(-(bias + coefficient * (x - mean) / scale))) }

    /// Whether x is predicted a member (probability > ½).
    public func predictsMember(_ x: Double) -> Bool { probability(x) > 0.5 }
}

/// The entropy membership-inference attack's outcome on a forget set.
public enum MembershipInference: Sendable, Equatable {
    /// The fraction of the forget set predicted to be training members.
    case fraction(Double)
    /// The attack's classifier found no signal (near-zero coefficient, or it predicts the same
    /// class for every member and non-member): reporting a fraction would be meaningless.
    case noSignal

    /// Fits the entropy attack on a retain subsample (members) vs the test set (non-members)
    /// and applies it to the forget set.
    public static func entropyAttack(retainEntropies: [Double], testEntropies: [Double], forgetEntropies: [Double],
                                     minimumCoefficient: Double = 1e-3) -> MembershipInference {
        let model = LogisticRegression1D(members: retainEntropies, nonMembers: testEntropies)
        let training = retainEntropies + testEntropies
        let predictedMembers = training.filter(model.predictsMember).count
        if abs(model.coefficient) < minimumCoefficient || predictedMembers == 0 || predictedMembers == training.count {
            return .noSignal
        }
        guard !forgetEntropies.isEmpty else { return .fraction(0) }
        return .fraction(Double(forgetEntropies.filter(model.predictsMember).count) / Double(forgetEntropies.count))
    }

    /// The fraction, or nil for no signal.
    public var value: Double? { if case .fraction(let f) = self { return f } else { return nil } }
}

#if canImport(Glibc)
import Glibc
#endif
