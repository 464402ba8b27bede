import LetheTensor
#if canImport(Glibc)
import Glibc
#endif

/// The result of softmax cross-entropy on a batch.
public struct CrossEntropyResult: Sendable {
    /// Mean loss over the batch.
    public var loss: Float
    /// Loss of each sample: −log softmax(z)[y].
    public var perSample: [Float]
    /// dL/dz for the mean loss: (softmax(z) − onehot(y)) / B, shape (B, classes).
    public var dLogits: Tensor<Float>
}

/// Numerically stable softmax cross-entropy (log-sum-exp with the row maximum subtracted).
public enum CrossEntropy {
    /// Mean loss, per-sample losses and dL/dlogits for logits (B, K) and labels in 0..<K.
    /// - Complexity: O(B·K); sums in Float64.
    public static func compute(logits: Tensor<Float>, labels: [Int32]) -> CrossEntropyResult {
        precondition(logits.rank == 2 && logits.shape[0] == labels.count, "logits \(logits.shape) vs \(labels.count) labels")
        let b = logits.shape[0], k = logits.shape[1]
        var perSample = [Float](repeating: 0, count: b)
        var total = 0.0
        let inv = 1 / Float(b)
        let grad = withPointer(logits) { pz in
            Tensor<Float>.filled(shape: [b, k]) { pg in
                perSample.withUnsafeMutableBufferPointer { ps in
                    for i in 0..<b {
                        let z = pz + i * k, g = pg + i * k
                        let y = Int(labels[i])
                        precondition(y >= 0 && y < k, "label \(y) out of range 0..<\(k)")
                        var m = -Float.infinity
                        for j in 0..<k { m = max(m, z[j]) }
                        var sum = 0.0
                        for j in 0..<k { let e = Double(expf(z[j] - m)); g[j] = Float(e); sum += e }
                        let logSum = Double(m) + log(sum)
                        let l = logSum - Double(z[y])
                        ps[i] = Float(l); total += l
                        let r = Float(1 / sum)
                        for j in 0..<k { g[j] = g[j] * r * inv }
                        g[y] -= inv
                    }
                }
            }
        }
        return CrossEntropyResult(loss: Float(total / Double(max(b, 1))), perSample: perSample, dLogits: grad)
    }

    /// Softmax probabilities of each row of logits (B, K).
    public static func softmax(_ logits: Tensor<Float>) -> Tensor<Float> {
        precondition(logits.rank == 2, "softmax needs (B, K) logits, got \(logits.shape)")
        let b = logits.shape[0], k = logits.shape[1]
        return withPointer(logits) { pz in
            Tensor<Float>.filled(shape: [b, k]) { pp in
                for i in 0..<b {
                    let z = pz + i * k, p = pp + i * k
                    var m = -Float.infinity
                    for j in 0..<k { m = max(m, z[j]) }
                    var sum = 0.0
                    for j in 0..<k { let e = Double(expf(z[j] - m)); p[j] = Float(e); sum += e }
                    let r = Float(1 / sum)
                    for j in 0..<k { p[j] *= r }
                }
            }
        }
    }
}
