import LetheTensor
#if canImport(Glibc)
import Glibc
#endif

/// What a forget request removes, which selects the loss and the stopping rule.
public enum UnlearningMode: Sendable, Equatable, Codable {
    /// Forget individual samples: stop when held-out accuracy exceeds forget accuracy.
    case samples
    /// Forget a whole class: stop at chance accuracy on it, or when the other classes lose `margin`.
    case wholeClass(Int)
    /// Undo poisoned samples (trained with wrong labels): push them to a confident other class.
    case depoison
}

/// The PGU unlearning loss on forget batches (Hoang et al., WACV 2024, §3.3).
///
/// - samples / class: L = w1·mean(−log(1 − (p_y − offset))) + w2·mean(Σ_c p_c log p_c);
///   minimising the second term raises the prediction entropy.
/// - depoison: the second term is replaced by the entropy of the softmax over the classes
///   other than the (wrong) training label, minimised — a confident prediction of another class.
public struct PGULoss: Sendable, Equatable, Codable {
    /// Offset subtracted from p_y inside L1 (keeps the log finite).
    public var offset: Double = 0.05
    /// Weight of L1.
    public var w1: Double = 1
    /// Weight of L2.
    public var w2: Double = 0.2

    /// Default weights.
    public init(offset: Double = 0.05, w1: Double = 1, w2: Double = 0.2) { self.offset = offset; self.w1 = w1; self.w2 = w2 }

    /// Mean loss and dLoss/dLogits for a batch (logits batch × classes, labels in 0..<classes).
    /// Computed in Float64 per row.
    public func evaluate(logits: Tensor<Float>, labels: [Int], depoison: Bool) -> (loss: Double, dLogits: Tensor<Float>) {
        let (b, c) = (logits.shape[0], logits.shape[1])
        precondition(labels.count == b, "\(labels.count) labels for a batch of \(b)")
        var grad = Tensor<Float>(zeros: [b, c])
        var total = 0.0
        var p = [Double](repeating: 0, count: c), g = [Double](repeating: 0, count: c)
        logits.scalars.withUnsafeBufferPointer { z in
            grad.scalars.withUnsafeMutableBufferPointer { dz in
                guard let zb = z.baseAddress else { return }
                for i in 0..<b {
                    let y = labels[i]
                    softmax(zb + i * c, count: c, into: &p)
                    for j in 0..<c { g[j] = 0 }
                    // L1 = −log(1 − p_y + offset);  dL1/dz_j = p_y(δ_yj − p_j) / (1 − p_y + offset)
                    let denom = 1 - p[y] + offset
                    total += w1 * -log(denom)
                    for j in 0..<c { g[j] += w1 * p[y] * ((j == y ? 1 : 0) - p[j]) / denom }
                    if depoison {
                        // H(q), q = softmax over classes ≠ y;  dH/dz_j = −q_j (log q_j + H), dH/dz_y = 0.
                        let rest = 1 - p[y]
                        var h = 0.0
                        if rest > 0 {
                            for j in 0..<c where j != y { let q = p[j] / rest; if q > 0 { h -= q * log(q) } }
                            for j in 0..<c where j != y {
                                let q = p[j] / rest
                                if q > 0 { g[j] += w2 * -q * (log(q) + h) }
                            }
                        }
                        total += w2 * h
                    } else {
                        // L2 = Σ p log p = −H(p);  dL2/dz_j = p_j (log p_j + H).
                        var h = 0.0
                        for j in 0..<c where p[j] > 0 { h -= p[j] * log(p[j]) }
                        total += w2 * -h
                        for j in 0..<c where p[j] > 0 { g[j] += w2 * p[j] * (log(p[j]) + h) }
                    }
                    for j in 0..<c { dz[i * c + j] = Float(g[j] / Double(b)) }
                }
            }
        }
        return (total / Double(max(b, 1)), grad)
    }

    /// Numerically stable softmax of one row, in Float64.
    @inline(__always)
    func softmax(_ z: UnsafePointer<Float>, count c: Int, into p: inout [Double]) {
        var m = -Double.infinity
        for j in 0..<c { m = max(m, Double(z[j])) }
        var s = 0.0
        for j in 0..<c { p[j] = exp(Double(z[j]) - m); s += p[j] }
        for j in 0..<c { p[j] /= s }
    }
}
